"""``make bench``: run the benchmarks, write one JSON file and print the headline table.

    python -m benchmarks.run [--quick] [--output bench/results.json] [--only NAME ...] [--threads N]

``--quick`` shrinks repeats and steps so every code path runs in a minute or two (tests use it);
the full run is what the README quotes. ``--threads`` sets torch's CPU threads for the model
benchmarks (the tracker always runs on one); on a shared machine fewer threads than cores avoid
the oversubscription that multiplies CPU timings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchmarks import data_loading, evaluation, inference, memory, tracker_latency, training
from benchmarks.common import machine_info
from benchmarks.report import print_table
from benchmarks.workloads import SMALL

SCHEMA_VERSION = 1
DEFAULT_OUTPUT = Path("bench/results.json")
Benchmark = Callable[[bool, dict[str, Any]], dict[str, Any]]


def _train_pairs_per_s(quick: bool, done: dict[str, Any]) -> float:
    """The small workload's CPU training throughput: from this run, or measured now."""
    if "training" in done:
        return done["training"]["workloads"][SMALL.name]["cpu_fp32"]["pairs_per_s"]
    return training.cpu_probe(SMALL, quick)["pairs_per_s"]


# In running order: data_loading reuses the training benchmark's CPU measurement.
BENCHMARKS: dict[str, Benchmark] = {
    "tracker_latency": lambda quick, done: tracker_latency.run(quick),
    "training": lambda quick, done: training.run(quick),
    "inference": lambda quick, done: inference.run(quick),
    "data_loading": lambda quick, done: data_loading.run(quick, _train_pairs_per_s(quick, done)),
    "evaluation": lambda quick, done: evaluation.run(quick),
    "memory": lambda quick, done: memory.run(),
}


def run_benchmarks(names: list[str], quick: bool) -> dict[str, Any]:
    """Run ``names`` in the registry's order; each block records its own wall time."""
    done: dict[str, Any] = {}
    for name in BENCHMARKS:
        if name not in names:
            continue
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        done[name] = BENCHMARKS[name](quick, done)
        done[name]["wall_s"] = time.perf_counter() - start
    return done


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="qdtrack-pl benchmarks (issue 7)")
    parser.add_argument("--quick", action="store_true", help="few repeats: check, not measure")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON path")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    names = args.only or list(BENCHMARKS)
    started = datetime.now(timezone.utc)
    start = time.perf_counter()
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "command": " ".join(
            ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
        ),
        "mode": "quick" if args.quick else "full",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    results["benchmarks"] = run_benchmarks(names, args.quick)
    results["wall_s"] = time.perf_counter() - start
    results["load_average_1m_at_end"] = os.getloadavg()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.output} in {results['wall_s']:.0f} s")


if __name__ == "__main__":
    main()
