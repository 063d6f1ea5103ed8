"""Fixtures of the research-workflow tests: one shared synth cache and one tiny training run
logged to wandb (offline) whose checkpoint and results the other tests reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from fixtures.workflow import tiny_overrides
from qdtrack_pl import api


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``paths.data_dir`` shared by every workflow test: the synth dataset is generated once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def wandb_run(tmp_path_factory: pytest.TempPathFactory, tiny_data_dir: Path) -> Path:
    """A tiny train + evaluate run with ``logger=wandb`` in offline mode (Lightning's rich
    progress bar, the TrackEval progress bar and the wandb media on); returns its run folder."""
    root = tmp_path_factory.mktemp("wandb_run")
    run_dir = root / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(root))
        mp.setenv("WANDB_SILENT", "true")
        for name in ("CACHE", "DATA", "CONFIG"):  # staging, artifacts, settings: all in tmp
            mp.setenv(f"WANDB_{name}_DIR", str(root / f"wandb_{name.lower()}"))
        overrides = tiny_overrides(
            tiny_data_dir,
            root / "logs",
            "logger=wandb",
            "callbacks.tracking_evaluation.media_video_frames=4",
        )
        api.train(overrides, run_dir)
    GlobalHydra.instance().clear()
    return run_dir
