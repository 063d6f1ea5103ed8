"""TAO evaluation round trip: fixture -> reader -> TAO result json -> TrackEval TAO + TrackMAP.

The fixture's ground truth has tracks of 4 classes: person (tracks 100 and the crowd track 104),
car_(automobile) (101, one box labelled with the merged id), dog (102), bicycle (103).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fixtures.tao import make_tao
from fixtures.track_results import gt_as_results
from qdtrack_pl.data.datasets.tao import read_tao
from qdtrack_pl.eval.tao import evaluate_tao

CLASSES_WITH_GT = 4
DOG = 2  # class index of "dog" in the default vocabulary
VIDEO = "train-YFCC100M-v_aaa"


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory):
    return read_tao(make_tao(tmp_path_factory.mktemp("data") / "TAO"), "val")


def test_ground_truth_against_itself_is_perfect(gt, tmp_path: Path) -> None:
    # TAO scores crowd annotations as ordinary tracks, so they are part of the output here
    metrics = evaluate_tao(gt, gt_as_results(gt, include_ignored=True), work_dir=tmp_path)
    for key in ("TrackAP", "TrackAP50", "TrackAP75", "TrackAP50_75", "TrackAR"):
        assert metrics[key] == pytest.approx(100.0), key
    written = json.loads((tmp_path / "trackers/qdtrack/data/results.json").read_text())
    car = next(r for r in written if r["image_id"] == 201 and r["track_id"] == 101)
    assert car["category_id"] == 2 and car["bbox"] == [32, 10, 16, 10]


def test_missing_dog_track_costs_one_class_of_four(gt) -> None:
    results = gt_as_results(gt, include_ignored=True)
    rows = results[VIDEO]
    keep = rows.class_ids != DOG
    results[VIDEO] = type(rows)(*(field[keep] for field in rows))
    metrics = evaluate_tao(gt, results)
    # dog: 1 ground-truth track, no prediction -> AP 0 at every IoU; the other 3 classes AP 1;
    # class-averaged: 3 / 4
    assert metrics["TrackAP"] == pytest.approx(100 * 3 / CLASSES_WITH_GT)
    assert metrics["TrackAP50"] == pytest.approx(75.0)


def test_track_ids_are_made_unique_across_videos(gt, tmp_path: Path) -> None:
    results = gt_as_results(gt, include_ignored=True)
    for name, rows in results.items():  # both videos number their tracks from 0
        _, dense = np.unique(rows.track_ids, return_inverse=True)
        results[name] = rows._replace(track_ids=dense.astype(np.int64))
    assert evaluate_tao(gt, results, work_dir=tmp_path)["TrackAP"] == pytest.approx(100.0)
    written = json.loads((tmp_path / "trackers/qdtrack/data/results.json").read_text())
    ids_per_video = {}
    for r in written:
        ids_per_video.setdefault(r["video_id"], set()).add(r["track_id"])
    assert not set.intersection(*ids_per_video.values())
