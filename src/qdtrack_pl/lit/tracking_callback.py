"""Tracking evaluation as a Lightning callback.

The validation/test loops yield per-frame detections (with embeddings) in video order, whole videos
per rank. This callback runs the tracker online on them, so no detections pile up in memory, then
gathers the tracks of every rank, writes MOT-format results, scores them with TrackEval on rank 0,
broadcasts the metrics and logs them as ``<stage>/HOTA``, ``<stage>/MOTA``, ``<stage>/IDF1``, ...
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch import Tensor

from qdtrack_pl.data.batch import FrameBatch
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults, write_mot_results
from qdtrack_pl.eval.protocols import ProtocolResult, evaluate_protocol
from qdtrack_pl.lit.wandb_media import log_tracking_media, wandb_loggers

log = logging.getLogger(__name__)


class _VideoTracks:
    """Track rows of one video, appended frame by frame."""

    def __init__(self) -> None:
        self.frame_indices: list[np.ndarray] = []
        self.track_ids: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []
        self.scores: list[np.ndarray] = []
        self.class_ids: list[np.ndarray] = []
        self.last_frame = -1

    def add(self, frame_index: int, ids: Tensor, boxes: Tensor, scores: Tensor, classes: Tensor):
        self.frame_indices.append(np.full(len(ids), frame_index, np.int64))
        self.track_ids.append(ids.numpy())
        self.boxes.append(boxes.numpy().astype(np.float32))
        self.scores.append(scores.numpy().astype(np.float32))
        self.class_ids.append(classes.numpy())
        self.last_frame = frame_index

    def to_results(self) -> TrackResults:
        def cat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

        return TrackResults(
            frame_indices=cat(self.frame_indices, (0,), np.int64),
            track_ids=cat(self.track_ids, (0,), np.int64),
            boxes=cat(self.boxes, (0, 4), np.float32),
            scores=cat(self.scores, (0,), np.float32),
            class_ids=cat(self.class_ids, (0,), np.int64),
        )


class TrackingEvaluator(pl.Callback):
    """Track the detections of the validation/test loop and score them with TrackEval.

    Args:
        tracker: any tracker with ``update(boxes, scores, class_ids, embeddings, frame_id)``
            returning ``(track_ids, det_indices)`` and resetting itself at ``frame_id == 0``.
        output_dir: MOT-format results go to ``<output_dir>/<stage>/<video>.txt``.
        iou_threshold: box overlap for a match in CLEAR/Identity (HOTA sweeps its own).
        show_progress: a progress bar while TrackEval scores the sequences (rank 0, only when
            the trainer shows progress bars).
        media_frames: with a ``WandbLogger`` attached, log this many frames of the first video
            with tracks drawn (``<stage>/tracks``) and the per-sequence table
            (``<stage>/sequences``) after every evaluation; 0 logs no frames.
        media_video_frames: also log a GIF of the first video's first N frames
            (``<stage>/tracks_video``); 0 = none.
    """

    def __init__(
        self,
        tracker: Any,
        output_dir: str | Path,
        iou_threshold: float = 0.5,
        show_progress: bool = True,
        media_frames: int = 4,
        media_video_frames: int = 0,
    ) -> None:
        self.tracker = tracker
        self.output_dir = Path(output_dir)
        self.iou_threshold = iou_threshold
        self.show_progress = show_progress
        self.media_frames = media_frames
        self.media_video_frames = media_video_frames
        self._videos: dict[str, _VideoTracks] = {}
        self.last_result: ProtocolResult | None = None
        self.last_results: dict[str, TrackResults] = {}  # rank 0: every video's tracks

    # -- the loop hooks -------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        self._videos = {}
        _sync_buffers(pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._videos = {}
        _sync_buffers(pl_module)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        self._track_batch(outputs, batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._track_batch(outputs, batch)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._evaluate(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._evaluate(trainer, pl_module, "test")

    # -- tracking -------------------------------------------------------------------------------
    @torch.inference_mode()
    def _track_batch(self, detections: list, batch: FrameBatch) -> None:
        for dets, video, frame_index in zip(
            detections, batch.video_names, batch.frame_indices, strict=True
        ):
            tracks = self._videos.setdefault(video, _VideoTracks())
            if frame_index != tracks.last_frame + 1:
                raise RuntimeError(
                    f"video {video!r}: frame {frame_index} arrived after frame "
                    f"{tracks.last_frame}; "
                    "the evaluation loader must yield whole videos in frame order "
                    "(use the datamodule's VideoSequenceSampler)"
                )
            out = self.tracker.update(
                dets.boxes, dets.scores, dets.class_ids, dets.embeddings, frame_id=frame_index
            )
            keep = out.det_indices
            tracks.add(
                frame_index,
                out.track_ids.cpu(),
                dets.boxes[keep].cpu(),
                out.scores.cpu(),
                dets.class_ids[keep].cpu(),
            )

    # -- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        local = {name: (v.to_results(), v.last_frame) for name, v in self._videos.items()}
        if trainer.world_size > 1:
            log.info("rank %d tracked %s videos: %s", trainer.global_rank, stage, sorted(local))
        gathered = _gather_on_rank0(local)
        metrics: dict[str, float] = {}
        if trainer.is_global_zero:
            gt = _seen_frames(trainer.datamodule.eval_index(stage), gathered)
            results = {name: res for name, (res, _) in gathered.items()}
            stage_dir = self.output_dir / stage
            for name, res in results.items():
                write_mot_results(stage_dir / f"{name}.txt", res, gt.video(name))
            protocol = getattr(trainer.datamodule, "evaluation_protocol", "mot")
            self.last_result = evaluate_protocol(
                protocol,
                gt,
                results,
                self.iou_threshold,
                work_dir=stage_dir / protocol,
                show_progress=self.show_progress and _shows_progress(trainer),
            )
            self.last_results = results
            log.info("%s tracking metrics (%s):\n%s", stage, protocol, self.last_result.table)
            metrics = {f"{stage}/{k}": float(v) for k, v in self.last_result.metrics.items()}
            self._log_media(trainer, stage, gt, results)
        metrics = trainer.strategy.broadcast(metrics, src=0)
        with warnings.catch_warnings():  # every rank logs the same broadcast values: no sync
            warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
            for name, value in metrics.items():
                pl_module.log(name, value, sync_dist=False, rank_zero_only=False)

    def _log_media(
        self, trainer: pl.Trainer, stage: str, gt: VideoIndex, results: dict[str, TrackResults]
    ) -> None:
        """wandb media (frames with tracks, per-sequence table); never fails the run."""
        loggers = wandb_loggers(trainer)
        if not loggers or (self.media_frames <= 0 and self.media_video_frames <= 0):
            return
        details = self.last_result.details if self.last_result is not None else None
        try:
            log_tracking_media(
                loggers,
                stage,
                gt,
                results,
                details.per_sequence if details is not None else None,
                step=trainer.global_step,
                num_frames=self.media_frames,
                video_frames=self.media_video_frames,
                work_dir=self.output_dir / stage / "media",
            )
        except Exception as error:  # media are a convenience: warn, keep the metrics
            log.warning("could not log tracking media to wandb: %r", error)


def _sync_buffers(module: torch.nn.Module) -> None:
    """DDP: give every rank rank 0's buffers (BatchNorm running statistics) before evaluating.

    DDP broadcasts buffers from rank 0 at the start of each training forward, but each rank then
    updates its own running statistics with its own batch, so after the last training step the
    ranks' statistics differ. Evaluating with rank 0's (those the checkpoint saves) makes every
    rank track its share of the videos with the same model, and the gathered metrics equal those
    of evaluating the checkpoint on one process.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def _shows_progress(trainer: pl.Trainer) -> bool:
    bar = trainer.progress_bar_callback
    return bar is not None and bar.is_enabled


def _gather_on_rank0(local: dict[str, Any]) -> dict[str, Any]:
    """Merge the per-rank dicts of whole videos (each video lives on exactly one rank)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return local
    parts: list[dict[str, Any]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(parts, local)
    merged: dict[str, Any] = {}
    for part in parts:
        duplicated = merged.keys() & part.keys()
        if duplicated:
            raise RuntimeError(f"videos {sorted(duplicated)} were split across ranks")
        merged.update(part)
    return merged


def _seen_frames(gt: VideoIndex, tracked: dict[str, tuple[TrackResults, int]]) -> VideoIndex:
    """Ground truth restricted to the videos and frames the loop saw (limit_val_batches, debug)."""
    videos = []
    for video in gt.videos:
        if video.name in tracked:
            last = tracked[video.name][1]
            videos.append(replace(video, frames=video.frames[: last + 1]))
    return replace(gt, videos=tuple(videos))
