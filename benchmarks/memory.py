"""Peak memory of a training step, each workload in a fresh process.

On CPU, allocator statistics miss what torch takes from and gives back to the system, so the
figure is the process's resident set: its high-water mark (``VmHWM``) over the steps minus the
resident set just before them (model, optimiser and batches already built). The high-water mark is
reset right before the steps (``/proc/self/clear_refs``); where the kernel refuses, the mark counts
from the start of the process, which is why each workload runs in a fresh subprocess
(``python -m benchmarks.memory <workload>``; ``ru_maxrss`` would not do: it survives ``exec``). On a
GPU the subprocess reports ``torch.cuda.max_memory_allocated`` over the steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import REPO_ROOT, SKIPPED_NO_CUDA, cuda_available
from benchmarks.training import TrainStep
from benchmarks.workloads import (
    WORKLOADS,
    build_model,
    build_optimizer,
    load_config,
    training_batches,
)

# The optimiser's state appears at the end of the first step; the second shows the steady state.
STEPS = {True: 1, False: 2}  # keyed by quick
MIB = 2**20  # bytes


def _status_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its high-water mark) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> bool:
    """Start a new high-water mark at the current resident set (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def measure_in_this_process(workload_name: str, device_type: str, steps: int) -> dict[str, Any]:
    """The figures of one workload; meant to run in a fresh interpreter."""
    workload = next(w for w in WORKLOADS if w.name == workload_name)
    device = torch.device(device_type)
    cfg = load_config(workload)
    model = build_model(cfg).to(device)
    step = TrainStep(model, build_optimizer(cfg, model), device)
    batches = training_batches(cfg, workload, device, steps)
    result: dict[str, Any] = {"batch_size": len(batches[0]), "steps": steps}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for batch in batches:
            step(batch)
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        result |= {
            "allocated_before_mib": before / MIB,
            "peak_allocated_mib": peak / MIB,
            "step_peak_mib": (peak - before) / MIB,
        }
    else:
        peak_reset = reset_peak_rss()
        before = _status_mib("VmRSS")
        for batch in batches:
            step(batch)
        peak = _status_mib("VmHWM")
        result |= {
            "rss_before_mib": before,
            "peak_rss_mib": peak,
            "step_peak_mib": peak - before,
            "peak_reset_before_steps": peak_reset,
        }
    return result


def measure_in_subprocess(workload_name: str, device_type: str, steps: int) -> dict[str, Any]:
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks.memory", workload_name),
            *("--device", device_type, "--steps", str(steps)),
            *("--threads", str(torch.get_num_threads())),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"memory benchmark of {workload_name} on {device_type} failed:\n"
            + completed.stderr[-2000:]
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, Any]:
    """Every workload on CPU and, when present, on the GPU (``quick``: one step, which misses the
    optimiser state's share of the peak)."""
    steps = STEPS[quick]
    result: dict[str, Any] = {
        "method_cpu": "peak RSS minus RSS before the first step, fresh process",
        "method_gpu": "torch.cuda.max_memory_allocated over the steps, fresh process",
        "workloads": {},
    }
    for workload in WORKLOADS:
        result["workloads"][workload.name] = {
            "cpu": measure_in_subprocess(workload.name, "cpu", steps),
            "gpu": measure_in_subprocess(workload.name, "cuda", steps)
            if cuda_available()
            else SKIPPED_NO_CUDA,
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="Peak memory of one workload's training step")
    parser.add_argument("workload", choices=[w.name for w in WORKLOADS])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=STEPS[False])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(json.dumps(measure_in_this_process(args.workload, args.device, args.steps)))


if __name__ == "__main__":
    main()
