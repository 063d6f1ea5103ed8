"""Child process of the training benchmark: fp32 steps of one workload, timed, with peak memory.

    python -m benchmarks.train_probe <workload> <cpu|cuda> <warmup> <steps> [--threads N]

prints one JSON line. Memory on CPU is the resident set: its high-water mark (``VmHWM``) over all
steps minus the resident set just before them (model, optimiser and batches already built). The
mark is reset right before the steps (``/proc/self/clear_refs``); where the kernel refuses, it
counts from the start of this fresh process (``ru_maxrss`` would not do: it survives ``exec``, so
a child would inherit its parent's peak). On a GPU: ``torch.cuda.max_memory_allocated``. Two steps
or more include the optimiser state, which appears at the end of the first.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.training import Params, TrainStep, throughput
from benchmarks.workloads import (
    WORKLOADS,
    build_model,
    build_optimizer,
    load_config,
    training_batches,
)

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


def measure(workload_name: str, device_type: str, params: Params) -> dict[str, Any]:
    """Throughput (``training.throughput``'s figures) plus a ``memory`` block."""
    workload = next(w for w in WORKLOADS if w.name == workload_name)
    device = torch.device(device_type)
    cfg = load_config(workload)
    model = build_model(cfg).to(device)
    step = TrainStep(model, build_optimizer(cfg, model), device)
    batches = training_batches(cfg, workload, device, params.warmup + params.steps)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device) / MIB
        result = throughput(step, batches, params, device)
        peak = torch.cuda.max_memory_allocated(device) / MIB
        memory = {"allocated_before_mib": before, "peak_allocated_mib": peak}
    else:
        peak_reset = _reset_peak_rss()
        before = _status_mib("VmRSS")
        result = throughput(step, batches, params, device)
        peak = _status_mib("VmHWM")
        memory = {"rss_before_mib": before, "peak_rss_mib": peak, "peak_reset": peak_reset}
    memory |= {
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
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.workload, args.device, Params(args.warmup, args.steps))))


if __name__ == "__main__":
    main()
