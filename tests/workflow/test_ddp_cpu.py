"""trainer=ddp_cpu: two CPU processes (gloo) train on synth, each tracks its share of whole val
videos, rank 0 gathers and scores them; the metrics equal evaluating the same checkpoint in one
process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixtures.workflow import run_cli, tiny_overrides
from qdtrack_pl.cli.evaluate import run_eval

pytestmark = pytest.mark.slow


def test_two_process_ddp_metrics_equal_one_process_evaluation(
    tmp_path: Path, tiny_data_dir: Path, compose_config
) -> None:
    run_dir = tmp_path / "ddp_run"
    proc = run_cli(
        "qdtrack_pl.cli.train",
        tiny_overrides(
            tiny_data_dir,
            tmp_path / "logs",
            "trainer=ddp_cpu",
            "callbacks.rich_progress_bar=null",
            f"hydra.run.dir={run_dir}",
        ),
    )
    output = proc.stdout + proc.stderr
    assert "MEMBER: 2/2" in output  # Lightning started a second rank
    assert (run_dir / "train_ddp_process_1.log").is_file()  # ... as a Hydra job in the run folder

    # each rank tracked one of the two whole val videos; rank 0 scored both
    log_text = (run_dir / "train.log").read_text() + (
        run_dir / "train_ddp_process_1.log"
    ).read_text()
    per_rank = {
        int(rank): videos
        for rank, videos in re.findall(r"rank (\d) tracked val videos: (\[.*\])", log_text)
    }
    assert set(per_rank) == {0, 1} and per_rank[0] != per_rank[1]
    assert len(sorted((run_dir / "results" / "val").glob("*.txt"))) == 2

    ddp = json.loads((run_dir / "metrics.json").read_text())
    assert ddp["val/Dets"] > 0  # the thresholds of synth_tiny give non-trivial tracks
    best = next((run_dir / "checkpoints").glob("epoch_*.ckpt"))
    cfg = compose_config(
        "eval",
        tiny_overrides(
            tiny_data_dir,
            tmp_path / "logs",
            f"ckpt_path={best}",
            "callbacks.rich_progress_bar=null",
        ),
    )
    single = run_eval(cfg)
    val_keys = sorted(k for k in single if k.startswith("val/"))
    assert len(val_keys) > 20
    assert {k: single[k] for k in val_keys} == {
        k: pytest.approx(ddp[k], abs=1e-6) for k in val_keys
    }
