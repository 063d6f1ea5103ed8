"""MOT17 half-val and CrowdHuman through the MOTChallenge protocol (the shared TrackEval adapter).

Scores are compared as ratios to the perfect run, so they hold whether the adapter reports
fractions or percent.

MOT17 half-val of the fixture (MOT frames 4-5): pedestrians id 1 and id 5 in both frames = 4
boxes; id 2 (conf 0) and id 3 (static person, class 7, frame 4 only) are ignore regions.
CrowdHuman val: 2 + 1 + 0 pedestrians over three one-frame videos; one 'mask' and one
extra.ignore region.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.crowdhuman import make_crowdhuman
from fixtures.mot17 import make_mot17
from fixtures.track_results import add_row, drop_row, gt_as_results
from qdtrack_pl.data.datasets.crowdhuman import read_crowdhuman
from qdtrack_pl.data.datasets.mot17 import read_mot17, write_official_gt
from qdtrack_pl.eval.mot_results import write_mot_results

adapter = pytest.importorskip(
    "qdtrack_pl.eval.trackeval_adapter", reason="the TrackEval adapter is not written yet"
)


def evaluate(gt, results) -> dict[str, float]:
    return adapter.evaluate_tracking(gt, results, iou_threshold=0.5).metrics


@pytest.fixture(scope="module")
def mot17_val(tmp_path_factory: pytest.TempPathFactory):
    return read_mot17(make_mot17(tmp_path_factory.mktemp("data") / "MOT17"), "half-val")


def test_mot17_half_val_against_itself_then_one_missed_box(mot17_val) -> None:
    name = mot17_val.videos[0].name
    perfect = evaluate(mot17_val, gt_as_results(mot17_val))
    assert perfect["HOTA"] == pytest.approx(perfect["MOTA"]) == pytest.approx(perfect["IDF1"])
    assert perfect["MOTA"] in (pytest.approx(1.0), pytest.approx(100.0))
    rows = gt_as_results(mot17_val)
    rows[name] = drop_row(rows[name], frame_index=1, track_id=5)
    missed = evaluate(mot17_val, rows)
    # GT 4, TP 3, FN 1, FP 0 -> MOTA 3/4; IDTP 3, IDFN 1 -> IDF1 = 2*3 / (2*3 + 1) = 6/7
    assert missed["MOTA"] / perfect["MOTA"] == pytest.approx(3 / 4)
    assert missed["IDF1"] / perfect["IDF1"] == pytest.approx(6 / 7)


def test_mot17_prediction_on_a_distractor_is_not_a_false_positive(mot17_val) -> None:
    name = mot17_val.videos[0].name
    perfect = evaluate(mot17_val, gt_as_results(mot17_val))
    rows = gt_as_results(mot17_val)
    # the static person (class 7) of MOT frame 4: box (30, 20, 8, 16) -> xyxy (30, 20, 38, 36)
    rows[name] = add_row(rows[name], 0, 99, [30, 20, 38, 36], 0)
    assert evaluate(mot17_val, rows)["MOTA"] == pytest.approx(perfect["MOTA"])


def test_crowdhuman_against_itself_then_one_missed_box(tmp_path: Path) -> None:
    gt = read_crowdhuman(make_crowdhuman(tmp_path / "CrowdHuman"), "val")
    perfect = evaluate(gt, gt_as_results(gt))
    rows = gt_as_results(gt)
    first = gt.videos[0].name
    rows[first] = drop_row(rows[first], frame_index=0, track_id=0)
    # GT 3 over the three images, 1 missed -> MOTA 2/3
    assert evaluate(gt, rows)["MOTA"] / perfect["MOTA"] == pytest.approx(2 / 3)


def test_mot17_official_scoring_on_raw_half_val_gt(tmp_path: Path) -> None:
    """The official rules (TrackEval ``MotChallenge2DBox`` on the raw gt rows of half-val):
    a prediction on a distractor is removed, one on a conf-0 pedestrian is a false positive."""
    root = make_mot17(tmp_path / "MOT17")
    gt = read_mot17(root, "half-val")
    names = write_official_gt(root, "half-val", tmp_path / "gt")
    assert names == [gt.videos[0].name]
    written = (tmp_path / "gt" / names[0] / "gt" / "gt.txt").read_text().splitlines()
    assert {line.split(",")[0] for line in written} == {"4", "5"}  # MOT frame numbers kept

    def score(results) -> float:
        folder = tmp_path / "trackers" / f"run{len(list(tmp_path.glob('trackers/*')))}"
        folder.mkdir(parents=True)
        for video in gt.videos:
            write_mot_results(folder / f"{video.name}.txt", results[video.name], video)
        return adapter.evaluate_mot_challenge(tmp_path / "gt", folder, names).metrics["MOTA"]

    perfect = score(gt_as_results(gt))
    assert perfect == pytest.approx(100.0)
    rows = gt_as_results(gt)
    name = names[0]
    rows[name] = add_row(rows[name], 0, 99, [30, 20, 38, 36], 0)  # the class-7 static person
    assert score(rows) == pytest.approx(100.0)
    rows[name] = add_row(rows[name], 0, 98, [20, 4, 28, 20], 0)  # pedestrian id 2, conf 0
    # GT 4 boxes, TP 4, FP 1 -> MOTA = (4 - 1) / 4
    assert score(rows) == pytest.approx(75.0)
