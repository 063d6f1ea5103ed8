"""Detections with embeddings of a trained run, computed once per split and kept on disk, so that
every association variant, threshold and stride is tracked without running the network again."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from qdtrack_pl.api import Run
from qdtrack_pl.data.datamodule import VideoDataModule
from qdtrack_pl.models.qdtrack import Detections

log = logging.getLogger(__name__)

CACHE_DIR = "detections"

VideoDetections = list[Detections]  # one entry per frame, in frame order, on the CPU
DetectionCache = dict[str, VideoDetections]  # video name -> its frames


def build_datamodule(cfg: DictConfig) -> VideoDataModule:
    datamodule = instantiate(cfg.data)
    if not isinstance(datamodule, VideoDataModule):
        raise TypeError(f"data config builds {type(datamodule).__name__}, not a VideoDataModule")
    return datamodule


def compute_detections(run_dir: Path, split: str) -> DetectionCache:
    """Run the run's last checkpoint over every frame of ``split``, video by video."""
    run = Run(run_dir)
    module = run.load_model().eval()
    datamodule = build_datamodule(run.config())
    datamodule.setup("validate" if split == "val" else "test")
    loader = datamodule.frame_dataloader(split)
    cache: DetectionCache = {}
    for batch in loader:
        with torch.inference_mode():
            detections = module.detect(batch)
        for dets, video, frame_index in zip(
            detections, batch.video_names, batch.frame_indices, strict=True
        ):
            frames = cache.setdefault(video, [])
            if frame_index != len(frames):
                raise RuntimeError(f"{video}: frame {frame_index} arrived out of order")
            frames.append(Detections(*(t.detach().cpu().clone() for t in dets)))
    return cache


def ensure_cached(run_dir: Path, split: str) -> Path:
    """``<run>/detections/<split>.pt``, computed first if it is missing. The file is written
    atomically, so an interrupted run leaves no truncated cache."""
    path = run_dir / CACHE_DIR / f"{split}.pt"
    if path.is_file():
        return path
    log.info("caching %s detections of %s", split, run_dir)
    cache = compute_detections(run_dir, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({video: [tuple(f) for f in frames] for video, frames in cache.items()}, tmp)
    os.replace(tmp, path)
    return path


def cached_detections(run_dir: Path, split: str) -> DetectionCache:
    """The run's detections of ``split``, computed once (``ensure_cached``) and read back."""
    payload = torch.load(ensure_cached(run_dir, split), weights_only=False)
    return {video: [Detections(*f) for f in frames] for video, frames in payload.items()}
