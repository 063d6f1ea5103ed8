"""CocoVID, MMTracking's video-COCO json (what its ``mot2coco`` / ``bdd2coco`` / ... tools write)
-> VideoIndex.

One json per split::

    {"categories": [{"id": 1, "name": "pedestrian"}],
     "videos":     [{"id": 1, "name": "MOT17-02-FRCNN"}],
     "images":     [{"id": 1, "video_id": 1, "frame_id": 0, "width": 1920, "height": 1080,
                     "file_name": "MOT17-02-FRCNN/img1/000001.jpg"}],
     "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "instance_id": 0,
                      "bbox": [x, y, w, h], "iscrowd": false, "visibility": 1.0}]}

Each video's images, sorted by ``frame_id``, are its frames (frame index = rank; ``frame_id`` is
kept as ``source_frame_id`` and numbers the frames of result files). ``instance_id`` is the
identity; ``iscrowd`` or ``ignore`` marks an ignore region; ``visibility`` is optional. The class
list is the train json's categories in id order (the val / test jsons must have the same). Every
reference must resolve (an image of an unknown video, an annotation of an unknown image, two images
at one ``frame_id`` of a video are errors), so nothing is dropped or doubled without a word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import NativeDataModule
from qdtrack_pl.data.errors import DatasetFormatError, require_path
from qdtrack_pl.data.formats.coco import frame_annotations, group_video_records, video_size
from qdtrack_pl.data.formats.json_fields import field, load_json
from qdtrack_pl.data.index import Frame, Video, VideoIndex

FORMAT_URL = "https://github.com/open-mmlab/mmtracking/blob/master/docs/en/dataset.md (CocoVID)"
DEFAULT_FPS = 30.0  # CocoVID stores no frame rate unless a video carries an "fps" field
IGNORE_KEYS = ("iscrowd", "ignore")


def category_names(data: Any, where: str) -> tuple[str, ...]:
    """Category names in id order (the class-id order)."""
    categories = field(data, "categories", list, where)
    pairs = []
    for i, category in enumerate(categories):
        at = f"{where}: categories[{i}]"
        pairs.append((field(category, "id", int, at), field(category, "name", str, at)))
    pairs.sort()
    names = tuple(name for _, name in pairs)
    if len(set(names)) != len(names):
        raise DatasetFormatError(f"{where}: field 'categories': duplicate category names {names}")
    return names


def read_cocovid(
    annotation_file: Path,
    image_dir: Path,
    *,
    class_names: tuple[str, ...] | None = None,
    name: str = "",
) -> VideoIndex:
    """Every video of a CocoVID json, pixels at ``image_dir / file_name``. ``class_names`` (the
    train json's) must equal this json's categories; None takes them from this json."""
    data = load_json(annotation_file)
    where = str(annotation_file)
    names = category_names(data, where)
    if class_names is not None and tuple(class_names) != names:
        raise DatasetFormatError(
            f"{where}: field 'categories': {list(names)} differ from the train json's "
            f"{list(class_names)} (the class ids must mean the same in every split)"
        )
    categories = field(data, "categories", list, where)
    class_of_category = {c["id"]: names.index(c["name"]) for c in categories}
    videos = field(data, "videos", list, where)
    video_ids: dict[int, int] = {}
    for v, video in enumerate(videos):
        at = f"{where}: videos[{v}]"
        video_id = field(video, "id", int, at)
        field(video, "name", str, at)
        if video_id in video_ids:
            raise DatasetFormatError(
                f"{at}: field 'id': video id {video_id} is already used by "
                f"videos[{video_ids[video_id]}]"
            )
        video_ids[video_id] = v

    images_of_video, anns_of_image = group_video_records(
        video_ids,
        field(data, "images", list, where),
        data.get("annotations", []),
        "frame_id",
        where,
    )

    unknown: Counter = Counter()  # stays empty: every category of the json is a class
    out = []
    for video_id, v in video_ids.items():
        video, at = videos[v], f"{where}: videos[{v}]"
        ordered = sorted(images_of_video.get(video_id, []), key=lambda im: im["frame_id"])
        if not ordered:
            raise DatasetFormatError(f"{at}: video {video['name']!r} has no images")
        frames = tuple(
            Frame(
                index=rank,
                image_path=Path(image_dir) / image["file_name"],
                annotations=frame_annotations(
                    anns_of_image.get(image["id"], []),
                    where,
                    class_of_category,
                    unknown,
                    track_key="instance_id",
                    ignore_keys=IGNORE_KEYS,
                    visibility_key="visibility",
                ),
                source_frame_id=image["frame_id"],
            )
            for rank, image in enumerate(ordered)
        )
        width, height = video_size(video, ordered[0], at)
        fps = video.get("fps", DEFAULT_FPS)
        if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not fps > 0:
            raise DatasetFormatError(f"{at}: field 'fps': expected a positive number, got {fps!r}")
        out.append(
            Video(
                name=video["name"].replace("/", "-"),
                frames=frames,
                width=width,
                height=height,
                fps=float(fps),
            )
        )
    video_names = [v.name for v in out]
    if len(set(video_names)) != len(video_names):
        raise DatasetFormatError(f"{where}: field 'videos': two videos share a name")
    return VideoIndex(
        videos=tuple(out),
        class_names=names,
        name=name or Path(annotation_file).stem,
        metadata={"annotation_file": str(annotation_file)},
    )


class CocoVIDDataModule(NativeDataModule):
    """A dataset in MMTracking's CocoVID json format (``conf/data/cocovid.yaml``).

    Args:
        ann_file: the json of a dataset split, relative to ``root``; ``{split}`` is replaced by
            the split's name (``data.splits`` maps train/val/test onto those names).
        image_dirs: dataset split -> folder below ``root`` that the json's ``file_name`` entries
            are relative to; a split not listed uses ``root/<split>`` (MMTracking's MOT17 jsons:
            ``{half-train: train, half-val: train}``).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        ann_file: str = "annotations/{split}_cocoformat.json",
        image_dirs: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.ann_file = ann_file
        self.image_dirs = dict(image_dirs or {})
        self._class_names: tuple[str, ...] | None = None
        super().__init__(root, **kwargs)  # checks num_classes / class_names against the train json

    def annotation_file(self, dataset_split: str) -> Path:
        return require_path(
            self.root / self.ann_file.format(split=dataset_split),
            dataset="CocoVID",
            what=f"the annotation json of split {dataset_split!r} (data.ann_file)",
            download_url=FORMAT_URL,
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        if self._class_names is None:
            train = self.annotation_file(self.dataset_split("train"))
            self._class_names = category_names(load_json(train), str(train))
        return self._class_names

    def build_index(self, split: str) -> VideoIndex:
        name = self.dataset_split(split)
        image_dir = require_path(
            self.root / self.image_dirs.get(name, name),
            dataset="CocoVID",
            what=f"the image folder of split {name!r} (data.image_dirs)",
            download_url=FORMAT_URL,
        )
        return read_cocovid(
            self.annotation_file(name),
            image_dir,
            class_names=self.class_names,
            name=f"cocovid_{name}",
        )
