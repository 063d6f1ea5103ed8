"""Matplotlib figures for the notebooks: track timelines with identity switches, similarity
matrices, frame grids. ``matplotlib`` (the ``dev`` extra) is imported only when called."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from qdtrack_pl.analysis.tracks import IdSwitch, segments
from qdtrack_pl.vis.draw import track_color

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _rgb(track_id: int) -> tuple[float, float, float]:
    r, g, b = track_color(track_id)
    return r / 255.0, g / 255.0, b / 255.0


def plot_timelines(
    ax: Axes,
    timelines: Mapping[int, np.ndarray],
    switches: Sequence[IdSwitch] = (),
    title: str = "",
    label: str = "track",
    max_rows: int = 40,
) -> Axes:
    """One row per id (in the given order) with a bar over each run of frames it appears on, in
    the id's drawing colour; identity switches are red crosses on the new track's row, with a
    line from the old track's row. Beyond ``max_rows`` ids only the longest are drawn."""
    if len(timelines) > max_rows:
        longest = sorted(timelines, key=lambda t: -len(timelines[t]))[:max_rows]
        title = f"{title} ({len(timelines) - max_rows} shorter {label}s not shown)"
        timelines = {t: timelines[t] for t in timelines if t in set(longest)}
    rows = {track_id: row for row, track_id in enumerate(timelines)}
    for track_id, frames in timelines.items():
        ax.broken_barh(
            segments(np.asarray(frames)),
            (rows[track_id] - 0.35, 0.7),
            facecolors=_rgb(track_id),
            edgecolor="black",
            linewidth=0.3,
        )
    for i, switch in enumerate(switches):
        if switch.new_track not in rows:
            continue
        y_new = rows[switch.new_track]
        ax.plot([switch.frame_index], [y_new], "x", color="red", markersize=9, mew=2.5,
                label="id switch" if i == 0 else None)  # fmt: skip
        if switch.old_track in rows:
            ax.plot([switch.frame_index] * 2, [rows[switch.old_track], y_new], "--", color="red",
                    linewidth=1)  # fmt: skip
        ax.annotate(f"gt {switch.gt_id}", (switch.frame_index, y_new), color="red", fontsize=7,
                    xytext=(3, 3), textcoords="offset points")  # fmt: skip
    ax.set_yticks(range(len(rows)), [str(t) for t in rows])
    ax.set_ylim(-0.8, max(len(rows), 1) - 0.2)
    ax.invert_yaxis()
    ax.set_xlabel("frame (0-based)")
    ax.set_ylabel(f"{label} id")
    if switches:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    return ax


def plot_similarity(
    ax: Axes,
    matrix: Any,  # (N, M) tensor or array
    row_labels: Sequence[Any] = (),
    col_labels: Sequence[Any] = (),
    title: str = "",
    highlight: Sequence[tuple[int, int]] = (),
) -> Axes:
    """A heat map of an (N, M) similarity matrix with optional tick labels (e.g. identities) and
    cells outlined (e.g. each row's nearest neighbour)."""
    from matplotlib.patches import Rectangle

    values = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix)
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    if len(row_labels):
        ax.set_yticks(range(len(row_labels)), [str(v) for v in row_labels])
    if len(col_labels):
        ax.set_xticks(range(len(col_labels)), [str(v) for v in col_labels])
    for row, col in highlight:
        ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", lw=2))
    ax.set_xlabel("reference instance")
    ax.set_ylabel("key instance")
    ax.set_title(title)
    return ax


def show_frames(
    images: Sequence[np.ndarray], titles: Sequence[str] = (), columns: int = 3
) -> Figure:
    """A grid figure of RGB frames; returns the figure."""
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(image)
        if i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
