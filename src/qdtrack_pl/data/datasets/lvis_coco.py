"""COCO-format detection jsons (LVIS v0.5 + COCO 2017 merged, TAO stage 1) -> static-image index.

TAO's detector is pre-trained on LVIS v0.5 + COCO 2017 merged into one COCO-format json by the TAO
toolkit's ``merge_coco_with_lvis.py`` (docs/method.md §4.5, §5.4). Every image becomes a one-frame
static video: key and reference are the same image under two augmentations and the instances get
identities 0..N-1, as for CrowdHuman. Categories are matched to the class list **by name** (the
TAO vocabulary uses LVIS names); annotations of other categories are dropped and counted.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datasets.tao import TAODataModule
from qdtrack_pl.data.errors import DatasetFormatError, require_path
from qdtrack_pl.data.formats.coco import frame_annotations
from qdtrack_pl.data.formats.json_fields import field, load_json
from qdtrack_pl.data.index import Frame, Video, VideoIndex

log = logging.getLogger(__name__)


def read_coco_static(
    annotation_file: Path, image_dir: Path, class_names: Sequence[str], name: str
) -> VideoIndex:
    """Every image of ``annotation_file`` (pixels at ``image_dir / file_name``) as a static video.

    ``iscrowd`` boxes become ignore regions; images without a box of the class list are kept
    (they are frames, never training keys).
    """
    data = load_json(annotation_file)
    where = str(annotation_file)
    class_of_name = {class_name: k for k, class_name in enumerate(class_names)}
    class_of_category = {}
    for i, category in enumerate(field(data, "categories", list, where)):
        at = f"{where}: categories[{i}]"
        category_name = field(category, "name", str, at)
        if category_name in class_of_name:
            class_of_category[field(category, "id", int, at)] = class_of_name[category_name]
    if not class_of_category:
        raise DatasetFormatError(
            f"{annotation_file}: none of its category names is in the class list "
            f"({list(class_names)[:3]} ...); the vocabulary must use the json's (LVIS) names"
        )
    anns_of_image: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for i, ann in enumerate(data.get("annotations", [])):
        anns_of_image[field(ann, "image_id", int, f"{where}: annotations[{i}]")].append((i, ann))

    dropped: Counter = Counter()
    videos = []
    for i, image in enumerate(field(data, "images", list, where)):
        at = f"{where}: images[{i}]"
        image_id = field(image, "id", int, at)
        frame = Frame(
            index=0,
            image_path=Path(image_dir) / field(image, "file_name", str, at),
            annotations=frame_annotations(
                anns_of_image.get(image_id, []),
                where,
                class_of_category,
                dropped,
                with_track_ids=False,
            ),
            source_frame_id=0,
        )
        videos.append(
            Video(
                name=f"{name}-{image_id}",
                frames=(frame,),
                width=field(image, "width", int, at),
                height=field(image, "height", int, at),
                is_static=True,
            )
        )
    if dropped:
        log.info("%s: dropped %d boxes of categories outside the class list", name, dropped.total())
    return VideoIndex(
        videos=tuple(videos),
        class_names=tuple(class_names),
        name=name,
        metadata={"annotation_file": str(annotation_file), "dropped_categories": dict(dropped)},
    )


LVIS_DOWNLOAD_URL = "https://www.lvisdataset.org/dataset (v0.5) + https://cocodataset.org/#download"


class TAOPretrainDataModule(TAODataModule):
    """TAO stage 1 (docs/method.md §5.4): train on LVIS v0.5 + COCO 2017 merged into one COCO-format
    json (the TAO toolkit's ``merge_coco_with_lvis.py``) as static images in TAO's vocabulary; val
    and test track TAO validation like :class:`TAODataModule`.

    Args:
        pretrain_json: the merged annotation json.
        pretrain_images: folder the json's ``file_name`` entries are relative to.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        pretrain_json: str | Path,
        pretrain_images: str | Path,
        **kwargs: Any,
    ) -> None:
        self.pretrain_json = Path(pretrain_json)
        self.pretrain_images = Path(pretrain_images)
        super().__init__(root, **kwargs)

    def build_index(self, split: str) -> VideoIndex:
        if split != "train":
            return super().build_index(split)
        annotation_file = require_path(
            self.pretrain_json,
            dataset="LVIS v0.5 + COCO 2017",
            what="the merged annotation json (TAO toolkit: merge_coco_with_lvis.py)",
            download_url=LVIS_DOWNLOAD_URL,
        )
        image_dir = require_path(
            self.pretrain_images,
            dataset="LVIS v0.5 + COCO 2017",
            what="the images folder (COCO 2017 train + val images)",
            download_url=LVIS_DOWNLOAD_URL,
        )
        return read_coco_static(annotation_file, image_dir, self.class_names, "lvis_coco_train")
