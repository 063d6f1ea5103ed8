"""Training-pair loading throughput per DataLoader worker, against the training step's appetite.

The synth datamodule's own training loader (its pair sampling, augmentation at the training
resolution and collation) runs with one worker process, so the figure is pairs per second per
worker including inter-process transfer. The first batch (worker start-up) is not timed. Loading is
not the bottleneck when one worker alone delivers pairs faster than the CPU training step of the
same workload consumes them.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import torch

from benchmarks.common import cuda_available
from benchmarks.workloads import SMALL, load_config, synth_datamodule

WORKERS = 1


class Params(NamedTuple):
    batches: int  # timed batches after the first


QUICK = Params(batches=10)
FULL = Params(batches=60)


def run(quick: bool, train_pairs_per_s: float) -> dict[str, Any]:
    """``train_pairs_per_s``: the small workload's measured CPU training throughput."""
    params = QUICK if quick else FULL
    cfg = load_config(SMALL)
    datamodule = synth_datamodule(cfg, num_workers=WORKERS, pin_memory=cuda_available())
    loader = datamodule.train_dataloader()
    batches = iter(loader)
    next(batches)  # worker start-up
    pairs = 0
    start = time.perf_counter()
    for _ in range(params.batches):
        pairs += len(next(batches))
    seconds = time.perf_counter() - start
    per_worker = pairs / seconds / WORKERS
    configured = int(cfg.data.num_workers)
    return {
        "workload": SMALL.name,
        "batch_size": loader.batch_size,
        "workers_measured": WORKERS,
        "workers_configured": configured,
        "pin_memory": loader.pin_memory,
        "persistent_workers": datamodule.persistent_workers,
        "cpu_threads_main_process": torch.get_num_threads(),
        "pairs_measured": pairs,
        "pairs_per_s_per_worker": per_worker,
        "train_step_pairs_per_s": train_pairs_per_s,
        "headroom": per_worker / train_pairs_per_s,
        "not_bottleneck": per_worker > train_pairs_per_s,
    }
