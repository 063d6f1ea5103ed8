"""Run folders from Python: the newest `make train` run, a run's config read back, and what a
notebook shows (that run, the smoke model under QDTRACK_NOTEBOOK_SMOKE=1, or how to make one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from qdtrack_pl import api


def _fake_run(runs: Path, name: str, started: float, checkpoint: bool = True) -> Path:
    run = runs / name
    (run / ".hydra").mkdir(parents=True)
    config = {
        "paths": {
            "root_dir": "${hydra:runtime.cwd}",
            "data_dir": "${paths.root_dir}/data",
            "output_dir": "${hydra:runtime.output_dir}",
        },
        "eval_split": "test",
        "note": "${hydra:job.name} stays ${hydra:no.such.key}",
    }
    hydra = {
        "hydra": {"runtime": {"cwd": "/clone", "output_dir": "/moved/away"}, "job": {"name": "t"}}
    }
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["experiment=synth"]))
    os.utime(run / ".hydra" / "config.yaml", (started, started))
    if checkpoint:
        (run / "checkpoints").mkdir()
        torch.save({}, run / "checkpoints" / "last.ckpt")
    return run


def test_latest_run_is_the_newest_started_run_with_a_checkpoint(tmp_path: Path) -> None:
    assert api.latest_run(tmp_path) is None  # no logs/ at all
    runs = tmp_path / "train" / "runs"
    _fake_run(runs, "2024-01-01_10-00-00", started=1000.0)
    newest = _fake_run(runs, "2024-01-02_10-00-00", started=2000.0)
    _fake_run(runs, "2024-01-03_10-00-00", started=3000.0, checkpoint=False)  # still starting
    run = api.latest_run(tmp_path)
    assert run == api.Run(newest) and run.checkpoint == newest / "checkpoints" / "last.ckpt"
    assert run.overrides == ["experiment=synth"]
    assert run.overrides_file == newest / ".hydra" / "overrides.yaml"
    assert api.Run(tmp_path / "missing").overrides == []  # no overrides saved: none
    assert api.latest_run(tmp_path, task="eval") is None


def test_a_runs_config_resolves_its_hydra_values(tmp_path: Path) -> None:
    run = api.Run(_fake_run(tmp_path, "run", started=1.0))
    cfg = run.config()
    assert cfg.paths.data_dir == "/clone/data"  # where the run read its data
    assert cfg.paths.output_dir == str(run.run_dir)  # this folder, wherever it is now
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert raw["note"] == "t stays ${hydra:no.such.key}"  # what hydra.yaml lacks stays as it was
    assert run.results_dir(cfg.eval_split) == run.run_dir / "results" / "test"
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        api.Run(tmp_path / "nothing").config()


def test_notebooks_show_the_newest_run_or_say_how_to_make_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    smoke = api.Run(tmp_path / "smoke")
    calls: list[tuple[bool, bool]] = []

    def fake_smoke_run(train_model: bool = True, evaluate: bool = True) -> api.Run:
        calls.append((train_model, evaluate))
        return smoke

    monkeypatch.setattr(api, "smoke_run", fake_smoke_run)
    monkeypatch.delenv(api.SMOKE_ENV, raising=False)
    logs = tmp_path / "logs"

    assert api.notebook_run(evaluate=False, log_dir=logs) == smoke  # no run yet
    first = capsys.readouterr().out.splitlines()[0]
    assert "No trained checkpoint" in first and "`make train`" in first
    assert calls == [(True, False)]

    newest = _fake_run(logs / "train" / "runs", "2024-01-02_10-00-00", started=5.0)
    assert api.notebook_run(log_dir=logs) == api.Run(newest)
    assert str(newest) in capsys.readouterr().out

    monkeypatch.setenv(api.SMOKE_ENV, "1")  # the test suite: the smoke model even with a run
    assert api.notebook_run(train_model=False, log_dir=logs) == smoke
    assert api.SMOKE_ENV in capsys.readouterr().out and calls[-1] == (False, True)


def test_a_smoke_run_without_training_saves_its_config(tmp_path: Path) -> None:
    run = api.smoke_run(train_model=False, work_dir=tmp_path)
    cfg = run.config()
    assert cfg.data.synth.width == 160  # experiment=synth_tiny
    assert cfg.paths.data_dir == str(tmp_path / "data") and cfg.paths.output_dir == str(run.run_dir)
    assert "experiment=synth_tiny" in run.overrides


@pytest.mark.slow
def test_a_trained_smoke_run_loads_its_model(tmp_path: Path) -> None:
    run = api.smoke_run(evaluate=False, work_dir=tmp_path)
    module = run.load_model()
    assert not module.training and module.model.detector.fpn_channels == 32  # synth_tiny's model
    assert api.load_model(run.checkpoint).model.detector.fpn_channels == 32  # its own config
