"""Write frames as an mp4 (ffmpeg from imageio-ffmpeg) or an animated GIF (Pillow)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from numpy.typing import ArrayLike

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write (H, W, 3) uint8 frames to ``path``; the suffix picks the format (.mp4 or .gif)."""
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        images: list[ArrayLike] = list(frames)
        imageio.mimsave(path, images, duration=1000.0 / fps, loop=0)
        return path
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unknown video format; use one of {VIDEO_SUFFIXES + ('.gif',)}")
    # macro_block_size=1 keeps odd frame sizes (ffmpeg would otherwise resize them).
    writer = imageio.get_writer(path, fps=fps, macro_block_size=1)
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()
    return path
