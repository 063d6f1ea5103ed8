"""RoI assignment and sampling for the embedding branch (docs/method.md §1.3 step 3).

One image at a time, fully vectorised over proposals: MaxIoU assignment, GT boxes added as
proposals, an instance-balanced positive sampler and a random or IoU-balanced negative sampler,
with mmdet's ``CombinedSampler`` counting rules. Randomness comes from ``torch.rand`` with an
optional ``torch.Generator``, so a seeded generator (or a seeded global RNG) reproduces a sample.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torchvision.ops import box_iou

NEGATIVE = -1  # assigned to no GT: background
IGNORED = -2  # IoU between the negative and positive thresholds: neither positive nor negative

NegativeSampler = Literal["random", "iou_balanced"]
SamplingMode = Literal["quasi_dense", "sparse"]
SAMPLING_MODES = ("quasi_dense", "sparse")


class RoISample(NamedTuple):
    """Sampled boxes of one image. Positives come first when the two parts are concatenated."""

    pos_boxes: Tensor  # (P, 4) xyxy
    pos_gt_indices: Tensor  # (P,) int64 index into the image's GT boxes
    neg_boxes: Tensor  # (Q, 4) xyxy

    @property
    def boxes(self) -> Tensor:
        """All sampled boxes, positives first (the reference-frame side embeds all of them)."""
        return torch.cat([self.pos_boxes, self.neg_boxes])

    @property
    def is_positive(self) -> Tensor:
        """(P + Q,) bool, aligned with :attr:`boxes`."""
        return torch.cat(
            [
                torch.ones(len(self.pos_boxes), dtype=torch.bool, device=self.pos_boxes.device),
                torch.zeros(len(self.neg_boxes), dtype=torch.bool, device=self.neg_boxes.device),
            ]
        )


def max_iou_assign(
    proposals: Tensor, gt_boxes: Tensor, pos_iou_thr: float = 0.7, neg_iou_thr: float = 0.3
) -> tuple[Tensor, Tensor]:
    """mmdet ``MaxIoUAssigner`` without low-quality matching.

    Returns ``(assigned, max_iou)``: ``assigned[i]`` is the GT index of proposal i when its best IoU
    is >= ``pos_iou_thr``, :data:`NEGATIVE` when it is < ``neg_iou_thr`` and :data:`IGNORED` in
    between; ``max_iou[i]`` is that best IoU (0 when there is no GT).
    """
    num = proposals.shape[0]
    if gt_boxes.shape[0] == 0 or num == 0:
        assigned = torch.full((num,), NEGATIVE, dtype=torch.int64, device=proposals.device)
        return assigned, proposals.new_zeros(num)
    max_iou, best_gt = box_iou(gt_boxes, proposals).max(dim=0)
    assigned = torch.full_like(best_gt, IGNORED)
    assigned[max_iou < neg_iou_thr] = NEGATIVE
    assigned = torch.where(max_iou >= pos_iou_thr, best_gt, assigned)
    return assigned, max_iou


def _random_keys(num: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """Uniform keys drawn on the generator's device (a CPU generator also serves CUDA boxes)."""
    gen_device = generator.device if generator is not None else device
    return torch.rand(num, generator=generator, device=gen_device).to(device)


