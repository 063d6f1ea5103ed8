"""Tracking results per video, and their MOTChallenge text format.

Inside the code a video's results are :class:`TrackResults`: parallel arrays with 0-based frame
indices (``Frame.index``), ``xyxy`` boxes and 0-based class ids. On disk they are MOTChallenge rows
``frame, id, x, y, w, h, score, class, -1, -1``: ``frame`` is the dataset's own frame number
(``Frame.source_frame_id``; 1-based ``index + 1`` without a video), boxes are ``xywh`` and the class
is 1-based, or -1 when unknown. TrackEval's MOTChallenge reader takes that eighth column as the
class, and a pedestrian-only tracker writes 1 there, which it accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from torch import Tensor

from qdtrack_pl.data.index import Video
from qdtrack_pl.tracking.base import TrackerOutput

BOX_DECIMALS = 2  # MOTChallenge convention: hundredths of a pixel
SCORE_DECIMALS = 4
UNKNOWN_CLASS = -1
MIN_COLUMNS = 7  # frame, id, x, y, w, h, score; the class column is optional
CLASS_COLUMN = 7


class TrackResults(NamedTuple):
    """One video's tracking output, one row per (frame, track)."""

    frame_indices: np.ndarray  # (R,) int64, 0-based Frame.index
    track_ids: np.ndarray  # (R,) int64, unique within a frame
    boxes: np.ndarray  # (R, 4) float32, xyxy pixels
    scores: np.ndarray  # (R,) float32
    class_ids: np.ndarray  # (R,) int64, 0-based; UNKNOWN_CLASS (-1) if not known

    @classmethod
    def empty(cls) -> TrackResults:
        return cls(
            frame_indices=np.zeros(0, np.int64),
            track_ids=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.int64),
        )

    @classmethod
    def coerce(cls, rows: Any, name: str = "results") -> TrackResults:
        """Validated copy of anything with the five fields (arrays or lists) -> TrackResults.

        Raises ``ValueError`` naming ``name`` and the field whose shape or values are wrong.
        """
        try:
            fields = {field: np.asarray(getattr(rows, field)) for field in cls._fields}
        except AttributeError as err:
            raise ValueError(f"{name}: expected the fields {cls._fields}, {err}") from None
        num_rows = len(fields["track_ids"])
        fields["boxes"] = (
            fields["boxes"].reshape(-1, 4) if fields["boxes"].size == 0 else fields["boxes"]
        )
        for field, value in fields.items():
            expected = (num_rows, 4) if field == "boxes" else (num_rows,)
            if value.shape != expected:
                raise ValueError(f"{name}: {field} must have shape {expected}, got {value.shape}")
        out = cls(
            frame_indices=_as_int(fields["frame_indices"], f"{name}: frame_indices"),
            track_ids=_as_int(fields["track_ids"], f"{name}: track_ids"),
            boxes=fields["boxes"].astype(np.float32),
            scores=fields["scores"].astype(np.float32),
            class_ids=_as_int(fields["class_ids"], f"{name}: class_ids"),
        )
        if num_rows and out.frame_indices.min() < 0:
            raise ValueError(
                f"{name}: frame_indices must be >= 0 (0-based), got {out.frame_indices.min()}"
            )
        if num_rows and out.class_ids.min() < UNKNOWN_CLASS:
            raise ValueError(
                f"{name}: class_ids must be >= 0 or {UNKNOWN_CLASS}, got {out.class_ids.min()}"
            )
        return out


class TrackResultsBuilder:
    """One video's track rows, appended frame by frame in order: what every caller of a tracker
    (the evaluation callback, ``qdtrack-track``, the ablation) collects."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, ...]] = []
        self.last_frame = -1

    def add(
        self,
        frame_index: int,
        output: TrackerOutput,
        boxes: Tensor,
        class_ids: Tensor,
        box_scale: float = 1.0,
    ) -> TrackResults:
        """Record the rows ``output`` picks from this frame's ``boxes`` (divided by
        ``box_scale``) and ``class_ids``; returns just this frame's rows."""
        keep = output.det_indices
        rows = TrackResults(
            frame_indices=np.full(len(keep), frame_index, np.int64),
            track_ids=output.track_ids.cpu().numpy().astype(np.int64),
            boxes=(boxes[keep] / box_scale).cpu().numpy().astype(np.float32).reshape(-1, 4),
            scores=output.scores.cpu().numpy().astype(np.float32),
            class_ids=class_ids[keep].cpu().numpy().astype(np.int64),
        )
        self._parts.append(tuple(rows))
        self.last_frame = frame_index
        return rows

    def build(self) -> TrackResults:
        if not self._parts:
            return TrackResults.empty()
        return TrackResults(*(np.concatenate(column) for column in zip(*self._parts, strict=True)))


