"""Shared fixtures: offline wandb, Hydra config composition against tmp_path."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from qdtrack_pl.cli.utils import config_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `benchmarks` (reference implementations) for the tests
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test ever talks to wandb's servers or writes outside tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")


ComposeFn = Callable[..., DictConfig]


@pytest.fixture
def compose_config(tmp_path: Path) -> ComposeFn:
    """Compose a real config (train / eval / track) with run folders inside tmp_path.

    The composed config has its Hydra runtime set, so ``${hydra:...}`` interpolations resolve as
    in a command-line run.
    """

    def _compose(
        config_name: str = "train", overrides: tuple[str, ...] | list[str] = ()
    ) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                config_name=config_name,
                overrides=[
                    f"hydra.run.dir={tmp_path / 'run'}",
                    f"paths.log_dir={tmp_path / 'logs'}",
                    *overrides,
                ],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "run")
            cfg.hydra.runtime.cwd = str(REPO_ROOT)
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        os.makedirs(tmp_path / "run", exist_ok=True)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()
