"""Affinity functions on tiny hand-made embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from qdtrack_pl.ops.affinity import (
    AFFINITIES,
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
    row = torch.tensor([[math.e, 1, math.e], [1, math.e**2, math.e**2]])
    row = row / row.sum(1, keepdim=True)
    col = torch.tensor([[math.e, 1, math.e], [1, math.e**2, math.e**2]])
    col = col / col.sum(0, keepdim=True)
    torch.testing.assert_close(bisoftmax(DETS, MEMO), (row + col) / 2)


def test_softmax_rows_sum_to_one() -> None:
    torch.testing.assert_close(softmax(DETS, MEMO).sum(1), torch.ones(2))


def test_cosine_ignores_norm() -> None:
    expected = torch.tensor([[1.0, 0.0, 1 / math.sqrt(2)], [0.0, 1.0, 1 / math.sqrt(2)]])
    torch.testing.assert_close(cosine(DETS, MEMO), expected)
    torch.testing.assert_close(cosine(10 * DETS, MEMO), expected)


def test_registry_and_unknown_name() -> None:
    assert set(AFFINITIES) == {"bisoftmax", "softmax", "cosine"}
    assert get_affinity("bisoftmax") is bisoftmax
    with pytest.raises(ValueError, match="match_metric"):
        get_affinity("dot")


def test_shapes_with_empty_inputs() -> None:
    assert bisoftmax(torch.zeros(0, 2), MEMO).shape == (0, 3)
    assert cosine(DETS, torch.zeros(0, 2)).shape == (2, 0)


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
