"""Tracker memory: live tracks plus a short ring of backdrops (spec 3.2 state).

Life cycle of a track: **born** (``add_tracks``) -> **tracked** in every frame it is matched
(``update_tracks``, ``last_frame`` = that frame) -> **lost** while ``frame - last_frame`` is below
the memory length (still matchable, not output) -> **removed** (``remove_expired``). Rows are kept
in ascending id order (births always get the largest ids), which is the dict order of the original
implementation and therefore the column order of the affinity matrix.

Backdrops are the unmatched, non-suppressed detections of the last few frames. They take part in the
bi-softmax normalisation as negatives (memory id -1) but can never be claimed.

Embeddings are torch tensors on the detections' device; ids, labels, last frames and boxes are numpy
arrays on the host, where the trackers do their per-detection bookkeeping (see ``ops.host``).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.host import to_device

BACKDROP_ID = -1  # memory id of every backdrop entry
UNTRACKED = -1  # track id of a detection that holds no track


class Backdrops(NamedTuple):
    """One frame's backdrop entry (boxes are not kept: backdrops are matched by appearance only)."""

    embeds: Tensor  # (B, D)
    labels: np.ndarray  # (B,) int64


class MemoryBank(NamedTuple):
    """What detections are matched against: tracks (id-ascending) then backdrops (newest first)."""

    embeds: Tensor  # (M, D)
    labels: np.ndarray  # (M,) int64
    ids: np.ndarray  # (M,) int64, BACKDROP_ID for backdrops


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
        self.ids = np.zeros(0, dtype=np.int64)
        self.boxes = np.zeros((0, 4), dtype=np.float32)
        self.embeds = torch.zeros(0, 0)
        self.labels = np.zeros(0, dtype=np.int64)
        self.last_frame = np.zeros(0, dtype=np.int64)
        self.backdrops: deque[Backdrops] = deque(maxlen=self.backdrop_frames)

    @property
    def num_tracks(self) -> int:
        return len(self.ids)

    @property
    def is_empty(self) -> bool:
        """No live track (backdrops alone do not count: they never trigger matching)."""
        return not len(self.ids)

    def check_compatible(self, embeds: Tensor) -> None:
        """Raise ``ValueError`` if ``embeds`` cannot join the stored ones (dim, dtype, device)."""
        if len(self.ids):
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
        labels = np.concatenate([self.labels, *(entry.labels for entry in self.backdrops)])
        ids = np.full(len(labels), BACKDROP_ID)
        ids[: len(self.ids)] = self.ids
        embeds = torch.cat([self.embeds, *(entry.embeds for entry in self.backdrops)])
        return MemoryBank(embeds, labels, ids)

    def ids_or_untracked(self, rows: np.ndarray) -> np.ndarray:
        """Track id of each memory row in ``rows``; ``UNTRACKED`` where ``rows`` is -1."""
        return np.append(self.ids, UNTRACKED)[rows]  # row -1 picks the appended UNTRACKED

    def update_tracks(
        self,
        rows: np.ndarray,
        boxes: np.ndarray,
        embeds: Tensor,
        labels: np.ndarray,
        frame_id: int,
        momentum: float,
    ) -> None:
        """Matched tracks take the new box and label; ``momentum`` weights the new embedding."""
        index = to_device(rows, self.embeds.device)
        blended = (1 - momentum) * self.embeds.index_select(0, index) + momentum * embeds
        self.embeds.index_copy_(0, index, blended)
        self.boxes[rows] = boxes
        self.labels[rows] = labels
        self.last_frame[rows] = frame_id

    def add_tracks(
        self,
        ids: np.ndarray,
        boxes: np.ndarray,
        embeds: Tensor,
        labels: np.ndarray,
        frame_id: int,
    ) -> None:
        """Append newborn tracks; their ids exceed every stored id (rows stay id-ascending)."""
        last_frame = np.full(len(ids), frame_id)
        if not len(self.ids):
            self.ids, self.boxes, self.embeds = ids, boxes, embeds
            self.labels, self.last_frame = labels, last_frame
            return
        self.ids = np.concatenate([self.ids, ids])
        self.boxes = np.concatenate([self.boxes, boxes])
        self.embeds = torch.cat([self.embeds, embeds])
        self.labels = np.concatenate([self.labels, labels])
        self.last_frame = np.concatenate([self.last_frame, last_frame])

    def commit(
        self,
        claimed: np.ndarray,
        born: np.ndarray,
        ids: np.ndarray,
        boxes: np.ndarray,
        embeds: Tensor,
        labels: np.ndarray,
        frame_id: int,
        momentum: float,
    ) -> int:
        """Record one frame's associations; returns the number of tracks born.

        Detection ``i`` updates memory row ``claimed[i]`` when that is >= 0 and starts track
        ``ids[i]`` when ``born[i]``. Arrays are per detection; ``embeds`` is (N, D).
        """
        matched = (claimed >= 0).nonzero()[0]
        if matched.size:
            self.update_tracks(
                claimed[matched],
                boxes[matched],
                embeds.index_select(0, to_device(matched, embeds.device)),
                labels[matched],
                frame_id,
                momentum,
            )
        newborn = born.nonzero()[0]
        if newborn.size:
            self.add_tracks(
                ids[newborn],
                boxes[newborn],
                embeds.index_select(0, to_device(newborn, embeds.device)),
                labels[newborn],
                frame_id,
            )
        return newborn.size

    def push_backdrops(self, embeds: Tensor, labels: np.ndarray) -> None:
        """Insert this frame's backdrops as the newest entry; the oldest past the ring falls out."""
        self.backdrops.appendleft(Backdrops(embeds, labels))

    def remove_expired(self, frame_id: int, max_age: int) -> None:
        """Remove the tracks with ``frame_id - last_frame >= max_age``."""
        alive = self.last_frame > frame_id - max_age
        if alive.all():
            return
        rows = alive.nonzero()[0]
        self.ids, self.boxes = self.ids[rows], self.boxes[rows]
        self.labels, self.last_frame = self.labels[rows], self.last_frame[rows]
        self.embeds = self.embeds.index_select(0, to_device(rows, self.embeds.device))
