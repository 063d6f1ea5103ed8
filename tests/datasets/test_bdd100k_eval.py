"""BDD100K evaluation round trip: fixture -> reader -> scalabel results -> TrackEval BDD100K.

Ground truth of the fixture's val split (ignore regions excluded), per class:
  car 4 boxes (video A, track "1"), pedestrian 3 ("2"), rider 4 ("5"), truck 3, bicycle 3,
  motorcycle 3, train 3 (video B); bus has only a crowd box, so 7 classes have ground truth and
  23 boxes in all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.bdd100k import VIDEO_A, make_bdd100k
from fixtures.track_results import add_row, drop_row, gt_as_results
from qdtrack_pl.data.datasets.bdd100k import BDD100K_CLASSES, read_bdd100k_tracking
from qdtrack_pl.eval.bdd100k import evaluate_bdd100k

CLASSES_WITH_GT = 7
GT_BOXES = 23
PEDESTRIAN_OF_A = 1  # dense id of "2" in video A
CAR = BDD100K_CLASSES.index("car")


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory):
    return read_bdd100k_tracking(make_bdd100k(tmp_path_factory.mktemp("data") / "BDD100K"), "val")


def test_ground_truth_against_itself_is_perfect(gt, tmp_path: Path) -> None:
    metrics = evaluate_bdd100k(gt, gt_as_results(gt), work_dir=tmp_path)
    for key in ("mMOTA", "mIDF1", "mHOTA", "MOTA", "IDF1", "HOTA"):
        assert metrics[key] == pytest.approx(100.0), key
    assert metrics["IDSW"] == 0
    assert "MOTA/bus" not in metrics  # no ground truth: left out of the class means
    written = json.loads((tmp_path / "trackers/qdtrack/data" / f"{VIDEO_A}.json").read_text())
    assert [f["frameIndex"] for f in written] == [0, 1, 2, 3]
    assert written[0]["labels"][0]["category"] == "car"


def test_one_dropped_pedestrian_box(gt) -> None:
    results = gt_as_results(gt)
    results[VIDEO_A] = drop_row(results[VIDEO_A], frame_index=1, track_id=PEDESTRIAN_OF_A)
    metrics = evaluate_bdd100k(gt, results)
    # pedestrian: GT 3, TP 2, FN 1, FP 0, IDSW 0 -> MOTA = (3 - 1) / 3
    assert metrics["MOTA/pedestrian"] == pytest.approx(100 * 2 / 3)
    # IDTP 2, IDFN 1, IDFP 0 -> IDF1 = 2 * 2 / (2 * 2 + 1) = 0.8
    assert metrics["IDF1/pedestrian"] == pytest.approx(80.0)
    # six perfect classes and the pedestrian one
    assert metrics["mMOTA"] == pytest.approx((6 * 100 + 100 * 2 / 3) / CLASSES_WITH_GT)
    assert metrics["mIDF1"] == pytest.approx((6 * 100 + 80) / CLASSES_WITH_GT)
    # overall: 1 miss over all 23 boxes
    assert metrics["MOTA"] == pytest.approx(100 * (GT_BOXES - 1) / GT_BOXES)


def test_false_positives_count_unless_inside_a_crowd_region(gt) -> None:
    results = gt_as_results(gt)
    # frame 1: a car box 100% inside the crowd bus region (700, 100)-(900, 250): removed
    results[VIDEO_A] = add_row(results[VIDEO_A], 1, 99, [710, 110, 790, 190], CAR)
    assert evaluate_bdd100k(gt, results)["MOTA/car"] == pytest.approx(100.0)
    # frame 0: a car box on empty road: one FP -> MOTA = (4 - 1) / 4, IDF1 = 2*4 / (2*4 + 1)
    results[VIDEO_A] = add_row(results[VIDEO_A], 0, 98, [1000, 600, 1040, 660], CAR)
    metrics = evaluate_bdd100k(gt, results)
    assert metrics["MOTA/car"] == pytest.approx(75.0)
    assert metrics["IDF1/car"] == pytest.approx(100 * 8 / 9)


def test_results_for_unknown_videos_are_rejected(gt) -> None:
    with pytest.raises(KeyError, match="not in the ground truth"):
        evaluate_bdd100k(gt, {"nope": next(iter(gt_as_results(gt).values()))})
