"""QDTrack's tracker for TAO (``TaoTracker``, docs/method.md §3.3).

Differences from ``QDTracker``: no backdrops; detections are taken in the order given (the
detector's multi-class NMS already sorts them by score); a *same-class* distractor NMS on low-score
detections; the class mask is applied to ``exp`` before the bi-softmax normalisation, which is then
averaged with class-masked cosine; a match also needs the detection and track scores to be close,
and the output score of a matched detection is smoothed with the track's last score. Every
unmatched detection above ``init_score_thr`` starts a track.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.affinity import class_masked_bisoftmax, cosine_similarity
from qdtrack_pl.ops.assignment import UNCLAIMED, greedy_assign
from qdtrack_pl.ops.duplicate_removal import max_overlap_with_higher_ranked
from qdtrack_pl.ops.host import to_host
from qdtrack_pl.tracking.base import MemoryTracker, TrackerOutput

TAO_MATCH_METRICS = ("bisoftmax", "cosine")
SCORE_COLUMN = 4  # track boxes are stored as (x1, y1, x2, y2, score), mmdet's convention


class TaoTracker(MemoryTracker):
    """TAO tracker; keyword defaults are the values of ``configs/tao`` (docs/method.md §3.3)."""

    def __init__(
        self,
        init_score_thr: float = 0.0001,
        obj_score_thr: float = 0.0001,
        match_score_thr: float = 0.5,
        memo_frames: int = 10,
        momentum_embed: float = 0.8,
        momentum_obj_score: float = 0.5,
        obj_score_diff_thr: float = 1.0,
        distractor_nms_thr: float = 0.3,
        distractor_score_thr: float = 0.5,
        match_metric: str = "bisoftmax",
        match_with_cosine: bool = True,
    ) -> None:
        if match_metric not in TAO_MATCH_METRICS:
            raise ValueError(
                f"match_metric must be one of {TAO_MATCH_METRICS}, got {match_metric!r}"
            )
        for name, value in (
            ("momentum_embed", momentum_embed),
            ("momentum_obj_score", momentum_obj_score),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if memo_frames < 0:
            raise ValueError(f"memo_frames must be >= 0, got {memo_frames}")
        if match_score_thr < 0:
            raise ValueError(f"match_score_thr must be >= 0, got {match_score_thr}")
        super().__init__(backdrop_frames=0)
        self.init_score_thr = init_score_thr
        self.obj_score_thr = obj_score_thr
        self.match_score_thr = match_score_thr
        self.memo_frames = memo_frames
        self.momentum_embed = momentum_embed
        self.momentum_obj_score = momentum_obj_score
        self.obj_score_diff_thr = obj_score_diff_thr
        self.distractor_nms_thr = distractor_nms_thr
        self.distractor_score_thr = distractor_score_thr
        self.match_metric = match_metric
        self.match_with_cosine = match_with_cosine

    def _affinity(self, embeds: Tensor, memo_embeds: Tensor, same_class: Tensor) -> Tensor:
        cos = cosine_similarity(embeds, memo_embeds) * same_class
        if self.match_metric == "cosine":
            return cos
        scores = class_masked_bisoftmax(embeds, memo_embeds, same_class)
        return (scores + cos) / 2 if self.match_with_cosine else scores

    @torch.inference_mode()
    def update(
        self,
        boxes: Tensor,
        scores: Tensor,
        class_ids: Tensor,
        embeddings: Tensor,
        frame_id: int,
    ) -> TrackerOutput:
        """Associate one frame (detections in score order, as the detector returns them)."""
        frame_id = self.start_frame(boxes, scores, class_ids, embeddings, frame_id)

        # same-class distractor NMS: low-score boxes overlapping an earlier same-class box go
        det_boxes, det_scores, labels = to_host(boxes), to_host(scores), to_host(class_ids)
        distractor = (det_scores < self.distractor_score_thr) & (
            max_overlap_with_higher_ranked(det_boxes, labels) > self.distractor_nms_thr
        )
        order = (~distractor).nonzero()[0]
        det_boxes, det_scores, labels = det_boxes[order], det_scores[order], labels[order]
        embeds = to_host(embeddings)[order]
        self.memory.check_compatible(embeds)

        claimed = np.full(len(order), UNCLAIMED)
        if len(order) and not self.memory.is_empty:
            claimed, det_scores = self._match(embeds, labels, det_scores)
        born, ids = self.assign_ids(claimed, det_scores)

        boxes_with_scores = np.concatenate([det_boxes, det_scores[:, None]], axis=1)
        self.num_tracks += self.memory.commit(
            claimed,
            born,
            ids,
            boxes_with_scores,
            embeds,
            labels,
            frame_id,
            self.momentum_embed,
            self.memo_frames,
        )

        return self.output(ids, order, det_scores, like=scores)

    def _match(
        self, embeds: np.ndarray, labels: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy matching against the tracks: the memory row each detection claims (-1: none) and
        the scores, smoothed with the track's where a track was claimed."""
        bank = self.memory.bank
        track_scores = self.memory.boxes[:, SCORE_COLUMN]
        same_class = labels[:, None] == bank.labels
        affinity = self._affinity(
            torch.from_numpy(embeds), torch.from_numpy(bank.embeds), torch.from_numpy(same_class)
        )
        close_scores = np.abs(scores[:, None] - track_scores) < self.obj_score_diff_thr
        claimed = greedy_assign(
            affinity.numpy(),
            self.match_score_thr,
            row_ok=scores >= self.obj_score_thr,
            pair_ok=close_scores,
        ).claimed
        m = self.momentum_obj_score
        smoothed = m * scores + (1 - m) * track_scores[np.maximum(claimed, 0)]
        return claimed, np.where(claimed >= 0, smoothed, scores)
