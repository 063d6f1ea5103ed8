"""Training throughput (key/reference pairs per second) of one optimiser step.

A step is what ``QDTrackModule.training_step`` plus Lightning's automatic optimisation do:
``forward_train``, the sum of the losses, ``backward`` and the configured optimiser's ``step``. No
value is read back to the host inside the timed loop. On CPU both workloads run in fp32, each in a
fresh process that also records the step's peak memory (``benchmarks.train_probe``); on a GPU each
workload also runs with AMP (bf16, fp16 with a gradient scaler) and channels_last, and every option
reports its speed-up over fp32 on the same GPU.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings
from contextlib import nullcontext
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig

from benchmarks.common import (
    REPO_ROOT,
    SKIPPED_NO_CUDA,
    cuda_available,
    summarize,
    time_repeats,
)
from benchmarks.workloads import (
    WORKLOADS,
    Workload,
    build_model,
    build_optimizer,
    load_config,
    training_batches,
)
from qdtrack_pl.data.batch import PairBatch
from qdtrack_pl.models.qdtrack import QDTrackModel


class Params(NamedTuple):
    warmup: int
    steps: int


class Variant(NamedTuple):
    """One way of running the step on a GPU."""

    name: str
    amp_dtype: torch.dtype | None
    channels_last: bool


CPU_PARAMS = {
    "small@320x192": {True: Params(1, 2), False: Params(2, 6)},  # keyed by quick
    "r50@1088x608": {True: Params(1, 1), False: Params(1, 2)},
}
GPU_PARAMS = {True: Params(2, 3), False: Params(3, 10)}
GPU_VARIANTS = (
    Variant("fp32", None, False),
    Variant("channels_last", None, True),
    Variant("amp_bf16", torch.bfloat16, False),
    Variant("amp_fp16", torch.float16, False),
    Variant("amp_bf16+channels_last", torch.bfloat16, True),
)


class TrainStep:
    """One optimiser step on a batch; AMP and the memory format are fixed at construction."""

    def __init__(
        self,
        model: QDTrackModel,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.model = model.train()
        self.optimizer = optimizer
        self.device = device
        self.amp_dtype = amp_dtype
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        self.scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None

    def __call__(self, batch: PairBatch) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )
        with autocast:
            loss = torch.stack(list(self.model.forward_train(batch).values())).sum()
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()


def to_channels_last(batch: PairBatch) -> PairBatch:
    return batch._replace(
        key_images=batch.key_images.contiguous(memory_format=torch.channels_last),
        ref_images=batch.ref_images.contiguous(memory_format=torch.channels_last),
    )


def throughput(
    step: TrainStep, batches: list[PairBatch], params: Params, device: torch.device
) -> dict[str, Any]:
    """Pairs per second of ``step``, one fresh batch per call (warm-up calls included)."""
    feed = iter(batches)
    seconds = time_repeats(lambda: step(next(feed)), params.warmup, params.steps, device)
    timing = summarize(seconds)
    pairs = len(batches[0])
    return {
        "batch_size": pairs,
        "image_size": list(batches[0].key_images.shape[-2:][::-1]),  # width, height (padded)
        "warmup_steps": params.warmup,
        "step": timing,
        "pairs_per_s": pairs / (timing["median_ms"] / 1e3),
    }


def measure_variant(
    cfg: DictConfig,
    model: QDTrackModel,
    batches: list[PairBatch],
    params: Params,
    variant: Variant,
) -> dict[str, Any]:
    """GPU throughput of a copy of ``model`` (so every variant starts from the same weights)."""
    device = torch.device("cuda")
    model = copy.deepcopy(model).to(device)
    if variant.channels_last:
        model = model.to(memory_format=torch.channels_last)
        batches = [to_channels_last(b) for b in batches]
    step = TrainStep(model, build_optimizer(cfg, model), device, variant.amp_dtype)
    return throughput(step, batches, params, device)


def probe(workload: Workload, device_type: str, params: Params) -> dict[str, Any]:
    """Throughput and peak memory of fp32 steps in a fresh process (``benchmarks.train_probe``):
    on CPU nothing of this process (allocator high-water marks, thread pools) leaks in."""
    command = [sys.executable, "-m", "benchmarks.train_probe", workload.name, device_type]
    command += [str(params.warmup), str(params.steps), "--threads", str(torch.get_num_threads())]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(
            f"training probe of {workload.name} on {device_type} failed:\n"
            + completed.stderr[-2000:]
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def count_syncs(step: TrainStep, batch: PairBatch) -> int:
    """Host-device synchronisations in one step, as CUDA's sync debug mode reports them."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def gpu_block(workload: Workload, quick: bool) -> dict[str, Any]:
    """Every GPU variant of one workload with its speed-up over fp32."""
    device = torch.device("cuda")
    cfg = load_config(workload)
    model = build_model(cfg)
    params = GPU_PARAMS[quick]
    batches = training_batches(cfg, workload, device, params.warmup + params.steps)
    variants = {v.name: measure_variant(cfg, model, batches, params, v) for v in GPU_VARIANTS}
    base = variants["fp32"]["pairs_per_s"]
    for result in variants.values():
        result["speedup_vs_fp32"] = result["pairs_per_s"] / base
    fresh = copy.deepcopy(model).to(device)
    step = TrainStep(fresh, build_optimizer(cfg, fresh), device)
    step(batches[0])  # the first step also creates the optimiser state
    return {
        "device": torch.cuda.get_device_name(device),
        "variants": variants,
        "host_device_syncs_per_step_fp32": count_syncs(step, batches[1]),
    }


def cpu_probe(workload: Workload, quick: bool) -> dict[str, Any]:
    """fp32 on CPU with all torch threads, in a fresh process; includes the step's peak memory."""
    return probe(workload, "cpu", CPU_PARAMS[workload.name][quick])


def workload_block(workload: Workload, quick: bool) -> dict[str, Any]:
    return {
        "config": " ".join(workload.overrides),
        "data": "synth train pairs" if workload.synth_pairs else "generated MOT17-sized pairs",
        "cpu_fp32": cpu_probe(workload, quick),
        "gpu": gpu_block(workload, quick) if cuda_available() else SKIPPED_NO_CUDA,
    }


def run(quick: bool) -> dict[str, Any]:
    """Every workload on CPU (fp32), and on a GPU with each option when one is present."""
    return {
        "cpu_threads": torch.get_num_threads(),
        "workloads": {w.name: workload_block(w, quick) for w in WORKLOADS},
    }
