"""Hydra sweeps: a `qdtrack-train -m` grid with the basic launcher, and the Optuna searches of
conf/hparams_search (optional extra [optuna]) whose objective is the validation HOTA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fixtures.workflow import run_cli, tiny_overrides

pytestmark = pytest.mark.slow

OPTUNA_MISSING = "the Optuna sweeper is an optional extra: pip install -e '.[optuna]'"


def test_train_multirun_grid_runs_one_job_per_value(tmp_path: Path, tiny_data_dir: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    run_cli(
        "qdtrack_pl.cli.train",
        [
            "-m",
            *tiny_overrides(
                tiny_data_dir,
                tmp_path / "logs",
                "callbacks.rich_progress_bar=null",
                "evaluate=false",  # the in-training validation already logs val/HOTA
                f"hydra.sweep.dir={sweep_dir}",
            ),
            "model.model.embed_loss_weight=0.1,0.5",
        ],
    )
    weights = []
    for job in ("0", "1"):
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert 0.0 <= metrics["val/HOTA"] <= 100.0 and metrics["train/loss"] > 0
        config = yaml.safe_load((sweep_dir / job / ".hydra" / "config.yaml").read_text())
        weights.append(config["model"]["model"]["embed_loss_weight"])
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()
    assert weights == [0.1, 0.5]
    assert (sweep_dir / "multirun.yaml").is_file()


def test_tracker_optuna_search_on_a_fixed_checkpoint_maximises_val_hota(
    tmp_path: Path, tiny_data_dir: Path, wandb_run: Path
) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    sweep_dir = tmp_path / "tracker_search"
    run_cli(
        "qdtrack_pl.cli.evaluate",
        tiny_overrides(
            tiny_data_dir,
            tmp_path / "logs",
            "hparams_search=tracker_optuna",
            f"ckpt_path={wandb_run / 'checkpoints' / 'last.ckpt'}",
            "callbacks.rich_progress_bar=null",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            # an untrained detector scores ~0.25: narrow the births so both trials track
            "hydra.sweeper.params={tracker.init_score_thr:'interval(0.1, 0.3)',"
            "tracker.obj_score_thr:'interval(0.05, 0.2)'}",
            f"hydra.sweep.dir={sweep_dir}",
        ),
    )
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(trials) == 2
    hota = [json.loads((t / "metrics.json").read_text())["val/HOTA"] for t in trials]
    params = [yaml.safe_load((t / ".hydra" / "config.yaml").read_text())["tracker"] for t in trials]
    assert params[0]["init_score_thr"] != params[1]["init_score_thr"]  # each trial its own values
    assert not any((t / "checkpoints").exists() for t in trials)  # no retraining
    assert max(hota) > 0.0
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(hota), abs=1e-6)  # objective = val/HOTA
    assert set(best["best_params"]) >= {"tracker.init_score_thr", "tracker.obj_score_thr"}


def test_train_optuna_search_composes(compose_config) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    cfg = compose_config("train", ["hparams_search=train_optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/HOTA"
    assert {"model.model.embed_loss_weight", "model.model.aux_neg_margin"} <= set(sweeper.params)
    assert any(key.startswith("model.model.sampler.") for key in sweeper.params)
    assert cfg.hydra.runtime.choices["hydra/sweeper"] == "optuna"
