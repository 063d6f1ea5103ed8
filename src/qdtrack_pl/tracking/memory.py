"""Tracker memory: live tracks plus a short ring of backdrops (docs/method.md §3.2, State).

Life cycle of a track: **born** -> **tracked** in every frame it is matched (``last_frame`` = that
frame) -> **lost** while ``frame - last_frame`` is below the memory length (still matchable, not
output) -> **removed**; ``commit`` applies one frame's births, matches and removals. Rows are kept
in ascending id order (births always get the largest ids), which is the dict order of the original
implementation and therefore the column order of the affinity matrix.

Backdrops are the unmatched, non-suppressed detections of the last few frames. They take part in the
bi-softmax normalisation as negatives but can never be claimed. They are stored after the tracks in
one table (``bank``), newest frame first, so the affinity is computed against the table as it
stands, without concatenating it every frame.

Everything is a numpy array on the host, embeddings included: the trackers do their per-frame
bookkeeping there, the commit as one compiled pass (see ``ops.host``).
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import NamedTuple

import numba
import numpy as np

UNTRACKED = -1  # track id of a detection that holds no track


class MemoryBank(NamedTuple):
    """What detections are matched against: the ``num_tracks`` tracks (id-ascending, row ``r``
    is track ``ids[r]``) then the backdrops (newest first)."""

    embeds: np.ndarray  # (M, D)
    labels: np.ndarray  # (M,) int64


class TrackMemory:
    """Live tracks (one row per track, rows in ascending id order) and a backdrop ring.

    ``bank`` holds the embeddings and labels of the tracks (its first ``num_tracks`` rows, also
    seen as ``embeds`` and ``labels``) then of the backdrops. ``boxes`` rows are stored as the
    tracker passes them: (T, 4) xyxy, or (T, 5) with the score as a last column (mmdet's
    convention, used by the TAO tracker which compares scores).
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
        self.last_frame = np.zeros(0, dtype=np.int64)
        self.bank = MemoryBank(np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64))
        # backdrop rows contributed by each of the last frames, newest first
        self.backdrop_sizes: deque[int] = deque(maxlen=self.backdrop_frames)

    @property
    def num_tracks(self) -> int:
        return len(self.ids)

    @property
    def num_backdrops(self) -> int:
        return len(self.bank.labels) - len(self.ids)

    @property
    def embeds(self) -> np.ndarray:
        """(T, D) track embeddings (a view of the bank)."""
        return self.bank.embeds[: len(self.ids)]

    @property
    def labels(self) -> np.ndarray:
        """(T,) track labels (a view of the bank)."""
        return self.bank.labels[: len(self.ids)]

    @property
    def is_empty(self) -> bool:
        """No live track (backdrops alone do not count: they never trigger matching)."""
        return not len(self.ids)

    def check_compatible(self, embeds: np.ndarray) -> None:
        """Raise ``ValueError`` if ``embeds`` cannot join the stored ones (dim, dtype)."""
        stored = self.bank.embeds
        if not len(stored):
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

    def ids_or_untracked(self, rows: np.ndarray) -> np.ndarray:
        """Track id of each memory row in ``rows``; ``UNTRACKED`` where ``rows`` is -1."""
        ids: np.ndarray = np.append(self.ids, UNTRACKED)[rows]  # row -1: the appended UNTRACKED
        return ids

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
        backdrop: np.ndarray | None = None,
    ) -> int:
        """Record one frame's associations, then forget the tracks with ``frame_id - last_frame >=
        max_age``; returns the number of tracks born.

        Detection ``i`` updates memory row ``claimed[i]`` when that is >= 0 (its box and label
        replace the track's, its embedding weighs ``momentum``) and starts track ``ids[i]`` when
        ``born[i]``. With a ``backdrop`` mask the marked detections become this frame's backdrop
        entry (the oldest entry past the ring falls out). Arrays are per detection; ``embeds`` is
        (N, D).
        """
        # the compiled pass does not check bounds: check the shapes here (cheaply: this runs
        # every frame, the message is only built on a mismatch)
        per_detection = {
            "born": born,
            "ids": ids,
            "boxes": boxes,
            "embeds": embeds,
            "labels": labels,
        }
        if backdrop is not None:
            per_detection["backdrop"] = backdrop
        if {len(values) for values in per_detection.values()} != {len(claimed)}:
            for name, values in per_detection.items():
                if len(values) != len(claimed):
                    raise ValueError(f"{name} has {len(values)} rows, claimed has {len(claimed)}")
        if not self.backdrop_frames:
            backdrop = None  # no ring to keep them in
        # older entries that stay in the ring once this frame's joins it
        kept_backdrops = sum(islice(self.backdrop_sizes, max(self.backdrop_frames - 1, 0)))
        tracks = (self.ids, self.boxes, self.last_frame)
        detections = (ids, boxes, embeds, labels)
        tracks, bank, num_born, num_backdrops = _commit(
            tracks,
            self.bank,
            detections,
            claimed,
            born,
            backdrop,
            kept_backdrops,
            frame_id,
            momentum,
            max_age,
        )
        self.ids, self.boxes, self.last_frame = tracks
        self.bank = MemoryBank(*bank)
        if backdrop is not None:
            self.backdrop_sizes.appendleft(num_backdrops)
        return num_born


