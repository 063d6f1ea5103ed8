"""``qdtrack-eval data=<name> results=<folder or file>``: result files scored without a checkpoint,
with each dataset's protocol, hand-computed numbers, the table in the log and ``metrics.json``.

MOTChallenge rules (TrackEval ``MotChallenge2DBox``): a prediction on a distractor-class box is
removed (MOT16/17: classes 2, 7, 8, 12; MOT20 adds 6), one on a conf-0 box is a false positive,
and MOT15 has no distractor step at all.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fixtures.bdd100k import VIDEO_A, make_bdd100k
from fixtures.crowdhuman import make_crowdhuman
from fixtures.mot17 import make_mot17
from fixtures.motchallenge import MOT15_SEQ, MOT20_SEQ, make_mot15, make_mot20
from fixtures.tao import make_tao
from fixtures.track_results import add_row, drop_row, gt_as_results
from qdtrack_pl import api
from qdtrack_pl.cli.evaluate import run_eval
from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.bdd100k import write_results as write_scalabel
from qdtrack_pl.eval.mot_results import TrackResults, write_mot_results
from qdtrack_pl.eval.tao import write_results as write_tao

DOG = 2  # class index of "dog" in TAO's default vocabulary


def score(tmp_path: Path, results: Path, *overrides: str) -> dict[str, float]:
    """``qdtrack-eval <overrides> results=<results>`` with the run folder ``tmp_path/run``."""
    cfg = api.compose(
        "eval",
        [f"paths.data_dir={tmp_path / 'data'}", f"results={results}", *overrides],
        output_dir=tmp_path / "run",
    )
    metrics = run_eval(cfg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    return metrics


def write_txt(folder: Path, gt: VideoIndex, results: dict[str, TrackResults]) -> Path:
    for video in gt.videos:
        write_mot_results(folder / f"{video.name}.txt", results[video.name], video)
    return folder


def eval_index(tmp_path: Path, *overrides: str) -> VideoIndex:
    """The evaluation split the same overrides select, as ``qdtrack-eval`` reads it."""
    from hydra.utils import instantiate

    cfg = api.compose("eval", [f"paths.data_dir={tmp_path / 'data'}", *overrides])
    return instantiate(cfg.data).eval_index("val")


# ------------------------------------------------------------------ MOTChallenge benchmarks


def test_mot15_has_no_distractor_step_a_conf0_prediction_is_a_false_positive(
    tmp_path: Path,
) -> None:
    make_mot15(tmp_path / "data" / "MOT15")
    data = ("data=motchallenge", "data.benchmark=MOT15", "data.splits.val=train")
    gt = eval_index(tmp_path, *data)
    rows = gt_as_results(gt)  # ids 1, 2 in frames 1-4: 8 boxes
    folder = write_txt(tmp_path / "perfect", gt, rows)
    metrics = score(tmp_path, folder, *data)
    assert metrics["val/MOTA"] == pytest.approx(100.0) and metrics["val/IDF1"] == 100.0
    # + a box on the conf-0 row (id 3, MOT frame 2, (44, 20, 8, 16)): GT 8, TP 8, FP 1
    rows[MOT15_SEQ] = add_row(rows[MOT15_SEQ], 1, 99, [44, 20, 52, 36], 0)
    metrics = score(tmp_path, write_txt(tmp_path / "fp", gt, rows), *data)
    assert metrics["val/MOTA"] == pytest.approx(100 * 7 / 8)
    assert metrics["val/IDF1"] == pytest.approx(100 * 16 / 17)  # 2 IDTP / (2 IDTP + IDFP)


@pytest.mark.parametrize(
    ("benchmark", "mota"), [("MOT16", 50.0), ("MOT17", 50.0), ("MOT20", 100.0)]
)
def test_benchmark_rules_decide_whether_class_6_is_a_distractor(
    tmp_path: Path, benchmark: str, mota: float, caplog: pytest.LogCaptureFixture
) -> None:
    make_mot20(tmp_path / "data" / "MOT20")
    data = ("data=motchallenge", f"data.benchmark={benchmark}", f"data.root={tmp_path}/data/MOT20")
    gt = eval_index(tmp_path, *data)  # half-val: MOT frames 4-5, pedestrian id 1 = 2 boxes
    rows = gt_as_results(gt)
    # a prediction on the non-MOT vehicle (class 6) of MOT frame 4, box (30, 20, 16, 8):
    # MOT20 removes it (distractor); MOT16/17 count it: GT 2, TP 2, FP 1 -> MOTA 1/2
    rows[MOT20_SEQ] = add_row(rows[MOT20_SEQ], 0, 99, [30, 20, 46, 28], 0)
    with caplog.at_level(logging.INFO, logger="qdtrack_pl"):
        metrics = score(tmp_path, write_txt(tmp_path / "res", gt, rows), *data)
    assert metrics["val/MOTA"] == pytest.approx(mota)
    (table,) = [r.getMessage() for r in caplog.records if "tracking metrics" in r.getMessage()]
    assert table.startswith(f"val tracking metrics (motchallenge {benchmark}):\n")
    assert f"{benchmark} pedestrian (MotChallenge2DBox)" in table
    if benchmark == "MOT20":  # a prediction on the conf-0 pedestrian (id 3) is a false positive
        rows[MOT20_SEQ] = add_row(rows[MOT20_SEQ], 1, 98, [48, 4, 56, 20], 0)
        metrics = score(tmp_path, write_txt(tmp_path / "res2", gt, rows), *data)
        assert metrics["val/MOTA"] == pytest.approx(50.0)


def test_mot17_folder_or_single_file_and_rows_outside_the_split(tmp_path: Path) -> None:
    make_mot17(tmp_path / "data" / "MOT17")
    gt = eval_index(tmp_path, "data=mot17")
    rows = gt_as_results(gt)
    name = gt.videos[0].name
    rows[name] = add_row(rows[name], 0, 98, [20, 4, 28, 20], 0)  # on the conf-0 pedestrian id 2
    folder = write_txt(tmp_path / "res", gt, rows)
    # half-val GT 4 boxes, TP 4, FP 1 -> MOTA 3/4 (the test of evaluate_mot_challenge)
    assert score(tmp_path, folder, "data=mot17")["val/MOTA"] == pytest.approx(75.0)
    assert score(tmp_path, folder / f"{name}.txt", "data=mot17")["val/MOTA"] == pytest.approx(75.0)
    txt = folder / f"{name}.txt"
    txt.write_text("2,1,3,4,8,16,1,1,-1,-1\n" + txt.read_text())  # MOT frame 2 is half-train
    with pytest.raises(DatasetFormatError, match=rf"{name}.txt:1: frame 2 is not a frame of"):
        score(tmp_path, folder, "data=mot17")


# ------------------------------------------------------------------ shared adapter (MOT txt)


def test_crowdhuman_txt_results_missing_files_and_a_single_file(tmp_path: Path) -> None:
    make_crowdhuman(tmp_path / "data" / "CrowdHuman", "val")
    gt = eval_index(tmp_path, "data=crowdhuman")
    rows = gt_as_results(gt)
    first = gt.videos[0].name
    rows[first] = drop_row(rows[first], frame_index=0, track_id=0)
    folder = write_txt(tmp_path / "res", gt, rows)
    # GT 2 + 1 pedestrians over the three images, 1 missed -> MOTA 2/3
    assert score(tmp_path, folder, "data=crowdhuman")["val/MOTA"] == pytest.approx(100 * 2 / 3)
    # the first image alone: GT 2, 1 missed -> MOTA 1/2
    one = score(tmp_path, folder / f"{first}.txt", "data=crowdhuman")
    assert one["val/MOTA"] == pytest.approx(50.0)
    (folder / f"{gt.videos[2].name}.txt").unlink()
    with pytest.raises(DatasetFormatError, match=r"1 of the 3 videos .* have no result file"):
        score(tmp_path, folder, "data=crowdhuman")


# ------------------------------------------------------------------ BDD100K


def _bdd(tmp_path: Path) -> VideoIndex:
    root = make_bdd100k(tmp_path / "data" / "BDD100K", "val")
    make_bdd100k(root, "train")
    return eval_index(tmp_path, "data=bdd100k")


def test_bdd100k_scalabel_folder_and_submission_file_score_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt = _bdd(tmp_path)
    pedestrian_of_a = 1  # dense id of "2" in video A
    rows = gt_as_results(gt)
    rows[VIDEO_A] = drop_row(rows[VIDEO_A], frame_index=1, track_id=pedestrian_of_a)
    folder = tmp_path / "preds"
    folder.mkdir()
    for video in gt.videos:
        write_scalabel(video, rows[video.name], gt.class_names, folder / f"{video.name}.json")
    capsys.readouterr()
    metrics = score(tmp_path, folder, "data=bdd100k")
    assert "Evaluating" not in capsys.readouterr().out  # TrackEval's prints stay off stdout
    # pedestrian: GT 3, 1 missed -> 2/3; 6 perfect classes; bus has no GT and counts 0 of 8
    assert metrics["val/MOTA/pedestrian"] == pytest.approx(100 * 2 / 3)
    assert metrics["val/mMOTA"] == pytest.approx((6 * 100 + 100 * 2 / 3) / 8)
    assert metrics["val/MOTA/HUMAN"] == pytest.approx(100 * 6 / 7)
    # the same predictions as one submission file: every frame of every video in one list,
    # integer ids, the box_track config's old names, and an ignore-category prediction
    frames = [f for p in sorted(folder.glob("*.json")) for f in json.loads(p.read_text())]
    for frame in frames:
        for label in frame["labels"]:
            label["id"] = int(label["id"])
            label["category"] = {"pedestrian": "person", "bicycle": "bike"}.get(
                label["category"], label["category"]
            )
    frames[0]["labels"].append(
        {"id": 500, "category": "other vehicle", "box2d": {"x1": 0, "y1": 0, "x2": 9, "y2": 9}}
    )
    submission = tmp_path / "submission.json"
    submission.write_text(json.dumps(frames))
    again = score(tmp_path, submission, "data=bdd100k")
    assert again == pytest.approx(metrics)


def test_bdd100k_prediction_errors_name_file_frame_and_field(tmp_path: Path) -> None:
    gt = _bdd(tmp_path)
    path = tmp_path / "bad.json"
    video = gt.videos[0]
    write_scalabel(video, gt_as_results(gt)[video.name], gt.class_names, path)
    frames = json.loads(path.read_text())
    frames[2]["videoName"] = "no-such-video"
    path.write_text(json.dumps(frames))
    with pytest.raises(DatasetFormatError, match=r"bad.json: frame 2: field 'videoName'"):
        score(tmp_path, path, "data=bdd100k")
    frames[2]["videoName"] = video.name
    frames[2]["labels"][0]["category"] = "tram"
    path.write_text(json.dumps(frames))
    with pytest.raises(DatasetFormatError, match=r"frame 2: labels\[0\]: field 'category'.*tram"):
        score(tmp_path, path, "data=bdd100k")


# ------------------------------------------------------------------ TAO


def _tao(tmp_path: Path) -> tuple[VideoIndex, tuple[str, ...]]:
    root = make_tao(tmp_path / "data" / "TAO", "validation.json")
    (root / "annotations" / "train.json").write_bytes(
        (root / "annotations" / "validation.json").read_bytes()
    )
    data = ("data=tao", "data.vocabulary=null", "data.num_classes=null")
    return eval_index(tmp_path, *data), data


def test_tao_result_json_scores_without_a_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, data = _tao(tmp_path)
    results = gt_as_results(gt, include_ignored=True)
    video = gt.videos[0].name
    keep = results[video].class_ids != DOG
    results[video] = TrackResults(*(field[keep] for field in results[video]))
    path = tmp_path / "tao_results.json"
    write_tao(gt, results, path)
    capsys.readouterr()
    metrics = score(tmp_path, path, *data)
    assert "Evaluating" not in capsys.readouterr().out
    # dog: 1 ground-truth track, no prediction -> AP 0; the other 3 classes AP 1: 3 / 4
    assert metrics["val/TrackAP"] == pytest.approx(75.0)
    assert metrics["val/TrackAP50"] == pytest.approx(75.0)
    records = json.loads(path.read_text())
    records[0]["image_id"] = 999
    path.write_text(json.dumps(records))
    with pytest.raises(DatasetFormatError, match=r"record 0: field 'image_id': 999 is not an"):
        score(tmp_path, path, *data)
