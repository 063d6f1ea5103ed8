"""Affinity functions on tiny hand-made embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qdtrack_pl.ops.affinity import (
    AFFINITIES,
    COMPILED_AFFINITY_MAX_ENTRIES,
    bisoftmax,
    class_masked_bisoftmax,
    cosine,
    get_affinity,
    softmax,
)

DETS = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
MEMO = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_bisoftmax_is_mean_of_row_and_column_softmax() -> None:
    # raw dot products: [[1, 0, 1], [0, 2, 2]] (unnormalised, as in training)
    exps = np.array([[math.e, 1, math.e], [1, math.e**2, math.e**2]])
    row = exps / exps.sum(1, keepdims=True)
    col = exps / exps.sum(0, keepdims=True)
    out = bisoftmax(DETS.numpy(), MEMO.numpy())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, (row + col) / 2, rtol=1e-6)


def test_softmax_rows_sum_to_one() -> None:
    np.testing.assert_allclose(softmax(DETS.numpy(), MEMO.numpy()).sum(1), np.ones(2), rtol=1e-6)


def test_cosine_ignores_norm() -> None:
    expected = np.array([[1.0, 0.0, 1 / math.sqrt(2)], [0.0, 1.0, 1 / math.sqrt(2)]])
    np.testing.assert_allclose(cosine(DETS.numpy(), MEMO.numpy()), expected, rtol=1e-6)
    np.testing.assert_allclose(cosine(10 * DETS.numpy(), MEMO.numpy()), expected, rtol=1e-6)


def test_registry_and_unknown_name() -> None:
    assert set(AFFINITIES) == {"bisoftmax", "softmax", "cosine"}
    assert get_affinity("bisoftmax") is bisoftmax
    with pytest.raises(ValueError, match="match_metric"):
        get_affinity("dot")


def test_shapes_with_empty_inputs() -> None:
    assert bisoftmax(np.zeros((0, 2), np.float32), MEMO.numpy()).shape == (0, 3)
    assert bisoftmax(DETS.numpy(), np.zeros((0, 2), np.float32)).shape == (2, 0)
    assert softmax(DETS.numpy(), np.zeros((0, 2), np.float32)).shape == (2, 0)
    assert cosine(DETS.numpy(), np.zeros((0, 2), np.float32)).shape == (2, 0)


@pytest.mark.parametrize("name", ["bisoftmax", "softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_and_torch_paths_agree(name: str, dtype: type) -> None:
    """Both sides of ``COMPILED_AFFINITY_MAX_ENTRIES``: a frame the compiled loop scores, and the
    same frame padded past the limit (torch's kernels), against torch on the same inputs; with
    dot products up to ~100, where an unshifted exp would overflow float32."""
    gen = torch.Generator().manual_seed(0)
    dets = (6 * torch.randn(12, 256, generator=gen, dtype=torch.float64)).numpy().astype(dtype)
    memo = (6 * torch.randn(80, 256, generator=gen, dtype=torch.float64)).numpy().astype(dtype)
    small_memo = memo[: COMPILED_AFFINITY_MAX_ENTRIES // len(dets)]
    for memory in (small_memo, memo):
        feats = torch.mm(torch.from_numpy(dets), torch.from_numpy(memory).t())
        rows = feats.softmax(dim=1)
        expected = (rows + feats.softmax(dim=0)) / 2 if name == "bisoftmax" else rows
        out = AFFINITIES[name](dets, memory)
        assert out.dtype == dtype and out.shape == (len(dets), len(memory))
        np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-6)
        assert np.isfinite(out).all()


def test_class_masked_bisoftmax_masks_before_normalising() -> None:
    same = torch.tensor([[True, False, True], [False, True, True]])
    exps = torch.tensor([[math.e, 0, math.e], [0, math.e**2, math.e**2]], dtype=torch.float64)
    d2t = exps / (exps.sum(1, keepdim=True) + 1e-6)
    t2d = exps / (exps.sum(0, keepdim=True) + 1e-6)
    out = class_masked_bisoftmax(DETS, MEMO, same)
    torch.testing.assert_close(out, ((d2t + t2d) / 2).float())
    assert (out[~same] == 0).all()


def test_class_masked_bisoftmax_survives_large_dot_products() -> None:
    big = torch.full((2, 4), 6.0)  # dot products 144: exp overflows float32 in the original
    same = torch.tensor([[True, False], [True, True]])
    out = class_masked_bisoftmax(big, big, same)
    assert torch.isfinite(out).all()
    # row 0 has one candidate (d2t 1); column 0 is shared by both rows (t2d 1/2 each)
    torch.testing.assert_close(out, torch.tensor([[0.75, 0.0], [0.5, 0.75]]))


def test_class_masked_bisoftmax_with_no_same_class_pair_is_zero() -> None:
    out = class_masked_bisoftmax(DETS, MEMO, torch.zeros(2, 3, dtype=torch.bool))
    assert (out == 0).all()
    assert class_masked_bisoftmax(
        torch.zeros(0, 2), MEMO, torch.zeros(0, 3, dtype=torch.bool)
    ).shape == (0, 3)
