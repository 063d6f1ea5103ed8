"""Pairwise IoU of ``xyxy`` boxes, with the same arithmetic as mmdet's ``bbox_overlaps``.

The tracker thresholds IoUs (duplicate removal, backdrop NMS), so the formula is kept identical to
the original implementation's: areas without the legacy ``+1`` and the union clamped at ``eps`` so
that degenerate (zero-area) boxes give 0 instead of NaN. Coordinates are transposed to contiguous
(4, N) rows first: broadcasting those is several times faster on CPU than broadcasting strided
(N, 1, 2) slices, and the tracker calls this every frame.
"""

from __future__ import annotations

from torch import Tensor

UNION_EPS = 1e-6  # mmdet's ``bbox_overlaps`` default


def box_iou(boxes1: Tensor, boxes2: Tensor, eps: float = UNION_EPS) -> Tensor:
    """IoU between every box of ``boxes1`` (N, 4) and every box of ``boxes2`` (M, 4) -> (N, M)."""
    a = boxes1.t().contiguous()  # (4, N): rows x1, y1, x2, y2
    b = a if boxes2 is boxes1 else boxes2.t().contiguous()
    area1 = (a[2:] - a[:2]).prod(dim=0)
    area2 = area1 if boxes2 is boxes1 else (b[2:] - b[:2]).prod(dim=0)
    top_left = a[:2, :, None].maximum(b[:2, None, :])
    bottom_right = a[2:, :, None].minimum(b[2:, None, :])
    wh = bottom_right.sub_(top_left).clamp_(min=0)
    overlap = wh[0] * wh[1]
    union = (area1[:, None] + area2).sub_(overlap).clamp_(min=eps)
    return overlap.div_(union)
