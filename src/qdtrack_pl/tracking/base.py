"""The tracker interface every tracker implements, and the input checks at its boundary.

A tracker consumes one frame of detections at a time, in video order, and says which of them it
outputs under which identity. It never rescales or edits boxes; the caller keeps the detections and
uses ``det_indices`` to pick the rows to write.
"""

from __future__ import annotations

import operator
from typing import NamedTuple, Protocol

import numba
import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.host import to_device
from qdtrack_pl.tracking.memory import UNTRACKED, TrackMemory


class TrackerOutput(NamedTuple):
    """The detections output in this frame, in the tracker's processing order."""

    track_ids: Tensor  # (K,) int64, consecutive per video from 0
    det_indices: Tensor  # (K,) int64 indices into the arrays passed to ``update``
    scores: (
        Tensor  # (K,) the output score (the detection's; TaoTracker smooths it with the track's)
    )


class Tracker(Protocol):
    """What the evaluation loop relies on."""

    def reset(self) -> None: ...

    def update(
        self,
        boxes: Tensor,
        scores: Tensor,
        class_ids: Tensor,
        embeddings: Tensor,
        frame_id: int,
    ) -> TrackerOutput: ...


def validate_detections(
    boxes: Tensor, scores: Tensor, class_ids: Tensor, embeddings: Tensor, frame_id: int
) -> int:
    """Check one frame's detections; return the 0-based ``frame_id`` as an ``int``.

    Raises ``ValueError`` naming the offending argument and the expected shape/dtype/device.
    """
    for name, value in (
        ("boxes", boxes),
        ("scores", scores),
        ("class_ids", class_ids),
        ("embeddings", embeddings),
    ):
        if not isinstance(value, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    n = boxes.shape[0] if boxes.dim() == 2 else -1
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) xyxy, got {tuple(boxes.shape)}")
    if scores.shape != (n,):
        raise ValueError(f"scores must have shape ({n},), got {tuple(scores.shape)}")
    if class_ids.shape != (n,):
        raise ValueError(f"class_ids must have shape ({n},), got {tuple(class_ids.shape)}")
    if embeddings.dim() != 2 or embeddings.shape[0] != n:
        raise ValueError(f"embeddings must have shape ({n}, D), got {tuple(embeddings.shape)}")
    for name, value in (("boxes", boxes), ("scores", scores), ("embeddings", embeddings)):
        if not value.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {value.dtype}")
    if class_ids.dtype != torch.int64:
        raise ValueError(f"class_ids must be int64, got {class_ids.dtype}")
    for name, value in (("scores", scores), ("class_ids", class_ids), ("embeddings", embeddings)):
        if value.device != boxes.device:
            raise ValueError(f"{name} is on {value.device} but boxes are on {boxes.device}")
    if isinstance(frame_id, bool):
        raise ValueError(f"frame_id must be an int, got {frame_id!r}")
    try:
        frame = operator.index(frame_id)
    except TypeError:
        raise ValueError(f"frame_id must be an int, got {type(frame_id).__name__}") from None
    if frame < 0:
        raise ValueError(f"frame_id must be >= 0 (0-based within the video), got {frame}")
    return frame


class MemoryTracker:
    """What the memory-based trackers share: the track memory, the per-video id counter, input
    checks with the reset at frame 0, and building the output; ``assign_ids`` numbers newborn
    tracks for the trackers without suppression. Subclasses set ``init_score_thr`` and implement
    ``update``, calling ``start_frame`` first."""

    init_score_thr: float

    def __init__(self, backdrop_frames: int = 0) -> None:
        self.memory = TrackMemory(backdrop_frames=backdrop_frames)
        self.num_tracks = 0  # id counter of the current video

    def reset(self) -> None:
        """Forget all tracks and backdrops and restart ids at 0."""
        self.memory.reset()
        self.num_tracks = 0

    def start_frame(
        self, boxes: Tensor, scores: Tensor, class_ids: Tensor, embeddings: Tensor, frame_id: int
    ) -> int:
        """Validate one frame's inputs; frame 0 starts a new video (reset). Returns ``frame_id``."""
        frame_id = validate_detections(boxes, scores, class_ids, embeddings, frame_id)
        if frame_id == 0:
            self.reset()
        return frame_id

    def assign_ids(self, claimed: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Track id per detection (in processing order) and the newborn mask.

        A detection keeps the id of the memory row it ``claimed``; an unclaimed one scoring above
        ``init_score_thr`` starts a track, ids consecutive in processing order; the rest get
        ``UNTRACKED``. (``QDTracker`` decides births in its compiled step, with suppression.)"""
        ids = self.memory.ids_or_untracked(claimed)
        born = (ids == UNTRACKED) & (scores > self.init_score_thr)
        return born, np.where(born, born.cumsum() + (self.num_tracks - 1), ids)

    @staticmethod
    def output(
        ids: np.ndarray, order: np.ndarray, scores: np.ndarray, like: Tensor
    ) -> TrackerOutput:
        """The detections holding a track id, as tensors on ``like``'s device (scores in its
        dtype); ``order`` maps processing order back to the caller's detection indices."""
        track_ids, det_indices, out_scores = _tracked_rows(ids, order, scores)
        device = like.device
        return TrackerOutput(
            track_ids=to_device(track_ids, device),
            det_indices=to_device(det_indices, device),
            scores=to_device(out_scores, device, like.dtype),
        )


@numba.njit(cache=True)
def _tracked_rows(
    ids: np.ndarray, order: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``MemoryTracker.output``'s selection in one compiled call (a frame's fixed cost is mostly
    calls): the ids, ``order`` entries and scores of the rows with ``ids >= 0``."""
    rows = np.flatnonzero(ids >= 0)
    return ids[rows], order[rows], scores[rows]
