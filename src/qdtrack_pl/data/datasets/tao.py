"""TAO reader: the official annotation json (LVIS vocabulary, sparse ~1 fps labels) -> VideoIndex.

Only the annotated frames (the json's ``images``) become frames, so the frame index is the rank of
an image within its video sorted by ``frame_index`` (docs/method.md §4.6) and ``source_frame_id``
keeps TAO's ``frame_index``. Reference sampling with scope 1 then means +-1 annotated frame
(about +-1 s), the paper's TAO recipe. Categories marked ``merged`` in the json are folded into
their target exactly as TrackEval's TAO class does, so training and evaluation agree on ids.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import NativeDataModule
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError, read_text, require_path
from qdtrack_pl.data.formats.coco import frame_annotations, group_video_records, video_size
from qdtrack_pl.data.formats.json_fields import field, load_json
from qdtrack_pl.data.index import Frame, Video, VideoIndex

log = logging.getLogger(__name__)

DOWNLOAD_URL = "https://taodataset.org/#download"
ANNOTATION_FILES: dict[str, str] = {
    "train": "train.json",
    "val": "validation.json",
    "test": "test_without_annotations.json",
}
ANNOTATED_FPS = 1.0  # TAO labels about one frame per second; frame indices count labelled frames


def tao_annotation_file(root: Path, split: str) -> Path:
    """``<root>/annotations/<file of split>``, checked to exist."""
    if split not in ANNOTATION_FILES:
        raise ValueError(f"TAO split must be one of {sorted(ANNOTATION_FILES)}, got {split!r}")
    return require_path(
        Path(root) / "annotations" / ANNOTATION_FILES[split],
        dataset="TAO",
        what=f"the {split} annotation json",
        download_url=DOWNLOAD_URL,
    )


def merge_map(categories: list[dict]) -> dict[int, int]:
    """Category id -> id it is merged into (TAO's ``merged`` tag; TrackEval applies the same)."""
    return {
        merged["id"]: category["id"]
        for category in categories
        for merged in category.get("merged", [])
    }


def annotated_category_names(annotation_files: Iterable[Path]) -> list[str]:
    """Names of the categories that carry annotations in any of the files, ordered by id.

    QDTrack's 482-class vocabulary is this union over TAO train, validation and the test
    categories; write it once with :func:`write_vocabulary` and point ``data.vocabulary`` at it.
    """
    names: dict[int, str] = {}
    for path in annotation_files:
        data = load_json(path)
        categories = field(data, "categories", list, str(path))
        merged = merge_map(categories)
        by_id = {c["id"]: c["name"] for c in categories}
        for i, ann in enumerate(data.get("annotations", [])):
            category_id = field(ann, "category_id", int, f"{path}: annotations[{i}]")
            category_id = merged.get(category_id, category_id)
            names[category_id] = by_id[category_id]
    return [names[i] for i in sorted(names)]


def default_vocabulary(categories: list[dict]) -> list[str]:
    """Every category not merged into another, in id order (the reader's default class list)."""
    merged = merge_map(categories)
    return [c["name"] for c in sorted(categories, key=lambda c: c["id"]) if c["id"] not in merged]


def write_vocabulary(names: Sequence[str], path: Path) -> None:
    """One category name per line: the ``vocabulary`` file the reader and configs use."""
    Path(path).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")


def read_vocabulary(path: Path) -> list[str]:
    """Class names, one per line, as written by :func:`write_vocabulary`."""
    if not Path(path).is_file():
        raise DatasetNotFoundError(
            f"TAO: vocabulary file {path} does not exist; write it once from the annotation jsons "
            "with annotated_category_names + write_vocabulary (docs/datasets.md), or set "
            "data.vocabulary=null to use every category of the train json"
        )
    lines = [line.strip() for line in read_text(Path(path)).splitlines()]
    names = [line for line in lines if line]
    if len(set(names)) != len(names):
        raise DatasetFormatError(f"{path}: duplicate category names in the vocabulary file")
    return names


def read_tao(root: Path, split: str, *, vocabulary: Path | None = None) -> VideoIndex:
    """Read ``annotations/<split json>`` with frames under ``frames/``.

    ``vocabulary`` (one LVIS name per line) fixes the class list and order, so train and val share
    class ids; annotations of other categories are dropped and counted in ``metadata``. Without it
    the class list is every category of the json that is not merged into another, in id order.
    """
    annotation_file = tao_annotation_file(root, split)
    frames_dir = require_path(
        Path(root) / "frames",
        dataset="TAO",
        what="the extracted frames folder",
        download_url=DOWNLOAD_URL,
    )
    data = load_json(annotation_file)
    where = str(annotation_file)
    categories = field(data, "categories", list, where)
    category_id_by_name = {
        field(c, "name", str, f"{where}: categories[{i}]"): field(
            c, "id", int, f"{where}: categories[{i}]"
        )
        for i, c in enumerate(categories)
    }
    merged = merge_map(categories)
    if vocabulary is None:
        class_names = default_vocabulary(categories)
    else:
        class_names = read_vocabulary(vocabulary)
        unknown = [n for n in class_names if n not in category_id_by_name]
        if unknown:
            raise DatasetFormatError(
                f"{vocabulary}: names not among the categories of {annotation_file}: {unknown[:5]}"
            )
    category_ids = [category_id_by_name[name] for name in class_names]
    class_of_category = {cid: k for k, cid in enumerate(category_ids)}

    videos = field(data, "videos", list, where)
    images = field(data, "images", list, where)
    annotations = data.get("annotations", [])
    known_videos = {field(v, "id", int, f"{where}: videos[{i}]") for i, v in enumerate(videos)}
    images_of_video, anns_of_image = group_video_records(
        known_videos, images, annotations, "frame_index", where
    )

    dropped: Counter = Counter()
    out_videos, image_ids, video_ids, neg_ids, not_exhaustive_ids = [], {}, {}, {}, {}
    for v, video in enumerate(videos):
        at = f"{where}: videos[{v}]"
        video_id = field(video, "id", int, at)
        name = field(video, "name", str, at).replace("/", "-")
        ordered = sorted(images_of_video.get(video_id, []), key=lambda im: im["frame_index"])
        if not ordered:
            raise DatasetFormatError(f"{at}: video {video['name']!r} has no images")
        frames = tuple(
            Frame(
                index=rank,
                image_path=frames_dir / image["file_name"],
                annotations=frame_annotations(
                    anns_of_image.get(image["id"], []), where, class_of_category, dropped, merged
                ),
                source_frame_id=image["frame_index"],
                annotated="annotations" in data,
            )
            for rank, image in enumerate(ordered)
        )
        width, height = video_size(video, ordered[0], at)
        out_videos.append(
            Video(name=name, frames=frames, width=width, height=height, fps=ANNOTATED_FPS)
        )
        image_ids[name] = tuple(image["id"] for image in ordered)
        video_ids[name] = video_id
        neg_ids[name] = tuple(video.get("neg_category_ids", ()))
        not_exhaustive_ids[name] = tuple(video.get("not_exhaustive_category_ids", ()))
    if dropped:
        log.info(
            "TAO %s: dropped annotations of categories outside the vocabulary: %d",
            split,
            sum(dropped.values()),
        )
    return VideoIndex(
        videos=tuple(out_videos),
        class_names=tuple(class_names),
        name=f"tao_{split}",
        metadata={
            "annotation_file": str(annotation_file),
            "category_ids": tuple(category_ids),  # TAO category id of each class index
            "merged_category_ids": merged,  # category id -> the id it is merged into
            "all_category_ids": tuple(category_id_by_name.values()),  # every json category
            "image_ids": image_ids,  # per video, the TAO image id of each frame
            "video_ids": video_ids,
            "neg_category_ids": neg_ids,
            "not_exhaustive_category_ids": not_exhaustive_ids,
            "dropped_categories": dict(dropped),
        },
    )


class TAODataModule(NativeDataModule):
    """TAO (annotated frames only). ``vocabulary``: one LVIS name per line (QDTrack's 482
    classes); None uses every unmerged category of the train json."""

    evaluation_protocol = "tao"

    def __init__(self, root: str | Path, *, vocabulary: str | Path | None = None, **kwargs: Any):
        self.vocabulary = None if vocabulary is None else Path(vocabulary)
        self._class_names: tuple[str, ...] | None = None
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is None:
            if self.vocabulary is not None:
                self._class_names = tuple(read_vocabulary(self.vocabulary))
            else:
                train = load_json(tao_annotation_file(self.root, self.dataset_split("train")))
                self._class_names = tuple(default_vocabulary(train["categories"]))
        return self._class_names

    def build_index(self, split: str) -> VideoIndex:
        index = read_tao(self.root, self.dataset_split(split), vocabulary=self.vocabulary)
        if index.class_names != self.class_names:
            raise ValueError(
                f"TAO {split}: its categories differ from the train json's; pass a vocabulary file"
            )
        return index
