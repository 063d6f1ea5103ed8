"""``results.json`` as tables and a plot: the mean and the spread (min-max) over seeds.

Two tables, both on the report split: the association methods on the paper's training
(quasi-dense sampling with the auxiliary loss), and the training variants under QDTrack's own
tracker; one plot of IDF1 against the stride, one line per method.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qdtrack_pl.ablation.runner import training_label

TABLE_METRICS = ("HOTA", "AssA", "IDF1", "IDSW")
TRACKER_OF_TRAINING_TABLE = "qdtrack"
TABLE_FILE = "results.md"
PLOT_FILE = "idf1_vs_stride.png"


def spread(values: Iterable[float]) -> dict[str, float]:
    array = np.asarray(list(values), np.float64)
    if not array.size:
        raise ValueError("a spread needs at least one value")
    return {
        "mean": float(array.mean()),
        "min": float(array.min()),
        "max": float(array.max()),
        "n": int(array.size),
    }


def summarise(
    results: Mapping[str, Any], split: str = "test"
) -> dict[str, dict[str, dict[str, dict[str, dict[str, float]]]]]:
    """training label -> method -> stride -> metric -> spread over the seeds."""
    pooled: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for run in results["runs"]:
        label = training_label(run["training"])
        for method, strides in run["scores"].items():
            for stride, scores in strides.items():
                for metric, value in scores[split].items():
                    pooled[(label, method, stride, metric)].append(value)
    summary: dict[str, Any] = {}
    for (label, method, stride, metric), values in sorted(pooled.items()):
        summary.setdefault(label, {}).setdefault(method, {}).setdefault(stride, {})[metric] = (
            spread(values)
        )
    return summary


def _cell(entry: Mapping[str, float], decimals: int) -> str:
    if entry["n"] == 1:
        return f"{entry['mean']:.{decimals}f}"
    return f"{entry['mean']:.{decimals}f} ({entry['min']:.{decimals}f}-{entry['max']:.{decimals}f})"


def _table(rows: list[tuple[str, str, Mapping[str, Mapping[str, float]]]], first: str) -> list[str]:
    lines = [
        f"| {first} | stride | " + " | ".join(TABLE_METRICS) + " |",
        "|---|---|" + "---|" * len(TABLE_METRICS),
    ]
    for name, stride, metrics in rows:
        cells = [_cell(metrics[m], 0 if m == "IDSW" else 1) for m in TABLE_METRICS]
        lines.append(f"| {name} | {stride} | " + " | ".join(cells) + " |")
    return lines


def markdown(summary: Mapping[str, Any], reference: str, split: str = "test") -> str:
    """The two tables; cells are ``mean (min-max)`` over the seeds."""
    lines = [
        f"Association methods, trained as `{reference}` ({split} split; mean (min-max) over "
        "seeds):",
        "",
    ]
    methods = summary.get(reference, {})
    lines += _table(
        [
            (m, s, v)
            for m, strides in methods.items()
            for s, v in sorted(strides.items(), key=lambda x: int(x[0]))
        ],
        "method",
    )
    lines += [
        "",
        f"Training variants, tracked with `{TRACKER_OF_TRAINING_TABLE}` ({split} split):",
        "",
    ]
    rows = []
    for label, by_method in summary.items():
        strides = by_method.get(TRACKER_OF_TRAINING_TABLE, {})
        rows += [(label, s, v) for s, v in sorted(strides.items(), key=lambda x: int(x[0]))]
    lines += _table(rows, "training")
    return "\n".join(lines) + "\n"


def plot(summary: Mapping[str, Any], reference: str, path: Path) -> None:
    """IDF1 against stride, one line per method (the reference training), error bars min-max;
    the other trainings' QDTrack tracker as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for label, by_method in summary.items():
        for method, strides in by_method.items():
            if label != reference and method != TRACKER_OF_TRAINING_TABLE:
                continue
            xs = sorted(int(s) for s in strides)
            entries = [strides[str(x)]["IDF1"] for x in xs]
            mean = np.array([e["mean"] for e in entries])
            errors = np.array(
                [[e["mean"] - e["min"] for e in entries], [e["max"] - e["mean"] for e in entries]]
            )
            name = method if label == reference else f"{method}, trained {label}"
            axes.errorbar(
                xs,
                mean,
                yerr=errors,
                marker="o",
                capsize=3,
                label=name,
                linestyle="-" if label == reference else "--",
            )
    axes.set_xlabel("frame stride (track every k-th frame)")
    axes.set_ylabel("IDF1 (test)")
    axes.set_xticks(
        sorted(
            {
                int(s)
                for by_method in summary.values()
                for strides in by_method.values()
                for s in strides
            }
        )
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(results: Mapping[str, Any], out_dir: Path, split: str = "test") -> str:
    """``results.md`` and ``idf1_vs_stride.png`` in ``out_dir``; returns the Markdown."""
    reference = training_label(results["reference"])
    summary = summarise(results, split)
    text = markdown(summary, reference, split)
    (out_dir / TABLE_FILE).write_text(text)
    plot(summary, reference, out_dir / PLOT_FILE)
    return text
