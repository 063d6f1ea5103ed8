"""Peak memory of a training step (fp32), per workload, each measured in a fresh process.

On CPU twice: with every speed switch off (the code before issue 17, glibc's malloc defaults) and
with the defaults (``on``: the allocator keeps its heap instead of returning it, which is the point
of the allocator switch and costs resident memory). Two steps each, so that the optimiser state is
included. On a GPU a fresh process runs two fp32 steps of the default configuration. See
``benchmarks.train_probe`` for how memory is read.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import SKIPPED_NO_CUDA, cuda_available
from benchmarks.training import Params, probe
from benchmarks.workloads import WORKLOADS

PROBE = Params(warmup=1, steps=1)  # the second step holds the optimiser state too


def run() -> dict[str, Any]:
    result: dict[str, Any] = {
        "method_cpu": "resident-set high-water mark over the steps minus the resident set "
        "before them, fresh process per variant",
        "method_gpu": "torch.cuda.max_memory_allocated over the steps, fresh process",
        "workloads": {},
    }
    for workload in WORKLOADS:
        cpu = {name: probe(workload, "cpu", PROBE, memory=name) for name in ("off", "on")}
        cpu["on_minus_off_peak_mib"] = cpu["on"]["peak_rss_mib"] - cpu["off"]["peak_rss_mib"]
        result["workloads"][workload.name] = {
            "cpu": cpu,
            "gpu": probe(workload, "cuda", PROBE)["memory"]
            if cuda_available()
            else SKIPPED_NO_CUDA,
        }
    return result
