"""`qdtrack-eval`: track the evaluation split with a checkpoint and score it with TrackEval.

Tracker-only sweeps need no retraining:
``qdtrack-eval -m ckpt_path=... tracker.obj_score_thr=0.3,0.5``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qdtrack_pl.cli.config_check import validate_config
from qdtrack_pl.cli.utils import (
    apply_extras,
    config_dir,
    instantiate_list,
    metric_value,
    seed_everything,
    task_wrapper,
    write_json_atomic,
)
from qdtrack_pl.lit.checkpointing import load_weights
from qdtrack_pl.lit.evaluation import run_evaluation


@task_wrapper
def run_eval(cfg: DictConfig) -> dict[str, float]:
    """Load ``ckpt_path`` into the configured model, track ``eval_split``, return the metrics."""
    validate_config(cfg)
    apply_extras(cfg)
    seed_everything(cfg)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    load_weights(module, cfg.ckpt_path)
    callbacks = instantiate_list(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_list(cfg.get("logger"), "logger")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:  # the resolved config next to the metrics (wandb, tensorboard, csv)
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    metrics = run_evaluation(trainer, module, datamodule, cfg.eval_split, ckpt_path=None)
    if trainer.is_global_zero:  # DDP: every rank holds the same (broadcast) metrics
        write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def main(cfg: DictConfig) -> float | None:
    metrics = run_eval(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
