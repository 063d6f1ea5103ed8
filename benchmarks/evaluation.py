"""Time of the TrackEval evaluation (HOTA, CLEAR, Identity) of a MOT17-sized tracking result.

Ground truth and results are generated in memory: 7 sequences of 600 frames at 1920x1080 with
about 30 pedestrians each (MOT17's train split has 7 sequences of 600-1050 frames and ~30 boxes per
frame), a few ignore regions, and a result that misses 10 % of the boxes, jitters the rest, switches
identities now and then and adds false positives. Only ``evaluate_tracking`` is timed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import evaluate_tracking

WIDTH, HEIGHT = 1920, 1080
OBJECTS = 30  # pedestrians in every frame (a slot whose track ends is refilled at once)
TRACK_LENGTH = (50, 300)  # frames a pedestrian stays, uniform
IGNORE_PROB = 0.03  # a ground-truth row is an ignore region (distractor, occluded)
MISS_PROB = 0.1  # the result misses a box
SWITCH_PROB = 0.002  # per object and frame: the result changes its identity
FALSE_POSITIVES = 2  # per frame
SEED = 0
REPORTED_METRICS = ("HOTA", "MOTA", "IDF1")


class Params(NamedTuple):
    sequences: int
    frames: int


QUICK = Params(sequences=7, frames=60)
FULL = Params(sequences=7, frames=600)


class _Pedestrians:
    """``OBJECTS`` moving boxes; a slot whose track ends gets a new identity elsewhere."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.ids = np.zeros(OBJECTS, np.int64)
        self.result_ids = np.zeros(OBJECTS, np.int64)
        self.xy = np.zeros((OBJECTS, 2))
        self.wh = np.zeros((OBJECTS, 2))
        self.velocity = np.zeros((OBJECTS, 2))
        self.life = np.zeros(OBJECTS, np.int64)
        self.next_id = 0
        self.next_result_id = 0

    def new_result_ids(self, count: int) -> np.ndarray:
        """Fresh identities of the result (new tracks, switches, false positives)."""
        self.next_result_id += count
        return np.arange(self.next_result_id - count, self.next_result_id)

    def step(self) -> None:
        self.life -= 1
        new = self.life <= 0
        count = int(new.sum())
        width = self.rng.uniform(25, 120, count)
        self.wh[new] = np.stack([width, width * self.rng.uniform(2.2, 2.8, count)], axis=1)
        self.xy[new] = self.rng.uniform(0, 1, (count, 2)) * ([WIDTH, HEIGHT] - self.wh[new])
        self.velocity[new] = self.rng.normal(0, 2, (count, 2))
        self.life[new] = self.rng.integers(*TRACK_LENGTH, count)
        self.ids[new] = np.arange(self.next_id, self.next_id + count)
        self.next_id += count
        self.result_ids[new] = self.new_result_ids(count)
        switched = self.rng.random(OBJECTS) < SWITCH_PROB
        self.result_ids[switched] = self.new_result_ids(int(switched.sum()))
        self.xy = np.clip(self.xy + self.velocity, 0, [WIDTH, HEIGHT] - self.wh)

    def boxes(self) -> np.ndarray:
        return np.concatenate([self.xy, self.xy + self.wh], axis=1)


def _sequence(name: str, frames: int, rng: np.random.Generator) -> tuple[Video, TrackResults]:
    people = _Pedestrians(rng)
    gt_frames, rows = [], []
    for index in range(frames):
        people.step()
        boxes = people.boxes()
        annotations = FrameAnnotations.from_rows(
            boxes,
            people.ids,
            np.zeros(OBJECTS, np.int64),
            visibility=rng.uniform(0.2, 1.0, OBJECTS),
            ignore=rng.random(OBJECTS) < IGNORE_PROB,
        )
        image = Path(name, "img1", f"{index + 1:06d}.jpg")  # never read
        gt_frames.append(Frame(index, image, annotations, source_frame_id=index + 1))

        seen = rng.random(OBJECTS) >= MISS_PROB
        jitter = rng.normal(0, 0.03, (OBJECTS, 4)) * np.tile(people.wh, 2)
        fp_xy = rng.uniform(0, 1, (FALSE_POSITIVES, 2)) * [WIDTH - 120, HEIGHT - 300]
        fp_boxes = np.concatenate([fp_xy, fp_xy + [50, 125]], axis=1)
        rows.append(
            (
                np.full(int(seen.sum()) + FALSE_POSITIVES, index),
                np.concatenate([people.result_ids[seen], people.new_result_ids(FALSE_POSITIVES)]),
                np.concatenate([(boxes + jitter)[seen], fp_boxes]),
            )
        )
    frame_ids, track_ids, boxes = (np.concatenate(parts) for parts in zip(*rows, strict=True))
    results = TrackResults(
        frame_indices=frame_ids.astype(np.int64),
        track_ids=track_ids.astype(np.int64),
        boxes=boxes.astype(np.float32),
        scores=rng.uniform(0.5, 1.0, len(track_ids)).astype(np.float32),
        class_ids=np.zeros(len(track_ids), np.int64),
    )
    return Video(name, tuple(gt_frames), WIDTH, HEIGHT), results


def mot17_sized(params: Params) -> tuple[VideoIndex, dict[str, TrackResults]]:
    """Ground truth and a plausible tracking result, both in memory."""
    rng = np.random.default_rng(SEED)
    videos, results = [], {}
    for number in range(params.sequences):
        video, result = _sequence(f"SYN-{number:02d}", params.frames, rng)
        videos.append(video)
        results[video.name] = result
    return VideoIndex(tuple(videos), ("pedestrian",), name="mot17_sized"), results


def run(quick: bool) -> dict[str, Any]:
    params = QUICK if quick else FULL
    gt, results = mot17_sized(params)
    start = time.perf_counter()
    evaluated = evaluate_tracking(gt, results)
    seconds = time.perf_counter() - start
    return {
        "size": {
            "sequences": params.sequences,
            "frames": gt.num_frames(),
            "gt_boxes": sum(len(f.annotations) for v in gt.videos for f in v.frames),
            "result_boxes": sum(len(r.track_ids) for r in results.values()),
        },
        "seconds": seconds,
        "metrics": {k: float(evaluated.metrics[k]) for k in REPORTED_METRICS},  # sanity check
    }
