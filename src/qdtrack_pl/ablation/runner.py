"""The ablation's steps: the training grid as one Hydra multirun, then per finished job the cached
detections and the tuned association variants, then the collected results.

Every step is resumable: finished training jobs are skipped (``skip_if_finished``), killed ones
resume from their ``last.ckpt``, detections are cached per job and split, and a job whose
variants were already scored under the same settings is not scored again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from qdtrack_pl.ablation.cache import build_datamodule, cached_detections, ensure_cached
from qdtrack_pl.ablation.sweep import grid_points, tune_and_test
from qdtrack_pl.api import Run
from qdtrack_pl.cli.run import METRICS_FILE
from qdtrack_pl.cli.utils import write_json_atomic

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
SCORES_FILE = "ablation.json"  # per job: every method x stride, tuned on val, scored on test
RESULTS_FILE = "results.json"


def training_command(cfg: DictConfig) -> list[str]:
    """``qdtrack-train -m`` over the grid, one stable folder per job (named by its overrides)."""
    grid = [f"{key}={','.join(str(v) for v in values)}" for key, values in cfg.grid.items()]
    return [
        sys.executable,
        "-m",
        "qdtrack_pl.cli.train",
        "-m",
        f"experiment={cfg.experiment}",
        f"hydra.sweep.dir={Path(cfg.out_dir) / RUNS_DIR}",
        "hydra.sweep.subdir=${hydra.job.override_dirname}",
        "hydra.job.config.override_dirname.exclude_keys=[experiment,paths.data_dir]",
        f"paths.data_dir={cfg.paths.data_dir}",  # one generated dataset for every job
        *cfg.train_overrides,
        *grid,
    ]


def train_grid(cfg: DictConfig) -> None:
    """Run the training grid (sequential: Hydra's basic launcher runs one job after another)."""
    command = training_command(cfg)
    log.info("training grid: %s", " ".join(command))
    subprocess.run(command, check=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})


def job_settings(job_dir: Path, keys: list[str]) -> dict[str, Any]:
    """The grid values a job ran with, read back from its saved overrides."""
    values = dict(o.split("=", 1) for o in Run(job_dir).overrides)
    return {key: _parse(values[key]) for key in keys if key in values}


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def finished_jobs(cfg: DictConfig) -> list[Path]:
    """The grid's job folders whose training finished (metrics.json written), in name order."""
    runs = Path(cfg.out_dir) / RUNS_DIR
    keys = list(cfg.grid)
    wanted = {json.dumps(p, sort_keys=True) for p in _grid_settings(cfg)}
    jobs = []
    for job in sorted(runs.glob("*/")) if runs.is_dir() else []:
        if (job / METRICS_FILE).is_file() and Run(job).overrides_file.is_file():
            if json.dumps(job_settings(job, keys), sort_keys=True) in wanted:
                jobs.append(job)
    return jobs


def _grid_settings(cfg: DictConfig) -> list[dict[str, Any]]:
    grid = OmegaConf.to_container(cfg.grid, resolve=True)
    assert isinstance(grid, dict)
    return grid_points({str(k): list(v) for k, v in grid.items()})


def scoring_settings(cfg: DictConfig) -> dict[str, Any]:
    """What a job's scores depend on besides its weights (a change re-scores every job)."""
    keys = ("methods", "sweep", "shared", "strides", "tune_split", "report_split", "tune_metric")
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    return {k: values[k] for k in (*keys, "protocol")}


def settings_digest(cfg: DictConfig) -> str:
    return hashlib.sha1(json.dumps(scoring_settings(cfg), sort_keys=True).encode()).hexdigest()[:12]


def saved_scores(cfg: DictConfig, job_dir: Path) -> dict[str, Any] | None:
    """The job's scores if they were computed under the current settings, else None."""
    path = job_dir / SCORES_FILE
    if path.is_file():
        saved: dict[str, Any] = json.loads(path.read_text())
        if saved.get("settings_digest") == settings_digest(cfg):
            return saved
    return None


