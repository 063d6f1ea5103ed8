"""Pairwise IoU of ``xyxy`` boxes, with the same arithmetic as mmdet's ``bbox_overlaps``.

Trackers threshold IoUs (the IoU baseline's matching; duplicate removal and backdrop NMS repeat
this arithmetic in ``ops.duplicate_removal``'s compiled loop), so the formula is kept identical to
the original implementation's: areas without the legacy ``+1`` and the union clamped at ``eps`` so
that degenerate (zero-area) boxes give 0 instead of NaN. Computed on numpy arrays (the trackers'
host-side bookkeeping, see ``ops.host``); tensors are accepted too. Every step is one correctly
rounded elementwise operation, so the result equals torch's bit for bit.
"""

from __future__ import annotations

import numpy as np

from qdtrack_pl.ops.host import accepts_tensors

UNION_EPS = 1e-6  # mmdet's ``bbox_overlaps`` default


@accepts_tensors
def box_iou(boxes1: np.ndarray, boxes2: np.ndarray, eps: float = UNION_EPS) -> np.ndarray:
    """IoU between every box of ``boxes1`` (N, 4) and every box of ``boxes2`` (M, 4) -> (N, M)."""
    # contiguous coordinate rows: numpy broadcasts them several times faster than strided columns
    x1, y1, x2, y2 = boxes1.T.copy()[:, :, None]  # (N, 1) each
    u1, v1, u2, v2 = boxes2.T.copy()  # (M,) each
    area1 = (x2 - x1) * (y2 - y1)
    area2 = (u2 - u1) * (v2 - v1)
    # in-place steps (same operations, fewer (N, M) temporaries)
    overlap: np.ndarray = np.minimum(x2, u2)
    overlap -= np.maximum(x1, u1)
    np.maximum(overlap, 0, out=overlap)  # width
    height = np.minimum(y2, v2)
    height -= np.maximum(y1, v1)
    overlap *= np.maximum(height, 0, out=height)
    union = area1 + area2
    union -= overlap
    overlap /= np.maximum(union, eps, out=union)
    return overlap
