"""Tracking evaluation as a Lightning callback.

The validation/test loops yield per-frame detections (with embeddings) in video order, whole videos
per rank. This callback runs the tracker online on them, so no detections pile up in memory, then
gathers the tracks of every rank, writes MOT-format results, scores them with TrackEval on rank 0,
broadcasts the metrics and logs them as ``<stage>/HOTA``, ``<stage>/MOTA``, ``<stage>/IDF1``, ...
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, cast

import pytorch_lightning as pl
import torch
import torch.distributed as dist

from qdtrack_pl.data.batch import FrameBatch
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults, TrackResultsBuilder, write_mot_results
from qdtrack_pl.eval.protocols import ProtocolResult, evaluate_protocol
from qdtrack_pl.lit.wandb_media import log_tracking_media, wandb_loggers
from qdtrack_pl.tracking.base import Tracker

log = logging.getLogger(__name__)


class TrackingEvaluator(pl.Callback):
    """Track the detections of the validation/test loop and score them with TrackEval.

    Args:
        tracker: any tracker with ``update(boxes, scores, class_ids, embeddings, frame_id)``
            returning ``(track_ids, det_indices)`` and resetting itself at ``frame_id == 0``.
        baselines: more trackers, by name, run on the very same detections in the same loop and
            scored the same way, logged as ``<stage>_<name>/HOTA`` etc. (``make train`` scores the
            IoU baseline this way: ``test_iou/IDF1`` beside ``test/IDF1``).
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
        tracker: Tracker,
        output_dir: str | Path,
        baselines: Mapping[str, Tracker] | None = None,
        iou_threshold: float = 0.5,
        show_progress: bool = True,
        media_frames: int = 4,
        media_video_frames: int = 0,
    ) -> None:
        self.tracker = tracker
        self.baselines = dict(baselines or {})
        self.output_dir = Path(output_dir)
        self.iou_threshold = iou_threshold
        self.show_progress = show_progress
        self.media_frames = media_frames
        self.media_video_frames = media_video_frames
        self._videos: dict[str, dict[str, TrackResultsBuilder]] = {}  # run -> video -> rows
        self.last_result: ProtocolResult | None = None  # the main tracker's
        self.last_results: dict[str, TrackResults] = {}  # rank 0: every video's tracks (main)

    def _trackers(self) -> dict[str, Tracker]:
        """Run name -> tracker; the main tracker's run is named ""."""
        return {"": self.tracker, **self.baselines}

    # -- the loop hooks -------------------------------------------------------------------------
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        self._videos = {run: {} for run in self._trackers()}
        _sync_buffers(pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._videos = {run: {} for run in self._trackers()}
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
            for run, tracker in self._trackers().items():
                tracks = self._videos[run].setdefault(video, TrackResultsBuilder())
                if frame_index != tracks.last_frame + 1:
                    raise RuntimeError(
                        f"video {video!r}: frame {frame_index} arrived after frame "
                        f"{tracks.last_frame}; the evaluation loader must yield whole videos in "
                        "frame order (use the datamodule's VideoSequenceSampler)"
                    )
                out = tracker.update(
                    dets.boxes, dets.scores, dets.class_ids, dets.embeddings, frame_id=frame_index
                )
                tracks.add(frame_index, out, dets.boxes, dets.class_ids)

    # -- evaluation -----------------------------------------------------------------------------
    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        metrics: dict[str, float] = {}
        for run, videos in self._videos.items():
            local = {name: (v.build(), v.last_frame) for name, v in videos.items()}
            if trainer.world_size > 1 and not run:
                log.info("rank %d tracked %s videos: %s", trainer.global_rank, stage, sorted(local))
            gathered = _gather_on_rank0(local)
            if trainer.is_global_zero:
                prefix = f"{stage}_{run}" if run else stage
                metrics.update(self._score(trainer, stage, prefix, gathered))
        metrics = trainer.strategy.broadcast(metrics, src=0)
        with warnings.catch_warnings():  # every rank logs the same broadcast values: no sync
            warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
            for name, value in metrics.items():
                pl_module.log(name, value, sync_dist=False, rank_zero_only=False)

    def _score(
        self,
        trainer: pl.Trainer,
        stage: str,
        prefix: str,
        gathered: dict[str, tuple[TrackResults, int]],
    ) -> dict[str, float]:
        """Rank 0: write one run's MOT files, score them, return ``<prefix>/<metric>``."""
        datamodule = _eval_datamodule(trainer)
        gt = _seen_frames(datamodule.eval_index(stage), gathered)
        results = {name: res for name, (res, _) in gathered.items()}
        run_dir = self.output_dir / prefix
        for name, res in results.items():
            write_mot_results(run_dir / f"{name}.txt", res, gt.video(name))
        protocol = getattr(datamodule, "evaluation_protocol", "mot")
        result = evaluate_protocol(
            protocol,
            gt,
            results,
            self.iou_threshold,
            work_dir=run_dir / protocol,
            show_progress=self.show_progress and _shows_progress(trainer),
        )
        log.info("%s tracking metrics (%s):\n%s", prefix, protocol, result.table)
        if prefix == stage:
            self.last_result, self.last_results = result, results
            self._log_media(trainer, stage, gt, results)
        return {f"{prefix}/{k}": float(v) for k, v in result.metrics.items()}

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
    return bool(getattr(trainer.progress_bar_callback, "is_enabled", False))


class _EvalData(Protocol):
    """What the callback needs of the trainer's datamodule (``VideoDataModule`` has it)."""

    def eval_index(self, stage: str) -> VideoIndex: ...


def _eval_datamodule(trainer: pl.Trainer) -> _EvalData:
    """The datamodule Lightning attached to the trainer for this loop."""
    datamodule = getattr(trainer, "datamodule", None)
    if not callable(getattr(datamodule, "eval_index", None)):
        raise TypeError(
            "tracking evaluation needs the loop's datamodule to have eval_index(stage) -> "
            f"VideoIndex (a VideoDataModule), got {type(datamodule).__name__}"
        )
    return cast(_EvalData, datamodule)


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
