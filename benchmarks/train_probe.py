"""Child process of the training and memory benchmarks: fp32 steps of one workload.

    python -m benchmarks.train_probe <workload> <cpu|cuda> <warmup> <steps> [--threads N]
                                     [--ablation] [--memory off|on]

prints one JSON line.

CPU timing: every variant of ``benchmarks.switches`` (``off``, ``on``, and ``no_<switch>`` with
``--ablation``) gets its own model (same seed, same weights) and optimiser; after ``warmup``
steps each, ``steps`` rounds time every variant once per round, interleaved
(``switches.interleaved``).

``--memory off|on``: only that variant, ``warmup + steps`` steps in a row in this fresh process
(for ``off``: glibc's real malloc defaults), and the resident set's high-water mark (``VmHWM``)
over them minus the resident set just before. The mark is reset right before the steps
(``/proc/self/clear_refs``); where the kernel refuses, it counts from the start of this fresh
process (``ru_maxrss`` would not do: it survives ``exec``). On a GPU: the default configuration,
``torch.cuda.max_memory_allocated``. Two steps or more include the optimiser state.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from benchmarks import switches
from benchmarks.common import summarize
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


# every CPU measurement runs on this device
model_device = torch.device("cpu")


def measure_cpu(workload_name: str, params: Params) -> dict[str, Any]:
    """Every switch variant interleaved; ``switches.ratio_block`` figures plus per-variant ones."""
    workload = next(w for w in WORKLOADS if w.name == workload_name)
    cfg = load_config(workload)
    batches = training_batches(cfg, workload, model_device, params.warmup + params.steps)
    size = len(batches[0])
    variants = switches.variants(params.ablation)
    by_name = {v.name: v for v in variants}
    steps: dict[str, TrainStep] = {}
    for variant in variants:
        variant_cfg = switches.configure(cfg, variant)
        model = build_model(variant_cfg)
        optimizer = build_optimizer(variant_cfg, model, size)
        steps[variant.name] = TrainStep(model, optimizer, model_device)
    for name, step in steps.items():  # "off" first: its first step sees glibc's real defaults
        switches.activate(by_name[name])
        for i in range(params.warmup):
            step(batches[i])
    timed = switches.interleaved(
        {n: (lambda r, n=n: steps[n](batches[params.warmup + r])) for n in steps},
        by_name,
        params.steps,
    )
    result: dict[str, Any] = {
        "batch_size": size,
        "image_size": list(batches[0].key_images.shape[-2:][::-1]),  # width, height (padded)
        "warmup_steps": params.warmup,
        "rounds": params.steps,
        "lr": steps["on"].optimizer.param_groups[0]["lr"],
        "variants": {},
    }
    medians = {}
    for name, record in timed.items():
        timing = summarize(record["seconds"])
        medians[name] = timing["median_ms"]
        result["variants"][name] = {
            "switches": by_name[name].settings,
            "step": timing,
            "pairs_per_s": size / (timing["median_ms"] / 1e3),
            "minor_faults_per_step": statistics.median(record["faults"]),
            "losses_finite": steps[name].losses_finite(),
            "loss_per_step": steps[name].loss_log(),
        }
    result |= switches.ratio_block(medians)
    result["losses_finite"] = all(v["losses_finite"] for v in result["variants"].values())
    # the headline figures of the default configuration
    result["step"] = result["variants"]["on"]["step"]
    result["pairs_per_s"] = result["variants"]["on"]["pairs_per_s"]
    return result


def measure_cpu_memory(workload_name: str, params: Params, variant_name: str) -> dict[str, Any]:
    """Peak resident set of ``warmup + steps`` steps of one variant, in this fresh process."""
    workload = next(w for w in WORKLOADS if w.name == workload_name)
    cfg = load_config(workload)
    variant = next(v for v in switches.variants(False) if v.name == variant_name)
    count = params.warmup + params.steps
    variant_cfg = switches.configure(cfg, variant)
    model = build_model(variant_cfg)
    batches = training_batches(variant_cfg, workload, model_device, count)
    step = TrainStep(model, build_optimizer(variant_cfg, model, len(batches[0])), model_device)
    if variant.allocator:
        switches.activate(variant)
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
    workload = next(w for w in WORKLOADS if w.name == workload_name)
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
    parser.add_argument("--ablation", action="store_true", help="CPU: also each switch alone off")
    parser.add_argument("--memory", choices=["off", "on"], help="CPU: peak memory of one variant")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    params = Params(args.warmup, args.steps, args.ablation)
    if args.device == "cuda":
        result = measure_cuda(args.workload, params)
    elif args.memory is not None:
        result = measure_cpu_memory(args.workload, params, args.memory)
    else:
        result = measure_cpu(args.workload, params)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
