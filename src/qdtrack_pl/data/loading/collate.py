"""Batch collation: pad images to one size, stack pairs and evaluation frames."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from qdtrack_pl.data.batch import FrameBatch, PairBatch
from qdtrack_pl.data.loading.pairs import PairItem
from qdtrack_pl.data.loading.sequence import FrameItem


def pad_images(images: Sequence[Tensor], pad_divisor: int = 1) -> Tensor:
    """Stack CHW images into (B, C, H, W), zero-padding right and bottom to the largest size,
    rounded up to a multiple of ``pad_divisor`` (docs/method.md §4.4 ``SeqPad``)."""
    height = max(im.shape[-2] for im in images)
    width = max(im.shape[-1] for im in images)
    height, width = (-(-s // pad_divisor) * pad_divisor for s in (height, width))
    return torch.stack(
        [F.pad(im, (0, width - im.shape[-1], 0, height - im.shape[-2])) for im in images]
    )


def collate_pairs(items: Sequence[PairItem], pad_divisor: int = 1) -> PairBatch:
    """Pad keys and references to one common size so both stacks share a shape."""
    padded = pad_images([im for it in items for im in (it.key_image, it.ref_image)], pad_divisor)
    return PairBatch(
        key_images=padded[0::2],
        ref_images=padded[1::2],
        key_targets=[it.key_targets for it in items],
        ref_targets=[it.ref_targets for it in items],
        skipped_images=tuple(path for it in items for path in it.skipped_images),
    )


def collate_frames(items: Sequence[FrameItem], pad_divisor: int = 1) -> FrameBatch:
    return FrameBatch(
        images=pad_images([it.image for it in items], pad_divisor),
        video_names=[it.video_name for it in items],
        frame_indices=[it.frame_index for it in items],
        scale_factors=torch.tensor([it.scale_factor for it in items], dtype=torch.float32),
    )
