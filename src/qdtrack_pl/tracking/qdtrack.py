"""QDTrack's tracker for MOT17 / BDD100K (``QuasiDenseEmbedTracker``, docs/method.md §3.1-3.2).

Every subtlety of docs/method.md §8.8 is kept: class-agnostic duplicate removal that also compares
against already-dropped boxes; backdrops inside the softmax; matching only when a live track exists;
low-score detections that strongly match a track are suppressed (-2), not kept as backdrops; the new
embedding weighs ``memo_momentum``; tracks die when ``frame - last_frame >= memo_tracklet_frames``;
only tracks matched in the current frame are output. The memory resets at every ``frame_id == 0``
(§8.2) and ids restart from 0 per video.

The frame is processed on the host (``ops.host`` says why): the sequential decisions (ranking and
duplicate removal, greedy matching, suppression, births, backdrops) are compiled loops over numpy
arrays, the affinity is ``ops.affinity``'s (compiled for a small frame, torch's kernels for a large
one), and the output tensors go to the detections' device. No Python loop runs over detections,
and a frame is a handful of calls: at ten detections their count, not the arithmetic, is the cost.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from torch import Tensor

from qdtrack_pl.ops.affinity import get_affinity
from qdtrack_pl.ops.assignment import greedy_walk
from qdtrack_pl.ops.duplicate_removal import higher_ranked_overlap, ranked_detections
from qdtrack_pl.ops.host import to_host
from qdtrack_pl.tracking.base import MemoryTracker, TrackerOutput
from qdtrack_pl.tracking.memory import UNTRACKED


class _Thresholds(NamedTuple):
    """What ``_associate`` compares against (numba takes a named tuple of floats as one value)."""

    match: float  # claim a memory entry above this affinity
    suppress: float  # a low-score detection above this affinity to a live track is suppressed
    obj: float  # only detections above this score may claim
    init: float  # unclaimed, unsuppressed detections above this score start tracks
    backdrop_iou: float  # a backdrop must not overlap a higher-ranked survivor above this IoU


class QDTracker(MemoryTracker):
    """Quasi-dense embedding tracker; keyword defaults: the class defaults, docs/method.md §3.1."""

    def __init__(
        self,
        init_score_thr: float = 0.8,
        obj_score_thr: float = 0.5,
        match_score_thr: float = 0.5,
        memo_tracklet_frames: int = 10,
        memo_backdrop_frames: int = 1,
        memo_momentum: float = 0.8,
        nms_conf_thr: float = 0.5,
        nms_backdrop_iou_thr: float = 0.3,
        nms_class_iou_thr: float = 0.7,
        with_cats: bool = True,
        match_metric: str = "bisoftmax",
    ) -> None:
        if not 0.0 <= memo_momentum <= 1.0:
            raise ValueError(f"memo_momentum must be in [0, 1], got {memo_momentum}")
        for name, value in (
            ("memo_tracklet_frames", memo_tracklet_frames),
            ("memo_backdrop_frames", memo_backdrop_frames),
            ("match_score_thr", match_score_thr),
            ("nms_backdrop_iou_thr", nms_backdrop_iou_thr),
            ("nms_class_iou_thr", nms_class_iou_thr),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        super().__init__(backdrop_frames=memo_backdrop_frames)
        self.init_score_thr = init_score_thr
        self.obj_score_thr = obj_score_thr
        self.match_score_thr = match_score_thr
        self.memo_tracklet_frames = memo_tracklet_frames
        self.memo_backdrop_frames = memo_backdrop_frames
        self.memo_momentum = memo_momentum
        self.nms_conf_thr = nms_conf_thr
        self.nms_backdrop_iou_thr = nms_backdrop_iou_thr
        self.nms_class_iou_thr = nms_class_iou_thr
        self.with_cats = with_cats
        self.match_metric = match_metric
        self._affinity = get_affinity(match_metric)

    def update(
        self,
        boxes: Tensor,
        scores: Tensor,
        class_ids: Tensor,
        embeddings: Tensor,
        frame_id: int,
    ) -> TrackerOutput:
        """Associate one frame: ``boxes`` (N, 4) xyxy, ``scores`` (N,), ``class_ids`` (N,) int64,
        ``embeddings`` (N, D); ``frame_id`` is 0-based within the video."""
        frame_id = self.start_frame(boxes, scores, class_ids, embeddings, frame_id)

        # 1-2. rank by score, class-agnostic duplicate removal against the full higher prefix
        order, det_boxes, det_scores, labels, embeds = ranked_detections(
            to_host(boxes),
            to_host(scores),
            to_host(class_ids),
            to_host(embeddings),
            self.obj_score_thr,
            self.nms_backdrop_iou_thr,
            self.nms_class_iou_thr,
        )
        self.memory.check_compatible(embeds)

        # 3. affinity to tracks + backdrops, only if a live track exists (else no column)
        bank = self.memory.bank
        affinity: np.ndarray
        if len(order) and not self.memory.is_empty:
            affinity = self._affinity(embeds, bank.embeds)
        else:
            affinity = np.zeros((len(order), 0), dtype=embeds.dtype)

        # 4-5. greedy matching, suppression, births and backdrops, in rank order
        claimed, ids, born, backdrop = _associate(
            affinity,
            labels,
            det_scores,
            det_boxes,
            bank.labels,
            self.memory.ids,
            self.num_tracks,
            self.with_cats,
            _Thresholds(
                match=self.match_score_thr,
                suppress=max(self.match_score_thr, self.nms_conf_thr),
                obj=self.obj_score_thr,
                init=self.init_score_thr,
                backdrop_iou=self.nms_backdrop_iou_thr,
            ),
        )

        # 6. memory update: matched tracks, newborns, backdrops, deaths
        self.num_tracks += self.memory.commit(
            claimed,
            born,
            ids,
            det_boxes,
            embeds,
            labels,
            frame_id,
            self.memo_momentum,
            self.memo_tracklet_frames,
            backdrop,
        )

        # 7. output: detections holding a track id in this frame
        return self.output(ids, order, det_scores, like=scores)


# Compiled once per process (about 1 s), not cached on disk: numba keys its disk cache on this file
# alone, so a cached copy would keep running stale versions of the loops it calls from ``ops``.
@numba.njit
def _associate(
    affinity: np.ndarray,
    labels: np.ndarray,
    scores: np.ndarray,
    boxes: np.ndarray,
    memo_labels: np.ndarray,
    track_ids: np.ndarray,
    next_id: int,
    with_cats: bool,
    thr: _Thresholds,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 4-5 for rank-ordered detections against the memory: ``affinity`` (N, M) with the
    tracks ``track_ids`` in its first columns and backdrops after them, zeroed in place across
    classes (``memo_labels``) when ``with_cats``.

    Returns per detection: the memory row it claimed (-1: none), its track id (``UNTRACKED``:
    none), whether it starts a track (ids from ``next_id`` on), whether it becomes a backdrop.
    Thresholds are compared in the arrays' precision, as the original's tensors are.
    """
    n, m = affinity.shape
    if with_cats:
        for i in range(n):
            for col in range(m):
                if labels[i] != memo_labels[col]:
                    affinity[i, col] = 0
    may_claim = scores > scores.dtype.type(thr.obj)
    num_tracks = len(track_ids)
    is_track = np.arange(m) < num_tracks  # the other columns are backdrops: never claimed
    claimed, best, best_col = greedy_walk(affinity, thr.match, may_claim, is_track, None)

    suppress, init = affinity.dtype.type(thr.suppress), scores.dtype.type(thr.init)
    overlap = higher_ranked_overlap(boxes, None)
    backdrop_iou = overlap.dtype.type(thr.backdrop_iou)
    ids = np.full(n, UNTRACKED, dtype=np.int64)
    born, backdrop = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if claimed[i] >= 0:
            ids[i] = track_ids[claimed[i]]
        elif best[i] > suppress and 0 <= best_col[i] < num_tracks:
            continue  # strongly matches a live track it may not claim: -2 upstream, dropped
        elif scores[i] > init:
            ids[i], born[i] = next_id, True
            next_id += 1
        else:
            backdrop[i] = overlap[i] <= backdrop_iou
    return claimed, ids, born, backdrop
