"""QDTrack's tracker written the obvious way, as a reference for ``qdtrack_pl.tracking.QDTracker``.

Same algorithm (docs/method.md §3.2), structured like the original ``QuasiDenseEmbedTracker``: a
dict of tracklets, a list of backdrop entries, and Python loops over detections and tracklets. Tests
assert that ``QDTracker`` gives identical outputs; the benchmark measures the speed-up.
Deliberately independent of ``qdtrack_pl.ops`` (only ``TrackerOutput`` is shared, for the
interface); the arithmetic (IoU, softmaxes, momentum) is the original's, operation for operation,
and the outputs (ids, detection indices, scores) must be equal, not close. Velocity bookkeeping of
the original is left out: it never influences matching.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from qdtrack_pl.tracking.base import TrackerOutput


def _bbox_overlaps(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-6) -> Tensor:
    """mmdet ``bbox_overlaps`` (mode 'iou') for xyxy boxes."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = torch.max(area1[:, None] + area2[None, :] - overlap, torch.tensor(eps))
    return overlap / union


class ReferenceQDTracker:
    """Dict-of-tracklets QDTrack tracker with per-detection loops (slow, obviously correct)."""

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
        self.reset()

    def reset(self) -> None:
        self.num_tracklets = 0
        self.tracklets: dict[int, dict] = {}
        self.backdrops: list[dict] = []

    def _memo(self) -> tuple[Tensor, Tensor, Tensor]:
        embeds, labels, ids = [], [], []
        for track_id, tracklet in self.tracklets.items():
            embeds.append(tracklet["embed"][None, :])
            labels.append(tracklet["label"].view(1))
            ids.append(track_id)
        memo_ids = torch.tensor(ids, dtype=torch.long)
        for backdrop in self.backdrops:
            embeds.append(backdrop["embeds"])
            labels.append(backdrop["labels"])
            memo_ids = torch.cat(
                [memo_ids, torch.full((backdrop["embeds"].shape[0],), -1, dtype=torch.long)]
            )
        return torch.cat(embeds), torch.cat(labels), memo_ids

    @torch.inference_mode()
    def update(
        self, boxes: Tensor, scores: Tensor, class_ids: Tensor, embeddings: Tensor, frame_id: int
    ) -> TrackerOutput:
        if frame_id == 0:
            self.reset()
        _, inds = scores.sort(descending=True, stable=True)
        boxes, scores, labels, embeds = boxes[inds], scores[inds], class_ids[inds], embeddings[inds]

        # duplicate removal, class-agnostic, against the full higher-ranked prefix
        valids = torch.ones(boxes.shape[0], dtype=torch.bool)
        ious = _bbox_overlaps(boxes, boxes)
        for i in range(1, boxes.shape[0]):
            thr = (
                self.nms_backdrop_iou_thr
                if scores[i] < self.obj_score_thr
                else self.nms_class_iou_thr
            )
            if (ious[i, :i] > thr).any():
                valids[i] = False
        inds, boxes, scores = inds[valids], boxes[valids], scores[valids]
        labels, embeds = labels[valids], embeds[valids]

        ids = torch.full((boxes.shape[0],), -1, dtype=torch.long)
        if boxes.shape[0] > 0 and self.tracklets:
            memo_embeds, memo_labels, memo_ids = self._memo()
            if self.match_metric == "bisoftmax":
                feats = torch.mm(embeds, memo_embeds.t())
                sims = (feats.softmax(dim=1) + feats.softmax(dim=0)) / 2
            elif self.match_metric == "softmax":
                sims = torch.mm(embeds, memo_embeds.t()).softmax(dim=1)
            else:
                sims = torch.mm(
                    F.normalize(embeds, p=2, dim=1), F.normalize(memo_embeds, p=2, dim=1).t()
                )
            if self.with_cats:
                sims = sims * (labels.view(-1, 1) == memo_labels.view(1, -1)).float()
            for i in range(boxes.shape[0]):
                conf, memo_ind = torch.max(sims[i, :], dim=0)
                track_id = memo_ids[memo_ind]
                if conf > self.match_score_thr and track_id > -1:
                    if scores[i] > self.obj_score_thr:
                        ids[i] = track_id
                        sims[:i, memo_ind] = 0
                        sims[i + 1 :, memo_ind] = 0
                    elif conf > self.nms_conf_thr:
                        ids[i] = -2
        for i in range(boxes.shape[0]):
            if ids[i] == -1 and scores[i] > self.init_score_thr:
                ids[i] = self.num_tracklets
                self.num_tracklets += 1

        self._update_memo(ids, boxes, embeds, labels, frame_id)
        out = [i for i in range(boxes.shape[0]) if ids[i] >= 0]
        return TrackerOutput(track_ids=ids[out], det_indices=inds[out], scores=scores[out])

    def _update_memo(
        self,
        ids: Tensor,
        boxes: Tensor,
        embeds: Tensor,
        labels: Tensor,
        frame_id: int,
    ) -> None:
        for i in range(boxes.shape[0]):
            track_id = int(ids[i])
            if track_id < 0:
                continue
            if track_id in self.tracklets:
                tracklet = self.tracklets[track_id]
                tracklet["bbox"] = boxes[i]
                tracklet["embed"] = (1 - self.memo_momentum) * tracklet["embed"] + (
                    self.memo_momentum * embeds[i]
                )
                tracklet["label"] = labels[i]
                tracklet["last_frame"] = frame_id
            else:
                self.tracklets[track_id] = dict(
                    bbox=boxes[i],
                    embed=embeds[i],
                    label=labels[i],
                    last_frame=frame_id,
                )

        ious = _bbox_overlaps(boxes, boxes)
        backdrop_inds = []
        for i in range(boxes.shape[0]):
            if ids[i] == -1 and not (ious[i, :i] > self.nms_backdrop_iou_thr).any():
                backdrop_inds.append(i)
        self.backdrops.insert(
            0,
            dict(
                embeds=embeds[backdrop_inds],
                labels=labels[backdrop_inds],
            ),
        )
        for track_id in [
            k
            for k, v in self.tracklets.items()
            if frame_id - v["last_frame"] >= self.memo_tracklet_frames
        ]:
            self.tracklets.pop(track_id)
        if len(self.backdrops) > self.memo_backdrop_frames:
            self.backdrops.pop()
