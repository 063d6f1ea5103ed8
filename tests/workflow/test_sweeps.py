"""Hydra sweeps: a `qdtrack-train -m` grid with the basic launcher, and the Optuna searches of
conf/hparams_search (optional extra [optuna]) whose objective is the validation HOTA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fixtures.workflow import REPO_ROOT, run_cli, tiny_overrides

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


def _tracker_search(tmp_path: Path, data_dir: Path, trained: Path, *extra: str) -> Path:
    """``qdtrack-eval hparams_search=tracker_optuna`` with 2 trials on the tiny run's checkpoint;
    returns the sweep folder."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    sweep_dir = tmp_path / "tracker_search"
    run_cli(
        "qdtrack_pl.cli.evaluate",
        tiny_overrides(
            data_dir,
            tmp_path / "logs",
            "hparams_search=tracker_optuna",
            f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}",
            "callbacks.rich_progress_bar=null",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.sampler.n_startup_trials=2",
            f"hydra.sweep.dir={sweep_dir}",
            *extra,
        ),
    )
    return sweep_dir


def test_tracker_optuna_search_on_a_fixed_checkpoint_maximises_val_hota(
    tmp_path: Path, tiny_data_dir: Path, wandb_run: Path
) -> None:
    sweep_dir = _tracker_search(
        tmp_path,
        tiny_data_dir,
        wandb_run,
        # an untrained detector scores ~0.25: narrow the births so both trials track
        "hydra.sweeper.params={tracker.init_score_thr:'interval(0.1, 0.3)',"
        "tracker.obj_score_thr:'interval(0.05, 0.2)'}",
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


TRACKER_CONFIGS = sorted(p.stem for p in (REPO_ROOT / "conf" / "tracker").glob("*.yaml"))


@pytest.mark.parametrize("tracker", TRACKER_CONFIGS)
def test_every_tracker_config_has_its_own_search_space(compose_config, tracker: str) -> None:
    """The sweep config is generic: each tracker brings its space (tracker_optuna_space/), whose
    keys are all parameters of that tracker, whatever the tracker class."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    cfg = compose_config(
        "eval", ["hparams_search=tracker_optuna", "ckpt_path=x", f"tracker={tracker}"]
    )
    params = dict(cfg.hydra.sweeper.params)
    assert params, f"conf/hparams_search/tracker_optuna_space/{tracker}.yaml is missing"
    assert all(key.startswith("tracker.") for key in params)
    assert {key.removeprefix("tracker.") for key in params} <= set(cfg.tracker) - {"_target_"}


def test_the_search_space_follows_the_tracker_an_experiment_picks(compose_config) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    cfg = compose_config(
        "eval", ["hparams_search=tracker_optuna", "ckpt_path=x", "experiment=synth"]
    )
    assert cfg.hydra.sweeper.params["tracker.match_score_thr"] == "interval(0.1, 0.7)"  # synth's
    plain = compose_config("eval", ["ckpt_path=x", "tracker=iou"])  # no sweep: nothing set
    assert not plain.hydra.sweeper.get("params")


def test_the_qdtracker_coupling_is_written_next_to_both_keys(compose_config) -> None:
    """QDTracker suppresses above max(match_score_thr, nms_conf_thr): every QDTracker file that
    sets either key says so beside it."""
    for name in TRACKER_CONFIGS:
        cfg = compose_config("track", [f"tracker={name}", "ckpt_path=x", "input=y"])
        if not cfg.tracker._target_.endswith("QDTracker"):
            continue
        lines = (REPO_ROOT / "conf" / "tracker" / f"{name}.yaml").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith(("match_score_thr:", "nms_conf_thr:")):
                nearby = " ".join(part.lstrip("# ") for part in lines[i : i + 4])
                assert "max(match_score_thr, nms_conf_thr)" in nearby, f"{name}.yaml:{i + 1}"


@pytest.mark.parametrize("tracker", ["qdtrack", "iou", "tao"])
def test_tracker_optuna_search_runs_with_each_trackers_space(
    tmp_path: Path, tiny_data_dir: Path, wandb_run: Path, tracker: str
) -> None:
    """Each trial samples the tracker's own keys from its own space (no narrowing here)."""
    sweep_dir = _tracker_search(tmp_path, tiny_data_dir, wandb_run, f"tracker={tracker}")
    trials = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    hydra = yaml.safe_load((trials[0] / ".hydra" / "hydra.yaml").read_text())["hydra"]
    space = hydra["sweeper"]["params"]
    assert space and all(key.startswith("tracker.") for key in space)
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == set(space)  # every key of the tracker's space searched
    configs = [
        yaml.safe_load((t / ".hydra" / "config.yaml").read_text())["tracker"] for t in trials
    ]
    assert len(trials) == 2 and all((t / "metrics.json").is_file() for t in trials)
    first_key = next(iter(space)).removeprefix("tracker.")
    assert configs[0][first_key] != configs[1][first_key]


def test_train_optuna_search_composes(compose_config) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper.optuna_sweeper", reason=OPTUNA_MISSING)
    cfg = compose_config("train", ["hparams_search=train_optuna"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/HOTA"
    assert {"model.model.embed_loss_weight", "model.model.aux_neg_margin"} <= set(sweeper.params)
    assert any(key.startswith("model.model.sampler.") for key in sweeper.params)
    assert cfg.hydra.runtime.choices["hydra/sweeper"] == "optuna"
