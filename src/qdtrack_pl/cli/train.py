"""`qdtrack-train`: fit QDTrack, then track and evaluate the evaluation split (the main job)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import LightningModule
from pytorch_lightning.utilities.exceptions import SIGTERMException

from qdtrack_pl.cli.config_check import validate_config
from qdtrack_pl.cli.utils import (
    apply_extras,
    config_dir,
    instantiate_list,
    log,
    metric_value,
    seed_everything,
    task_wrapper,
    to_floats,
    write_json_atomic,
)
from qdtrack_pl.lit.checkpointing import load_weights, resolve_ckpt_path
from qdtrack_pl.lit.evaluation import run_evaluation


def build_module(cfg: DictConfig) -> LightningModule:
    """The configured module, initialised from ``init_from`` when set: weights only, so the
    optimizer, schedule and epochs start fresh (``ckpt_path`` resumes all of them instead)."""
    module = instantiate(cfg.model)
    if cfg.get("init_from"):
        log.info("initialising the model from %s", cfg.init_from)
        load_weights(module, cfg.init_from)
    return module


@task_wrapper
def run_training(cfg: DictConfig) -> dict[str, float]:
    """Train (unless ``train=false``), evaluate with the best checkpoint, return all metrics."""
    validate_config(cfg)  # wrong keys/types fail here, in a second, naming the key
    apply_extras(cfg)
    seed_everything(cfg)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    callbacks = instantiate_list(cfg.get("callbacks"), "callbacks")
    loggers = instantiate_list(cfg.get("logger"), "logger")
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, float] = {}
    if cfg.get("train", True):
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.paths.output_dir)
        if ckpt_path is not None:
            log.info("resuming from %s", ckpt_path)
        try:
            # our checkpoints pickle the optimizer/scheduler partials: load them as trusted files
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
        except SIGTERMException:
            log.warning(
                "training stopped by SIGTERM at global step %d; resume it with `qdtrack-train "
                "<the same overrides> ckpt_path=last hydra.run.dir=%s`",
                trainer.global_step,
                cfg.paths.output_dir,
            )
            raise
        metrics.update(to_floats(trainer.callback_metrics))
    if cfg.get("evaluate", True):
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        log.info("evaluating %s on the %s split", best or "the final weights", cfg.eval_split)
        metrics.update(run_evaluation(trainer, module, datamodule, cfg.eval_split, best or None))

    if trainer.is_global_zero:  # DDP: every rank holds the same (broadcast) metrics
        write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_training(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
