"""Batch containers that travel from the data layer into the model.

Images are float32 in [0, 1], RGB, channels first; the model owns normalisation. Boxes are
``xyxy`` pixels in the coordinates of the (resized, augmented) image tensor.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class FrameTargets(NamedTuple):
    """Training targets of one image: ignored instances are already removed."""

    boxes: Tensor  # (N, 4) float32 xyxy
    class_ids: Tensor  # (N,) int64, 0-based
    track_ids: Tensor  # (N,) int64, identity shared between the key and reference frame

    def to(self, device: torch.device | str) -> FrameTargets:
        return FrameTargets(*(t.to(device, non_blocking=True) for t in self))


class PairBatch(NamedTuple):
    """B key/reference frame pairs. ``key_images`` and ``ref_images`` are padded to one size."""

    key_images: Tensor  # (B, 3, H, W)
    ref_images: Tensor  # (B, 3, H, W)
    key_targets: list[FrameTargets]
    ref_targets: list[FrameTargets]
    skipped_images: tuple[str, ...] = ()  # unreadable images whose pairs were replaced (data)

    def to(self, device: torch.device | str) -> PairBatch:
        return PairBatch(
            self.key_images.to(device, non_blocking=True),
            self.ref_images.to(device, non_blocking=True),
            [t.to(device) for t in self.key_targets],
            [t.to(device) for t in self.ref_targets],
            self.skipped_images,
        )

    def __len__(self) -> int:
        return len(self.key_targets)


class FrameBatch(NamedTuple):
    """B frames for inference, in video order. ``scale_factors`` map network boxes back to the
    original image: original = network / scale_factor."""

    images: Tensor  # (B, 3, H, W), padded
    video_names: list[str]
    frame_indices: list[int]  # 0-based index within the video
    scale_factors: Tensor  # (B,) float32

    def to(self, device: torch.device | str) -> FrameBatch:
        # Not ``_replace``: NamedTuple._make checks the field count with ``len``, which __len__
        # below redefines as the batch size.
        return FrameBatch(
            self.images.to(device, non_blocking=True),
            self.video_names,
            self.frame_indices,
            self.scale_factors.to(device, non_blocking=True),
        )

    def __len__(self) -> int:
        return len(self.video_names)
