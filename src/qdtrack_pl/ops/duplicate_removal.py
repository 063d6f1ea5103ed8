"""Rank-ordered suppression: which boxes overlap a higher-ranked box too much (spec 3.2 step 2).

QDTrack's duplicate removal, its backdrop NMS and the TAO distractor NMS all share one rule:
walking boxes in rank order, box ``i`` is dropped if its IoU with **any** box ranked above it
exceeds ``i``'s threshold, whether or not that box was itself dropped. Because dropped boxes still
suppress, the rule needs no sequential pass: compare each row's maximum over the strictly lower
triangle. Numpy functions (see ``ops.host``) that accept tensors too.
"""

from __future__ import annotations

import functools

import numpy as np

from qdtrack_pl.ops.host import accepts_tensors


@accepts_tensors
def max_overlap_with_higher_ranked(
    ious: np.ndarray, suppressors: np.ndarray | None = None
) -> np.ndarray:
    """(N,): ``max_{j < i} ious[i, j]`` for rank-ordered boxes (highest first); 0 for the first.

    ``ious`` is (N, N) with values >= 0; zero entries (e.g. across classes) never suppress. With
    ``suppressors`` (bool (N,)) only the boxes ``j`` it marks count.
    """
    if ious.shape[0] == 0:
        return np.zeros(0, ious.dtype)
    higher = _strictly_lower(ious.shape[0])
    if suppressors is not None:
        higher = higher & suppressors
    return np.where(higher, ious, 0).max(axis=1)


@functools.lru_cache(maxsize=8)
def _strictly_lower(n: int) -> np.ndarray:
    """Read-only (n, n) mask of ``j < i`` (``np.tril`` rebuilds it on every call)."""
    mask = np.tri(n, n, -1, dtype=bool)
    mask.flags.writeable = False
    return mask


@accepts_tensors
def duplicates(
    ious: np.ndarray,
    scores: np.ndarray,
    obj_score_thr: float,
    low_score_iou_thr: float,
    iou_thr: float,
) -> np.ndarray:
    """QDTrack's class-agnostic duplicate removal: boolean (N,) mask of the boxes to drop.

    Box ``i`` (rank order, ``scores`` descending) is a duplicate if its IoU with any higher-ranked
    box exceeds ``low_score_iou_thr`` when ``scores[i] < obj_score_thr``, else ``iou_thr``.
    Thresholds must be >= 0.
    """
    overlap = max_overlap_with_higher_ranked(ious)
    return (overlap > iou_thr) | ((overlap > low_score_iou_thr) & (scores < obj_score_thr))
