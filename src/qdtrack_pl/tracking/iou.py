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
from qdtrack_pl.tracking.memory import TrackMemory


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
                f"boxes are on {boxes.device} but the tracker memory is on {self.memory.boxes.device}"
            )

        order = torch.argsort(scores, descending=True, stable=True)
        boxes, scores, labels = boxes[order], scores[order], class_ids[order]
        no_embeds = embeddings[order, :0]  # the memory keeps no appearance

        ids = torch.full_like(order, -1)
        matched_rows = matched = None
        if order.numel() and not self.memory.is_empty:
            overlap = box_iou(boxes, self.memory.boxes)
            if self.with_cats:
                overlap = overlap * (labels[:, None] == self.memory.labels[None, :])
            claimable = (scores > self.obj_score_thr)[:, None].expand_as(overlap)
            assignment = greedy_assign(overlap, claimable, self.match_iou_thr)
            matched = assignment.claimed >= 0
            matched_rows = assignment.claimed[matched]
            ids = torch.where(matched, self.memory.ids[assignment.claimed], ids)

        born = (ids == -1) & (scores > self.init_score_thr)
        ids = torch.where(born, self.num_tracks + born.cumsum(0) - 1, ids)
        num_born = int(born.sum())

        if matched_rows is not None and matched_rows.numel():
            self.memory.update_tracks(
                matched_rows,
                boxes[matched],
                scores[matched],
                no_embeds[matched],
                labels[matched],
                frame_id,
                momentum=1.0,
            )
        if num_born:
            self.memory.add_tracks(
                ids[born], boxes[born], scores[born], no_embeds[born], labels[born], frame_id
            )
            self.num_tracks += num_born
        self.memory.remove_expired(frame_id, self.memo_tracklet_frames)

        out = (ids >= 0).nonzero().squeeze(1)
        return TrackerOutput(track_ids=ids[out], det_indices=order[out], scores=scores[out])
