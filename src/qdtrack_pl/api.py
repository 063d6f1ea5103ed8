"""The Hydra jobs from Python (notebooks, scripts, tests), with the command line's configs, and
the run folders they leave.

``compose("train", ["data.synth.num_train_sequences=2"], output_dir=...)`` builds exactly the
config ``qdtrack-train data.synth.num_train_sequences=2`` would, with the run folder
(``${paths.output_dir}``) at ``output_dir``; ``train`` / ``evaluate`` / ``track`` compose and run,
and save the config in ``<output_dir>/.hydra/`` as the command line does.

:class:`Run` reads a run folder back (its config, ``checkpoints/last.ckpt``, the model);
:func:`latest_run` finds the newest ``make train`` run, and :func:`notebook_run` picks what a
notebook shows: that run, or with ``QDTRACK_NOTEBOOK_SMOKE=1`` (``make test-notebooks``) a tiny
smoke model trained on the spot.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from qdtrack_pl.cli.utils import checkout_root, config_dir

if TYPE_CHECKING:
    from qdtrack_pl.lit.module import QDTrackModule

HYDRA_SUBDIR = ".hydra"  # hydra.output_subdir: config.yaml, hydra.yaml, overrides.yaml
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
SMOKE_ENV = (
    "QDTRACK_NOTEBOOK_SMOKE"  # "1": notebooks use the tiny smoke model (make test-notebooks)
)
SMOKE_OVERRIDES = ("experiment=synth_tiny",)  # seconds-scale data and model
QUIET = ("callbacks.rich_progress_bar=null", "trainer.enable_progress_bar=false")  # no live bars
NO_RUN_MESSAGE = (
    "No trained checkpoint found (no {where}/<run>/checkpoints/last.ckpt). Run `make train` "
    "(the CPU default) and re-run this notebook to see the method at work; "
    "for now it shows {fallback}."
)
SMOKE_FALLBACK = "a tiny smoke model trained here for a few steps, whose results mean nothing"
SMOKE_DATA_FALLBACK = "the tiny smoke dataset (experiment=synth_tiny)"
_HYDRA_INTERPOLATION = re.compile(r"\$\{hydra:([\w.]+)\}")


def compose(
    config_name: str = "train",
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
    save: bool = False,
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style ``overrides``; the run folder
    is ``output_dir`` (a new temporary folder if None) and ``${hydra:...}`` values resolve as in
    a command-line run started from the repository root (from the current folder when the
    package is an installed wheel). ``save`` writes ``<output_dir>/.hydra/`` (``config.yaml``,
    ``hydra.yaml``, ``overrides.yaml``) as a command-line run does."""
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
        cfg.hydra.runtime.cwd = str(checkout_root() or Path.cwd())
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    hydra_node = cfg.hydra
    with open_dict(cfg):
        del cfg["hydra"]  # as hydra.main hands it over; ${hydra:...} reads HydraConfig
    if save:
        saved = out / HYDRA_SUBDIR
        saved.mkdir(exist_ok=True)
        (saved / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
        (saved / "hydra.yaml").write_text(OmegaConf.to_yaml({"hydra": hydra_node}))
        (saved / "overrides.yaml").write_text(OmegaConf.to_yaml(hydra_node.overrides.task))
    return cfg


def train(overrides: Sequence[str] = (), output_dir: str | Path | None = None) -> dict[str, float]:
    """``qdtrack-train <overrides>``; returns the metrics (also ``<output_dir>/metrics.json``)."""
    from qdtrack_pl.cli.train import run_training

    return run_training(compose("train", overrides, output_dir, save=True))


def evaluate(
    ckpt_path: str | Path, overrides: Sequence[str] = (), output_dir: str | Path | None = None
) -> dict[str, float]:
    """``qdtrack-eval ckpt_path=<ckpt_path> <overrides>``; returns the metrics."""
    from qdtrack_pl.cli.evaluate import run_eval

    overrides = [f"ckpt_path={ckpt_path}", *overrides]
    return run_eval(compose("eval", overrides, output_dir, save=True))


def track(
    ckpt_path: str | Path,
    input_path: str | Path,
    overrides: Sequence[str] = (),
    output_dir: str | Path | None = None,
) -> Path:
    """``qdtrack-track ckpt_path=... input=...``; returns the MOT results file."""
    from qdtrack_pl.cli.track import run_tracking

    overrides = [f"ckpt_path={ckpt_path}", f"input={input_path}", *overrides]
    return run_tracking(compose("track", overrides, output_dir, save=True))


def load_model(ckpt_path: str | Path) -> QDTrackModule:
    """The ``QDTrackModule`` of a checkpoint of ours, built from the model config it carries,
    in eval mode on the CPU."""
    from qdtrack_pl.lit.checkpointing import module_from_checkpoint

    return module_from_checkpoint(ckpt_path).module.eval()


# -- run folders ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A run folder as ``qdtrack-train`` (or :func:`train`) leaves it: ``.hydra/`` with the
    composed config, ``checkpoints/last.ckpt``, ``results/<split>/<video>.txt``."""

    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / LAST_CHECKPOINT

    @property
    def overrides_file(self) -> Path:
        """Where Hydra saved the run's command-line overrides."""
        return self.run_dir / HYDRA_SUBDIR / "overrides.yaml"

    @property
    def overrides(self) -> list[str]:
        """The command-line overrides the run was started with."""
        path = self.overrides_file
        return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []

    def results_dir(self, split: str = "val") -> Path:
        return self.run_dir / "results" / split

    def config(self) -> DictConfig:
        """The run's composed config (``.hydra/config.yaml``) with its ``${hydra:...}`` values
        taken from the run's ``.hydra/hydra.yaml``: ``paths.output_dir`` is this folder, the data
        is where the run read it."""
        saved = self.run_dir / HYDRA_SUBDIR
        if not (saved / "config.yaml").is_file():
            raise FileNotFoundError(
                f"{saved / 'config.yaml'} not found: {self.run_dir} is not a run folder of "
                "qdtrack-train (or its .hydra/ folder was removed)"
            )
        raw = OmegaConf.to_container(OmegaConf.load(saved / "config.yaml"), resolve=False)
        hydra_file = saved / "hydra.yaml"
        hydra_node = (
            OmegaConf.load(hydra_file).hydra if hydra_file.is_file() else OmegaConf.create()
        )
        with open_dict(hydra_node):
            OmegaConf.update(hydra_node, "runtime.output_dir", str(self.run_dir), force_add=True)

        def fill(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: fill(v) for k, v in node.items()}
            if isinstance(node, list):
                return [fill(v) for v in node]
            if isinstance(node, str):
                return _HYDRA_INTERPOLATION.sub(
                    lambda m: str(OmegaConf.select(hydra_node, m.group(1), default=m.group(0))),
                    node,
                )
            return node

        return OmegaConf.create(fill(raw))

    def load_model(self) -> QDTrackModule:
        """The ``QDTrackModule`` of ``checkpoints/last.ckpt`` (built from the model config it
        carries, else from the run's config), in eval mode on the CPU."""
        from qdtrack_pl.lit.checkpointing import module_from_checkpoint

        loaded = module_from_checkpoint(self.checkpoint, self.config().model)
        return loaded.module.eval()


def default_log_dir() -> Path:
    """``paths.log_dir`` of a run started from the clone's root (the current folder for an
    installed wheel): where ``make train`` leaves its runs."""
    return (checkout_root() or Path.cwd()) / "logs"


def latest_run(log_dir: str | Path | None = None, task: str = "train") -> Run | None:
    """The newest run below ``<log_dir>/<task>/runs/`` that has a ``checkpoints/last.ckpt`` and
    its ``.hydra/config.yaml`` (newest = most recently started), or None."""
    runs_dir = Path(log_dir if log_dir is not None else default_log_dir()) / task / "runs"
    if not runs_dir.is_dir():
        return None
    candidates = [
        folder
        for folder in runs_dir.iterdir()
        if (folder / LAST_CHECKPOINT).is_file()
        and (folder / HYDRA_SUBDIR / "config.yaml").is_file()
    ]
    if not candidates:
        return None
    started = max(
        candidates, key=lambda f: ((f / HYDRA_SUBDIR / "config.yaml").stat().st_mtime, f.name)
    )
    return Run(started)


def smoke_requested() -> bool:
    return os.environ.get(SMOKE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def smoke_run(
    train_model: bool = True, evaluate: bool = True, work_dir: str | Path | None = None
) -> Run:
    """A seconds-scale run in a temporary folder (``experiment=synth_tiny``, data generated
    there too): trained (then tracked and evaluated, with ``evaluate``) when ``train_model``,
    else only its config saved."""
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="qdtrack-nb-"))
    overrides = [
        *SMOKE_OVERRIDES,
        f"paths.data_dir={work / 'data'}",
        f"paths.log_dir={work / 'logs'}",
    ]
    run_dir = work / "run"
    if train_model:
        train([*overrides, *QUIET, f"evaluate={str(evaluate).lower()}"], output_dir=run_dir)
    else:
        compose("train", overrides, output_dir=run_dir, save=True)
    return Run(run_dir)


def notebook_run(
    train_model: bool = True, evaluate: bool = True, log_dir: str | Path | None = None
) -> Run:
    """The run a notebook shows, said in one printed line: with ``QDTRACK_NOTEBOOK_SMOKE=1`` a
    tiny smoke model trained here (:func:`smoke_run`, what ``make test-notebooks`` executes);
    otherwise the newest ``make train`` run (:func:`latest_run`); without one, how to make it,
    then the smoke model."""
    if smoke_requested():
        print(f"{SMOKE_ENV}=1: a tiny smoke model (experiment=synth_tiny), trained here")
        return smoke_run(train_model, evaluate)
    run = latest_run(log_dir)
    if run is not None:
        print(f"the newest `make train` run: {run.run_dir} ({run.checkpoint.name})")
        return run
    where = Path(log_dir if log_dir is not None else default_log_dir()) / "train" / "runs"
    fallback = SMOKE_FALLBACK if train_model else SMOKE_DATA_FALLBACK
    print(NO_RUN_MESSAGE.format(where=where, fallback=fallback))
    return smoke_run(train_model, evaluate)
