"""Waymo Open (perception, 2D camera labels) reader of the converted layout -> VideoIndex.

The official per-segment TFRecords hold protobuf ``Frame`` messages that only the Waymo package can
parse, so they are converted once by ``qdtrack-convert-waymo`` (``qdtrack_pl.tools.convert_waymo``)
into one json per segment plus the camera jpgs, which this module reads without any Waymo or
TensorFlow dependency. Each of the five cameras of a segment is a separate video; the classes are
vehicle / pedestrian / cyclist, signs and unknown objects are dropped (counted in ``metadata``),
and the track id is the per-camera object id string made dense per video. Upstream QDTrack ships no
Waymo pipeline (docs/method.md §4.6, §8.15): this layout is ours.

Converted layout (``<root>`` = ``data.root``)::

    annotations/<split>/<segment>.json
    images/<split>/<segment>/<CAMERA>/<frame:06d>.jpg

Segment json: ``{"segment": str, "fps": float, "cameras": [{"name": CAMERA, "width": int,
"height": int, "frames": [{"frame_index": int, "timestamp_micros": int, "file_name": str,
"labels": [{"id": str, "type": "TYPE_VEHICLE" | ..., "box": [x1, y1, x2, y2]}]}]}]}``,
``file_name`` relative to ``images/<split>/``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import NativeDataModule
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError, require_path
from qdtrack_pl.data.formats.json_fields import field, load_json, number_list
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex

DOWNLOAD_URL = "https://waymo.com/open/download/"
CAMERAS: tuple[str, ...] = ("FRONT", "FRONT_LEFT", "FRONT_RIGHT", "SIDE_LEFT", "SIDE_RIGHT")
CLASS_NAMES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist")
CLASS_OF_TYPE: dict[str, str] = {
    "TYPE_VEHICLE": "vehicle",
    "TYPE_PEDESTRIAN": "pedestrian",
    "TYPE_CYCLIST": "cyclist",
}
DROPPED_TYPES: frozenset[str] = frozenset({"TYPE_SIGN", "TYPE_UNKNOWN"})


def segment_files(root: Path, split: str) -> list[Path]:
    """The converted segment jsons of a split, checked to exist."""
    folder = require_path(
        Path(root) / "annotations" / split,
        dataset="Waymo Open",
        what=f"converted annotations of split {split!r} (run qdtrack-convert-waymo first)",
        download_url=DOWNLOAD_URL,
    )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DatasetNotFoundError(
            f"Waymo Open: no converted segment jsons in {folder}; run qdtrack-convert-waymo on the "
            f"official TFRecords (see docs/datasets.md)"
        )
    return files


def read_waymo_segment(
    path: Path, image_root: Path, cameras: tuple[str, ...], dropped: Counter
) -> list[Video]:
    """The videos (one per selected camera) of one converted segment json."""
    data = load_json(path)
    where = str(path)
    segment = field(data, "segment", str, where)
    fps = float(field(data, "fps", (int, float), where))
    videos = []
    for c, camera in enumerate(field(data, "cameras", list, where)):
        at = f"{where}: cameras[{c}]"
        name = field(camera, "name", str, at)
        if name not in CAMERAS:
            raise DatasetFormatError(f"{at}: field 'name': expected one of {CAMERAS}, got {name!r}")
        if name not in cameras:
            continue
        records = sorted(
            field(camera, "frames", list, at), key=lambda r: field(r, "frame_index", int, at)
        )
        track_ids: dict[str, int] = {}
        frames = tuple(
            Frame(
                index=rank,
                image_path=image_root / field(record, "file_name", str, f"{at}: frames[{rank}]"),
                annotations=_labels(record, f"{at}: frames[{rank}]", track_ids, dropped),
                source_frame_id=record["frame_index"],
            )
            for rank, record in enumerate(records)
        )
        videos.append(
            Video(
                name=f"{segment}_{name}",
                frames=frames,
                fps=fps,
                width=field(camera, "width", int, at),
                height=field(camera, "height", int, at),
            )
        )
    return videos


def _labels(
    record: dict, where: str, track_ids: dict[str, int], dropped: Counter
) -> FrameAnnotations:
    boxes, ids, classes = [], [], []
    for i, label in enumerate(field(record, "labels", list, where)):
        at = f"{where}: labels[{i}]"
        label_type = field(label, "type", str, at)
        if label_type in DROPPED_TYPES:
            dropped[label_type] += 1
            continue
        if label_type not in CLASS_OF_TYPE:
            raise DatasetFormatError(
                f"{at}: field 'type': expected one of "
                f"{sorted(CLASS_OF_TYPE) + sorted(DROPPED_TYPES)}, got {label_type!r}"
            )
        boxes.append(number_list(label, "box", 4, at))
        ids.append(track_ids.setdefault(field(label, "id", str, at), len(track_ids)))
        classes.append(CLASS_NAMES.index(CLASS_OF_TYPE[label_type]))
    if not boxes:
        return FrameAnnotations.empty()
    return FrameAnnotations.from_rows(boxes, ids, classes)


def read_waymo(root: Path, split: str, *, cameras: tuple[str, ...] = CAMERAS) -> VideoIndex:
    """Every converted segment of ``split``; ``cameras`` selects which camera videos to keep."""
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown:
        raise ValueError(f"unknown Waymo cameras {unknown}; expected a subset of {CAMERAS}")
    files = segment_files(root, split)
    image_root = require_path(
        Path(root) / "images" / split,
        dataset="Waymo Open",
        what=f"converted camera images of split {split!r}",
        download_url=DOWNLOAD_URL,
    )
    dropped: Counter = Counter()
    videos = [
        video
        for path in files
        for video in read_waymo_segment(path, image_root, tuple(cameras), dropped)
    ]
    return VideoIndex(
        videos=tuple(videos),
        class_names=CLASS_NAMES,
        name=f"waymo_{split}",
        metadata={"dropped_types": dict(dropped)},
    )


class WaymoDataModule(NativeDataModule):
    """Waymo Open in the converted layout; ``cameras`` picks which camera videos to use."""

    def __init__(
        self, root: str | Path, *, cameras: Sequence[str] = CAMERAS, **kwargs: Any
    ) -> None:
        self.cameras = tuple(cameras)
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    def build_index(self, split: str) -> VideoIndex:
        return read_waymo(self.root, self.dataset_split(split), cameras=self.cameras)
