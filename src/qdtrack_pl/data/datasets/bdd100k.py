"""BDD100K readers: MOT box-track labels (one scalabel json per video) and det labels (static).

Class rules follow the official toolkit's ``box_track`` conversion (docs/method.md §4.5):
the 8 evaluated classes in the toolkit's json order (§8.11), ``other person`` / ``other vehicle`` /
``trailer`` kept as ignore regions of pedestrian / car / truck (``IGNORE_MAP``), the ``crowd``
attribute turned into an ignore region, traffic lights and signs dropped. Older category names
are renamed first by the config's [name_mapping] (person -> pedestrian, bike -> bicycle, motor ->
motorcycle, van and caravan -> car; ``NAME_MAP``). Ignore regions only matter for evaluation;
training drops them. Label ids may be strings or integers, or a mix: each is read as its string
(so ``1`` and ``"1"`` are the same track) and made dense per video.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qdtrack_pl.data.datamodule import NativeDataModule, merge_indices
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError, require_path
from qdtrack_pl.data.formats.json_fields import field as json_field
from qdtrack_pl.data.formats.json_fields import load_json, number_box
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex

log = logging.getLogger(__name__)

BDD100K_CLASSES: tuple[str, ...] = (
    "pedestrian",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# The official BDD100K box_track config (bdd100k/configs/box_track.toml): [name_mapping] renames
# older category names into the 8 classes, [ignored_mapping] turns three categories into ignore
# regions of a class.
NAME_MAP: dict[str, str] = {
    "person": "pedestrian",
    "bike": "bicycle",
    "motor": "motorcycle",
    "van": "car",
    "caravan": "car",
}
IGNORE_MAP: dict[str, str] = {
    "other person": "pedestrian",
    "other vehicle": "car",
    "trailer": "truck",
}
DROPPED_CATEGORIES: frozenset[str] = frozenset({"traffic light", "traffic sign"})
DOWNLOAD_URL = "https://doc.bdd100k.com/download.html"
IMAGE_SIZE: tuple[int, int] = (1280, 720)  # (width, height) of every BDD100K image
TRACK_FPS = 5.0  # box_track_20 labels every frame of 5 fps videos
# BDD only flags occlusion (no ratio); an occluded box is stored as half visible so that a
# visibility threshold, if one is ever set, can tell the two apart.
OCCLUDED_VISIBILITY = 0.5
BOX_KEYS = ("x1", "y1", "x2", "y2")
UnknownPolicy = Literal["error", "skip"]


@dataclass
class _Tally:
    """Labels a reader left out, reported in ``VideoIndex.metadata`` so none vanish silently."""

    dropped: Counter = field(default_factory=Counter)  # known categories dropped by the rules
    unknown: Counter = field(default_factory=Counter)  # names not in the BDD vocabulary


KNOWN_CATEGORIES: tuple[str, ...] = (
    BDD100K_CLASSES + tuple(NAME_MAP) + tuple(IGNORE_MAP) + tuple(sorted(DROPPED_CATEGORIES))
)


def resolve_category(category: str) -> tuple[str | None, bool]:
    """``(class name, is an ignore region)`` of a BDD category under the box_track config:
    ``person`` -> ``pedestrian`` etc. ([name_mapping]), ``other person`` -> an ignore region of
    ``pedestrian`` etc. ([ignored_mapping]); traffic lights and signs give ``(None, False)``
    (dropped). A name outside all of these raises ``KeyError``."""
    if category in DROPPED_CATEGORIES:
        return None, False
    name = NAME_MAP.get(category, category)
    if name in IGNORE_MAP:
        return IGNORE_MAP[name], True
    if name in BDD100K_CLASSES:
        return name, False
    raise KeyError(category)


def parse_labels(
    labels: list,
    where: str,
    tally: _Tally,
    on_unknown: UnknownPolicy,
    track_ids: dict[str, int] | None,
) -> FrameAnnotations:
    """Convert one frame's scalabel labels. ``track_ids`` maps BDD id strings to dense ints
    (per video); ``None`` means a static image whose instances get ``arange(n)``."""
    rows: list[tuple[list[float], int, int, float, bool]] = []
    for i, label in enumerate(labels):
        at = f"{where}: labels[{i}]"
        category = json_field(label, "category", str, at)
        try:
            name, is_ignored_category = resolve_category(category)
        except KeyError:
            if on_unknown == "error":
                raise DatasetFormatError(
                    f"{at}: field 'category': unknown class {category!r}; expected one of "
                    f"{KNOWN_CATEGORIES} (pass on_unknown='skip' to drop and count unknown "
                    "classes)"
                ) from None
            tally.unknown[category] += 1
            continue
        if name is None:
            tally.dropped[category] += 1
            continue
        box = number_box(json_field(label, "box2d", dict, at), BOX_KEYS, f"{at}: box2d")
        attributes = label.get("attributes") or {}
        crowd = bool(attributes.get("crowd", False))
        occluded = bool(attributes.get("occluded", False))
        if track_ids is None:
            track_id = len(rows)
        else:
            key = str(json_field(label, "id", (str, int), at))
            track_id = track_ids.setdefault(key, len(track_ids))
        visibility = OCCLUDED_VISIBILITY if occluded else 1.0
        rows.append(
            (box, track_id, BDD100K_CLASSES.index(name), visibility, crowd or is_ignored_category)
        )
    if not rows:
        return FrameAnnotations.empty()
    boxes, ids, classes, visibilities, ignore = zip(*rows, strict=True)
    return FrameAnnotations.from_rows(boxes, ids, classes, visibilities, ignore)


def read_bdd100k_video(
    label_file: Path, image_dir: Path, tally: _Tally, on_unknown: UnknownPolicy = "error"
) -> Video:
    """One ``box_track_20`` json: frames sorted by ``frameIndex`` (the frame index is the rank,
    ``source_frame_id`` keeps ``frameIndex`` for the result files)."""
    records = load_json(label_file)
    if not isinstance(records, list) or not records:
        raise DatasetFormatError(f"{label_file}: expected a non-empty json list of frames")
    parsed = []
    for i, record in enumerate(records):
        where = f"{label_file}: frame {i}"
        parsed.append(
            (
                json_field(record, "frameIndex", int, where),
                json_field(record, "name", str, where),
                json_field(record, "videoName", str, where),
                record.get("labels") or [],
                where,
            )
        )
    parsed.sort(key=lambda p: p[0])
    video_names = {p[2] for p in parsed}
    if len(video_names) != 1:
        raise DatasetFormatError(
            f"{label_file}: field 'videoName': expected one video per file, "
            f"got {sorted(video_names)}"
        )
    frame_indices = [p[0] for p in parsed]
    if len(set(frame_indices)) != len(frame_indices):
        raise DatasetFormatError(f"{label_file}: field 'frameIndex': duplicate frame indices")
    video_name = parsed[0][2]
    track_ids: dict[str, int] = {}
    frames = tuple(
        Frame(
            index=rank,
            image_path=image_dir / video_name / name,
            annotations=parse_labels(labels, where, tally, on_unknown, track_ids),
            source_frame_id=frame_index,
        )
        for rank, (frame_index, name, _, labels, where) in enumerate(parsed)
    )
    width, height = IMAGE_SIZE
    return Video(name=video_name, frames=frames, width=width, height=height, fps=TRACK_FPS)


def read_bdd100k_tracking(
    root: Path, split: str, *, on_unknown: UnknownPolicy = "error"
) -> VideoIndex:
    """All videos of ``labels/box_track_20/<split>/*.json`` with images under
    ``images/track/<split>/<video>/``."""
    root = Path(root)
    label_dir = require_path(
        root / "labels" / "box_track_20" / split,
        dataset="BDD100K",
        what=f"the MOT labels (one json per video) of split {split!r}",
        download_url=DOWNLOAD_URL,
    )
    image_dir = require_path(
        root / "images" / "track" / split,
        dataset="BDD100K",
        what=f"the MOT images of split {split!r}",
        download_url=DOWNLOAD_URL,
    )
    label_files = sorted(label_dir.glob("*.json"))
    if not label_files:
        raise DatasetNotFoundError(f"BDD100K: no *.json label files in {label_dir}")
    tally = _Tally()
    videos = tuple(read_bdd100k_video(f, image_dir, tally, on_unknown) for f in label_files)
    return VideoIndex(
        videos=videos,
        class_names=BDD100K_CLASSES,
        name=f"bdd100k_track_{split}",
        metadata=_report(tally, f"BDD100K box_track {split}"),
    )


def read_bdd100k_det(root: Path, split: str, *, on_unknown: UnknownPolicy = "error") -> VideoIndex:
    """``labels/det_20/det_<split>.json`` as static one-frame videos (training pairs an image with
    itself); images under ``images/100k/<split>/``."""
    root = Path(root)
    label_file = require_path(
        root / "labels" / "det_20" / f"det_{split}.json",
        dataset="BDD100K",
        what=f"the detection labels of split {split!r}",
        download_url=DOWNLOAD_URL,
    )
    image_dir = require_path(
        root / "images" / "100k" / split,
        dataset="BDD100K",
        what=f"the 100k detection images of split {split!r}",
        download_url=DOWNLOAD_URL,
    )
    records = load_json(label_file)
    if not isinstance(records, list):
        raise DatasetFormatError(f"{label_file}: expected a json list of frames")
    tally = _Tally()
    width, height = IMAGE_SIZE
    videos = []
    for i, record in enumerate(records):
        where = f"{label_file}: frame {i}"
        name = json_field(record, "name", str, where)
        annotations = parse_labels(record.get("labels") or [], where, tally, on_unknown, None)
        frame = Frame(
            index=0, image_path=image_dir / name, annotations=annotations, source_frame_id=0
        )
        videos.append(
            Video(name=Path(name).stem, frames=(frame,), width=width, height=height, is_static=True)
        )
    return VideoIndex(
        videos=tuple(videos),
        class_names=BDD100K_CLASSES,
        name=f"bdd100k_det_{split}",
        metadata=_report(tally, f"BDD100K det {split}"),
    )


def _report(tally: _Tally, what: str) -> dict:
    if tally.unknown:
        log.warning("%s: skipped labels of unknown classes %s", what, dict(tally.unknown))
    return {"dropped_categories": dict(tally.dropped), "skipped_unknown": dict(tally.unknown)}


class BDD100KDataModule(NativeDataModule):
    """BDD100K MOT; training adds the det images as static pairs (the paper's recipe).

    Args:
        det_train: add ``labels/det_20/det_train.json`` images to the training split.
        on_unknown: ``"error"`` or ``"skip"`` (count and drop) labels of unknown classes.
    """

    evaluation_protocol = "bdd100k"

    def __init__(
        self, root: str | Path, *, det_train: bool = True, on_unknown: str = "error", **kwargs: Any
    ) -> None:
        self.det_train = det_train
        self.on_unknown = on_unknown
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return BDD100K_CLASSES

    def build_index(self, split: str) -> VideoIndex:
        name = self.dataset_split(split)
        index = read_bdd100k_tracking(self.root, name, on_unknown=self.on_unknown)  # type: ignore[arg-type]
        if split == "train" and self.det_train:
            det = read_bdd100k_det(self.root, name, on_unknown=self.on_unknown)  # type: ignore[arg-type]
            index = merge_indices([index, det], name=f"bdd100k_{name}_track+det")
        return index
