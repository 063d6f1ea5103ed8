"""Inspection helpers for notebooks and reports: identity switches, track timelines, embeddings.

Nothing here feeds training or the official metrics (TrackEval computes those); these functions
answer "where did it go wrong" questions: which ground-truth object changed track id on which
frame, how long each track lives, and how well the embeddings of one frame retrieve the same
objects in another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from qdtrack_pl.data.index import Video
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.ops.affinity import AFFINITIES

CONTINUATION_BONUS = 1000.0  # TrackEval CLEAR: keeping last frame's match beats any IoU gain


class IdSwitch(NamedTuple):
    """Ground-truth object ``gt_id`` was matched to ``old_track`` before and to ``new_track`` on
    0-based frame ``frame_index`` (CLEAR MOT's IDSW event)."""

    frame_index: int
    gt_id: int
    old_track: int
    new_track: int


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a, b = a.astype(np.float64), b.astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def frame_matches(
    video: Video, results: TrackResults, iou_threshold: float = 0.5
) -> list[dict[int, int]]:
    """Per frame, ``{gt_id: track_id}`` of the CLEAR MOT matching: Hungarian on IoU with a bonus
    for the pairs matched on the previous frame, pairs below ``iou_threshold`` dropped. Ignore
    regions are not ground truth here."""
    results = TrackResults.coerce(results)
    previous: dict[int, int] = {}
    matches: list[dict[int, int]] = []
    for frame in video.frames:
        ann = frame.annotations
        keep = ~ann.ignore
        gt_ids, gt_boxes = ann.track_ids[keep], ann.boxes[keep]
        rows = results.frame_indices == frame.index
        tr_ids, tr_boxes = results.track_ids[rows], results.boxes[rows]
        iou = _iou(gt_boxes, tr_boxes)
        score = iou.copy()
        for i, gt_id in enumerate(gt_ids):
            if int(gt_id) in previous:
                score[i, tr_ids == previous[int(gt_id)]] += CONTINUATION_BONUS
        score[iou < iou_threshold] = 0.0
        matched: dict[int, int] = {}
        if score.size:
            for i, j in zip(*linear_sum_assignment(-score), strict=True):
                if score[i, j] > 0:
                    matched[int(gt_ids[i])] = int(tr_ids[j])
        matches.append(matched)
        previous = {**previous, **matched}
    return matches


def id_switches(video: Video, results: TrackResults, iou_threshold: float = 0.5) -> list[IdSwitch]:
    """Every identity switch of ``results`` on ``video``, in frame order (CLEAR MOT definition:
    a ground-truth object matched to a different track than the last time it was matched)."""
    last: dict[int, int] = {}
    switches = []
    matches = frame_matches(video, results, iou_threshold)
    for frame, matched in zip(video.frames, matches, strict=True):
        for gt_id, track_id in sorted(matched.items()):
            if gt_id in last and last[gt_id] != track_id:
                switches.append(IdSwitch(frame.index, gt_id, last[gt_id], track_id))
            last[gt_id] = track_id
    return switches


def matched_tracks(video: Video, results: TrackResults, iou_threshold: float = 0.5) -> set[int]:
    """Track ids matched to a ground-truth object on at least one frame (the others are false
    positives throughout)."""
    return {t for matched in frame_matches(video, results, iou_threshold) for t in matched.values()}


def track_timelines(results: TrackResults) -> dict[int, np.ndarray]:
    """``{track_id: sorted 0-based frames the track appears on}``, tracks by first appearance."""
    results = TrackResults.coerce(results)
    spans = {
        int(t): np.unique(results.frame_indices[results.track_ids == t])
        for t in np.unique(results.track_ids)
    }
    return dict(sorted(spans.items(), key=lambda item: (item[1][0], item[0])))


def gt_timelines(video: Video) -> dict[int, np.ndarray]:
    """``{gt_id: sorted 0-based frames it is annotated on}`` (ignore regions left out)."""
    frames: dict[int, list[int]] = {}
    for frame in video.frames:
        ann = frame.annotations
        for track_id in ann.track_ids[~ann.ignore]:
            frames.setdefault(int(track_id), []).append(frame.index)
    spans = {k: np.asarray(v, np.int64) for k, v in frames.items()}
    return dict(sorted(spans.items(), key=lambda item: (item[1][0], item[0])))


def segments(frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive frames as ``(start, length)`` (for ``matplotlib``'s ``broken_barh``)."""
    if len(frames) == 0:
        return []
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    return [(int(run[0]), len(run)) for run in np.split(frames, breaks)]


# -- embeddings -----------------------------------------------------------------------------------
@torch.no_grad()
def embed_boxes(model: torch.nn.Module, images: Tensor, boxes: Sequence[Tensor]) -> list[Tensor]:
    """Embeddings of given boxes (e.g. the ground truth) with a ``QDTrackModel``: ``images`` is a
    (B, 3, H, W) [0, 1] batch, ``boxes`` one (N_i, 4) xyxy tensor per image in its pixels."""
    image_list, features = model.detector.extract_features(images)
    embeds = model.embed_head(features, [b.float() for b in boxes], image_list.image_sizes)
    return list(embeds.split([len(b) for b in boxes]))


def similarity(key_embeds: Tensor, ref_embeds: Tensor, metric: str = "bisoftmax") -> Tensor:
    """(N, M) similarity between key and reference embeddings with a tracker ``match_metric``
    (``bisoftmax``, ``softmax``, ``cosine``) or ``dot`` (the raw logits the loss trains)."""
    if metric == "dot":
        return key_embeds @ ref_embeds.T
    if metric not in AFFINITIES:
        raise ValueError(f"unknown metric {metric!r}; expected dot or one of {sorted(AFFINITIES)}")
    return AFFINITIES[metric](key_embeds, ref_embeds)


class Retrieval(NamedTuple):
    """Nearest-neighbour retrieval of key instances among reference instances."""

    nearest: np.ndarray  # (N,) index of each key instance's most similar reference instance
    correct: np.ndarray  # (N,) bool: it has the same identity (False when the id is absent)
    accuracy: float  # among key instances whose identity is present in the reference frame


def nearest_neighbours(
    sim: Tensor, key_ids: Sequence[int] | np.ndarray, ref_ids: Sequence[int] | np.ndarray
) -> Retrieval:
    """Top-1 retrieval from an (N, M) similarity matrix with the instances' identities."""
    key_ids, ref_ids = np.asarray(key_ids), np.asarray(ref_ids)
    if sim.shape != (len(key_ids), len(ref_ids)):
        raise ValueError(f"similarity {tuple(sim.shape)} vs {len(key_ids)} x {len(ref_ids)} ids")
    if sim.shape[1] == 0:
        empty = np.zeros(len(key_ids), bool)
        return Retrieval(np.full(len(key_ids), -1), empty, float("nan"))
    nearest = sim.argmax(dim=1).cpu().numpy()
    correct = ref_ids[nearest] == key_ids
    present = np.isin(key_ids, ref_ids)
    accuracy = float(correct[present].mean()) if present.any() else float("nan")
    return Retrieval(nearest, correct, accuracy)


class IdentityMargin(NamedTuple):
    """Cosine similarity of embeddings between two frames of a video, split by identity."""

    same: float  # mean over pairs of one instance seen in both frames
    different: float  # mean over pairs of two different instances
    margin: float  # same - different: how far apart the two distributions sit on average
    same_pairs: int
    different_pairs: int


def identity_margin(
    frames: Sequence[tuple[Tensor, Sequence[int] | np.ndarray]], gap: int = 1
) -> IdentityMargin:
    """Embedding separation on held-out frames: every frame ``t`` of a video against frame
    ``t + gap``; ``frames`` holds (embeddings (N_t, D), identities (N_t,)) in frame order.

    Pairs from all frame pairs are pooled before averaging, so frames with many instances weigh
    more. Raises ``ValueError`` if no pair of one kind exists (the margin would be undefined).
    """
    if gap < 1:
        raise ValueError(f"gap must be >= 1, got {gap}")
    same_sum = different_sum = 0.0
    same_count = different_count = 0
    for (key, key_ids), (ref, ref_ids) in zip(frames[:-gap], frames[gap:], strict=True):
        cosine = similarity(key.float(), ref.float(), metric="cosine").cpu().numpy()
        same_id = np.asarray(key_ids)[:, None] == np.asarray(ref_ids)[None, :]
        same_sum += float(cosine[same_id].sum())
        different_sum += float(cosine[~same_id].sum())
        same_count += int(same_id.sum())
        different_count += int((~same_id).sum())
    if not same_count or not different_count:
        raise ValueError(
            f"need pairs of the same and of different identities {gap} frame(s) apart; got "
            f"{same_count} same and {different_count} different"
        )
    same, different = same_sum / same_count, different_sum / different_count
    return IdentityMargin(same, different, same - different, same_count, different_count)
