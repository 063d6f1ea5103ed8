"""IoU-only association baseline, behind the same interface as ``QDTracker`` (for ablations).

Detections are walked in score order and greedily claim the live track whose last box overlaps them
most (IoU above ``match_iou_thr``; same class if ``with_cats``). Births and deaths follow the same
thresholds as ``QDTracker``. Embeddings are accepted for interface parity and ignored.
"""

from __future__ import annotations

import torch
from torch import Tensor

from qdtrack_pl.ops.assignment import greedy_assign
from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.tracking.base import TrackerOutput, validate_detections
from qdtrack_pl.tracking.memory import UNTRACKED, TrackMemory


class IoUTracker:
    """Greedy IoU tracker: appearance-free ablation of ``QDTracker``."""

    def __init__(
        self,
        init_score_thr: float = 0.8,
        obj_score_thr: float = 0.5,
        match_iou_thr: float = 0.5,
        memo_tracklet_frames: int = 10,
        with_cats: bool = True,
    ) -> None:
        if memo_tracklet_frames < 0:
            raise ValueError(f"memo_tracklet_frames must be >= 0, got {memo_tracklet_frames}")
        if match_iou_thr < 0:
            raise ValueError(f"match_iou_thr must be >= 0, got {match_iou_thr}")
        self.init_score_thr = init_score_thr
        self.obj_score_thr = obj_score_thr
        self.match_iou_thr = match_iou_thr
        self.memo_tracklet_frames = memo_tracklet_frames
        self.with_cats = with_cats
        self.memory = TrackMemory(backdrop_frames=0)
        self.num_tracks = 0

    def reset(self) -> None:
        """Forget all tracks and restart ids at 0."""
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
        """Associate one frame by box overlap with the tracks' last boxes."""
        frame_id = validate_detections(boxes, scores, class_ids, embeddings, frame_id)
        if frame_id == 0:
            self.reset()
        if not self.memory.is_empty and boxes.device != self.memory.boxes.device:
            raise ValueError(
                f"boxes are on {boxes.device} but the tracker memory is on "
                f"{self.memory.boxes.device}"
            )

        order = torch.argsort(scores, descending=True, stable=True)
        boxes, scores = boxes.index_select(0, order), scores.index_select(0, order)
        labels = class_ids.index_select(0, order)
        no_embeds = embeddings.new_zeros(order.numel(), 0)  # the memory keeps no appearance

        ids = torch.full_like(order, UNTRACKED)
        claimed = None
        if order.numel() and not self.memory.is_empty:
            overlap = box_iou(boxes, self.memory.boxes)
            if self.with_cats:
                overlap = overlap * (labels[:, None] == self.memory.labels)
            assignment = greedy_assign(
                overlap, self.match_iou_thr, row_ok=scores > self.obj_score_thr
            )
            claimed = assignment.claimed
            ids = self.memory.ids_or_untracked(claimed)

        born = (ids == UNTRACKED) & (scores > self.init_score_thr)
        ids = torch.where(born, born.cumsum(0) + (self.num_tracks - 1), ids)

        self.num_tracks += self.memory.commit(
            claimed, born, ids, boxes, no_embeds, labels, frame_id, momentum=1.0
        )
        self.memory.remove_expired(frame_id, self.memo_tracklet_frames)

        out = (ids >= 0).nonzero().squeeze(1)
        return TrackerOutput(
            track_ids=ids.index_select(0, out),
            det_indices=order.index_select(0, out),
            scores=scores.index_select(0, out),
        )
