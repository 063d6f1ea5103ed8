"""Tracking media for Weights & Biases: a few evaluation frames with tracks drawn, a per-sequence
results table and (optionally) a short GIF of one tracked video.

Called by :class:`~qdtrack_pl.lit.tracking_callback.TrackingEvaluator` on rank 0 after scoring,
only when a ``WandbLogger`` is attached (``logger=wandb``). Works offline (``WANDB_MODE=offline``
/ ``offline: true``): the media land in ``<run folder>/wandb/offline-run-*/files/media``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl

if TYPE_CHECKING:
    from pytorch_lightning.loggers import WandbLogger

from qdtrack_pl.data.index import Video, VideoIndex
from qdtrack_pl.data.loading.transforms import load_image
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import TABLE_KEYS
from qdtrack_pl.vis.draw import draw_tracks
from qdtrack_pl.vis.render import rows_of_frame, write_tracks_video


def wandb_loggers(trainer: pl.Trainer) -> list[WandbLogger]:
    """The trainer's ``WandbLogger`` instances (none if wandb is not in use)."""
    from pytorch_lightning.loggers import WandbLogger

    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def _frame_rgb(video: Video, index: int) -> np.ndarray:
    return np.ascontiguousarray(load_image(video.frames[index].image_path).permute(1, 2, 0).numpy())


def tracked_frames(
    gt: VideoIndex, results: Mapping[str, TrackResults], num_frames: int
) -> tuple[list[np.ndarray], list[str]]:
    """``num_frames`` frames spread evenly over the first video (by name), tracks drawn."""
    names = sorted(name for name in results if len(gt.video(name)))
    if not names or num_frames <= 0:
        return [], []
    video = gt.video(names[0])
    rows = results[video.name]
    picks = np.unique(np.linspace(0, len(video) - 1, num=min(num_frames, len(video))).round())
    images, captions = [], []
    for index in picks.astype(int):
        frame_rows = rows_of_frame(rows, index)
        known = bool(len(frame_rows.class_ids)) and bool((frame_rows.class_ids >= 0).all())
        images.append(
            draw_tracks(
                _frame_rgb(video, index),
                frame_rows.boxes,
                frame_rows.track_ids,
                frame_rows.class_ids if known else None,
                gt.class_names if known else None,
            )
        )
        captions.append(f"{video.name} frame {index + 1}: {len(frame_rows.track_ids)} tracks")
    return images, captions


def sequence_table(
    gt: VideoIndex,
    results: Mapping[str, TrackResults],
    per_sequence: Mapping[str, Mapping[str, float]] | None = None,
    metric_keys: Sequence[str] = TABLE_KEYS,
) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of the per-sequence results table: counts plus TrackEval's per-sequence
    class-agnostic metrics where the protocol provides them."""
    per_sequence = per_sequence or {}
    keys = [k for k in metric_keys if any(k in m for m in per_sequence.values())]
    columns = ["sequence", "frames", "tracks", "boxes", *keys]
    data = []
    for name in sorted(results):
        rows = results[name]
        metrics = per_sequence.get(name, {})
        data.append(
            [
                name,
                len(gt.video(name)),
                int(len(np.unique(rows.track_ids))),
                int(len(rows.track_ids)),
                *(float(metrics[k]) if k in metrics else None for k in keys),
            ]
        )
    return columns, data


def log_tracking_media(
    loggers: Sequence[WandbLogger],
    stage: str,
    gt: VideoIndex,
    results: Mapping[str, TrackResults],
    per_sequence: Mapping[str, Mapping[str, float]] | None,
    step: int,
    num_frames: int = 4,
    video_frames: int = 0,
    work_dir: Path | None = None,
) -> None:
    """Log ``<stage>/tracks`` (images), ``<stage>/sequences`` (table) and, with
    ``video_frames`` > 0, ``<stage>/tracks_video`` (a GIF of the first video's first frames)."""
    if not loggers:
        return
    images, captions = tracked_frames(gt, results, num_frames)
    columns, data = sequence_table(gt, results, per_sequence)
    video_path = None
    names = sorted(n for n in results if len(gt.video(n)))
    if video_frames > 0 and names and work_dir is not None:
        name = names[0]
        video = gt.video(name)
        frames = (_frame_rgb(video, i) for i in range(min(video_frames, len(video))))
        video_path = write_tracks_video(
            results[name],
            frames,
            Path(work_dir) / f"{name}_step{step}.gif",
            fps=video.fps,
            class_names=gt.class_names,
        )
    for logger in loggers:
        if images:
            logger.log_image(f"{stage}/tracks", images, step=step, caption=captions)
        logger.log_table(f"{stage}/sequences", columns=columns, data=data, step=step)
        if video_path is not None:
            logger.log_video(f"{stage}/tracks_video", [str(video_path)], step=step)
