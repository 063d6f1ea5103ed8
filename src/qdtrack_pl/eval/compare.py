"""Trackers scored on the same detections, side by side: ``test/IDF1`` beside ``test_iou/IDF1``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SIDE_BY_SIDE_KEYS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def side_by_side(
    metrics: Mapping[str, float], stage: str, keys: Sequence[str] = SIDE_BY_SIDE_KEYS
) -> str:
    """A text table of ``<stage>/<key>`` (the main tracker) against every ``<stage>_<name>/<key>``
    (the baselines run on the same detections) with the main tracker's margin; "" when ``stage``
    has no baseline."""
    runs = sorted({k.split("/")[0] for k in metrics if k.startswith(f"{stage}_") and "/" in k})
    if not runs or not any(f"{stage}/{k}" in metrics for k in keys):
        return ""
    names = [stage, *runs]
    header = ["metric", *names, *(f"{stage} - {run}" for run in runs)]
    rows = []
    for key in keys:
        values = [metrics.get(f"{name}/{key}") for name in names]
        if values[0] is None:
            continue
        margins = [values[0] - v if v is not None else None for v in values[1:]]
        rows.append([key, *(_cell(v) for v in values), *(_cell(m, signed=True) for m in margins)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(lines)


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"
