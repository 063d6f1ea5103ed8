"""Embedding-branch RoI assignment and sampling: IoU rules and the CombinedSampler counts."""

from __future__ import annotations

import pytest
import torch

from qdtrack_pl.ops.sampling import (
    IGNORED,
    NEGATIVE,
    EmbeddingRoISampler,
    instance_balanced_positives,
    iou_balanced_negatives,
    max_iou_assign,
    random_cap_per_group,
)

GT = torch.tensor([[0.0, 0.0, 10.0, 10.0]])


def _boxes_with_iou(iou: float, count: int) -> torch.Tensor:
    """``count`` copies of a box whose IoU with GT[0] is ``iou`` (same width, height 10 * iou)."""
    return torch.tensor([[0.0, 0.0, 10.0, 10.0 * iou]]).repeat(count, 1)


def _far_boxes(count: int) -> torch.Tensor:
    return torch.tensor([[50.0, 50.0, 60.0, 60.0]]).repeat(count, 1)


def test_max_iou_assign_thresholds() -> None:
    # IoUs with the GT: 1.0, 0.7, 0.5, 0.29, 0.0
    proposals = torch.cat(
        [
            _boxes_with_iou(1.0, 1),
            _boxes_with_iou(0.7, 1),
            _boxes_with_iou(0.5, 1),
            _boxes_with_iou(0.29, 1),
            _far_boxes(1),
        ]
    )
    assigned, max_iou = max_iou_assign(proposals, GT)
    assert assigned.tolist() == [0, 0, IGNORED, NEGATIVE, NEGATIVE]
    assert torch.allclose(max_iou, torch.tensor([1.0, 0.7, 0.5, 0.29, 0.0]))
    # MOT17 setting: negatives below 0.5; 0.5 itself is not a negative
    assigned, _ = max_iou_assign(proposals, GT, neg_iou_thr=0.5)
    assert assigned.tolist() == [0, 0, IGNORED, NEGATIVE, NEGATIVE]
    assigned, _ = max_iou_assign(proposals, GT, neg_iou_thr=0.51)
    assert assigned.tolist() == [0, 0, NEGATIVE, NEGATIVE, NEGATIVE]


def test_max_iou_assign_picks_best_gt_and_handles_no_gt() -> None:
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    proposals = torch.tensor([[50.0, 50.0, 60.0, 61.0], [0.0, 0.0, 10.0, 9.0]])
    assigned, _ = max_iou_assign(proposals, gts)
    assert assigned.tolist() == [1, 0]
    assigned, max_iou = max_iou_assign(proposals, torch.zeros(0, 4))
    assert assigned.tolist() == [NEGATIVE, NEGATIVE]
    assert max_iou.tolist() == [0.0, 0.0]


def test_random_cap_per_group_caps_each_group() -> None:
    groups = torch.tensor([2, 0, 0, 1, 0, 1, 0, 3])
    keep = random_cap_per_group(groups, cap=2, generator=torch.Generator().manual_seed(0))
    kept = groups[keep]
    assert [(kept == g).sum().item() for g in range(4)] == [2, 2, 1, 1]


def test_instance_balanced_positives_counts() -> None:
    # 250 candidates of GT 0, 40 of GT 1, 10 of GT 2, and 20 negatives
    assigned = torch.cat(
        [torch.zeros(250), torch.ones(40), torch.full((10,), 2), torch.full((20,), NEGATIVE)]
    ).long()
    sampled = instance_balanced_positives(assigned, 128, torch.Generator().manual_seed(0))
    assert sampled.numel() == sampled.unique().numel() == 128
    per_gt = [(assigned[sampled] == g).sum().item() for g in range(3)]
    # round(128 / 3) + 1 = 44 per GT first: 44 + 40 + 10 = 94; the other 34 come from the rest
    # (only GT 0 has any left): 44 + 34 = 78
    assert per_gt == [78, 40, 10]


def test_instance_balanced_positives_keeps_all_when_few() -> None:
    assigned = torch.tensor([0, NEGATIVE, 1, IGNORED, 1])
    assert instance_balanced_positives(assigned, 128).tolist() == [0, 2, 4]


def test_sampler_counts_with_many_positives() -> None:
    proposals = torch.cat([_boxes_with_iou(0.9, 300), _far_boxes(500), _boxes_with_iou(0.5, 50)])
    sample = EmbeddingRoISampler()(proposals, GT, torch.Generator().manual_seed(0))
    assert len(sample.pos_boxes) == 128  # num * pos_fraction
    assert len(sample.neg_boxes) == 128  # num - #pos, below 3 x #pos
    assert (sample.pos_gt_indices == 0).all()
    # ignored proposals (IoU 0.5) are never sampled; positives have IoU >= 0.7
    assert not (sample.neg_boxes[:, 1] == 0).any()
    assert (sample.pos_boxes[:, 3] >= 7.0).all()


