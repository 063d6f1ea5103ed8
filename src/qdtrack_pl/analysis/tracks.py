"""Where tracks go wrong: the identity switches of a video's results, frame by frame, and the
timelines of tracks and ground-truth identities.

The matching is TrackEval's CLEAR MOT matching on the data TrackEval scores
(:func:`~qdtrack_pl.eval.trackeval_adapter.timesteps`: annotated frames only, tracker boxes on
distractors / ignore regions removed, class-agnostic), so the switches listed here are exactly the
``IDSW`` of the class-agnostic per-sequence evaluation (``EvalResult.per_sequence``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from qdtrack_pl.data.index import Video
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import EPS, timesteps

CONTINUATION_BONUS = 1000.0  # TrackEval CLEAR: keeping last timestep's match beats any IoU gain


class IdSwitch(NamedTuple):
    """Ground-truth object ``gt_id`` was matched to ``old_track`` before and to ``new_track`` on
    0-based frame ``frame_index`` (CLEAR MOT's IDSW event)."""

    frame_index: int
    gt_id: int
    old_track: int
    new_track: int


def frame_matches(
    video: Video, results: TrackResults, iou_threshold: float = 0.5
) -> list[dict[int, int]]:
    """Per frame of ``video``, ``{gt_id: track_id}`` of TrackEval's CLEAR matching
    (``trackeval.metrics.CLEAR.eval_sequence``, step for step): on the preprocessed timesteps,
    Hungarian on IoU plus a bonus for the pair matched on the previous timestep that had ground
    truth and tracks, pairs below ``iou_threshold`` dropped. Frames without annotations are no
    timesteps (``{}``); tracker boxes matched to an ignore region are neither matched nor FPs."""
    results = TrackResults.coerce(results)
    by_frame: dict[int, dict[int, int]] = {}
    previous: dict[int, int] = {}  # gt id -> track id on the previous (non-empty) timestep
    for step in timesteps(video, results):
        if len(step.gt_ids) == 0 or len(step.tracker_ids) == 0:
            continue  # TrackEval: no matching, and the previous timestep's matches stay
        known = np.array([int(g) in previous for g in step.gt_ids])
        continued = np.array([previous.get(int(g), 0) for g in step.gt_ids])
        same = (step.tracker_ids[None, :] == continued[:, None]) & known[:, None]
        score = CONTINUATION_BONUS * same + step.similarity
        score[step.similarity < iou_threshold - EPS] = 0
        rows, cols = linear_sum_assignment(-score)
        matched = score[rows, cols] > EPS
        previous = {
            int(step.gt_ids[r]): int(step.tracker_ids[c])
            for r, c in zip(rows[matched], cols[matched], strict=True)
        }
        by_frame[step.frame_index] = previous
    return [by_frame.get(frame.index, {}) for frame in video.frames]


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
