"""Helpers shared by the Hydra entry points: building objects from config, run bookkeeping."""

from __future__ import annotations

import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("qdtrack_pl")

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # .../qdtrack_pl
CONFIG_MODULE = "qdtrack_pl.conf"  # a wheel ships conf/ here (setup.py copies it at build time)
PACKAGED_CONFIG_DIR = PACKAGE_DIR / "conf"
CHECKOUT_ROOT = PACKAGE_DIR.parents[1]  # the clone, when installed editable from src/
CHECKOUT_CONFIG_DIR = CHECKOUT_ROOT / "conf"
MAIN_CONFIG = "train.yaml"


def checkout_root() -> Path | None:
    """The git clone the package runs from (an editable install), or None (an installed wheel)."""
    is_clone = (CHECKOUT_ROOT / "pyproject.toml").is_file()
    return CHECKOUT_ROOT if is_clone and (CHECKOUT_CONFIG_DIR / MAIN_CONFIG).is_file() else None


def config_dir() -> str:
    """The folder of the configs: the clone's top-level ``conf/`` (editable install, the one
    source of truth) or the copy an installed wheel ships as ``qdtrack_pl/conf``."""
    if checkout_root() is not None:
        return str(CHECKOUT_CONFIG_DIR)
    if (PACKAGED_CONFIG_DIR / MAIN_CONFIG).is_file():
        return str(PACKAGED_CONFIG_DIR)
    raise FileNotFoundError(
        f"no configs found: neither {CHECKOUT_CONFIG_DIR} (a clone installed with `pip install -e "
        f".`) nor {PACKAGED_CONFIG_DIR} (a wheel); reinstall qdtrack-pl, or pass --config-dir "
        "to a folder of your own configs"
    )


def config_path() -> str:
    """The ``config_path`` of the entry points' ``@hydra.main``: the clone's ``conf/`` folder in
    an editable install, Hydra's package search path ``pkg://qdtrack_pl.conf`` in an installed
    wheel. ``--config-dir <folder>`` adds a folder of the user's own configs on top of either."""
    if checkout_root() is None and (PACKAGED_CONFIG_DIR / MAIN_CONFIG).is_file():
        return f"pkg://{CONFIG_MODULE}"
    return config_dir()


def instantiate_list(cfg: DictConfig | None, kind: str) -> list[Any]:
    """Instantiate every ``_target_`` entry of a dict-of-configs group (callbacks, loggers)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"the {kind} config must be a mapping of name -> config, got {type(cfg)}")
    return [
        hydra.utils.instantiate(entry)
        for entry in cfg.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]


def apply_extras(cfg: DictConfig) -> None:
    """Optional start-of-run conveniences controlled by ``extras``."""
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        print_config_tree(cfg)


def print_config_tree(cfg: DictConfig) -> None:
    """Print the composed config as a tree (rich) so a run's settings are visible in its log."""
    from rich import print as rich_print
    from rich.tree import Tree

    tree = Tree("config")
    for key, value in cfg.items():
        if key == "hydra":
            continue
        text = (
            OmegaConf.to_yaml(value, resolve=False) if isinstance(value, DictConfig) else str(value)
        )
        tree.add(f"[bold]{key!s}[/bold]").add(text)
    rich_print(tree)


def task_wrapper(task: Callable[[DictConfig], dict[str, float]]) -> Callable[..., dict[str, float]]:
    """Close loggers (wandb above all) whatever happens, so the next multirun job starts clean."""

    @wraps(task)
    def wrapped(cfg: DictConfig) -> dict[str, float]:
        try:
            return task(cfg)
        finally:
            if "wandb" in (cfg.get("logger") or {}):
                import wandb

                if wandb.run is not None:
                    wandb.finish()

    return wrapped


def metric_value(metrics: Mapping[str, float], name: str | None) -> float | None:
    """The value a sweeper optimises; a missing or non-finite metric is a clear error."""
    if not name:
        return None
    if name not in metrics:
        raise KeyError(
            f"optimized_metric={name!r} was not logged; available: {sorted(metrics)}. "
            "Set `optimized_metric` to one of them."
        )
    value = float(metrics[name])
    if not math.isfinite(value):
        raise ValueError(f"optimized_metric {name!r} is {value}")
    return value


def to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Logged metrics (tensors or numbers) as plain floats."""
    return {
        k: float(v.item() if isinstance(v, torch.Tensor) else v)
        for k, v in metrics.items()
        if isinstance(v, int | float | torch.Tensor)
    }


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file and rename, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def seed_everything(cfg: DictConfig) -> None:
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
