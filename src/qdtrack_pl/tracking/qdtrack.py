"""QDTrack's tracker for MOT17 / BDD100K (``QuasiDenseEmbedTracker``, reference spec 3.1-3.2).

Every subtlety of pitfall P8 is kept: class-agnostic duplicate removal that also compares against
already-dropped boxes; backdrops inside the softmax; matching only when a live track exists;
low-score detections that strongly match a track are suppressed (-2), not kept as backdrops; the
new embedding weighs ``memo_momentum``; tracks die when ``frame - last_frame >=
memo_tracklet_frames``; only tracks matched in the current frame are output. The memory resets at
every ``frame_id == 0`` (P2) and ids restart from 0 per video.

The per-frame work is vectorised: no Python loop over detections (see ``ops.assignment`` for the
greedy matching in rounds).
"""

from __future__ import annotations

import torch
from torch import Tensor

from qdtrack_pl.ops.affinity import get_affinity
from qdtrack_pl.ops.assignment import greedy_assign
from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.ops.duplicate_removal import duplicates, max_overlap_with_higher_ranked
from qdtrack_pl.tracking.base import TrackerOutput, validate_detections
from qdtrack_pl.tracking.memory import TrackMemory


class QDTracker:
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
        self.memory = TrackMemory(backdrop_frames=memo_backdrop_frames)
        self.num_tracks = 0  # id counter of the current video

    def reset(self) -> None:
        """Forget all tracks and backdrops and restart ids at 0."""
        self.memory.reset()
        self.num_tracks = 0

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
        frame_id = validate_detections(boxes, scores, class_ids, embeddings, frame_id)
        if frame_id == 0:
            self.reset()
        self.memory.check_compatible(embeddings)

        # 1-2. sort by score, then class-agnostic duplicate removal against the full higher prefix
        order = torch.argsort(scores, descending=True, stable=True)
        boxes, scores = boxes.index_select(0, order), scores.index_select(0, order)
        ious = box_iou(boxes, boxes)
        duplicate = duplicates(
            ious, scores, self.obj_score_thr, self.nms_backdrop_iou_thr, self.nms_class_iou_thr
        )
        survivor = ~duplicate
        kept = survivor.nonzero().squeeze(1)
        order = order.index_select(0, kept)
        boxes, scores = boxes.index_select(0, kept), scores.index_select(0, kept)
        labels, embeds = class_ids.index_select(0, order), embeddings.index_select(0, order)

        # 3-4. match against tracks + backdrops (only if a live track exists)
        num_tracks = self.memory.num_tracks
        if order.numel() and num_tracks:
            bank = self.memory.bank()
            affinity = self._affinity(embeds, bank.embeds)
            if self.with_cats:
                affinity = affinity * (labels[:, None] == bank.labels)
            assignment = greedy_assign(
                affinity,
                self.match_score_thr,
                row_ok=scores > self.obj_score_thr,
                col_ok=bank.ids >= 0,
            )
            claimed = assignment.claimed  # tracks come first in the bank: column = memory row
            matched = claimed >= 0
            # a low-score detection whose best match is a live track: suppressed (-2 in the spec)
            strong = (assignment.best_score > max(self.match_score_thr, self.nms_conf_thr)) & (
                assignment.best_col < num_tracks
            )
            untracked = ~(matched | strong)
        else:
            claimed = matched = None
            untracked = torch.ones_like(order, dtype=torch.bool)

        # 5. births: consecutive ids in score order
        born = untracked & (scores > self.init_score_thr)
        new_ids = born.cumsum(0) + (self.num_tracks - 1)

        # 6. memory update: matched tracks, newborns, backdrops, deaths
        if claimed is not None:
            ids = torch.where(born, new_ids, self.memory.ids_or_untracked(claimed))
            tracked = matched | born
        else:
            ids, tracked = new_ids, born
        self.num_tracks += self.memory.commit(
            claimed, born, ids, boxes, embeds, labels, frame_id, self.memo_momentum
        )
        # backdrops: still untracked and not overlapping a surviving detection ranked above
        overlap = max_overlap_with_higher_ranked(ious, suppressors=survivor).index_select(0, kept)
        crowded = overlap > self.nms_backdrop_iou_thr
        backdrop = (untracked & ~(born | crowded)).nonzero().squeeze(1)
        self.memory.push_backdrops(
            embeds.index_select(0, backdrop), labels.index_select(0, backdrop)
        )
        self.memory.remove_expired(frame_id, self.memo_tracklet_frames)

        # 7. output: detections holding a track id in this frame
        out = tracked.nonzero().squeeze(1)
        return TrackerOutput(
            track_ids=ids.index_select(0, out),
            det_indices=order.index_select(0, out),
            scores=scores.index_select(0, out),
        )