def score_job(cfg: DictConfig, job_dir: Path) -> dict[str, Any]:
    """Every method at every stride for one trained job, tuned on val and scored on test."""
    saved = saved_scores(cfg, job_dir)
    if saved is not None:
        return saved
    settings, digest, path = scoring_settings(cfg), settings_digest(cfg), job_dir / SCORES_FILE
    datamodule = build_datamodule(Run(job_dir).config())
    splits = {}
    for split in (cfg.tune_split, cfg.report_split):
        splits[split] = (datamodule.eval_index(split), cached_detections(job_dir, split))
    scores: dict[str, dict[str, Any]] = {}
    for name, method in settings["methods"].items():
        for stride in cfg.strides:
            log.info("%s: %s at stride %d", job_dir.name, name, stride)
            scores.setdefault(name, {})[str(stride)] = tune_and_test(
                method,
                settings["sweep"],
                settings["shared"],
                int(stride),
                splits[cfg.tune_split],
                splits[cfg.report_split],
                cfg.tune_metric,
                cfg.protocol,
            )
    result = {
        "job": job_dir.name,
        "training": job_settings(job_dir, list(cfg.grid)),
        "settings_digest": digest,
        "scores": scores,
    }
    write_json_atomic(path, result)
    return result


def _init_scoring_worker() -> None:
    """One thread per worker (the workers share the cores); logs to the worker's stderr."""
    torch.set_num_threads(1)
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(processName)s][%(levelname)s] - %(message)s"
    )


def usable_cores() -> int:
    """The CPU cores this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def score_jobs(cfg: DictConfig, jobs: list[Path], workers: int) -> list[dict[str, Any]]:
    """``score_job`` for every job, in job order. With ``workers > 1`` the detections are first
    cached here, one job after another on every core (the network's pass is multithreaded), and
    then that many jobs are tracked and scored at a time in fresh single-threaded processes
    (tracking and TrackEval are single-threaded, so they scale with the cores)."""
    if workers <= 1 or len(jobs) <= 1:
        return [score_job(cfg, job) for job in jobs]
    for job in jobs:
        if saved_scores(cfg, job) is None:
            for split in (cfg.tune_split, cfg.report_split):
                ensure_cached(job, split)
    # the workers have no Hydra runtime: hand them the config with its ${hydra:...} values resolved
    resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)),
        mp_context=multiprocessing.get_context("spawn"),  # no forked OpenMP state
        initializer=_init_scoring_worker,
    ) as pool:
        return list(pool.map(score_job, [resolved] * len(jobs), jobs))


def run_ablation(cfg: DictConfig, train: bool = True) -> dict[str, Any]:
    """All steps; returns (and writes) ``results.json``."""
    if train:
        train_grid(cfg)
    jobs = finished_jobs(cfg)
    expected = len(_grid_settings(cfg))
    if len(jobs) < expected:
        log.warning("only %d of the %d training jobs have finished", len(jobs), expected)
    workers = cfg.score_workers if cfg.score_workers is not None else usable_cores()
    runs = score_jobs(cfg, jobs, int(workers))
    results = {
        "settings": scoring_settings(cfg),
        "grid": OmegaConf.to_container(cfg.grid, resolve=True),
        "reference": OmegaConf.to_container(cfg.reference, resolve=True),
        "runs": runs,
    }
    write_json_atomic(Path(cfg.out_dir) / RESULTS_FILE, results)
    return results


def training_label(training: Mapping[str, Any]) -> str:
    """``quasi_dense + aux`` style name of a training setting, seed left out."""
    mode = training.get("model.model.sampler.mode", "quasi_dense")
    aux = float(training.get("model.model.aux_loss_weight", 1.0)) > 0
    return f"{mode} {'+' if aux else '-'} aux"
