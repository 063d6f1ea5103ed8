"""Tracker memory: live tracks as tensors plus a short ring of backdrops (spec 3.2 state).

Life cycle of a track: **born** (``add_tracks``) -> **tracked** in every frame it is matched
(``update_tracks``, ``last_frame`` = that frame) -> **lost** while ``frame - last_frame`` is below
the memory length (still matchable, not output) -> **removed** (``remove_expired``). Rows are kept
in ascending id order (births always get the largest ids), which is the dict order of the original
implementation and therefore the column order of the affinity matrix.

Backdrops are the unmatched, non-suppressed detections of the last few frames. They take part in the
bi-softmax normalisation as negatives (memory id -1) but can never be claimed.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import torch
from torch import Tensor

BACKDROP_ID = -1  # memory id of every backdrop entry
UNTRACKED = -1  # track id of a detection that holds no track


class Backdrops(NamedTuple):
    """One frame's backdrop entry (boxes are not kept: backdrops are matched by appearance only)."""

    embeds: Tensor  # (B, D)
    labels: Tensor  # (B,) int64


class MemoryBank(NamedTuple):
    """What detections are matched against: tracks (id-ascending) then backdrops (newest first)."""

    embeds: Tensor  # (M, D)
    labels: Tensor  # (M,) int64
    ids: Tensor  # (M,) int64, BACKDROP_ID for backdrops


class TrackMemory:
    """Live tracks (one row per track, rows in ascending id order) and a backdrop ring.

    ``boxes`` rows are stored as the tracker passes them: (T, 4) xyxy, or (T, 5) with the score as
    a last column (mmdet's convention, used by the TAO tracker which compares scores).
    """

    def __init__(self, backdrop_frames: int = 0) -> None:
        if backdrop_frames < 0:
            raise ValueError(f"backdrop_frames must be >= 0, got {backdrop_frames}")
        self.backdrop_frames = backdrop_frames
        self.reset()

    def reset(self) -> None:
        """Forget every track and backdrop (start of a new video)."""
        self.ids = torch.zeros(0, dtype=torch.long)
        self.boxes = torch.zeros(0, 4)
        self.embeds = torch.zeros(0, 0)
        self.labels = torch.zeros(0, dtype=torch.long)
        self.last_frame = torch.zeros(0, dtype=torch.long)
        self.backdrops: deque[Backdrops] = deque(maxlen=self.backdrop_frames)

    @property
    def num_tracks(self) -> int:
        return self.ids.shape[0]

    @property
    def is_empty(self) -> bool:
        """No live track (backdrops alone do not count: they never trigger matching)."""
        return self.num_tracks == 0

    def check_compatible(self, embeds: Tensor) -> None:
        """Raise ``ValueError`` if ``embeds`` cannot join the stored ones (dim, dtype, device)."""
        if self.num_tracks:
            stored = self.embeds
        elif self.backdrops:
            stored = self.backdrops[0].embeds
        else:
            return
        if embeds.shape[1] != stored.shape[1]:
            raise ValueError(
                f"embeddings must have shape (N, {stored.shape[1]}) like the tracker memory, "
                f"got {tuple(embeds.shape)}"
            )
        if embeds.dtype != stored.dtype or embeds.device != stored.device:
            raise ValueError(
                f"embeddings must be {stored.dtype} on {stored.device} like the tracker memory, "
                f"got {embeds.dtype} on {embeds.device}"
            )

    def bank(self) -> MemoryBank:
        """Tracks then backdrops, concatenated for one affinity computation."""
        if not self.backdrops:
            return MemoryBank(self.embeds, self.labels, self.ids)
        num_backdrops = sum(entry.embeds.shape[0] for entry in self.backdrops)
        return MemoryBank(
            embeds=torch.cat([self.embeds, *(entry.embeds for entry in self.backdrops)]),
            labels=torch.cat([self.labels, *(entry.labels for entry in self.backdrops)]),
            ids=torch.cat([self.ids, self.ids.new_full((num_backdrops,), BACKDROP_ID)]),
        )

    def ids_or_untracked(self, rows: Tensor) -> Tensor:
        """Track id of each memory row in ``rows``; ``UNTRACKED`` where ``rows`` is negative."""
        return torch.cat([self.ids, self.ids.new_full((1,), UNTRACKED)]).index_select(
            0, rows.where(rows >= 0, self.num_tracks)
        )

    def update_tracks(
        self,
        rows: Tensor,
        boxes: Tensor,
        embeds: Tensor,
        labels: Tensor,
        frame_id: int,
        momentum: float,
    ) -> None:
        """Matched tracks take the new box and label; ``momentum`` weights the new embedding."""
        blended = (1 - momentum) * self.embeds.index_select(0, rows) + momentum * embeds
        self.embeds.index_copy_(0, rows, blended)
        self.boxes.index_copy_(0, rows, boxes)
        self.labels.index_copy_(0, rows, labels)
        self.last_frame.index_fill_(0, rows, frame_id)

    def add_tracks(
        self,
        ids: Tensor,
        boxes: Tensor,
        embeds: Tensor,
        labels: Tensor,
        frame_id: int,
    ) -> None:
        """Append newborn tracks; their ids exceed every stored id (rows stay id-ascending)."""
        last_frame = torch.full_like(ids, frame_id)
        if self.num_tracks == 0:
            self.ids, self.boxes, self.embeds = ids, boxes, embeds
            self.labels, self.last_frame = labels, last_frame
            return
        self.ids = torch.cat([self.ids, ids])
        self.boxes = torch.cat([self.boxes, boxes])
        self.embeds = torch.cat([self.embeds, embeds])
        self.labels = torch.cat([self.labels, labels])
        self.last_frame = torch.cat([self.last_frame, last_frame])

    def commit(
        self,
        claimed: Tensor | None,
        born: Tensor,
        ids: Tensor,
        boxes: Tensor,
        embeds: Tensor,
        labels: Tensor,
        frame_id: int,
        momentum: float,
    ) -> int:
        """Record one frame's associations; returns the number of tracks born.

        Detection ``i`` updates memory row ``claimed[i]`` when that is >= 0 (``claimed`` is None
        when nothing was matched) and starts track ``ids[i]`` when ``born[i]``.
        """
        if claimed is not None:
            rows = (claimed >= 0).nonzero().squeeze(1)
            if rows.numel():
                self.update_tracks(
                    claimed.index_select(0, rows),
                    boxes.index_select(0, rows),
                    embeds.index_select(0, rows),
                    labels.index_select(0, rows),
                    frame_id,
                    momentum,
                )
        newborn = born.nonzero().squeeze(1)
        if newborn.numel():
            self.add_tracks(
                ids.index_select(0, newborn),
                boxes.index_select(0, newborn),
                embeds.index_select(0, newborn),
                labels.index_select(0, newborn),
                frame_id,
            )
        return newborn.numel()

    def push_backdrops(self, embeds: Tensor, labels: Tensor) -> None:
        """Insert this frame's backdrops as the newest entry; the oldest past the ring falls out."""
        self.backdrops.appendleft(Backdrops(embeds, labels))

    def remove_expired(self, frame_id: int, max_age: int) -> None:
        """Remove the tracks with ``frame_id - last_frame >= max_age``."""
        alive = self.last_frame > frame_id - max_age
        if bool(alive.all()):
            return
        rows = alive.nonzero().squeeze(1)
        self.ids, self.boxes = self.ids.index_select(0, rows), self.boxes.index_select(0, rows)
        self.embeds, self.labels = (
            self.embeds.index_select(0, rows),
            self.labels.index_select(0, rows),
        )
        self.last_frame = self.last_frame.index_select(0, rows)
