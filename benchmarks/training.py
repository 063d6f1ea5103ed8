"""Training throughput (key/reference pairs per second) of one optimiser step.

A step is what ``QDTrackModule.training_step`` plus Lightning's automatic optimisation do:
``forward_train``, the sum of the losses, ``backward`` and the configured optimiser's ``step``,
its lr scaled to the step's batch as ``QDTrackModule`` scales it (``auto_scale_lr``). No value is
read back to the host inside the timed loop; the losses of every step are kept and checked for
NaN/inf afterwards (``losses_finite`` in every row).

On CPU the speed switches of issue 17 (``benchmarks.switches``) are timed one variant per fresh
process (``benchmarks.train_probe``), the variants taking turns round by round: ``off`` (the code
before the issue) against ``on`` (the defaults) and, in the full run, ``on`` without each switch
in turn.
Peak memory is the memory benchmark's (a fresh process per variant). On a GPU each workload also
runs with AMP (bf16, fp16 with a gradient scaler) and channels_last, every option with its speed-up
over fp32 on the same GPU (default switches: the CPU-only ones do nothing there).
"""

from __future__ import annotations

import copy
import warnings
from contextlib import nullcontext
from typing import Any, NamedTuple

import torch
from omegaconf import DictConfig
from torch import Tensor

from benchmarks import switches
from benchmarks.common import (
    SKIPPED_NO_CUDA,
    cuda_available,
    run_child,
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
    warmup: int  # untimed steps per process (the first ones also measure peak memory)
    steps: int  # timed steps per process
    ablation: bool = False  # CPU: also time "on" without each switch
    rounds: int = 1  # CPU: fresh processes per variant, taking turns


# Warm-up: a tuned heap faults on its first two or three steps (docs/performance.md).
CPU_PARAMS = {
    "small@320x192": {True: Params(1, 1), False: Params(4, 4, ablation=True, rounds=2)},
    "r50@1088x608": {True: Params(1, 1), False: Params(3, 2, ablation=True)},
}  # keyed by quick
GPU_PARAMS = {True: Params(2, 3), False: Params(3, 10)}


class Variant(NamedTuple):
    """One way of running the step on a GPU."""

    name: str
    amp_dtype: torch.dtype | None
    channels_last: bool


GPU_VARIANTS = (
    Variant("fp32", None, False),
    Variant("channels_last", None, True),
    Variant("amp_bf16", torch.bfloat16, False),
    Variant("amp_fp16", torch.float16, False),
    Variant("amp_bf16+channels_last", torch.bfloat16, True),
)


class TrainStep:
    """One optimiser step on a batch; AMP and the memory format are fixed at construction. The
    loss terms of every step are kept (detached, on the device) for :meth:`losses_finite`."""

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
        self.history: list[dict[str, Tensor]] = []

    def __call__(self, batch: PairBatch) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else nullcontext()
        )
        with autocast:
            terms = self.model.forward_train(batch)
            loss = torch.stack(list(terms.values())).sum()
        self.history.append({k: v.detach() for k, v in terms.items()})
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def losses_finite(self) -> bool:
        """Every loss term of every step so far is finite (one host read, after the timing)."""
        if not self.history:
            return True
        values = torch.stack([torch.stack(list(h.values())) for h in self.history])
        return bool(torch.isfinite(values).all())

    def loss_log(self) -> list[float]:
        """Total loss of every step so far."""
        return [float(torch.stack(list(h.values())).sum()) for h in self.history]


