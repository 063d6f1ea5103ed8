"""IoU-only association baseline, behind the same interface as ``QDTracker`` (for ablations).

Detections are walked in score order and greedily claim the live track whose last box overlaps them
most (IoU above ``match_iou_thr``; same class if ``with_cats``). Births and deaths follow the same
thresholds as ``QDTracker``. Embeddings are accepted for interface parity and ignored.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.assignment import UNCLAIMED, greedy_assign
from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.ops.host import to_host
from qdtrack_pl.tracking.base import MemoryTracker, TrackerOutput


class IoUTracker(MemoryTracker):
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
        super().__init__(backdrop_frames=0)
        self.init_score_thr = init_score_thr
        self.obj_score_thr = obj_score_thr
        self.match_iou_thr = match_iou_thr
        self.memo_tracklet_frames = memo_tracklet_frames
        self.with_cats = with_cats

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
        frame_id = self.start_frame(boxes, scores, class_ids, embeddings, frame_id)
        host_scores = to_host(scores)
        order = np.argsort(-host_scores, kind="stable")
        det_boxes, det_scores = to_host(boxes)[order], host_scores[order]
        labels = to_host(class_ids)[order]
        no_embeds = np.zeros((len(order), 0), dtype=np.float32)  # the memory keeps no appearance

        claimed = np.full(len(order), UNCLAIMED)
        if len(order) and not self.memory.is_empty:
            overlap = box_iou(det_boxes, self.memory.boxes)
            if self.with_cats:
                overlap = overlap * (labels[:, None] == self.memory.labels)
            claimed = greedy_assign(
                overlap, self.match_iou_thr, row_ok=det_scores > self.obj_score_thr
            ).claimed
        born, ids = self.assign_ids(claimed, det_scores)

        self.num_tracks += self.memory.commit(
            claimed,
            born,
            ids,
            det_boxes,
            no_embeds,
            labels,
            frame_id,
            momentum=1.0,
            max_age=self.memo_tracklet_frames,
        )

        return self.output(ids, order, det_scores, like=scores)
