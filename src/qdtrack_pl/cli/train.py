"""`qdtrack-train`: fit QDTrack, then track and evaluate the evaluation split (the main job)."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import LightningModule
from pytorch_lightning.utilities.exceptions import SIGTERMException

from qdtrack_pl.cli.config_check import validate_config
from qdtrack_pl.cli.run import METRICS_FILE, build_trainer, save_metrics
from qdtrack_pl.cli.utils import (
    apply_extras,
    config_path,
    log,
    metric_value,
    seed_everything,
    task_wrapper,
    to_floats,
)
from qdtrack_pl.eval.compare import side_by_side
from qdtrack_pl.lit.checkpointing import load_weights, resolve_ckpt_path
from qdtrack_pl.lit.evaluation import run_evaluation


def build_module(cfg: DictConfig) -> LightningModule:
    """The configured module, initialised from ``init_from`` when set: weights only, so the
    optimizer, schedule and epochs start fresh (``ckpt_path`` resumes all of them instead).
    Its checkpoints carry the resolved ``model`` config (``qdtrack-track`` rebuilds it)."""
    module = instantiate(cfg.model)
    module.remember_config(OmegaConf.to_container(cfg.model, resolve=True))
    if cfg.get("init_from"):
        log.info("initialising the model from %s", cfg.init_from)
        load_weights(module, cfg.init_from)
    return module


@task_wrapper
def run_training(cfg: DictConfig) -> dict[str, float]:
    """Train (unless ``train=false``), evaluate with the best checkpoint, return all metrics."""
    finished = Path(cfg.paths.output_dir) / METRICS_FILE
    if cfg.get("skip_if_finished") and finished.is_file():
        log.info("%s exists: this job already finished, skipping it", finished)
        return {k: float(v) for k, v in json.loads(finished.read_text()).items()}
    validate_config(cfg)  # wrong keys/types fail here, in a second, naming the key
    apply_extras(cfg)
    seed_everything(cfg)
    datamodule = instantiate(cfg.data)
    module = build_module(cfg)
    trainer = build_trainer(cfg)

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
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")  # ModelCheckpoint
        log.info("evaluating %s on the %s split", best or "the final weights", cfg.eval_split)
        metrics.update(run_evaluation(trainer, module, datamodule, cfg.eval_split, best or None))
    for stage in ("val", "test"):
        if table := side_by_side(metrics, stage):
            log.info(
                "%s: %s tracker against its baselines on the same detections:\n%s",
                stage,
                "the configured",
                table,
            )
    save_metrics(trainer, cfg, metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_path(), config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_training(cfg)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
