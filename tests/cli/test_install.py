"""Installed like a package: a wheel carries the configs (``pkg://qdtrack_pl.conf``) and its
entry points run from any folder; an editable install keeps reading the clone's ``conf/``.

Both installs go into fresh virtual environments that see this environment's packages through a
``.pth`` file (nothing is downloaded; pip installs only qdtrack-pl itself, ``--no-deps``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
SKIP = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.nbi", "*.nbc", "local")


def _run(args: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QDTRACK_DATA")}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline", HYDRA_FULL_ERROR="1")
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))} exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
    )
    return proc


def _source_copy(root: Path) -> Path:
    """The files a build reads (what the sdist holds), copied away from the shared clone."""
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=SKIP)
    shutil.copytree(REPO_ROOT / "conf", source / "conf", ignore=SKIP)
    return source


def _venv(path: Path) -> Path:
    """A fresh venv (no pip of its own) whose ``.pth`` adds this environment's site-packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", path], cwd=path.parent)
    python = path / "bin" / "python"
    purelib = _run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=path
    ).stdout.strip()
    Path(purelib, "_qdtrack_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def _pip_install(python: Path, *args: str | Path) -> None:
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index"]
    _run([*pip, "--no-build-isolation", "--quiet", *args], cwd=python.parent)


def _where(python: Path) -> tuple[str, str]:
    out = _run(
        [
            python,
            "-c",
            "import qdtrack_pl.cli.utils as u; print(u.__file__); print(u.config_path())",
        ],
        cwd=python.parent,
    )
    module, config = out.stdout.split()
    return module, config


def test_wheel_ships_the_configs_and_trains_from_another_folder(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "-w", dist, source],
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("qdtrack_pl-*.whl")
    python = _venv(tmp_path / "venv")
    _pip_install(python, wheel)

    module, config = _where(python)
    assert Path(module).is_relative_to(tmp_path / "venv")  # the wheel's copy, not the clone
    assert config == "pkg://qdtrack_pl.conf"
    assert (Path(module).parents[1] / "conf" / "experiment" / "synth_tiny.yaml").is_file()

    work = tmp_path / "elsewhere"
    work.mkdir()
    train = tmp_path / "venv" / "bin" / "qdtrack-train"
    _run([train, "experiment=synth_tiny", "trainer.fast_dev_run=true"], cwd=work)
    (run_dir,) = (work / "logs" / "train" / "runs").iterdir()  # below the current folder
    assert (run_dir / "metrics.json").is_file()
    assert next((work / "data" / "synth").glob("synth-*/val"))  # data below it too

    # --config-dir adds the user's own configs on top of the packaged ones
    user_conf = tmp_path / "my_conf"
    (user_conf / "experiment").mkdir(parents=True)
    (user_conf / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - synth_tiny\ntags: [my_own_experiment]\n"
    )
    shown = _run([train, "--config-dir", user_conf, "experiment=mine", "--cfg", "job"], cwd=work)
    assert "my_own_experiment" in shown.stdout and "resnet10" in shown.stdout


def test_editable_install_reads_the_clones_conf(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    python = _venv(tmp_path / "venv")
    _pip_install(python, "--editable", source)
    module, config = _where(python)
    assert Path(module).is_relative_to(source / "src")
    assert Path(config) == source / "conf"
    assert not (source / "src" / "qdtrack_pl" / "conf").exists()  # nothing copied into src/
