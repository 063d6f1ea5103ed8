"""The ablation's bookkeeping on hand-made numbers: grids, method keys, spreads, tables, the plot,
and the side-by-side table of make train."""

from __future__ import annotations

from pathlib import Path

import pytest

from qdtrack_pl.ablation.report import markdown, spread, summarise, write_report
from qdtrack_pl.ablation.runner import training_label
from qdtrack_pl.ablation.sweep import grid_points, method_params
from qdtrack_pl.eval.compare import side_by_side

MODE, AUX = "model.model.sampler.mode", "model.model.aux_loss_weight"


def test_grid_points_and_method_keys() -> None:
    assert grid_points({"b": [1, 2], "a": ["x"]}) == [{"a": "x", "b": 1}, {"a": "x", "b": 2}]
    assert grid_points({}) == [{}]
    method = {"threshold_key": "match_iou_thr"}
    assert method_params(method, {"threshold": 0.3, "memo_tracklet_frames": 10}) == {
        "match_iou_thr": 0.3,
        "memo_tracklet_frames": 10,
    }


def test_training_labels() -> None:
    assert training_label({MODE: "sparse", AUX: 0.0, "seed": 1}) == "sparse - aux"
    assert training_label({MODE: "quasi_dense", AUX: 1.0}) == "quasi_dense + aux"


def _run(mode: str, seed: int, idf1: float) -> dict:
    scores = {
        "HOTA": idf1 - 10,
        "AssA": idf1 - 5,
        "IDF1": idf1,
        "IDSW": 10.0 + seed,
        "DetA": 40.0,
        "MOTA": 30.0,
    }
    by_stride = {"1": {"test": scores, "val": scores}, "4": {"test": scores, "val": scores}}
    return {"training": {MODE: mode, AUX: 1.0, "seed": seed}, "scores": {"qdtrack": by_stride}}


def test_summary_tables_and_plot_from_hand_made_results(tmp_path: Path) -> None:
    results = {
        "reference": {MODE: "quasi_dense", AUX: 1.0},
        "runs": [
            _run("quasi_dense", 1, 70.0),
            _run("quasi_dense", 2, 74.0),
            _run("sparse", 1, 60.0),
        ],
    }
    assert spread([70.0, 74.0]) == {"mean": 72.0, "min": 70.0, "max": 74.0, "n": 2}
    summary = summarise(results)
    assert summary["quasi_dense + aux"]["qdtrack"]["1"]["IDF1"]["mean"] == 72.0
    assert summary["sparse + aux"]["qdtrack"]["4"]["IDSW"]["n"] == 1
    text = markdown(summary, "quasi_dense + aux")
    assert (
        "| qdtrack | 1 | 62.0 (60.0-64.0) | 67.0 (65.0-69.0) | 72.0 (70.0-74.0) | 12 (11-12) |"
        in text
    )
    assert "| sparse + aux | 4 | 50.0 | 55.0 | 60.0 | 11 |" in text
    assert write_report(results, tmp_path) == text
    assert (tmp_path / "results.md").read_text() == text
    assert (tmp_path / "idf1_vs_stride.png").stat().st_size > 1000


def test_side_by_side_lists_the_baseline_and_the_margin() -> None:
    metrics = {"test/IDF1": 70.0, "test_iou/IDF1": 62.5, "test/HOTA": 55.0, "test_iou/HOTA": 50.0}
    lines = side_by_side(metrics, "test", keys=("HOTA", "IDF1")).splitlines()
    assert lines[0].split() == ["metric", "test", "test_iou", "test", "-", "test_iou"]
    assert lines[1].split() == ["HOTA", "55.00", "50.00", "+5.00"]
    assert lines[2].split() == ["IDF1", "70.00", "62.50", "+7.50"]
    assert side_by_side({"val/IDF1": 1.0}, "val") == ""  # no baseline, no table
    with pytest.raises(ValueError, match="at least one value"):
        spread([])  # an empty spread is not silently zero