def random_subset(indices: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """At most ``k`` entries of ``indices`` chosen uniformly without replacement."""
    if indices.numel() <= k:
        return indices
    order = _random_keys(indices.numel(), indices.device, generator).argsort()[: max(k, 0)]
    return indices[order]


def random_cap_per_group(
    groups: Tensor, cap: int, generator: torch.Generator | None = None
) -> Tensor:
    """Boolean mask keeping at most ``cap`` random members of every group id in ``groups``."""
    num = groups.numel()
    if num == 0:
        return torch.zeros(0, dtype=torch.bool, device=groups.device)
    shuffle = _random_keys(num, groups.device, generator).argsort()
    sorted_groups, order = groups[shuffle].sort(stable=True)
    position = torch.arange(num, device=groups.device)
    starts = torch.ones(num, dtype=torch.bool, device=groups.device)
    starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    group_start = torch.cummax(torch.where(starts, position, 0), dim=0).values
    keep = torch.zeros(num, dtype=torch.bool, device=groups.device)
    keep[shuffle[order][position - group_start < cap]] = True
    return keep


def _fill_from(
    sampled: Tensor, candidates: Tensor, k: int, generator: torch.Generator | None
) -> Tensor:
    """Top ``sampled`` up to ``k`` entries with random candidates it does not contain yet."""
    if sampled.numel() >= k:
        return sampled
    rest = candidates[~torch.isin(candidates, sampled)]
    return torch.cat([sampled, random_subset(rest, k - sampled.numel(), generator)])


def instance_balanced_positives(
    assigned: Tensor, num_expected: int, generator: torch.Generator | None = None
) -> Tensor:
    """mmdet ``InstanceBalancedPosSampler``: up to round(num / #GTs) + 1 per GT at random, the
    remainder filled at random from the rest, trimmed at random to ``num_expected``."""
    candidates = torch.nonzero(assigned >= 0).flatten()
    if candidates.numel() <= num_expected:
        return candidates
    gts = assigned[candidates]
    per_gt = int(round(num_expected / gts.unique().numel()) + 1)
    sampled = candidates[random_cap_per_group(gts, per_gt, generator)]
    if sampled.numel() > num_expected:
        return random_subset(sampled, num_expected, generator)
    return _fill_from(sampled, candidates, num_expected, generator)


def iou_balanced_negatives(
    is_negative: Tensor,
    max_iou: Tensor,
    num_expected: int,
    num_bins: int = 3,
    floor_thr: float = -1.0,
    floor_fraction: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """mmdet ``IoUBalancedNegSampler``.

    Negatives with IoU >= ``floor_thr`` (all of them when ``floor_thr`` < 0) are spread over
    ``num_bins`` equal IoU bins between max(floor_thr, 0) and the largest IoU of *all* proposals
    (GT boxes included, so usually 1); about ``num / num_bins`` are drawn per bin and the
    shortfall is filled at random. ``floor_fraction`` of the budget goes to the "floor" set
    (IoU below ``floor_thr``, or exactly 0 when ``floor_thr`` == 0).
    """
    candidates = torch.nonzero(is_negative).flatten()
    if candidates.numel() <= num_expected:
        return candidates
    iou = max_iou[candidates]
    if floor_thr > 0:
        floor_mask, binned_mask = iou < floor_thr, iou >= floor_thr
    elif floor_thr == 0:
        floor_mask, binned_mask = iou == 0, iou > 0
    else:
        floor_mask, binned_mask = torch.zeros_like(iou, dtype=torch.bool), iou > floor_thr
    floor_candidates, binned_candidates = candidates[floor_mask], candidates[binned_mask]

    num_binned = int(num_expected * (1 - floor_fraction))
    if binned_candidates.numel() <= num_binned:
        binned = binned_candidates
    elif num_bins >= 2:
        low = max(floor_thr, 0.0)
        edges = torch.linspace(low, float(max_iou.max()), num_bins + 1, device=max_iou.device)
        bins = torch.bucketize(max_iou[binned_candidates], edges, right=True) - 1
        in_range = (bins >= 0) & (bins < num_bins)
        per_bin = random_cap_per_group(bins[in_range], int(num_binned / num_bins), generator)
        binned = _fill_from(
            binned_candidates[in_range][per_bin], binned_candidates, num_binned, generator
        )
    else:
        binned = random_subset(binned_candidates, num_binned, generator)

    floor = random_subset(floor_candidates, num_expected - binned.numel(), generator)
    return _fill_from(torch.cat([floor, binned]), candidates, num_expected, generator)


class EmbeddingRoISampler:
    """Assign and sample the RoIs of one image for the embedding head (docs/method.md §1.3 step 3).

    Paper defaults: MaxIoU 0.7 / 0.3 (MOT17 uses ``neg_iou_thr=0.5``), GT boxes added as
    proposals, 256 RoIs, half positive, at most 3 negatives per positive, instance-balanced
    positives, random negatives (BDD100K: ``negative_sampler="iou_balanced"``).

    ``mode="sparse"`` is the baseline the paper argues against (docs/method.md §9): the GT boxes
    alone, each the one positive of its own GT, no proposals and no negatives, so that a key
    object is contrasted only with the other annotated objects of the reference frame.
    """

    def __init__(
        self,
        pos_iou_thr: float = 0.7,
        neg_iou_thr: float = 0.3,
        num: int = 256,
        pos_fraction: float = 0.5,
        neg_pos_ub: float = 3.0,
        add_gt_as_proposals: bool = True,
        negative_sampler: NegativeSampler = "random",
        num_bins: int = 3,
        floor_thr: float = -1.0,
        floor_fraction: float = 0.0,
        mode: SamplingMode = "quasi_dense",
    ) -> None:
        if mode not in SAMPLING_MODES:
            raise ValueError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}")
        if neg_iou_thr > pos_iou_thr:
            raise ValueError(
                f"neg_iou_thr ({neg_iou_thr}) must not exceed pos_iou_thr ({pos_iou_thr})"
            )
        if not 0.0 <= pos_fraction <= 1.0:
            raise ValueError(f"pos_fraction must lie in [0, 1], got {pos_fraction}")
        if negative_sampler not in ("random", "iou_balanced"):
            raise ValueError(
                f"negative_sampler must be 'random' or 'iou_balanced', got {negative_sampler!r}"
            )
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals
        self.negative_sampler = negative_sampler
        self.num_bins = num_bins
        self.floor_thr = floor_thr
        self.floor_fraction = floor_fraction
        self.mode = mode

    def __call__(
        self, proposals: Tensor, gt_boxes: Tensor, generator: torch.Generator | None = None
    ) -> RoISample:
        """Sample from ``proposals`` (N, 4) against ``gt_boxes`` (G, 4), both xyxy."""
        proposals = proposals.detach()
        gt_boxes = gt_boxes.detach().to(proposals.dtype)
        if self.mode == "sparse":
            gt_indices = torch.arange(gt_boxes.shape[0], device=gt_boxes.device)
            return RoISample(gt_boxes, gt_indices, gt_boxes.new_zeros((0, 4)))
        assigned, max_iou = max_iou_assign(proposals, gt_boxes, self.pos_iou_thr, self.neg_iou_thr)
        if self.add_gt_as_proposals and gt_boxes.shape[0] > 0:
            # Each GT box is a positive of its own GT, as mmdet's ``add_gt_`` does.
            proposals = torch.cat([gt_boxes, proposals])
            assigned = torch.cat(
                [torch.arange(gt_boxes.shape[0], device=assigned.device), assigned]
            )
            max_iou = torch.cat([max_iou.new_ones(gt_boxes.shape[0]), max_iou])

        pos = instance_balanced_positives(assigned, int(self.num * self.pos_fraction), generator)
        pos = pos.sort().values
        num_neg = self.num - pos.numel()
        if self.neg_pos_ub >= 0:
            num_neg = min(num_neg, int(self.neg_pos_ub * max(1, pos.numel())))
        is_negative = assigned == NEGATIVE
        if self.negative_sampler == "iou_balanced":
            neg = iou_balanced_negatives(
                is_negative,
                max_iou,
                num_neg,
                self.num_bins,
                self.floor_thr,
                self.floor_fraction,
                generator,
            )
        else:
            neg = random_subset(torch.nonzero(is_negative).flatten(), num_neg, generator)
        neg = neg.sort().values
        return RoISample(proposals[pos], assigned[pos], proposals[neg])