def to_channels_last(batch: PairBatch) -> PairBatch:
    # not ``_replace``: PairBatch redefines ``__len__`` (the batch size), which NamedTuple's
    # ``_make`` uses as its field count
    return PairBatch(
        batch.key_images.contiguous(memory_format=torch.channels_last),
        batch.ref_images.contiguous(memory_format=torch.channels_last),
        batch.key_targets,
        batch.ref_targets,
        batch.skipped_images,
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
        "losses_finite": step.losses_finite(),
        "loss_per_step": step.loss_log(),
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
        # the detector's own switch lays GPU weights out NCHW at every move: hand it the layout
        model.detector.channels_last = False
        model = model.to(memory_format=torch.channels_last)
        batches = [to_channels_last(b) for b in batches]
    optimizer = build_optimizer(cfg, model, len(batches[0]))
    step = TrainStep(model, optimizer, device, variant.amp_dtype)
    return throughput(step, batches, params, device)


def probe(
    workload: Workload,
    device_type: str,
    params: Params,
    memory: str | None = None,
    variant: str = "on",
) -> dict[str, Any]:
    """fp32 steps in a fresh process (``benchmarks.train_probe``), so that nothing of this
    process (allocator state, high-water marks, thread pools) leaks in: one CPU switch variant's
    step timings, or with ``memory`` ("off" / "on") the peak memory of that variant; on a GPU
    both."""
    arguments = [workload.name, device_type, str(params.warmup), str(params.steps)]
    arguments += ["--threads", str(torch.get_num_threads()), "--variant", variant]
    if memory is not None:
        arguments += ["--memory", memory]
    return run_child("benchmarks.train_probe", arguments, f"{workload.name} on {device_type}")


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
    step = TrainStep(fresh, build_optimizer(cfg, fresh, len(batches[0])), device)
    step(batches[0])  # the first step also creates the optimiser state
    return {
        "device": torch.cuda.get_device_name(device),
        "variants": variants,
        "losses_finite": all(v["losses_finite"] for v in variants.values()),
        "host_device_syncs_per_step_fp32": count_syncs(step, batches[1]),
    }


def cpu_probe(workload: Workload, quick: bool) -> dict[str, Any]:
    """fp32 on CPU with all torch threads: every switch variant in fresh processes, taking turns
    (``switches.alternating``); per variant its pooled step timings, and the ratios."""
    params = CPU_PARAMS[workload.name][quick]
    chosen = switches.variants(params.ablation)
    runs = switches.alternating(
        lambda v: probe(workload, "cpu", params, variant=v.name), chosen, params.rounds
    )
    return combine_cpu_runs(runs, params)


def combine_cpu_runs(runs: dict[str, list[dict[str, Any]]], params: Params) -> dict[str, Any]:
    """The training block of the CPU switch variants from their probe runs."""
    first = runs["on"][0]
    result: dict[str, Any] = {
        "batch_size": first["batch_size"],
        "image_size": first["image_size"],
        "warmup_steps": params.warmup,
        "steps_per_process": params.steps,
        "rounds": params.rounds,
        "lr": first["lr"],
        "variants": {},
    }
    medians = {}
    for name, variant_runs in runs.items():
        pool = switches.pooled(variant_runs)
        medians[name] = pool["timing"]["median_ms"]
        result["variants"][name] = {
            "switches": switches.variant_named(name).settings,
            "allocator_tuned": all(r["allocator_tuned"] for r in variant_runs),
            "step": pool["timing"],
            "pairs_per_s": first["batch_size"] / (pool["timing"]["median_ms"] / 1e3),
            "minor_faults_per_step": pool["minor_faults_per_call"],
            "losses_finite": all(r["losses_finite"] for r in variant_runs),
            "loss_per_step": [r["loss_per_step"] for r in variant_runs],
        }
    result |= switches.ratio_block(medians)
    result["losses_finite"] = all(v["losses_finite"] for v in result["variants"].values())
    # the headline figures of the default configuration
    result["step"] = result["variants"]["on"]["step"]
    result["pairs_per_s"] = result["variants"]["on"]["pairs_per_s"]
    return result


def workload_block(workload: Workload, quick: bool) -> dict[str, Any]:
    return {
        "config": " ".join(workload.overrides),
        "data": "synth train pairs" if workload.synth_pairs else "generated MOT17-sized pairs",
        "cpu_fp32": cpu_probe(workload, quick),
        "gpu": gpu_block(workload, quick) if cuda_available() else SKIPPED_NO_CUDA,
    }


def run(quick: bool) -> dict[str, Any]:
    """Every workload on CPU (fp32, switches off/on), and on a GPU with each option."""
    return {
        "cpu_threads": torch.get_num_threads(),
        "workloads": {w.name: workload_block(w, quick) for w in WORKLOADS},
    }
