"""Peak memory of a training step (fp32), per workload, each measured in a fresh process.

The CPU figures come from the training benchmark's own probe processes when it ran in the same
``benchmarks.run`` (one set of slow CPU steps serves both); otherwise two steps are probed here. On
a GPU a fresh process runs two fp32 steps. See ``benchmarks.train_probe`` for how memory is read.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import SKIPPED_NO_CUDA, cuda_available
from benchmarks.training import Params, probe
from benchmarks.workloads import WORKLOADS

PROBE = Params(warmup=1, steps=1)  # the second step holds the optimiser state too


def run(training: dict[str, Any] | None) -> dict[str, Any]:
    """``training``: this run's training block, if any."""
    result: dict[str, Any] = {
        "method_cpu": "resident-set high-water mark over the steps minus the resident set "
        "before them, fresh process",
        "method_gpu": "torch.cuda.max_memory_allocated over the steps, fresh process",
        "cpu_from": "training benchmark's probes" if training is not None else "own probes",
        "workloads": {},
    }
    for workload in WORKLOADS:
        cpu = (
            training["workloads"][workload.name]["cpu_fp32"]
            if training is not None
            else probe(workload, "cpu", PROBE)
        )
        result["workloads"][workload.name] = {
            "cpu": cpu["memory"],
            "gpu": probe(workload, "cuda", PROBE)["memory"]
            if cuda_available()
            else SKIPPED_NO_CUDA,
        }
    return result
