"""Rank-ordered suppression: which boxes overlap a higher-ranked box too much.

docs/method.md §3.2 step 2.

QDTrack's duplicate removal, its backdrop NMS and the TAO distractor NMS all share one rule:
walking boxes in rank order, box ``i`` is dropped if its IoU with **any** box ranked above it
exceeds ``i``'s threshold, whether or not that box was itself dropped. Because dropped boxes still
suppress, the rule needs no sequential decisions: each box needs only its largest IoU with the boxes
ranked above it. That maximum is a compiled loop over the lower triangle (``ops.host`` says why);
the IoU arithmetic is ``ops.box_iou``'s, step for step and in the boxes' precision, so thresholds
decide exactly as on the full IoU matrix. The ``numba.njit`` functions are called by the trackers'
compiled steps; the plain functions wrap them for numpy arrays and tensors.
"""

from __future__ import annotations

import numba
import numpy as np

from qdtrack_pl.ops.box_iou import UNION_EPS
from qdtrack_pl.ops.host import accepts_tensors


@accepts_tensors
def max_overlap_with_higher_ranked(
    boxes: np.ndarray, labels: np.ndarray | None = None
) -> np.ndarray:
    """(N,): ``max_{j < i} IoU(boxes[i], boxes[j])`` for rank-ordered (N, 4) xyxy boxes (highest
    first); 0 for the first box. With ``labels`` (N,) only boxes of ``i``'s class count."""
    # the compiled loop does not check bounds: check the shapes here
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.issubdtype(boxes.dtype, np.floating):
        raise ValueError(
            f"boxes must be a float (N, 4) xyxy array, got {boxes.dtype} {boxes.shape}"
        )
    if labels is not None and labels.shape != (len(boxes),):
        raise ValueError(f"labels must have shape ({len(boxes)},), got {labels.shape}")
    return higher_ranked_overlap(np.ascontiguousarray(boxes), labels)


@numba.njit(cache=True)
def higher_ranked_overlap(boxes: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Compiled ``max_overlap_with_higher_ranked`` (``labels`` may be ``None``)."""
    n = boxes.shape[0]
    eps, zero = boxes.dtype.type(UNION_EPS), boxes.dtype.type(0)
    overlap = np.zeros(n, dtype=boxes.dtype)
    for i in range(1, n):
        x1, y1, x2, y2 = boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]
        area = (x2 - x1) * (y2 - y1)
        for j in range(i):
            if labels is not None and labels[j] != labels[i]:
                continue
            u1, v1, u2, v2 = boxes[j, 0], boxes[j, 1], boxes[j, 2], boxes[j, 3]
            width = max(min(x2, u2) - max(x1, u1), zero)
            height = max(min(y2, v2) - max(y1, v1), zero)
            intersection = width * height
            union = area + (u2 - u1) * (v2 - v1)
            union -= intersection
            overlap[i] = max(overlap[i], intersection / max(union, eps))
    return overlap


@numba.njit(cache=True)
def is_duplicate(
    overlap: np.ndarray,
    scores: np.ndarray,
    obj_score_thr: float,
    low_score_iou_thr: float,
    iou_thr: float,
) -> np.ndarray:
    """Box ``i`` (rank order, ``scores`` descending) is a duplicate if its ``overlap`` with the
    boxes ranked above it exceeds ``low_score_iou_thr`` when ``scores[i] < obj_score_thr``, else
    ``iou_thr`` (either may be the larger). Thresholds are compared in the arrays' precision, as
    the original's tensors compare them."""
    low_score = scores < scores.dtype.type(obj_score_thr)
    iou_thr = overlap.dtype.type(iou_thr)
    low_score_iou_thr = overlap.dtype.type(low_score_iou_thr)
    return np.where(low_score, overlap > low_score_iou_thr, overlap > iou_thr)


@numba.njit(cache=True)
def deduplicated_rank_order(
    boxes: np.ndarray,
    scores: np.ndarray,
    obj_score_thr: float,
    low_score_iou_thr: float,
    iou_thr: float,
) -> np.ndarray:
    """QDTrack's steps 1-2: indices of the detections that survive duplicate removal, by descending
    score (stable: ties keep the detector's order, as the original's stable sort). Raises
    ``ValueError`` on a NaN or infinite score or box, which has no rank and no overlap."""
    if not (np.isfinite(scores).all() and np.isfinite(boxes).all()):
        raise ValueError("detection scores and boxes must be finite (got NaN or inf)")
    order = np.argsort(-scores, kind="mergesort")
    overlap = higher_ranked_overlap(boxes[order], None)
    duplicate = is_duplicate(overlap, scores[order], obj_score_thr, low_score_iou_thr, iou_thr)
    kept: np.ndarray = order[~duplicate]
    return kept


@numba.njit(cache=True)
def ranked_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    embeds: np.ndarray,
    obj_score_thr: float,
    low_score_iou_thr: float,
    iou_thr: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``deduplicated_rank_order`` and the surviving detections' rows in that order (``boxes``,
    ``scores``, ``labels``, ``embeds``), in one compiled call: at a few detections per frame the
    tracker's time goes to calls, not arithmetic."""
    order = deduplicated_rank_order(boxes, scores, obj_score_thr, low_score_iou_thr, iou_thr)
    return order, boxes[order], scores[order], labels[order], embeds[order]
