"""`make ablation-smoke` end to end: the training grid, the cached detections, every method at
every stride tuned on val and scored on test, the report, and a rerun that redoes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

METHODS = {"qdtrack", "softmax", "cosine", "appearance_only", "qdtrack_no_backdrops", "iou"}


def _ablation(out: Path, data: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "qdtrack_pl.cli.ablation",
        "--config-name",
        "ablation_smoke",
        f"out_dir={out}",
        f"paths.data_dir={data}",
        f"paths.log_dir={out / 'logs'}",
        "score_workers=2",  # the parallel scoring path, whatever the runner's core count
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)


def test_ablation_smoke_runs_every_variant_and_resumes(tmp_path: Path) -> None:
    out, data = tmp_path / "ablation", tmp_path / "data"
    first = _ablation(out, data)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    trainings = {(r["training"]["model.model.sampler.mode"], r["training"]["seed"]) for r in runs}
    assert len(runs) == 8 and len(trainings) == 4  # 2 modes x 2 aux x 2 seeds
    sweep = results["settings"]["sweep"]
    for run in runs:
        assert set(run["scores"]) == METHODS
        for method, strides in run["scores"].items():
            assert set(strides) == {"1", "4", "8"}
            for scores in strides.values():
                threshold_key = results["settings"]["methods"][method]["threshold_key"]
                assert scores["params"][threshold_key] in sweep["threshold"]
                assert len(scores["sweep"]) == len(sweep["threshold"]) * len(
                    sweep["memo_tracklet_frames"]
                )
                best = max(p["HOTA"] for p in scores["sweep"])
                assert scores["val"]["HOTA"] == pytest.approx(best, abs=1e-3)  # tuned on val
                assert set(scores["test"]) >= {"HOTA", "AssA", "IDF1", "IDSW"}
        assert (out / "runs" / run["job"] / "detections" / "test.pt").is_file()
    table = (out / "results.md").read_text()
    assert "| qdtrack | 8 |" in table and "| sparse - aux | 4 |" in table
    assert (out / "idf1_vs_stride.png").stat().st_size > 1000
    assert "[SpawnProcess-2]" in first.stderr  # jobs were scored by parallel workers

    scores = sorted((out / "runs").glob("*/ablation.json"))
    stamps = [p.stat().st_mtime_ns for p in scores]
    second = _ablation(out, data)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (second.stdout + second.stderr).count("this job already finished, skipping it") == 8
    assert [p.stat().st_mtime_ns for p in scores] == stamps  # nothing re-scored
    assert json.loads((out / "results.json").read_text())["runs"] == runs
