"""logger=wandb with no network: losses, tracking metrics, the resolved config and the tracking
media (frames with tracks, per-sequence table, a GIF) all land in the offline run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.workflow import read_offline_run

pytestmark = pytest.mark.slow


def _files(run_dir: Path) -> Path:
    (files,) = run_dir.glob("wandb/offline-run-*/files")
    return files


def test_offline_run_holds_losses_metrics_and_config(wandb_run: Path) -> None:
    saved = json.loads((wandb_run / "metrics.json").read_text())
    run = read_offline_run(wandb_run)
    logged = {key for row in run.history for key in row}
    for key in ("train/loss", "train/loss_embed", "train/loss_cls", "val/HOTA", "val/MOTA"):
        assert key in logged, f"{key} never logged; logged: {sorted(logged)}"
    # the summary keeps the last value: the final evaluation written to metrics.json
    for key in ("val/HOTA", "val/MOTA", "val/IDF1"):
        assert run.summary[key] == pytest.approx(saved[key], abs=1e-5)
    # the resolved config (no ${...} left), as cli/train.py hands it to log_hyperparams
    assert run.config["tracker"]["init_score_thr"] == 0.2  # experiment=synth_tiny
    assert run.config["model"]["model"]["detector"]["backbone"] == "resnet10"
    assert run.config["paths"]["output_dir"] == str(wandb_run)
    assert "${" not in json.dumps(run.config)


def test_offline_run_holds_tracking_media(wandb_run: Path) -> None:
    media = _files(wandb_run) / "media"
    frames = sorted((media / "images" / "val").glob("tracks_*.png"))
    assert len(frames) >= 4  # media_frames: 4 per evaluation
    tables = sorted((media / "table" / "val").glob("sequences_*.table.json"))
    assert tables
    table = json.loads(tables[-1].read_text())
    assert table["columns"][:4] == ["sequence", "frames", "tracks", "boxes"]
    assert "HOTA" in table["columns"] and "IDSW" in table["columns"]
    assert sorted(row[0] for row in table["data"]) == sorted(
        p.stem for p in (wandb_run / "results" / "val").glob("*.txt")
    )
    assert sorted((media / "videos" / "val").glob("tracks_video_*.gif"))
    run = read_offline_run(wandb_run)
    images = [row for row in run.history if "val/tracks/count" in row]  # nested keys joined by /
    assert images and images[-1]["val/tracks/count"] == 4
    assert all("frame" in caption for caption in images[-1]["val/tracks/captions"])