def _as_int(values: np.ndarray, what: str) -> np.ndarray:
    """int64 copy; float input must hold whole numbers."""
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        return values.astype(np.int64)
    raise ValueError(f"{what} must be integers, got dtype {values.dtype}")


def write_mot_results(path: str | Path, results: Any, video: Video | None = None) -> Path:
    """Write one video's results as MOTChallenge rows sorted by (frame, id); returns the path.

    With ``video`` the frame column is each frame's ``source_frame_id``, otherwise ``index + 1``.
    """
    path = Path(path)
    rows = TrackResults.coerce(results, name=str(path))
    if video is None:
        frame_numbers = rows.frame_indices + 1
    else:
        if len(rows.frame_indices) and rows.frame_indices.max() >= len(video):
            raise ValueError(
                f"{path}: frame index {rows.frame_indices.max()} is beyond video {video.name!r} "
                f"({len(video)} frames)"
            )
        source_ids = np.array([f.source_frame_id for f in video.frames], np.int64)
        frame_numbers = source_ids[rows.frame_indices]
    order = np.lexsort((rows.track_ids, frame_numbers))
    xywh = rows.boxes.astype(np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    classes = np.where(rows.class_ids >= 0, rows.class_ids + 1, UNKNOWN_CLASS)
    lines = [
        f"{frame_numbers[i]},{rows.track_ids[i]},"
        + ",".join(f"{v:.{BOX_DECIMALS}f}" for v in xywh[i])
        + f",{rows.scores[i]:.{SCORE_DECIMALS}f},{classes[i]},-1,-1\n"
        for i in order
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def read_mot_results(path: str | Path, video: Video | None = None) -> TrackResults:
    """Read MOTChallenge rows back into :class:`TrackResults`.

    With ``video`` each frame number is looked up among its ``source_frame_id``s, otherwise it is
    taken as 1-based. A missing or non-positive class column means unknown (-1), as in MOTChallenge
    submissions, whose eighth column is an unused world coordinate (-1). Raises ``ValueError``
    naming the file and line of any malformed row.
    """
    path = Path(path)
    frame_index = None if video is None else {f.source_frame_id: f.index for f in video.frames}
    columns: list[list[float]] = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < MIN_COLUMNS:
            raise ValueError(
                f"{where}: expected at least {MIN_COLUMNS} comma-separated values "
                f"(frame, id, x, y, w, h, score[, class, ...]), got {len(parts)}: {line!r}"
            )
        try:
            values = [float(p) for p in parts[: CLASS_COLUMN + 1]]
        except ValueError:
            raise ValueError(f"{where}: non-numeric value in {line!r}") from None
        frame, track_id = values[0], values[1]
        if not (frame.is_integer() and track_id.is_integer()):
            raise ValueError(f"{where}: frame and id must be integers, got {line!r}")
        if frame_index is not None and video is not None:
            if int(frame) not in frame_index:
                raise ValueError(
                    f"{where}: frame {int(frame)} is not a frame of video {video.name!r}"
                )
            index = frame_index[int(frame)]
        elif frame < 1:
            raise ValueError(f"{where}: frame numbers are 1-based, got {int(frame)}")
        else:
            index = int(frame) - 1
        cls = values[CLASS_COLUMN] if len(values) > CLASS_COLUMN else UNKNOWN_CLASS
        if not float(cls).is_integer():
            raise ValueError(f"{where}: class must be an integer, got {line!r}")
        columns.append(
            [index, track_id, *values[2:6], values[6], cls - 1 if cls >= 1 else UNKNOWN_CLASS]
        )
    if not columns:
        return TrackResults.empty()
    table = np.asarray(columns, np.float64)
    boxes = table[:, 2:6].copy()
    boxes[:, 2:] += boxes[:, :2]
    return TrackResults(
        frame_indices=table[:, 0].astype(np.int64),
        track_ids=table[:, 1].astype(np.int64),
        boxes=boxes.astype(np.float32),
        scores=table[:, 6].astype(np.float32),
        class_ids=table[:, 7].astype(np.int64),
    )
