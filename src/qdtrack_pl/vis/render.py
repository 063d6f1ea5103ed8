"""Draw a video's tracking results on its frames and write them as an mp4 or GIF.

The one renderer behind ``qdtrack-vis``, the notebooks and the wandb media of the tracking
callback: results are :class:`~qdtrack_pl.eval.mot_results.TrackResults` (0-based frame indices),
frames come from a MOTChallenge sequence folder (``<seq>/img1`` + ``seqinfo.ini``), an image
folder or a video file (:class:`~qdtrack_pl.data.loading.frames.FrameSource`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from qdtrack_pl.data.loading.frames import FrameSource
from qdtrack_pl.eval.mot_results import TrackResults, read_mot_results
from qdtrack_pl.vis.draw import draw_tracks
from qdtrack_pl.vis.video import write_video


def rows_of_frame(results: TrackResults, frame_index: int) -> TrackResults:
    """The rows of ``results`` on one 0-based frame."""
    mask = results.frame_indices == frame_index
    return TrackResults(*(np.asarray(field)[mask] for field in results))


def render_tracks(
    frames: Iterable[np.ndarray],
    results: TrackResults,
    class_names: Sequence[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    label_frames: bool = True,
) -> Iterator[np.ndarray]:
    """Yield frames ``start:stop:step`` (0-based) of ``frames`` with their results drawn: one
    box per row in its track's colour, labelled ``class:id`` (or ``id``)."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    names = list(class_names) if class_names else None
    for index, frame in enumerate(frames):
        if stop is not None and index >= stop:
            return
        if index < start or (index - start) % step:
            continue
        rows = rows_of_frame(results, index)
        known = rows.class_ids >= 0
        classes = rows.class_ids if names is not None and known.all() else None
        image = draw_tracks(
            frame, rows.boxes, rows.track_ids, classes, names if classes is not None else None
        )
        yield _label(image, f"frame {index + 1}") if label_frames else image


def _label(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((2, 2), text)
    draw.rectangle((0, 0, right + 2, bottom + 2), fill=(0, 0, 0))
    draw.text((2, 2), text, fill=(255, 255, 255))
    return np.asarray(canvas)


def sequence_source(path: str | Path) -> tuple[FrameSource, float | None]:
    """Frames of ``path`` and their frame rate if known: a MOTChallenge sequence folder
    (``seqinfo.ini`` names the image folder and frame rate), an image folder or a video file
    (:meth:`FrameSource.open`)."""
    source = FrameSource.open(path)
    return source, source.known_fps()


def write_tracks_video(
    results: TrackResults | str | Path,
    frames: str | Path | Iterable[np.ndarray],
    output: str | Path,
    fps: float | None = None,
    class_names: Sequence[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
) -> Path:
    """Render ``results`` (or a MOT results txt) on ``frames`` (a sequence folder, an image
    folder, a video file or an iterable of RGB frames) into ``output`` (.mp4 or .gif)."""
    if not isinstance(results, TrackResults):
        results = read_mot_results(results)
    source_fps = None
    if isinstance(frames, (str, Path)):
        frames, source_fps = sequence_source(frames)
    rate = fps or source_fps or 10.0
    rendered = render_tracks(frames, results, class_names, start=start, stop=stop, step=step)
    return write_video(output, rendered, fps=rate / step)
