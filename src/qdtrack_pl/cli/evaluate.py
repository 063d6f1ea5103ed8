"""`qdtrack-eval`: track the evaluation split with a checkpoint and score it with TrackEval.

Tracker-only sweeps need no retraining:
``qdtrack-eval -m ckpt_path=... tracker.obj_score_thr=0.3,0.5``.

With ``results=<folder or file>`` it scores result files that already exist instead (no checkpoint,
no model): ``qdtrack-eval data=<name> data.root=<root> results=<path>`` reads them in the format of
the dataset's protocol (``qdtrack_pl.eval.result_files``) and prints the table and writes the
``metrics.json`` a tracking run would.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from qdtrack_pl.cli.config_check import validate_config
from qdtrack_pl.cli.run import METRICS_FILE, build_trainer, checkpoint_module, save_metrics
from qdtrack_pl.cli.utils import (
    apply_extras,
    config_path,
    log,
    metric_value,
    seed_everything,
    task_wrapper,
    write_json_atomic,
)
from qdtrack_pl.eval.result_files import score_result_files
from qdtrack_pl.lit.evaluation import run_evaluation


@task_wrapper
def run_eval(cfg: DictConfig) -> dict[str, float]:
    """Load ``ckpt_path`` (into the model it stores, or the configured one), track
    ``eval_split``, return the metrics. With ``results`` set: :func:`score_results`."""
    if cfg.get("results") is not None:
        return score_results(cfg)
    validate_config(cfg)
    apply_extras(cfg)
    seed_everything(cfg)
    datamodule = instantiate(cfg.data)
    module = checkpoint_module(cfg).module
    trainer = build_trainer(cfg)
    metrics = run_evaluation(trainer, module, datamodule, cfg.eval_split, ckpt_path=None)
    save_metrics(trainer, cfg, metrics)
    return metrics


def score_results(cfg: DictConfig) -> dict[str, float]:
    """Score the files at ``cfg.results`` against ``eval_split`` of ``cfg.data`` with the dataset's
    protocol: the same ``<split> tracking metrics`` table in the log and ``<split>/<metric>`` keys
    in ``metrics.json`` as after tracking. Needs no checkpoint (``ckpt_path`` is not used)."""
    with open_dict(cfg):
        cfg.ckpt_path = None  # scoring files tracks nothing: no checkpoint to require
    validate_config(cfg, groups=("data",))
    apply_extras(cfg)
    datamodule = instantiate(cfg.data)
    split = cfg.eval_split
    iou = OmegaConf.select(cfg, "callbacks.tracking_evaluation.iou_threshold", default=0.5)
    output_dir = Path(cfg.paths.output_dir)
    protocol, result = score_result_files(
        datamodule,
        split,
        Path(cfg.results),
        work_dir=output_dir / "results" / split,
        iou_threshold=float(iou),
    )
    log.info("%s tracking metrics (%s):\n%s", split, protocol, result.table)
    metrics = {f"{split}/{k}": float(v) for k, v in result.metrics.items()}
    write_json_atomic(output_dir / METRICS_FILE, metrics)
    return metrics


@hydra.main(version_base="1.3", config_path=config_path(), config_name="eval")
def main(cfg: DictConfig) -> float | None:
    metrics = run_eval(cfg)
    if cfg.get("results") is not None and cfg.get("optimized_metric") not in metrics:
        return None  # scoring files: no sweep to feed (TAO, say, has no val/HOTA)
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
