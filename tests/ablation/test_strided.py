"""Tracking cached detections at a stride: the ground truth keeps only the tracked frames, and a
scripted scene shows the stride breaking box overlap while appearance still holds identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fixtures.scripted_tracks import appearance
from qdtrack_pl.ablation.strided import score_strided, strided_ground_truth, track_cached
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.models.qdtrack import Detections
from qdtrack_pl.tracking import IoUTracker, QDTracker

LENGTH, STEP, WIDTH, HEIGHT = 9, 4.0, 20.0, 20.0  # 4 px per frame: IoU 0.67 at stride 1


def _boxes(t: int) -> np.ndarray:
    """Two objects moving right 4 px per frame, 60 px apart vertically."""
    x = 10 + STEP * t
    return np.array([[x, 10, x + WIDTH, 10 + HEIGHT], [x, 70, x + WIDTH, 70 + HEIGHT]], np.float32)


def _scene() -> tuple[VideoIndex, dict[str, list[Detections]]]:
    frames, dets = [], []
    for t in range(LENGTH):
        boxes = _boxes(t)
        annotations = FrameAnnotations(
            boxes=boxes,
            track_ids=np.array([1, 2]),
            class_ids=np.zeros(2, np.int64),
            visibility=np.ones(2, np.float32),
            ignore=np.zeros(2, bool),
        )
        frames.append(Frame(t, Path(f"{t}.jpg"), annotations, t + 1))
        dets.append(
            Detections(
                torch.from_numpy(boxes),
                torch.tensor([0.95, 0.9]),
                torch.zeros(2, dtype=torch.long),
                torch.tensor([appearance(0), appearance(1)]),
            )
        )
    video = Video("scripted", tuple(frames), 200, 120)
    return VideoIndex((video,), ("person",), "scripted"), {"scripted": dets}


def test_strided_ground_truth_keeps_every_frame_but_annotates_the_tracked_ones() -> None:
    index, _ = _scene()
    strided = strided_ground_truth(index, 4).videos[0]
    assert len(strided) == LENGTH
    assert [f.index for f in strided.frames if f.annotated] == [0, 4, 8]
    assert strided_ground_truth(index, 1) == index
    with pytest.raises(ValueError, match="stride must be >= 1"):
        strided_ground_truth(index, 0)


def test_track_cached_feeds_consecutive_ids_and_keeps_real_frame_indices() -> None:
    _, cache = _scene()
    results = track_cached(cache, lambda: QDTracker(init_score_thr=0.5), 4)["scripted"]
    assert sorted(set(results.frame_indices.tolist())) == [0, 4, 8]
    assert len(set(results.track_ids.tolist())) == 2  # appearance holds both identities


def test_at_stride_4_box_overlap_breaks_and_appearance_does_not() -> None:
    """16 px between tracked frames leaves IoU 0.11 < 0.5: the IoU tracker starts a new track at
    every tracked frame (IDF1 1/3), QDTrack keeps both identities (IDF1 100)."""
    index, cache = _scene()

    def qd() -> QDTracker:
        return QDTracker(init_score_thr=0.5)

    def iou() -> IoUTracker:
        return IoUTracker(init_score_thr=0.5)

    assert score_strided(index, cache, qd, 4).metrics["IDF1"] == pytest.approx(100.0)
    assert score_strided(index, cache, iou, 4).metrics["IDF1"] == pytest.approx(100.0 / 3)
    # at stride 1 the overlap (IoU 0.67) carries the IoU tracker too
    assert score_strided(index, cache, iou, 1).metrics["IDF1"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="no frames of videos"):
        score_strided(index, {}, qd, 1)
