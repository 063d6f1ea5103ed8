"""Peak memory of a training step, each workload in a fresh process.

On CPU, allocator statistics miss what torch frees back to the system, and a long-lived process
carries every earlier benchmark's high-water mark, so each workload runs in its own subprocess
(``python -m benchmarks.memory <workload>``) that reports its resident-set high-water mark after
its steps and the resident set just before the first (model, optimiser and batches already
built): the difference is what the step itself needs. On a GPU the same subprocess reports
``torch.cuda.max_memory_allocated`` of the steps.
"""

from __future__ import annotations

import argparse
import json
import resource
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
MIB = 2**20


def current_rss_mib() -> float:
    """Resident set now (``ru_maxrss`` only knows the peak)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / MIB


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB  # KiB on Linux


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
        before = current_rss_mib()
        for batch in batches:
            step(batch)
        peak = peak_rss_mib()
        result |= {"rss_before_mib": before, "peak_rss_mib": peak, "step_peak_mib": peak - before}
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
