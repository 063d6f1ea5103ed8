"""Timing, thread control and machine description shared by the benchmarks.

Timings are medians over repeats after a warm-up (the first calls pay for allocation and lazy
initialisation); GPU work is synchronised only when the device is CUDA, so CPU timings carry no
device-sync overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torchvision

REPO_ROOT = Path(__file__).resolve().parents[1]
SKIPPED_NO_CUDA = {"skipped": "no CUDA device"}


def cuda_available() -> bool:
    return torch.cuda.is_available()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so a timer reads the work, not the launch (CUDA only)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def num_threads(count: int) -> Iterator[None]:
    """Run a block with ``count`` intra-op threads, restoring the previous setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Stopwatch:
    """Accumulates seconds per named stage; synchronises ``device`` around each timed block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Median (the headline figure), 90th percentile, mean, min and max of repeated timings, in
    milliseconds."""
    ms = [s * 1e3 for s in seconds]
    return {
        "median_ms": statistics.median(ms),
        "p90_ms": percentile(ms, 90),
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "repeats": len(ms),
    }


def time_repeats(
    fn: Callable[[], Any], warmup: int, repeats: int, device: torch.device
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


def print_json_run(description: str | None, run: Callable[[bool], Any], quick_help: str) -> None:
    """The command line of a stand-alone benchmark: ``[--quick]``, then ``run(quick)`` printed as
    JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    print(json.dumps(run(parser.parse_args().quick), indent=1))


def run_child(module: str, arguments: list[str], what: str) -> dict[str, Any]:
    """``python -m module arguments`` in a fresh process from the repository root; its last
    stdout line, parsed as JSON."""
    command = [sys.executable, "-m", module, *arguments]
    completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{module} ({what}) failed:\n" + completed.stderr[-2000:])
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _cpu_model() -> str:
    """The CPU's marketing name (``platform.processor()`` is empty on most Linux systems; ARM
    kernels list no model name)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def machine_info() -> dict[str, Any]:
    """What the figures were measured on; the load average shows whether the machine was shared."""
    return {
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # kernels torch runs: AVX2 ...
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m_at_start": os.getloadavg()[0],  # above the core count: shared machine
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_available": cuda_available(),
        "gpu": torch.cuda.get_device_name(0) if cuda_available() else None,
    }
