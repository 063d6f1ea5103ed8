"""Child process of the training and memory benchmarks: fp32 steps of one workload.

    python -m benchmarks.train_probe <workload> <cpu|cuda> <warmup> <steps> [--threads N]
                                     [--variant NAME] [--memory off|on]

prints one JSON line.

CPU timing (``--variant``, default ``on``): that variant of ``benchmarks.switches`` only, in this
fresh process, built as a training run builds it (the allocator switch applied to the process by
the model, or glibc's defaults left untouched); ``warmup`` untimed steps (the tuned heap stops
faulting after its first few steps), then ``steps`` timed steps, each with its minor page faults.
``benchmarks.training`` runs one such process per variant and round (``switches.alternating``).

``--memory off|on``: only that variant, ``warmup + steps`` steps in a row in this fresh process,
and the resident set's high-water mark (``VmHWM``) over them minus the resident set just before.
The mark is reset right before the steps (``/proc/self/clear_refs``); where the kernel refuses, it
counts from the start of this fresh process (``ru_maxrss`` would not do: it survives ``exec``).
On a GPU: the default configuration, ``torch.cuda.max_memory_allocated``. Two steps or more
include the optimiser state.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import switches
from benchmarks.training import Params, TrainStep, throughput
from benchmarks.workloads import (
    SEED,
    WORKLOADS,
    build_model,
    build_optimizer,
    load_config,
    training_batches,
    workload_named,
)
from qdtrack_pl import runtime

MIB = 2**20  # bytes


def _status_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> bool:
    """Start a new high-water mark at the current resident set (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# every CPU measurement runs on this device
model_device = torch.device("cpu")


def _variant_step(workload_name: str, variant_name: str, count: int) -> tuple[TrainStep, list]:
    """The variant's model (which applies its allocator setting) and optimiser, and ``count``
    batches (seeded, so every process and variant gets the same ones)."""
    workload = workload_named(workload_name)
    cfg = switches.configure(load_config(workload), switches.variant_named(variant_name))
    model = build_model(cfg)
    torch.manual_seed(SEED)
    batches = training_batches(cfg, workload, model_device, count)
    return TrainStep(model, build_optimizer(cfg, model, len(batches[0])), model_device), batches


def measure_cpu(workload_name: str, params: Params, variant_name: str) -> dict[str, Any]:
    """Seconds and minor page faults of each timed step of one variant, after the warm-up."""
    step, batches = _variant_step(workload_name, variant_name, params.warmup + params.steps)
    for batch in batches[: params.warmup]:
        step(batch)
    seconds, faults = [], []
    for batch in batches[params.warmup :]:
        before, start = switches.minor_faults(), time.perf_counter()
        step(batch)
        seconds.append(time.perf_counter() - start)
        faults.append(switches.minor_faults() - before)
    return {
        "variant": variant_name,
        "allocator_tuned": runtime.is_tuned(),
        "batch_size": len(batches[0]),
        "image_size": list(batches[0].key_images.shape[-2:][::-1]),  # width, height (padded)
        "lr": step.optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "faults": faults,
        "losses_finite": step.losses_finite(),
        "loss_per_step": step.loss_log(),
    }


def measure_cpu_memory(workload_name: str, params: Params, variant_name: str) -> dict[str, Any]:
    """Peak resident set of ``warmup + steps`` steps of one variant, in this fresh process."""
    count = params.warmup + params.steps
    step, batches = _variant_step(workload_name, variant_name, count)
    peak_reset = _reset_peak_rss()
    before = _status_mib("VmRSS")
    for batch in batches:
        step(batch)
    peak = _status_mib("VmHWM")
    return {
        "variant": variant_name,
        "rss_before_mib": before,
        "peak_rss_mib": peak,
        "peak_reset": peak_reset,
        "step_peak_mib": peak - before,
        "rss_after_mib": _status_mib("VmRSS"),
        "steps": count,
        "batch_size": len(batches[0]),
        "losses_finite": step.losses_finite(),
    }


def measure_cuda(workload_name: str, params: Params) -> dict[str, Any]:
    """Throughput (``training.throughput``'s figures) plus a ``memory`` block, default config."""
    workload = workload_named(workload_name)
    device = torch.device("cuda")
    cfg = load_config(workload)
    model = build_model(cfg).to(device)
    batches = training_batches(cfg, workload, device, params.warmup + params.steps)
    step = TrainStep(model, build_optimizer(cfg, model, len(batches[0])), device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device) / MIB
    result = throughput(step, batches, params, device)
    peak = torch.cuda.max_memory_allocated(device) / MIB
    memory = {
        "allocated_before_mib": before,
        "peak_allocated_mib": peak,
        "step_peak_mib": peak - before,
        "steps": params.warmup + params.steps,
        "batch_size": len(batches[0]),
    }
    return result | {"memory": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description="Time one workload's training steps")
    parser.add_argument("workload", choices=[w.name for w in WORKLOADS])
    parser.add_argument("device", choices=["cpu", "cuda"])
    parser.add_argument("warmup", type=int)
    parser.add_argument("steps", type=int)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--variant", default="on", help="CPU: the switch variant to time")
    parser.add_argument("--memory", choices=["off", "on"], help="CPU: peak memory of one variant")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    params = Params(args.warmup, args.steps)
    if args.device == "cuda":
        result = measure_cuda(args.workload, params)
    elif args.memory is not None:
        result = measure_cpu_memory(args.workload, params, args.memory)
    else:
        result = measure_cpu(args.workload, params, args.variant)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
