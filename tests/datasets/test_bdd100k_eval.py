"""BDD100K evaluation round trip: fixture -> reader -> scalabel results -> TrackEval BDD100K.

Ground truth of the fixture's val split (ignore regions excluded), per class:
  car 4 boxes (video A, track "1"), pedestrian 3 ("2"), rider 4 ("5"), truck 3, bicycle 3,
  motorcycle 3, train 3 (video B); bus has only a crowd box, so 7 classes have ground truth and
  23 boxes in all. Class means follow the official toolkit (scalabel ``render_results``): the
  empty bus class counts 0 and every mean divides by all 8 classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.bdd100k import VIDEO_A, make_bdd100k
from fixtures.track_results import add_row, drop_row, gt_as_results
from qdtrack_pl.data.datasets.bdd100k import BDD100K_CLASSES, read_bdd100k_tracking
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.bdd100k import evaluate_bdd100k

CLASSES_WITH_GT = 7
NUM_CLASSES = 8  # every class counts in the official means, an empty one as 0
GT_BOXES = 23
PEDESTRIAN_OF_A = 1  # dense id of "2" in video A
CAR = BDD100K_CLASSES.index("car")


@pytest.fixture(scope="module")
def gt(tmp_path_factory: pytest.TempPathFactory):
    return read_bdd100k_tracking(make_bdd100k(tmp_path_factory.mktemp("data") / "BDD100K"), "val")


def test_ground_truth_against_itself_is_perfect(gt, tmp_path: Path) -> None:
    metrics = evaluate_bdd100k(gt, gt_as_results(gt), work_dir=tmp_path)
    for key in ("MOTA", "IDF1", "HOTA"):
        assert metrics[key] == pytest.approx(100.0), key
    # 7 perfect classes and the empty bus class (0): 7 * 100 / 8 = 87.5
    for key in ("mMOTA", "mIDF1", "mHOTA"):
        assert metrics[key] == pytest.approx(100 * CLASSES_WITH_GT / NUM_CLASSES), key
    assert metrics["IDSW"] == 0
    assert "MOTA/bus" not in metrics  # no ground truth: no per-class value (0 in the means)
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
    # six perfect classes, the pedestrian one and the empty bus class (0), over all 8
    assert metrics["mMOTA"] == pytest.approx((6 * 100 + 100 * 2 / 3 + 0) / NUM_CLASSES)
    assert metrics["mIDF1"] == pytest.approx((6 * 100 + 80 + 0) / NUM_CLASSES)
    # HUMAN pools pedestrian (3 boxes) and rider (4): 1 miss of 7 -> MOTA 6/7, IDF1 12/13
    assert metrics["MOTA/HUMAN"] == pytest.approx(100 * 6 / 7)
    assert metrics["IDF1/HUMAN"] == pytest.approx(100 * 2 * 6 / (2 * 6 + 1))
    assert metrics["MOTA/VEHICLE"] == metrics["MOTA/BIKE"] == pytest.approx(100.0)
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


def _one_car_index() -> VideoIndex:
    car = FrameAnnotations.from_rows([[10, 20, 50, 60]], [0], [CAR])
    frame = Frame(0, Path("v/0000001.jpg"), car, source_frame_id=0)
    return VideoIndex((Video("v", (frame,), 1280, 720),), BDD100K_CLASSES, name="one-car")


def test_class_means_count_every_class_an_empty_one_as_zero() -> None:
    """The official rule (scalabel eval/mot.py render_results: nan_to_num(nan=0), then the mean
    over all 8 leaf classes; TrackEval's class average also divides by every class): one frame
    with one car, tracked exactly, is 100 / 8 = 12.5, while the pooled MOTA is 100."""
    gt = _one_car_index()
    results = gt_as_results(gt)
    metrics = evaluate_bdd100k(gt, results)
    for key in ("mMOTA", "mIDF1", "mHOTA"):
        assert metrics[key] == pytest.approx(12.5), key
    assert metrics["MOTA"] == metrics["IDF1"] == metrics["MOTA/car"] == pytest.approx(100.0)
    assert metrics["MOTA/VEHICLE"] == pytest.approx(100.0) and "MOTA/HUMAN" not in metrics
    # a false positive of an empty class (a pedestrian) still counts in the pooled numbers:
    # GT 1, TP 1, FP 1 -> MOTA 0; the empty pedestrian class stays 0 in the means
    rows = add_row(results["v"], 0, 7, [600, 300, 640, 380], BDD100K_CLASSES.index("pedestrian"))
    metrics = evaluate_bdd100k(gt, {"v": rows})
    assert metrics["MOTA"] == pytest.approx(0.0)
    assert metrics["mMOTA"] == pytest.approx(12.5)
    assert metrics["IDF1"] == pytest.approx(100 * 2 / 3)  # IDTP 1, IDFP 1: 2 / (2 + 1)


def test_trackeval_prints_nothing_on_stdout(
    gt: VideoIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluate_bdd100k(gt, gt_as_results(gt))
    assert capsys.readouterr().out == ""
