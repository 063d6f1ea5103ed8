"""What the entry points assemble alike: the trainer with its callbacks and loggers (the resolved
config logged as hyper-parameters), ``metrics.json``, and the module of a checkpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qdtrack_pl.cli.utils import instantiate_list, log, write_json_atomic
from qdtrack_pl.lit.checkpointing import module_from_checkpoint
from qdtrack_pl.lit.module import QDTrackModule

METRICS_FILE = "metrics.json"


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """``cfg.trainer`` with the ``callbacks`` and ``logger`` groups attached; every logger gets
    the resolved config as its hyper-parameters (wandb, tensorboard, csv)."""
    callbacks = instantiate_list(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_list(cfg.get("logger"), "logger")
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return trainer


def save_metrics(trainer: pl.Trainer, cfg: DictConfig, metrics: Mapping[str, float]) -> None:
    """``<run folder>/metrics.json``, written once (DDP: every rank holds the same broadcast
    metrics, rank 0 writes them)."""
    if trainer.is_global_zero:
        write_json_atomic(Path(cfg.paths.output_dir) / METRICS_FILE, dict(metrics))


def overrides_of(group: str) -> list[str]:
    """The command-line overrides of this run that set config group ``group`` or a key below it
    (``model=...``, ``model.x=...``, ``+model.y=...``, ``~model.z``); [] outside a Hydra run."""
    if not HydraConfig.initialized():
        return []
    pattern = re.compile(rf"^[~+]*{re.escape(group)}(?:[.=@/]|$)")
    return [o for o in HydraConfig.get().overrides.task if pattern.match(o)]


class CheckpointModule(NamedTuple):
    module: QDTrackModule  # with the checkpoint's weights
    class_names: tuple[str, ...] | None  # in class-id order; None when nothing says


def checkpoint_module(cfg: DictConfig) -> CheckpointModule:
    """The module of ``cfg.ckpt_path``, built from the model config the checkpoint carries
    (every checkpoint ``qdtrack-train`` writes) unless the command line overrides model keys or
    the checkpoint carries none (official ``.pth``): then from ``cfg.model``. The class names are
    the checkpoint's unless the command line overrides data keys, else ``cfg.data.class_names``."""
    user_model = overrides_of("model")
    loaded = module_from_checkpoint(cfg.ckpt_path, cfg.model, use_stored=not user_model)
    if loaded.from_stored_config:
        log.info("model built from the config stored in %s", cfg.ckpt_path)
    else:
        why = f"overridden by {' '.join(user_model)}" if user_model else "the checkpoint has none"
        log.info("model built from the configured `model` (%s)", why)
    names = None if loaded.stored is None or overrides_of("data") else loaded.stored.class_names
    if names is None:
        configured = (cfg.get("data") or {}).get("class_names")
        names = tuple(configured) if configured else None
    return CheckpointModule(loaded.module, names)
