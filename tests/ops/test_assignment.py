"""The compiled greedy assignment equals the sequential walk of the original tracker."""

from __future__ import annotations

import pytest
import torch

from qdtrack_pl.ops.assignment import greedy_assign


def sequential_greedy(
    affinity: torch.Tensor, threshold: float, row_ok: torch.Tensor, col_ok: torch.Tensor
) -> tuple[list[int], list[float]]:
    """The original loop: each claim zeroes its column for every other row."""
    scores = affinity.clone()
    claimed, confs = [], []
    for i in range(scores.shape[0]):
        conf, col = torch.max(scores[i], dim=0)
        confs.append(float(conf))
        if conf > threshold and row_ok[i] and col_ok[col]:
            claimed.append(int(col))
            scores[:i, col] = 0
            scores[i + 1 :, col] = 0
        else:
            claimed.append(-1)
    return claimed, confs


def test_hand_made_conflict_falls_back_to_the_next_free_column() -> None:
    affinity = torch.tensor([[0.9, 0.8, 0.1], [0.95, 0.7, 0.2], [0.6, 0.1, 0.55]])
    out = greedy_assign(affinity, 0.5)
    # row 0 takes col 0; row 1 then falls back to col 1; row 2 to col 2
    assert out.claimed.tolist() == [0, 1, 2]
    torch.testing.assert_close(out.best_score, torch.tensor([0.9, 0.7, 0.55]))


def test_row_that_may_not_claim_frees_nothing() -> None:
    affinity = torch.tensor([[0.9, 0.1], [0.8, 0.6]])
    out = greedy_assign(affinity, 0.5, row_ok=torch.tensor([False, True]))
    assert out.claimed.tolist() == [-1, 0]
    assert out.best_col.tolist() == [0, 0]


def test_row_that_may_not_claim_sees_only_the_columns_left_at_its_turn() -> None:
    affinity = torch.tensor([[0.9, 0.6], [0.95, 0.7], [0.8, 0.75]])
    out = greedy_assign(affinity, 0.5, row_ok=torch.tensor([True, False, True]))
    assert out.claimed.tolist() == [0, -1, 1]
    assert out.best_col.tolist() == [0, 1, 1]
    torch.testing.assert_close(out.best_score, torch.tensor([0.9, 0.7, 0.75]))


def test_pair_mask_and_empty_inputs() -> None:
    affinity = torch.tensor([[0.9, 0.8]])
    out = greedy_assign(affinity, 0.5, pair_ok=torch.tensor([[False, True]]))
    assert out.claimed.tolist() == [-1]
    assert greedy_assign(torch.zeros(0, 3), 0.5).claimed.shape == (0,)
    empty_cols = greedy_assign(torch.zeros(2, 0), 0.5)
    assert empty_cols.claimed.tolist() == [-1, -1]
    assert torch.isinf(empty_cols.best_score).all()


@pytest.mark.parametrize("seed", range(40))
def test_equals_sequential_on_random_matrices(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n, m = torch.randint(1, 40, (2,), generator=g).tolist()
    # few columns and peaked rows: many rows want the same column, forcing fallbacks
    affinity = torch.rand(n, m, generator=g) ** 3
    row_ok = torch.rand(n, generator=g) > 0.2
    col_ok = torch.rand(m, generator=g) > 0.2
    threshold = float(torch.rand(1, generator=g)) * 0.5
    expected, confs = sequential_greedy(affinity, threshold, row_ok, col_ok)
    out = greedy_assign(affinity, threshold, row_ok=row_ok, col_ok=col_ok)
    assert out.claimed.tolist() == expected
    # confidence agrees wherever it can matter (zeroing vs excluding differs only at <= 0)
    for got, want in zip(out.best_score.tolist(), confs, strict=True):
        assert got == want or max(got, want) <= 0


def test_claims_are_unique_under_heavy_contention() -> None:
    affinity = torch.linspace(1.0, 0.5, 30)[:, None] * torch.linspace(1.0, 0.6, 5)[None, :]
    out = greedy_assign(affinity, 0.0)
    claimed = [c for c in out.claimed.tolist() if c >= 0]
    assert claimed == [0, 1, 2, 3, 4]  # one column per row, in column order


def test_mask_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"col_ok must have shape \(3,\) like the affinity"):
        greedy_assign(torch.rand(2, 3), 0.5, col_ok=torch.ones(2, dtype=torch.bool))


def test_integer_affinity_is_refused() -> None:
    with pytest.raises(ValueError, match="affinity must be a 2-d float array"):
        greedy_assign(torch.ones(2, 3, dtype=torch.long), 0.5)
