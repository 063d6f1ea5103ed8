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

CONFIG_DIR = Path(__file__).resolve().parents[3] / "conf"


def config_dir() -> str:
    """The repository's ``conf/`` folder (the package is installed editable from its clone)."""
    if not CONFIG_DIR.is_dir():
        raise FileNotFoundError(
            f"config folder {CONFIG_DIR} not found: install qdtrack-pl from its git clone with "
            "`pip install -e .` (or `make install`), or pass --config-dir to your own conf/"
        )
    return str(CONFIG_DIR)


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
        tree.add(f"[bold]{key}[/bold]").add(text)
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
