"""Config errors fail at start, in seconds, with a message naming the key: unknown keys (Hydra's
struct mode on the command line, the signature check for keys added by files or ``+key=``) and
values of the wrong type (checked against the annotations of the code they configure)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from qdtrack_pl.cli.config_check import ConfigValidationError, validate_config
from qdtrack_pl.cli.evaluate import run_eval
from qdtrack_pl.cli.train import run_training

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs: expected int or null, got 'abc' (str)"),
        ("data.batch_size=two", "data.batch_size: expected int, got 'two' (str)"),
        ("data.synth.frames_range=[5,x]", "data.synth.frames_range: expected tuple[int, int]"),
        ("+data.synth.frame_range=[5,8]", "data.synth.frame_range: unknown key; SynthConfig has"),
        ("+model.model.foo=1", "model.model.foo: unknown key; qdtrack_pl.models.qdtrack.QDTrack"),
        ("model.nonfinite_loss=ignore", "model.nonfinite_loss: expected one of 'skip', 'stop'"),
        ("model.optimizer.lr=fast", "model.optimizer.lr: expected float or Tensor, got 'fast'"),
        ("callbacks.resume_checkpoint.every_n_train_steps=1.5", "every_n_train_steps: expected"),
        ("tracker.match_score_thr=high", "tracker.match_score_thr: expected float"),
        ("eval_split=train", "eval_split: expected one of 'val', 'test', got 'train'"),
    ],
)
def test_wrong_keys_and_types_fail_before_anything_runs(
    compose_config, tmp_path: Path, override: str, message: str
) -> None:
    cfg = compose_config("train", [f"paths.data_dir={tmp_path / 'data'}", override])
    start = time.perf_counter()
    with pytest.raises(ConfigValidationError, match=re.escape(message)):
        run_training(cfg)
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "data").exists()  # no dataset generated, nothing trained


def test_unknown_command_line_keys_are_refused_by_hydra_naming_the_key(compose_config) -> None:
    with pytest.raises(ConfigCompositionException, match=r"model\.model\.foo") as info:
        compose_config("train", ["model.model.foo=1"])
    assert "not in struct" in str(info.value.__cause__)


def test_a_missing_required_value_is_named(compose_config, tmp_path: Path) -> None:
    cfg = compose_config("eval", [f"paths.data_dir={tmp_path / 'data'}"])
    with pytest.raises(ConfigValidationError, match=r"ckpt_path: a value is required"):
        run_eval(cfg)


CONF = REPO_ROOT / "conf"
SHIPPED = [
    [f"{group}={path.stem}"]
    for group in ("experiment", "data", "model", "trainer", "logger", "tracker", "debug")
    for path in sorted((CONF / group).glob("*.yaml"))
]


@pytest.mark.parametrize("overrides", [[], *SHIPPED], ids=lambda o: " ".join(o) or "defaults")
def test_every_shipped_config_passes_the_check(compose_config, overrides: list[str]) -> None:
    validate_config(compose_config("train", overrides))


def test_the_command_line_fails_in_seconds_naming_the_key(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "qdtrack_pl.cli.train",
            "trainer.max_epochs=abc",
            f"paths.data_dir={tmp_path / 'data'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode != 0
    assert "trainer.max_epochs: expected int or null, got 'abc'" in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "run" / "checkpoints").exists()
    assert elapsed < 120  # the interpreter's imports; the check itself takes milliseconds
