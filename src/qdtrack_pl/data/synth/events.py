"""Event statistics of a generated split, measured on its ground truth (not on the plan), so that
``meta.json``, the tests and the README state what the benchmark really contains.

An *occlusion gap* is a run of frames in which a track stays inside the image but is not a
scored target (visibility below ``consider_visibility``), between two frames in which it is; it
is *displaced* when the box after the gap does not overlap the box before it (IoU 0), so that
nothing but appearance can join the two. *Motion-only failures at stride k* count the track steps
``t -> t + k`` (both ends scored) whose boxes overlap by IoU < 0.5, the usual IoU-matching bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from qdtrack_pl.data.index import Video
from qdtrack_pl.ops.box_iou import box_iou

STRIDES = (1, 4, 8)
LONG_OCCLUSION = (10, 40)  # frames: the occlusion lengths the benchmark is built around
IOU_MATCH = 0.5


def _track_rows(video: Video) -> dict[int, dict[int, tuple[np.ndarray, bool]]]:
    """track id -> frame index -> (box, scored)."""
    rows: dict[int, dict[int, tuple[np.ndarray, bool]]] = {}
    for frame in video.frames:
        ann = frame.annotations
        for box, track_id, ignore in zip(ann.boxes, ann.track_ids, ann.ignore, strict=True):
            rows.setdefault(int(track_id), {})[frame.index] = (box, not bool(ignore))
    return rows


def _pair_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(box_iou(a[None], b[None])[0, 0])


def _summary(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    array = np.asarray(values, np.float64)
    return {
        "count": len(values),
        "min": round(float(array.min()), 2),
        "median": round(float(np.median(array)), 2),
        "max": round(float(array.max()), 2),
    }


def occlusion_gaps(video: Video) -> list[tuple[int, float]]:
    """(length, IoU of the boxes around it) of every occlusion gap of ``video``."""
    gaps = []
    for frames in _track_rows(video).values():
        scored = sorted(t for t, (_, ok) in frames.items() if ok)
        for before, after in zip(scored, scored[1:], strict=False):
            if after - before > 1 and all(t in frames for t in range(before + 1, after)):
                gaps.append((after - before - 1, _pair_iou(frames[before][0], frames[after][0])))
    return gaps


def motion_failures(video: Video, stride: int) -> tuple[int, int]:
    """(steps with IoU < 0.5, all steps) over scored track boxes ``stride`` frames apart."""
    failed = total = 0
    for frames in _track_rows(video).values():
        for t, (box, ok) in frames.items():
            later = frames.get(t + stride)
            if ok and later is not None and later[1]:
                total += 1
                failed += _pair_iou(box, later[0]) < IOU_MATCH
    return failed, total


def split_statistics(videos: Sequence[Video], sequences: Sequence[dict]) -> dict:
    """What one split contains: its size, and every event type the benchmark is built around."""
    identities = boxes = entering = leaving = 0
    gaps: list[tuple[int, float]] = []
    for video in videos:
        rows = _track_rows(video)
        identities += sum(any(ok for _, ok in f.values()) for f in rows.values())
        boxes += sum(ok for f in rows.values() for _, ok in f.values())
        entering += sum(min(f) > 0 for f in rows.values())
        leaving += sum(max(f) < len(video) - 1 for f in rows.values())
        gaps += occlusion_gaps(video)
    lo, hi = LONG_OCCLUSION
    long_gaps = [(n, iou) for n, iou in gaps if lo <= n <= hi]
    failures = {}
    for stride in STRIDES:
        failed, total = np.sum([motion_failures(v, stride) for v in videos], axis=0)
        failures[str(stride)] = round(float(failed) / max(int(total), 1), 4)
    encounters = [e for s in sequences for e in s["encounters"]]
    shakes = [e["amplitude"] for s in sequences for e in s["shakes"]]
    scale_factors = [o["scale_factor"] for s in sequences for o in s["objects"]]
    return {
        "sequences": len(videos),
        "frames": sum(len(v) for v in videos),
        "identities": identities,
        "boxes": boxes,  # scored ground-truth rows
        "occlusion_gaps": _summary([n for n, _ in gaps]),
        "long_occlusions": len(long_gaps),  # gaps of 10-40 frames
        "long_occlusions_displaced": sum(iou == 0 for _, iou in long_gaps),
        "planned_hides": _summary([h["frames"] for s in sequences for h in s["hides"]]),
        "crossings": sum(e["kind"] == "crossing" for e in encounters),
        "close_passes": sum(e["kind"] == "close_pass" for e in encounters),
        "shakes": _summary(shakes),
        "pans": sum(len(s["pans"]) for s in sequences),
        "abrupt_turns": sum(s["turns"] for s in sequences),
        "entering": entering,
        "leaving": leaving,
        "scale_changes": _summary([f for f in scale_factors if f != 1.0]),
        "motion_only_failures": failures,  # per stride: share of steps with IoU < 0.5
    }
