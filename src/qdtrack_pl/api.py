"""The Hydra jobs from Python (notebooks, scripts, tests), with the command line's configs.

``compose("train", ["data.synth.num_train_sequences=2"], output_dir=...)`` builds exactly the
config ``qdtrack-train data.synth.num_train_sequences=2`` would, with the run folder
(``${paths.output_dir}``) at ``output_dir``; ``train`` / ``evaluate`` / ``track`` compose and run.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from qdtrack_pl.cli.utils import config_dir


def compose(
    config_name: str = "train",
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style ``overrides``; the run folder
    is ``output_dir`` (a new temporary folder if None) and ``${hydra:...}`` values resolve as in
    a command-line run started from the repository root."""
    out = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="qdtrack-"))
    out.mkdir(parents=True, exist_ok=True)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name=config_name):
        cfg = hydra_compose(
            config_name=config_name,
            overrides=[f"hydra.run.dir={out}", *overrides],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.runtime.cwd = str(Path(config_dir()).parent)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as hydra.main hands it over; ${hydra:...} reads HydraConfig
    return cfg


def train(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> dict[str, float]:
    """``qdtrack-train <overrides>``; returns the metrics (also ``<output_dir>/metrics.json``)."""
    from qdtrack_pl.cli.train import run_training

    return run_training(compose("train", overrides, output_dir))


def evaluate(
    ckpt_path: str | Path, overrides: Sequence[str] = (), output_dir: str | Path | None = None
) -> dict[str, float]:
    """``qdtrack-eval ckpt_path=<ckpt_path> <overrides>``; returns the metrics."""
    from qdtrack_pl.cli.evaluate import run_eval

    return run_eval(compose("eval", [f"ckpt_path={ckpt_path}", *overrides], output_dir))


def track(
    ckpt_path: str | Path,
    input_path: str | Path,
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
) -> Path:
    """``qdtrack-track ckpt_path=... input=...``; returns the MOT results file."""
    from qdtrack_pl.cli.track import run_tracking

    overrides = [f"ckpt_path={ckpt_path}", f"input={input_path}", *overrides]
    return run_tracking(compose("track", overrides, output_dir))
