"""IoU and the rank-ordered suppression rule."""

from __future__ import annotations

import torch

from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.ops.duplicate_removal import duplicates, max_overlap_with_higher_ranked


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


def test_dropped_boxes_still_suppress() -> None:
    # rank order 0, 1, 2: 1 overlaps 0 (0.5), 2 overlaps only 1 (0.5)
    ious = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 1.0]])
    assert max_overlap_with_higher_ranked(ious).tolist() == [0.0, 0.5, 0.5]
    scores = torch.tensor([0.9, 0.4, 0.3])  # 1 and 2 are low-score: threshold 0.3
    assert duplicates(ious, scores, 0.5, 0.3, 0.7).tolist() == [False, True, True]
    high = torch.tensor([0.9, 0.8, 0.7])  # threshold 0.7: nothing is a duplicate
    assert duplicates(ious, high, 0.5, 0.3, 0.7).tolist() == [False, False, False]


def test_only_marked_suppressors_count() -> None:
    ious = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 1.0]])
    survivors = torch.tensor([True, False, True])
    assert max_overlap_with_higher_ranked(ious, survivors).tolist() == [0.0, 0.5, 0.0]


def test_max_overlap_empty() -> None:
    assert max_overlap_with_higher_ranked(torch.zeros(0, 0)).shape == (0,)
