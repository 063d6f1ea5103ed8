"""Embedding losses against values written out by hand from the formulas of docs/method.md §2."""

from __future__ import annotations

import math

import pytest
import torch

from qdtrack_pl.ops.losses import embedding_l2_loss, multi_positive_cross_entropy, track_targets


def _log1p_sum_exp(*exponents: float) -> float:
    return math.log(1.0 + sum(math.exp(e) for e in exponents))


# ---------------------------------------------------------------- multi-positive cross-entropy


def test_multipos_ce_one_and_several_positives() -> None:
    sim = torch.tensor([[2.0, 1.0, 0.0], [0.5, -1.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0]])
    # row 0: P={0}, N={1,2}: pairs (n, p) -> s_n - s_p = 1-2, 0-2
    row0 = _log1p_sum_exp(1.0 - 2.0, 0.0 - 2.0)
    # row 1: P={0,2}, N={1}: -1-0.5, -1-3
    row1 = _log1p_sum_exp(-1.0 - 0.5, -1.0 - 3.0)
    expected = 0.25 * (row0 + row1) / 2
    assert multi_positive_cross_entropy(sim, targets).item() == pytest.approx(expected, rel=1e-6)


def test_multipos_ce_several_positives_and_negatives() -> None:
    sim = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    # every (negative, positive) pair: n in {-1, 0.5}, p in {1, 2}
    expected = _log1p_sum_exp(-1 - 1, -1 - 2, 0.5 - 1, 0.5 - 2)
    loss = multi_positive_cross_entropy(sim, targets, loss_weight=1.0)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_multipos_ce_rows_without_positive_are_ignored() -> None:
    sim = torch.tensor([[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    expected = 0.25 * _log1p_sum_exp(1.0 - 2.0, 0.0 - 2.0) / 1
    loss = multi_positive_cross_entropy(sim, targets)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_multipos_ce_row_without_negative_is_zero_but_counted() -> None:
    sim = torch.tensor([[2.0, 1.0], [0.3, -0.4]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # row 1 has no negative: log(1 + 0) = 0, and it still counts in the average (weight 1)
    expected = 0.25 * (_log1p_sum_exp(1.0 - 2.0) + 0.0) / 2
    assert multi_positive_cross_entropy(sim, targets).item() == pytest.approx(expected, rel=1e-6)


def test_multipos_ce_no_positive_anywhere_is_zero_with_finite_gradient() -> None:
    sim = torch.tensor([[2.0, -1.0], [0.5, 0.1]], requires_grad=True)
    loss = multi_positive_cross_entropy(sim, torch.zeros(2, 2))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(sim.grad, torch.zeros(2, 2))


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0, 0)])
def test_multipos_ce_empty_is_zero_and_differentiable(shape: tuple[int, int]) -> None:
    sim = torch.zeros(shape, requires_grad=True)
    loss = multi_positive_cross_entropy(sim, torch.zeros(shape))
    loss.backward()
    assert loss.item() == 0.0


def test_multipos_ce_gradients_finite_when_rows_lack_positives_or_negatives() -> None:
    sim = torch.tensor([[3.0, 1.0, -2.0], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    multi_positive_cross_entropy(sim, targets).backward()
    assert torch.isfinite(sim.grad).all()
    # rows without a positive or without a negative contribute nothing to the gradient
    assert torch.equal(sim.grad[1:], torch.zeros(2, 3))
    # row 0: d/ds_p = -(e^{-1} + e^{-5}) / (1 + e^{-1} + e^{-5}) scaled by 0.25 / (2 weighted rows)
    a, b = math.exp(1.0 - 3.0), math.exp(-2.0 - 3.0)
    assert sim.grad[0, 0].item() == pytest.approx(-0.25 / 2 * (a + b) / (1 + a + b), rel=1e-5)


def test_multipos_ce_large_similarities_are_stable_in_half_precision_input() -> None:
    sim = torch.tensor([[1000.0, 1050.0]]).half()
    targets = torch.tensor([[1.0, 0.0]])
    # log(1 + e^50) = 50 + log(1 + e^-50)
    loss = multi_positive_cross_entropy(sim, targets, loss_weight=1.0)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(50.0, rel=1e-6)


def test_multipos_ce_matches_the_quadratic_definition() -> None:
    gen = torch.Generator().manual_seed(0)
    sim = torch.randn(6, 9, generator=gen, dtype=torch.float64) * 3
    targets = (torch.rand(6, 9, generator=gen) < 0.3).double()
    rows = []
    for i in range(6):
        pos = sim[i][targets[i] == 1].tolist()
        neg = sim[i][targets[i] == 0].tolist()
        if pos:
            rows.append(_log1p_sum_exp(*(n - p for p in pos for n in neg)))
    expected = 0.25 * sum(rows) / len(rows)
    assert multi_positive_cross_entropy(sim, targets).item() == pytest.approx(expected, rel=1e-5)


def test_multipos_ce_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="one shape"):
        multi_positive_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------------------- auxiliary L2 loss


def test_l2_loss_margins_clamp_and_mean_without_mining() -> None:
    cos = torch.tensor([[0.9, 0.5, 0.05, -0.2]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    # pos: (0.9 - 1)^2 = 0.01; negs: (0.5-0.1)^2 = 0.16, clamp(-0.05)=0, clamp(-0.3)=0
    # #neg / #pos = 3 is not > 3: all 4 entries kept
    expected = (0.01 + 0.16 + 0.0 + 0.0) / 4
    assert embedding_l2_loss(cos, targets).item() == pytest.approx(expected, rel=1e-6)


def test_l2_loss_keeps_hardest_negatives() -> None:
    cos = torch.tensor([[0.9, 0.5, 0.3, 0.05, 0.7]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    # neg errors: 0.4^2=0.16, 0.2^2=0.04, 0, 0.6^2=0.36; ub=2 keeps 2 x 1 hardest: 0.36, 0.16
    expected = (0.01 + 0.36 + 0.16) / 3
    loss = embedding_l2_loss(cos, targets, neg_pos_ub=2)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_l2_loss_positive_margin_and_upper_clamp() -> None:
    cos = torch.tensor([[0.9, 1.0]])
    targets = torch.tensor([[1.0, 0.0]])
    # pos: 0.9 - 0.2 = 0.7 -> 0.09; neg: min(1.0 - 0.1, 1) = 0.9 -> 0.81
    expected = (0.09 + 0.81) / 2
    loss = embedding_l2_loss(cos, targets, pos_margin=0.2, loss_weight=2.0)
    assert loss.item() == pytest.approx(2.0 * expected, rel=1e-6)


def test_l2_loss_no_positive_keeps_ub_hardest_negatives() -> None:
    cos = torch.tensor([[0.6, 0.2, 0.05], [0.9, 0.4, -1.0]])
    # errors: 0.25, 0.01, 0, 0.64, 0.09, 0; #pos clamps to 1 -> the 3 hardest: 0.64, 0.25, 0.09
    expected = (0.64 + 0.25 + 0.09) / 3
    loss = embedding_l2_loss(cos, torch.zeros(2, 3))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_l2_loss_random_mining_keeps_the_count() -> None:
    cos = torch.tensor([[0.9, 0.5, 0.3, 0.05, 0.7]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    neg_errors = [0.16, 0.04, 0.0, 0.36]
    candidates = {
        round((0.01 + a + b) / 3, 6) for i, a in enumerate(neg_errors) for b in neg_errors[i + 1 :]
    }
    gen = torch.Generator().manual_seed(3)
    loss = embedding_l2_loss(cos, targets, neg_pos_ub=2, hard_mining=False, generator=gen)
    assert round(loss.item(), 6) in candidates


def test_l2_loss_mining_is_not_differentiated_and_gradient_is_finite() -> None:
    cos = torch.tensor([[0.9, 0.5, 0.3, 0.05, 0.7]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0]])
    embedding_l2_loss(cos, targets, neg_pos_ub=2).backward()
    # kept: pos (0.9), negs 0.7 and 0.5; d/dc (c' - t)^2 / 3 = 2 (c' - t) / 3
    expected = torch.tensor([[2 * (0.9 - 1) / 3, 2 * 0.4 / 3, 0.0, 0.0, 2 * 0.6 / 3]])
    assert torch.allclose(cos.grad, expected, atol=1e-6)


@pytest.mark.parametrize("shape", [(0, 4), (2, 0)])
def test_l2_loss_empty_is_zero_and_differentiable(shape: tuple[int, int]) -> None:
    cos = torch.zeros(shape, requires_grad=True)
    loss = embedding_l2_loss(cos, torch.zeros(shape))
    loss.backward()
    assert loss.item() == 0.0


# ---------------------------------------------------------------- targets


def test_track_targets_match_identity_of_positive_reference_samples_only() -> None:
    key_ids = torch.tensor([5, 7, -1])
    ref_ids = torch.tensor([7, 5, 5, 9, 5, -1])
    ref_pos = torch.tensor([True, True, True, True, False, False])
    expected = torch.tensor(
        [
            [0, 1, 1, 0, 0, 0],  # id 5: two positive ref samples; the negative with id 5 is 0
            [1, 0, 0, 0, 0, 0],  # id 7
            [0, 0, 0, 0, 0, 0],  # no identity: never positive
        ],
        dtype=torch.float32,
    )
    assert torch.equal(track_targets(key_ids, ref_ids, ref_pos), expected)


def test_track_targets_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="ref_is_positive"):
        track_targets(torch.tensor([1]), torch.tensor([1, 2]), torch.tensor([True]))
