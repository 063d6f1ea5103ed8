"""Tracker memory: live tracks plus a short ring of backdrops (spec 3.2 state).

Life cycle of a track: **born** -> **tracked** in every frame it is matched (``last_frame`` = that
frame) -> **lost** while ``frame - last_frame`` is below the memory length (still matchable, not
output) -> **removed**; ``commit`` applies one frame's births, matches and removals. Rows are kept
in ascending id order (births always get the largest ids), which is the dict order of the original
implementation and therefore the column order of the affinity matrix.

Backdrops are the unmatched, non-suppressed detections of the last few frames. They take part in the
bi-softmax normalisation as negatives (memory id -1) but can never be claimed.

Everything is a numpy array on the host, embeddings included: the trackers do their per-frame
bookkeeping there, the commit as one compiled pass (see ``ops.host``).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numba
import numpy as np

BACKDROP_ID = -1  # memory id of every backdrop entry
UNTRACKED = -1  # track id of a detection that holds no track


class Backdrops(NamedTuple):
    """One frame's backdrop entry (boxes are not kept: backdrops are matched by appearance only)."""

    embeds: np.ndarray  # (B, D)
    labels: np.ndarray  # (B,) int64


class MemoryBank(NamedTuple):
    """What detections are matched against: tracks (id-ascending) then backdrops (newest first)."""

    embeds: np.ndarray  # (M, D)
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
        self.embeds = np.zeros((0, 0), dtype=np.float32)
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

    def check_compatible(self, embeds: np.ndarray) -> None:
        """Raise ``ValueError`` if ``embeds`` cannot join the stored ones (dim, dtype)."""
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
        if embeds.dtype != stored.dtype:
            raise ValueError(
                f"embeddings must be {stored.dtype} like the tracker memory, got {embeds.dtype}"
            )

    def bank(self) -> MemoryBank:
        """Tracks then backdrops, concatenated for one affinity computation."""
        if not self.backdrops:
            return MemoryBank(self.embeds, self.labels, self.ids)
        labels = np.concatenate([self.labels, *(entry.labels for entry in self.backdrops)])
        ids = np.full(len(labels), BACKDROP_ID)
        ids[: len(self.ids)] = self.ids
        embeds = np.concatenate([self.embeds, *(entry.embeds for entry in self.backdrops)])
        return MemoryBank(embeds, labels, ids)

    def ids_or_untracked(self, rows: np.ndarray) -> np.ndarray:
        """Track id of each memory row in ``rows``; ``UNTRACKED`` where ``rows`` is -1."""
        return np.append(self.ids, UNTRACKED)[rows]  # row -1 picks the appended UNTRACKED

    def commit(
        self,
        claimed: np.ndarray,
        born: np.ndarray,
        ids: np.ndarray,
        boxes: np.ndarray,
        embeds: np.ndarray,
        labels: np.ndarray,
        frame_id: int,
        momentum: float,
        max_age: int,
    ) -> int:
        """Record one frame's associations, then forget the tracks with ``frame_id - last_frame >=
        max_age``; returns the number of tracks born.

        Detection ``i`` updates memory row ``claimed[i]`` when that is >= 0 (its box and label
        replace the track's, its embedding weighs ``momentum``) and starts track ``ids[i]`` when
        ``born[i]``. Arrays are per detection; ``embeds`` is (N, D).
        """
        tracks = (self.ids, self.boxes, self.embeds, self.labels, self.last_frame)
        detections = (ids, boxes, embeds, labels)
        *tracks, num_born = _commit(tracks, detections, claimed, born, frame_id, momentum, max_age)
        self.ids, self.boxes, self.embeds, self.labels, self.last_frame = tracks
        return num_born

    def push_backdrops(self, embeds: np.ndarray, labels: np.ndarray) -> None:
        """Insert this frame's backdrops as the newest entry; the oldest past the ring falls out."""
        self.backdrops.appendleft(Backdrops(embeds, labels))


@numba.njit(cache=True)
def _commit(
    tracks: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    detections: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    claimed: np.ndarray,
    born: np.ndarray,
    frame_id: int,
    momentum: float,
    max_age: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``TrackMemory.commit`` as one compiled pass: the new (ids, boxes, embeds, labels,
    last_frame) rows, surviving tracks in their order then newborns in detection order, and the
    number born. The embedding blend is the original's, ``(1 - m) * old + m * new`` in the
    embeddings' precision with each product rounded (no fused multiply-add)."""
    ids, boxes, embeds, labels, last_frame = tracks
    det_ids, det_boxes, det_embeds, det_labels = detections
    matched_by = np.full(len(ids), -1, dtype=np.int64)  # the detection updating each row
    for i in range(len(claimed)):
        if claimed[i] >= 0:
            matched_by[claimed[i]] = i
    oldest = frame_id - max_age  # tracks last seen at or before this frame expire
    seen_now = frame_id > oldest  # tracks matched or born in this frame survive it
    keep = np.where(matched_by >= 0, seen_now, last_frame > oldest)
    num_born = born.sum()
    size = keep.sum() + (num_born if seen_now else 0)

    out_ids = np.empty(size, dtype=np.int64)
    out_boxes = np.empty((size, det_boxes.shape[1]), dtype=det_boxes.dtype)
    out_embeds = np.empty((size, det_embeds.shape[1]), dtype=det_embeds.dtype)
    out_labels = np.empty(size, dtype=np.int64)
    out_last_frame = np.full(size, frame_id, dtype=np.int64)
    old_weight = det_embeds.dtype.type(1 - momentum)
    new_weight = det_embeds.dtype.type(momentum)
    row = 0
    for track in range(len(ids)):
        if not keep[track]:
            continue
        out_ids[row] = ids[track]
        i = matched_by[track]
        if i >= 0:
            out_boxes[row] = det_boxes[i]
            out_labels[row] = det_labels[i]
            for d in range(det_embeds.shape[1]):
                out_embeds[row, d] = old_weight * embeds[track, d] + new_weight * det_embeds[i, d]
        else:
            out_boxes[row] = boxes[track]
            out_embeds[row] = embeds[track]
            out_labels[row] = labels[track]
            out_last_frame[row] = last_frame[track]
        row += 1
    for i in range(len(born)):
        if born[i] and seen_now:
            out_ids[row] = det_ids[i]
            out_boxes[row] = det_boxes[i]
            out_embeds[row] = det_embeds[i]
            out_labels[row] = det_labels[i]
            row += 1
    return out_ids, out_boxes, out_embeds, out_labels, out_last_frame, num_born
