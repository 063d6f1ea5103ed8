"""Read the frames of any video file or image folder, for tracking outside a dataset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_FOLDER_FPS = 10.0  # image folders carry no frame rate


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of images (sorted by file name), read lazily frame by frame."""

    path: Path

    def __post_init__(self) -> None:
        if not self.path.exists():
            raise FileNotFoundError(
                f"input {self.path} does not exist (expected a video or a folder)"
            )
        if self.path.is_dir() and not self.image_files():
            raise FileNotFoundError(
                f"input folder {self.path} holds no images with suffix in {IMAGE_SUFFIXES}"
            )

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    def image_files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def fps(self) -> float:
        if self.path.is_dir():
            return DEFAULT_FOLDER_FPS
        with imageio.get_reader(self.path) as reader:
            meta = reader.get_meta_data()
        if "fps" in meta:
            return float(meta["fps"])
        if meta.get("duration"):  # GIF: milliseconds per frame
            return 1000.0 / float(meta["duration"])
        return DEFAULT_FOLDER_FPS

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frames as (H, W, 3) uint8 RGB."""
        if self.path.is_dir():
            for file in self.image_files():
                try:
                    with Image.open(file) as image:
                        array = np.asarray(image.convert("RGB"))
                except OSError as error:  # PIL: UnidentifiedImageError, truncated file
                    raise ValueError(
                        f"cannot read image {file} ({error}); every image of the input folder is "
                        "a frame: restore or remove it"
                    ) from None
                yield array
            return
        try:
            reader = imageio.get_reader(self.path)
        except Exception as error:  # imageio raises many types for unreadable files
            raise ValueError(f"cannot read video {self.path}: {error}") from error
        with reader:
            for frame in reader:
                yield _to_rgb(np.asarray(frame))


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3]).astype(np.uint8, copy=False)