def test_sampler_adds_gt_and_bounds_negatives_by_positives() -> None:
    proposals = torch.cat([_boxes_with_iou(0.8, 2), _far_boxes(100)])
    sample = EmbeddingRoISampler()(proposals, GT, torch.Generator().manual_seed(0))
    assert len(sample.pos_boxes) == 3  # 2 proposals + the GT box itself
    assert torch.equal(sample.pos_boxes[0], GT[0])  # GT boxes come first
    assert len(sample.neg_boxes) == 9  # neg_pos_ub 3 x 3 positives
    assert sample.boxes.shape == (12, 4)
    assert sample.is_positive.tolist() == [True] * 3 + [False] * 9


def test_sampler_without_gt_keeps_three_negatives() -> None:
    sample = EmbeddingRoISampler()(_far_boxes(40), torch.zeros(0, 4))
    assert len(sample.pos_boxes) == 0
    assert len(sample.neg_boxes) == 3  # neg_pos_ub x max(1, #pos)


def test_sampler_empty_inputs() -> None:
    sample = EmbeddingRoISampler()(torch.zeros(0, 4), torch.zeros(0, 4))
    assert sample.boxes.shape == (0, 4)
    assert sample.pos_gt_indices.shape == (0,)


def test_sampler_without_added_gt_and_with_mot17_threshold() -> None:
    proposals = torch.cat([_boxes_with_iou(0.8, 2), _boxes_with_iou(0.45, 5), _far_boxes(3)])
    sample = EmbeddingRoISampler(neg_iou_thr=0.5, add_gt_as_proposals=False)(proposals, GT)
    assert len(sample.pos_boxes) == 2
    assert len(sample.neg_boxes) == 6  # 3 x 2 of the 8 negatives (IoU 0.45 counts at 0.5)


def test_sampler_is_deterministic_given_a_generator() -> None:
    proposals = torch.cat(
        [_boxes_with_iou(0.9, 200), _far_boxes(300) + torch.arange(300.0)[:, None]]
    )
    sampler = EmbeddingRoISampler(num=64)
    first = sampler(proposals, GT, torch.Generator().manual_seed(7))
    second = sampler(proposals, GT, torch.Generator().manual_seed(7))
    other = sampler(proposals, GT, torch.Generator().manual_seed(8))
    assert torch.equal(first.neg_boxes, second.neg_boxes)
    assert not torch.equal(first.neg_boxes, other.neg_boxes)


def test_iou_balanced_negatives_spread_over_bins() -> None:
    # max IoU over all proposals is 1 (a positive), so the bins are [0, 1/3), [1/3, 2/3), [2/3, 1)
    max_iou = torch.cat(
        [torch.ones(1), torch.zeros(100), torch.full((100,), 0.5), torch.full((3,), 0.68)]
    )
    is_negative = torch.ones(204, dtype=torch.bool)
    is_negative[0] = False
    sampled = iou_balanced_negatives(
        is_negative, max_iou, 30, generator=torch.Generator().manual_seed(0)
    )
    assert sampled.numel() == sampled.unique().numel() == 30
    assert is_negative[sampled].all()
    ious = max_iou[sampled]
    assert (ious == 0.68).sum() == 3  # the whole rare bin
    assert (ious == 0.0).sum() >= 10 and (
        ious == 0.5
    ).sum() >= 10  # 30 // 3 per bin, rest at random


def test_iou_balanced_negatives_floor_set() -> None:
    # floor_thr 0: IoU == 0 is the floor set, floor_fraction 0.5 of the budget goes to it first
    max_iou = torch.cat([torch.zeros(50), torch.full((50,), 0.2)])
    is_negative = torch.ones(100, dtype=torch.bool)
    sampled = iou_balanced_negatives(
        is_negative, max_iou, 20, num_bins=1, floor_thr=0.0, floor_fraction=0.5
    )
    assert (max_iou[sampled] == 0).sum() == 10
    assert (max_iou[sampled] == 0.2).sum() == 10


def test_sampler_iou_balanced_option_and_validation() -> None:
    proposals = torch.cat([_boxes_with_iou(0.9, 10), _far_boxes(100)])
    sample = EmbeddingRoISampler(negative_sampler="iou_balanced")(proposals, GT)
    assert (len(sample.pos_boxes), len(sample.neg_boxes)) == (11, 33)
    with pytest.raises(ValueError, match="negative_sampler"):
        EmbeddingRoISampler(negative_sampler="ohem")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="neg_iou_thr"):
        EmbeddingRoISampler(pos_iou_thr=0.3, neg_iou_thr=0.5)


def test_sparse_mode_samples_the_gt_boxes_only() -> None:
    """The sparse baseline: every GT box once, as the positive of its own GT; no proposal and no
    negative survives, however many proposals overlap the GT."""
    gt = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 30.0]])
    proposals = torch.cat([_boxes_with_iou(0.9, 50), _far_boxes(200)])
    sample = EmbeddingRoISampler(mode="sparse")(proposals, gt, torch.Generator().manual_seed(0))
    assert torch.equal(sample.pos_boxes, gt)
    assert sample.pos_gt_indices.tolist() == [0, 1]
    assert sample.neg_boxes.shape == (0, 4)
    assert sample.is_positive.tolist() == [True, True]
    assert EmbeddingRoISampler(mode="sparse")(proposals, torch.zeros(0, 4)).boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="mode must be one of"):
        EmbeddingRoISampler(mode="dense")  # type: ignore[arg-type]
