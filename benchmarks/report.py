"""The headline figures of a results file as a table: rich for the terminal, Markdown for README.

``python -m benchmarks.report [bench/results.json]`` prints the Markdown version of a saved run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

Row = tuple[str, str, str]  # benchmark, figure, value


def _skipped(block: Any) -> str | None:
    return (
        f"skipped: {block['skipped']}" if isinstance(block, dict) and "skipped" in block else None
    )


def _tracker_rows(block: dict[str, Any]) -> list[Row]:
    rows = []
    for count, entry in block["counts"].items():
        rows.append(
            (
                "tracker",
                f"update latency, {count} detections (1 thread)",
                f"{entry['ours']['median_ms']:.3f} ms (p90 {entry['ours']['p90_ms']:.3f}) vs "
                f"reference {entry['reference']['median_ms']:.3f} ms = {entry['speedup']:.1f}x",
            )
        )
    target = block["target"]
    verdict = "PASS" if target["passed"] else "FAIL"
    rows.append(
        (
            "tracker",
            f"target at {target['detections']}: >= {target['min_speedup']:.0f}x and "
            f"< {target['max_median_ms']:g} ms",
            f"{verdict} ({target['speedup']:.1f}x, {target['median_ms']:.3f} ms)",
        )
    )
    dense = block.get("dense")
    if dense is not None:
        stream, wall, cpu = dense["stream"], dense["wall"], dense["cpu"]
        verdict = "PASS" if dense["passed"] else "FAIL"
        rows.append(
            (
                "tracker",
                f"dense stream: {stream['detections']} detections x {stream['timed_frames']} "
                f"frames, {stream['turnover']:.0%} turnover per frame",
                f"median {wall['median_ms']:.3f} ms, p90 {wall['p90_ms']:.3f} ms = "
                f"{wall['p90_over_median']:.2f}x ({verdict} <= {dense['target_p90_over_median']}x)"
                f"; p99 {wall['p99_ms']:.2f}, max {wall['max_ms']:.2f} ms (CPU time: p90 "
                f"{cpu['p90_over_median']:.2f}x, max {cpu['max_ms']:.2f} ms; "
                f"{dense['preempted_frames']} frames preempted)",
            )
        )
    return rows


def _finite(block: dict[str, Any]) -> str:
    return "losses finite" if block["losses_finite"] else "NON-FINITE LOSSES"


def _switch_rows(kind: str, name: str, block: dict[str, Any], unit: str) -> list[Row]:
    rows = []
    for switch, entry in block.get("per_switch", {}).items():
        rows.append(
            (
                kind,
                f"{name} CPU, {switch} alone (others on)",
                f"{entry['speedup']:.2f}x ({entry['off_ms']:.0f} -> {entry['on_ms']:.0f} {unit})",
            )
        )
    return rows


def _training_rows(block: dict[str, Any]) -> list[Row]:
    rows = []
    for name, entry in block["workloads"].items():
        cpu = entry["cpu_fp32"]
        rows.append(
            (
                "training",
                f"{name} CPU fp32, batch {cpu['batch_size']}, switches on vs off",
                f"{cpu['pairs_per_s']:.2f} pairs/s ({cpu['on_ms']:.0f} ms/step) vs "
                f"{cpu['off_ms']:.0f} ms/step = {cpu['speedup_on_vs_off']:.2f}x; {_finite(cpu)}",
            )
        )
        rows += _switch_rows("training", name, cpu, "ms/step")
        skipped = _skipped(entry["gpu"])
        if skipped:
            rows.append(("training", f"{name} GPU (fp32, AMP, channels_last)", skipped))
            continue
        for variant, result in entry["gpu"]["variants"].items():
            rows.append(
                (
                    "training",
                    f"{name} GPU {variant}, batch {result['batch_size']}",
                    f"{result['pairs_per_s']:.1f} pairs/s ({result['speedup_vs_fp32']:.2f}x fp32); "
                    f"{_finite(result)}",
                )
            )
    return rows


def _inference_rows(block: dict[str, Any]) -> list[Row]:
    rows = []
    for name, entry in block["workloads"].items():
        cpu = entry["cpu"]
        shares = " / ".join(f"{s} {v:.0%}" for s, v in cpu["stage_share"].items())
        rows.append(
            (
                "inference",
                f"{name} CPU, switches on vs off",
                f"{cpu['fps']:.2f} fps vs {cpu['variants']['off']['fps']:.2f} fps = "
                f"{cpu['speedup_on_vs_off']:.2f}x ({shares})",
            )
        )
        rows += _switch_rows("inference", name, cpu, "ms/frame")
        skipped = _skipped(entry["gpu"])
        if skipped:
            rows.append(("inference", f"{name} GPU", skipped))
            continue
        gpu = entry["gpu"]
        shares = " / ".join(f"{s} {v:.0%}" for s, v in gpu["stage_share"].items())
        rows.append(("inference", f"{name} GPU", f"{gpu['fps']:.2f} fps ({shares})"))
    return rows


def _data_rows(block: dict[str, Any]) -> list[Row]:
    verdict = "not the bottleneck" if block["not_bottleneck"] else "BOTTLENECK"
    return [
        (
            "data loading",
            f"synth pairs, batch {block['batch_size']}, per worker",
            f"{block['pairs_per_s_per_worker']:.1f} pairs/s vs training "
            f"{block['train_step_pairs_per_s']:.2f} pairs/s: {verdict}",
        )
    ]


def _evaluation_rows(block: dict[str, Any]) -> list[Row]:
    size = block["size"]
    return [
        (
            "evaluation",
            f"TrackEval, {size['sequences']} sequences, {size['frames']} frames, "
            f"{size['gt_boxes']} GT boxes",
            f"{block['seconds']:.1f} s",
        )
    ]


def _memory_rows(block: dict[str, Any]) -> list[Row]:
    rows = []
    for name, entry in block["workloads"].items():
        cpu = entry["cpu"]
        off, on = cpu["off"], cpu["on"]
        rows.append(
            (
                "memory",
                f"{name} training step, CPU, batch {on['batch_size']}, on (off)",
                f"+{on['step_peak_mib']:.0f} MiB, peak RSS {on['peak_rss_mib']:.0f} MiB "
                f"(+{off['step_peak_mib']:.0f} MiB, {off['peak_rss_mib']:.0f} MiB)",
            )
        )
        gpu = entry["gpu"]
        value = _skipped(gpu) or (
            f"batch {gpu['batch_size']}: {gpu['peak_allocated_mib']:.0f} MiB max allocated"
        )
        rows.append(("memory", f"{name} training step, GPU", value))
    return rows


ROWS = {
    "tracker_latency": _tracker_rows,
    "training": _training_rows,
    "inference": _inference_rows,
    "data_loading": _data_rows,
    "evaluation": _evaluation_rows,
    "memory": _memory_rows,
}


def rows(results: dict[str, Any]) -> list[Row]:
    return [row for name, block in results["benchmarks"].items() for row in ROWS[name](block)]


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=f"qdtrack-pl benchmarks ({results['mode']} mode)")
    for column in ("benchmark", "figure", "value"):
        table.add_column(column)
    for row in rows(results):
        table.add_row(*row)
    # a log file gets the width a terminal would: the figures are long
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"Measured with `{results['command']}` on {machine['cpu']} "
        f"({machine['usable_cores']} cores, torch {machine['torch']}, "
        f"GPU: {machine['gpu'] or 'none'}).",
        "",
        "| benchmark | figure | value |",
        "|---|---|---|",
    ]
    lines += [f"| {b} | {f} | {v} |" for b, f, v in rows(results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a results file as a Markdown table")
    parser.add_argument("results", nargs="?", default="bench/results.json", type=Path)
    args = parser.parse_args()
    print(markdown(json.loads(args.results.read_text())))


if __name__ == "__main__":
    main()
