"""Tracking cached detections at a frame stride, and scoring it on the same frames.

At stride ``k`` the tracker sees frames ``0, k, 2k, ...`` only, as consecutive frame ids (TAO's
1 fps annotation is this setting at stride 30): its memory lives ``memo_tracklet_frames`` of
*those* frames. The ground truth keeps every frame but marks the skipped ones as not annotated,
so TrackEval's timesteps are exactly the tracked frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from qdtrack_pl.ablation.cache import DetectionCache
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults, TrackResultsBuilder
from qdtrack_pl.eval.protocols import ProtocolResult, evaluate_protocol
from qdtrack_pl.tracking.base import Tracker


def strided_ground_truth(index: VideoIndex, stride: int) -> VideoIndex:
    """``index`` with only every ``stride``-th frame of each video left annotated."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    videos = tuple(
        replace(
            video,
            frames=tuple(
                frame if frame.index % stride == 0 else replace(frame, annotated=False)
                for frame in video.frames
            ),
        )
        for video in index.videos
    )
    return replace(index, videos=videos)


def track_cached(
    cache: DetectionCache, make_tracker: Callable[[], Tracker], stride: int
) -> dict[str, TrackResults]:
    """Track every cached video at ``stride`` with a fresh tracker; rows keep the real frame
    indices."""
    results = {}
    for video, frames in cache.items():
        tracker, rows = make_tracker(), TrackResultsBuilder()
        for step, frame_index in enumerate(range(0, len(frames), stride)):
            dets = frames[frame_index]
            out = tracker.update(dets.boxes, dets.scores, dets.class_ids, dets.embeddings, step)
            rows.add(frame_index, out, dets.boxes, dets.class_ids)
        results[video] = rows.build()
    return results


def score_strided(
    gt: VideoIndex,
    cache: DetectionCache,
    make_tracker: Callable[[], Tracker],
    stride: int,
    protocol: str = "mot",
) -> ProtocolResult:
    """Track at ``stride`` and score against the same frames of ``gt``."""
    missing = {v.name for v in gt.videos} - set(cache)
    if missing:
        raise ValueError(f"the detection cache has no frames of videos {sorted(missing)}")
    results: Mapping[str, TrackResults] = track_cached(cache, make_tracker, stride)
    return evaluate_protocol(protocol, strided_ground_truth(gt, stride), results)
