"""QDTrack's tracker for MOT17 / BDD100K (``QuasiDenseEmbedTracker``, reference spec 3.1-3.2).

Every subtlety of pitfall P8 is kept: class-agnostic duplicate removal that also compares against
already-dropped boxes; backdrops inside the softmax; matching only when a live track exists;
low-score detections that strongly match a track are suppressed (-2), not kept as backdrops; the
new embedding weighs ``memo_momentum``; tracks die when ``frame - last_frame >=
memo_tracklet_frames``; only tracks matched in the current frame are output. The memory resets at
every ``frame_id == 0`` (P2) and ids restart from 0 per video.

The per-frame work is vectorised: no Python loop over detections (see ``ops.assignment`` for the
greedy matching in rounds). Boxes, scores, labels and ids are handled as numpy arrays on the host,
the embedding math in torch on the embeddings' device (``ops.host`` says why); the output tensors
are on the detections' device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.affinity import get_affinity
from qdtrack_pl.ops.assignment import UNCLAIMED, greedy_assign
from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.ops.duplicate_removal import duplicates, max_overlap_with_higher_ranked
from qdtrack_pl.ops.host import to_device, to_host
from qdtrack_pl.tracking.base import MemoryTracker, TrackerOutput


class QDTracker(MemoryTracker):
    """Quasi-dense embedding tracker; keyword defaults are the class defaults of spec 3.1."""

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

    @torch.inference_mode()
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
        self.memory.check_compatible(embeddings)
        device = embeddings.device

        # 1-2. sort by score, then class-agnostic duplicate removal against the full higher prefix
        host_scores = to_host(scores)
        order = np.argsort(-host_scores, kind="stable")
        det_boxes, det_scores = to_host(boxes)[order], host_scores[order]
        ious = box_iou(det_boxes, det_boxes)
        survivor = ~duplicates(
            ious, det_scores, self.obj_score_thr, self.nms_backdrop_iou_thr, self.nms_class_iou_thr
        )
        kept = survivor.nonzero()[0]
        order, det_boxes, det_scores = order[kept], det_boxes[kept], det_scores[kept]
        labels = to_host(class_ids)[order]
        embeds = embeddings.index_select(0, to_device(order, device))

        # 3-4. match against tracks + backdrops (only if a live track exists)
        claimed, strong = np.full(len(order), UNCLAIMED), np.zeros(len(order), dtype=bool)
        if len(order) and not self.memory.is_empty:
            claimed, strong = self._match(embeds, labels, det_scores)
        untracked = (claimed < 0) & ~strong

        # 5. births: consecutive ids in score order
        born, ids = self.assign_ids(claimed, det_scores, may_start=~strong)

        # 6. memory update: matched tracks, newborns, backdrops, deaths
        self.num_tracks += self.memory.commit(
            claimed, born, ids, det_boxes, embeds, labels, frame_id, self.memo_momentum
        )
        # backdrops: still untracked and not overlapping a surviving detection ranked above
        overlap = max_overlap_with_higher_ranked(ious, suppressors=survivor)[kept]
        backdrop = (untracked & ~born & (overlap <= self.nms_backdrop_iou_thr)).nonzero()[0]
        self.memory.push_backdrops(
            embeds.index_select(0, to_device(backdrop, device)), labels[backdrop]
        )
        self.memory.remove_expired(frame_id, self.memo_tracklet_frames)

        # 7. output: detections holding a track id in this frame
        return self.output(ids, order, det_scores, like=scores)

    def _match(
        self, embeds: Tensor, labels: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy matching of rank-ordered detections against the memory: the memory row each
        detection claims (-1: none), and whose best match is a live track with an affinity above
        both thresholds (such a detection, if it claimed nothing, is suppressed: -2 in the spec)."""
        bank = self.memory.bank()
        affinity = to_host(self._affinity(embeds, bank.embeds))
        if self.with_cats:
            same_class = labels[:, None] == bank.labels
            affinity *= same_class.astype(affinity.dtype)  # in place: a fresh matrix
        assignment = greedy_assign(
            affinity,
            self.match_score_thr,
            row_ok=scores > self.obj_score_thr,
            col_ok=bank.ids >= 0,
        )
        # tracks come first in the bank: a column below num_tracks is a live track's memory row
        strong = (assignment.best_score > max(self.match_score_thr, self.nms_conf_thr)) & (
            assignment.best_col < self.memory.num_tracks
        )
        return assignment.claimed, strong
