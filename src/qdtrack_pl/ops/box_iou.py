"""Pairwise IoU of ``xyxy`` boxes, with the same arithmetic as mmdet's ``bbox_overlaps``.

The tracker thresholds IoUs (duplicate removal, backdrop NMS), so the formula is kept identical to
the original implementation's: areas without the legacy ``+1`` and the union clamped at ``eps`` so
that degenerate (zero-area) boxes give 0 instead of NaN.
"""

from __future__ import annotations

from torch import Tensor

UNION_EPS = 1e-6  # mmdet's ``bbox_overlaps`` default


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = UNION_EPS) -> Tensor:
    """IoU between every box of ``boxes1`` (N, 4) and every box of ``boxes2`` (M, 4) -> (N, M)."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = boxes1[:, None, :2].maximum(boxes2[None, :, :2])
    bottom_right = boxes1[:, None, 2:].minimum(boxes2[None, :, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = (area1[:, None] + area2[None, :] - overlap).clamp(min=eps)
    return overlap / union
