"""The internal video index: the one format every dataset reader converts into.

Readers (MOTChallenge, BDD100K, TAO, CrowdHuman, Waymo) produce a :class:`VideoIndex`; the pair
sampler, the sequence loader and the evaluation all consume it. Boxes are ``xyxy`` absolute pixels
and frame indices are 0-based and contiguous per video (docs/method.md §8.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FrameAnnotations:
    """Ground truth of one frame as parallel arrays (one row per instance)."""

    boxes: np.ndarray  # (N, 4) float32, xyxy absolute pixels
    track_ids: np.ndarray  # (N,) int64, unique per video; -1 = no identity (static images)
    class_ids: np.ndarray  # (N,) int64, 0-based index into VideoIndex.class_names
    visibility: np.ndarray  # (N,) float32 in [0, 1]
    ignore: np.ndarray  # (N,) bool: crowd/distractor regions, kept for evaluation only

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape (N, 4), got {self.boxes.shape}")
        for name in ("track_ids", "class_ids", "visibility", "ignore"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {getattr(self, name).shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> FrameAnnotations:
        return cls(
            boxes=np.zeros((0, 4), np.float32),
            track_ids=np.zeros(0, np.int64),
            class_ids=np.zeros(0, np.int64),
            visibility=np.zeros(0, np.float32),
            ignore=np.zeros(0, bool),
        )

    @classmethod
    def from_rows(
        cls,
        boxes: Sequence[Any] | np.ndarray,
        track_ids: Sequence[Any] | np.ndarray,
        class_ids: Sequence[Any] | np.ndarray,
        visibility: Sequence[Any] | np.ndarray | None = None,
        ignore: Sequence[Any] | np.ndarray | None = None,
    ) -> FrameAnnotations:
        """Build from Python sequences (lists, tuples, ranges) or arrays, filling visibility=1 and
        ignore=False by default."""
        n = len(track_ids)
        return cls(
            boxes=np.asarray(boxes, np.float32).reshape(n, 4),
            track_ids=np.asarray(track_ids, np.int64).reshape(n),
            class_ids=np.asarray(class_ids, np.int64).reshape(n),
            visibility=(
                np.ones(n, np.float32)
                if visibility is None
                else np.asarray(visibility, np.float32).reshape(n)
            ),
            ignore=np.zeros(n, bool) if ignore is None else np.asarray(ignore, bool).reshape(n),
        )

    def select(self, mask: np.ndarray) -> FrameAnnotations:
        """Rows where ``mask`` is true (boolean mask or index array)."""
        return FrameAnnotations(
            boxes=self.boxes[mask],
            track_ids=self.track_ids[mask],
            class_ids=self.class_ids[mask],
            visibility=self.visibility[mask],
            ignore=self.ignore[mask],
        )


@dataclass(frozen=True)
class Frame:
    """One image of a video: where it is on disk and what is annotated on it."""

    index: int  # 0-based, contiguous within the video
    image_path: Path
    annotations: FrameAnnotations
    source_frame_id: int  # frame number as the dataset names it (MOT: 1-based), for result files
    annotated: bool = True  # False for frames without labels (TAO's unannotated frames)


@dataclass(frozen=True)
class Video:
    """An ordered sequence of frames. ``is_static`` marks single-image "videos" (CrowdHuman)."""

    name: str
    frames: tuple[Frame, ...]
    width: int
    height: int
    fps: float = 30.0
    is_static: bool = False

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class VideoIndex:
    """All videos of one split plus the class vocabulary their ``class_ids`` index."""

    videos: tuple[Video, ...]
    class_names: tuple[str, ...]
    name: str = ""
    metadata: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self) -> int:
        return sum(len(v) for v in self.videos)

    def video(self, name: str) -> Video:
        for video in self.videos:
            if video.name == name:
                return video
        raise KeyError(f"no video named {name!r} in index {self.name!r}")
