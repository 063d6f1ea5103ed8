"""Read the frames of any video file, image folder or MOTChallenge sequence folder, for tracking
outside a dataset (``qdtrack-track``) and for drawing results (``qdtrack-vis``).

:meth:`FrameSource.open` takes what a user points at: a video file; a sequence folder holding
``seqinfo.ini`` (its ``imDir`` and ``frameRate``) or an ``img1/`` image folder; the image folder
itself (``<sequence>/img1``); or any other folder of images. The source's :attr:`~FrameSource.name`
names the outputs: the video's stem, the sequence folder's name (never ``img1``), the folder's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import imageio.v2 as imageio
import numpy as np
from PIL import Image

from qdtrack_pl.data.formats.mot import DEFAULT_IM_DIR, read_seqinfo

SEQINFO = "seqinfo.ini"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEFAULT_FOLDER_FPS = 10.0  # image folders carry no frame rate


@dataclass(frozen=True)
class FrameSource:
    """A video file or a folder of images (sorted by file name), read lazily frame by frame.

    ``label`` names the outputs (default: the video's stem or the folder's name); ``frame_rate``
    is a known rate (a sequence's ``seqinfo.ini``) that overrides what the file says.
    """

    path: Path
    label: str | None = None
    frame_rate: float | None = None

    @classmethod
    def open(cls, path: str | Path) -> FrameSource:
        """The frames of a video file, a MOTChallenge sequence folder (``seqinfo.ini`` or an
        ``img1/`` inside), a sequence's image folder, or any folder of images."""
        path = Path(path)
        if path.is_dir() and (path / SEQINFO).is_file():
            info = read_seqinfo(path / SEQINFO)
            return cls(path / info.im_dir, label=path.name, frame_rate=info.frame_rate)
        if path.is_dir() and (path / DEFAULT_IM_DIR).is_dir() and not _has_images(path):
            return cls(path / DEFAULT_IM_DIR, label=path.name)
        parent_info = path.parent / SEQINFO
        if path.is_dir() and parent_info.is_file():  # <sequence>/img1 itself
            info = read_seqinfo(parent_info)
            if info.im_dir == path.name:
                return cls(path, label=path.parent.name, frame_rate=info.frame_rate)
        if path.is_dir() and path.name == DEFAULT_IM_DIR:
            return cls(path, label=path.parent.name)
        return cls(path)

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
        if self.label:
            return self.label
        return self.path.stem if self.path.is_file() else self.path.name

    def image_files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def known_fps(self) -> float | None:
        """The frame rate the input states (``seqinfo.ini``, the video's metadata), else None."""
        if self.frame_rate is not None or self.path.is_dir():
            return self.frame_rate
        reader = imageio.get_reader(self.path)  # (imageio's stubs type ``with`` as the base class)
        try:
            meta = reader.get_meta_data()
        finally:
            reader.close()
        if "fps" in meta:
            return float(meta["fps"])
        if meta.get("duration"):  # GIF: milliseconds per frame
            return 1000.0 / float(meta["duration"])
        return None

    def fps(self) -> float:
        known = self.known_fps()
        return DEFAULT_FOLDER_FPS if known is None else known

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frames as (H, W, 3) uint8 RGB."""
        if self.path.is_dir():
            for file in self.image_files():
                try:
                    with Image.open(file) as image:
                        array = np.array(image.convert("RGB"))  # writable (torch.from_numpy)
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
        try:
            # imageio's stubs type iteration as one Array; it yields one array per frame
            for frame in cast("Iterable[np.ndarray]", reader):
                yield _to_rgb(np.asarray(frame))
        finally:
            reader.close()


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3]).astype(np.uint8, copy=False)
