"""Rank-ordered suppression (duplicates, backdrop and distractor NMS) and the IoU it uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.ops.duplicate_removal import (
    deduplicated_rank_order,
    is_duplicate,
    max_overlap_with_higher_ranked,
    ranked_detections,
)


def test_box_iou_hand_values() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    # second: overlap 50, union 150
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1.0, 1 / 3, 0.0]]))


def test_box_iou_degenerate_boxes_give_zero_not_nan() -> None:
    point = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert box_iou(point, point).item() == 0.0


def test_box_iou_self_is_symmetric_and_empty_ok() -> None:
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 6.0]])
    ious = box_iou(boxes, boxes)
    torch.testing.assert_close(ious, ious.t())
    assert box_iou(torch.zeros(0, 4), boxes).shape == (0, 2)


# rank order 0, 1, 2: 1 overlaps 0 (IoU 100 / 200), 2 touches 0 and overlaps 1 (100 / 200)
CHAIN = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 20.0], [0.0, 10.0, 10.0, 20.0]])


def test_dropped_boxes_still_suppress() -> None:
    overlap = max_overlap_with_higher_ranked(CHAIN.numpy())
    assert overlap.tolist() == [0.0, 0.5, 0.5]
    scores = np.array([0.9, 0.4, 0.3], dtype=np.float32)  # 1 and 2 are low-score: threshold 0.3
    # 2 goes although the only box it overlaps (1) was itself dropped
    assert is_duplicate(overlap, scores, 0.5, 0.3, 0.7).tolist() == [False, True, True]
    high = np.array([0.9, 0.8, 0.7], dtype=np.float32)  # threshold 0.7: nothing is a duplicate
    assert is_duplicate(overlap, high, 0.5, 0.3, 0.7).tolist() == [False, False, False]


def test_low_score_threshold_may_exceed_the_high_score_one() -> None:
    overlap = np.array([0.0, 0.75, 0.75], dtype=np.float32)
    scores = np.array([0.9, 0.4, 0.9], dtype=np.float32)  # 1 is low-score: threshold 0.8
    assert is_duplicate(overlap, scores, 0.5, 0.8, 0.7).tolist() == [False, False, True]


def test_thresholds_compare_in_float32_like_the_original() -> None:
    # float32(0.3) lies above 0.3 in float64, not above float32(0.3): the original's tensors
    # compare in float32, so an IoU of float32(0.3) is not above the threshold 0.3
    overlap = np.array([0.0, 0.3], dtype=np.float32)
    assert float(overlap[1]) > 0.3
    assert is_duplicate(overlap, np.ones(2, np.float32), 0.5, 0.3, 0.3).tolist() == [False, False]


def test_rank_order_is_stable_and_skips_duplicates() -> None:
    # detector order: the low-score near-copy of box 0 first, then two tied boxes far apart
    boxes = np.array(
        [[0, 0, 10, 10.5], [0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], dtype=np.float32
    )
    scores = np.array([0.4, 0.9, 0.6, 0.6], dtype=np.float32)
    # rank: 1 (0.9), then the tie 2, 3 in detector order, then 0, which overlaps 1 (low score)
    assert deduplicated_rank_order(boxes, scores, 0.5, 0.3, 0.7).tolist() == [1, 2, 3]


def test_ranked_detections_gathers_every_array_in_rank_order() -> None:
    boxes = np.array(
        [[0, 0, 10, 10.5], [0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]], dtype=np.float32
    )
    scores = np.array([0.4, 0.9, 0.6, 0.6], dtype=np.float32)
    labels = np.array([7, 8, 9, 10])
    embeds = np.arange(8, dtype=np.float32).reshape(4, 2)
    order, ranked_boxes, ranked_scores, ranked_labels, ranked_embeds = ranked_detections(
        boxes, scores, labels, embeds, 0.5, 0.3, 0.7
    )
    assert order.tolist() == [1, 2, 3]
    assert ranked_boxes.tolist() == boxes[[1, 2, 3]].tolist()
    assert ranked_scores.tolist() == pytest.approx([0.9, 0.6, 0.6])
    assert ranked_labels.tolist() == [8, 9, 10]
    assert ranked_embeds.tolist() == [[2, 3], [4, 5], [6, 7]]


def test_labels_restrict_suppression_to_the_same_class() -> None:
    labels = torch.tensor([0, 1, 1])
    assert max_overlap_with_higher_ranked(CHAIN, labels).tolist() == [0.0, 0.0, 0.5]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_overlap_equals_the_lower_triangle_of_box_iou_bit_for_bit(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    corners = torch.rand(80, 2, generator=g, dtype=dtype) * 100
    boxes = torch.cat([corners, corners + 5 + 30 * torch.rand(80, 2, generator=g, dtype=dtype)], 1)
    labels = torch.randint(3, (80,), generator=g)
    ious = box_iou(boxes, boxes) * (labels[:, None] == labels)
    expected = ious.tril(diagonal=-1).amax(dim=1)
    got = max_overlap_with_higher_ranked(boxes, labels)
    assert got.dtype == dtype and torch.equal(got, expected)
    assert (expected > 0).sum() > 20  # the scene has overlaps to compare


def test_max_overlap_empty_and_bad_shape() -> None:
    assert max_overlap_with_higher_ranked(torch.zeros(0, 4)).shape == (0,)
    with pytest.raises(ValueError, match=r"boxes must be a float \(N, 4\) xyxy array"):
        max_overlap_with_higher_ranked(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="boxes must be a float"):
        max_overlap_with_higher_ranked(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        max_overlap_with_higher_ranked(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))


@pytest.mark.parametrize("field", ["boxes", "scores"])
def test_rank_order_refuses_non_finite_detections(field: str) -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8], dtype=np.float32)
    {"boxes": boxes, "scores": scores}[field][1] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        deduplicated_rank_order(boxes, scores, 0.5, 0.3, 0.7)