@numba.njit(cache=True)
def _commit(
    tracks: tuple[np.ndarray, np.ndarray, np.ndarray],
    bank: tuple[np.ndarray, np.ndarray],
    detections: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    claimed: np.ndarray,
    born: np.ndarray,
    backdrop: np.ndarray | None,
    kept_backdrops: int,
    frame_id: int,
    momentum: float,
    max_age: int,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], int, int]:
    """``TrackMemory.commit`` as one compiled pass. Returns the new track (ids, boxes,
    last_frame) and bank (embeds, labels) tables, the number born and the number of new
    backdrops. Rows: surviving tracks in their order, newborns and then new backdrops in detection
    order, then the first ``kept_backdrops`` old backdrop rows. The embedding blend is the
    original's, ``(1 - m) * old + m * new`` in the embeddings' precision with each product
    rounded (no fused multiply-add)."""
    ids, boxes, last_frame = tracks
    embeds, labels = bank
    det_ids, det_boxes, det_embeds, det_labels = detections
    num_tracks = len(ids)
    matched_by = np.full(num_tracks, -1, dtype=np.int64)  # the detection updating each row
    for i in range(len(claimed)):
        if claimed[i] >= num_tracks:
            raise ValueError("TrackMemory.commit: a claimed row is not a track (row >= num_tracks)")
        if claimed[i] >= 0:
            matched_by[claimed[i]] = i
    oldest = frame_id - max_age  # tracks last seen at or before this frame expire
    seen_now = frame_id > oldest  # tracks matched or born in this frame survive it
    keep = np.where(matched_by >= 0, seen_now, last_frame > oldest)
    num_born = born.sum()
    num_new_backdrops = 0 if backdrop is None else backdrop.sum()
    size = keep.sum() + (num_born if seen_now else 0)
    bank_size = size + num_new_backdrops + kept_backdrops

    out_ids = np.empty(size, dtype=np.int64)
    out_boxes = np.empty((size, det_boxes.shape[1]), dtype=det_boxes.dtype)
    out_last_frame = np.full(size, frame_id, dtype=np.int64)
    out_embeds = np.empty((bank_size, det_embeds.shape[1]), dtype=det_embeds.dtype)
    out_labels = np.empty(bank_size, dtype=np.int64)
    old_weight = det_embeds.dtype.type(1 - momentum)
    new_weight = det_embeds.dtype.type(momentum)
    row = 0
    for track in range(num_tracks):
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
    if backdrop is not None:
        for i in range(len(backdrop)):
            if backdrop[i]:
                out_embeds[row] = det_embeds[i]
                out_labels[row] = det_labels[i]
                row += 1
    for old in range(num_tracks, num_tracks + kept_backdrops):
        out_embeds[row] = embeds[old]
        out_labels[row] = labels[old]
        row += 1
    tracks_out = (out_ids, out_boxes, out_last_frame)
    return tracks_out, (out_embeds, out_labels), num_born, num_new_backdrops
