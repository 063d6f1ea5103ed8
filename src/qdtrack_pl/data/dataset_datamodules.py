"""Data modules of the real datasets: each maps the stage splits (train / val / test) onto the
dataset's own splits and reads them with its native-format reader.

The ``num_classes`` / ``class_names`` config values (which the model config interpolates) are
checked against the reader's vocabulary (``VideoDataModule.check_vocabulary``) at construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qdtrack_pl.data.bdd100k import BDD100K_CLASSES, read_bdd100k_det, read_bdd100k_tracking
from qdtrack_pl.data.coco_static import read_coco_static
from qdtrack_pl.data.crowdhuman import read_crowdhuman
from qdtrack_pl.data.datamodule import VideoDataModule
from qdtrack_pl.data.dataset_root import require_path
from qdtrack_pl.data.json_fields import load_json
from qdtrack_pl.data.mot17 import read_mot17
from qdtrack_pl.data.tao import default_vocabulary, read_tao, read_vocabulary, tao_annotation_file
from qdtrack_pl.data.video_index import VideoIndex
from qdtrack_pl.data.waymo import CAMERAS, read_waymo
from qdtrack_pl.data.waymo import CLASS_NAMES as WAYMO_CLASSES

PEDESTRIAN: tuple[str, ...] = ("pedestrian",)
STAGE_SPLITS = ("train", "val", "test")


def merge_indices(indices: Sequence[VideoIndex], name: str) -> VideoIndex:
    """One index holding the videos of several (e.g. BDD MOT + BDD det) sharing one vocabulary."""
    vocabularies = {index.class_names for index in indices}
    if len(vocabularies) != 1:
        raise ValueError(f"cannot merge indices with different class lists: {sorted(vocabularies)}")
    names = [v.name for index in indices for v in index.videos]
    if len(set(names)) != len(names):
        raise ValueError(f"cannot merge {[i.name for i in indices]}: video names collide")
    return VideoIndex(
        videos=tuple(v for index in indices for v in index.videos),
        class_names=indices[0].class_names,
        name=name,
        metadata={index.name: index.metadata for index in indices},
    )


class _DatasetModule(VideoDataModule):
    """Shared plumbing: the root folder, the stage-to-dataset split map, the vocabulary check."""

    default_splits: Mapping[str, str] = {"train": "train", "val": "val", "test": "val"}

    def __init__(
        self,
        root: str | Path,
        *,
        splits: Mapping[str, str] | None = None,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.splits = {**self.default_splits, **(splits or {})}
        unknown = set(self.splits) - set(STAGE_SPLITS)
        if unknown:
            raise ValueError(f"splits keys must be among {STAGE_SPLITS}, got {sorted(unknown)}")
        self.check_vocabulary(num_classes, class_names)

    def dataset_split(self, split: str) -> str:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {list(self.splits)}")
        return self.splits[split]


class MOT17DataModule(_DatasetModule):
    """MOT17 (+ optionally CrowdHuman train images for training, MMTracking's variant).

    Args:
        detector: which of the three identical sequence copies to read (None = all three).
        crowdhuman_root: also train on CrowdHuman's train split, read from this folder.
    """

    default_splits = {"train": "half-train", "val": "half-val", "test": "half-val"}

    def __init__(
        self,
        root: str | Path,
        *,
        detector: str | None = "FRCNN",
        crowdhuman_root: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.detector = detector
        self.crowdhuman_root = None if crowdhuman_root is None else Path(crowdhuman_root)
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return PEDESTRIAN

    def build_index(self, split: str) -> VideoIndex:
        index = read_mot17(self.root, self.dataset_split(split), detector=self.detector)
        if split == "train" and self.crowdhuman_root is not None:
            crowd = read_crowdhuman(self.crowdhuman_root, "train")
            index = merge_indices([index, crowd], name="mot17_crowdhuman_train")
        return index


class CrowdHumanDataModule(_DatasetModule):
    """CrowdHuman static images (train / val); "test" re-reads val."""

    @property
    def class_names(self) -> tuple[str, ...]:
        return PEDESTRIAN

    def build_index(self, split: str) -> VideoIndex:
        return read_crowdhuman(self.root, self.dataset_split(split))


class BDD100KDataModule(_DatasetModule):
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


class TAODataModule(_DatasetModule):
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


LVIS_DOWNLOAD_URL = "https://www.lvisdataset.org/dataset (v0.5) + https://cocodataset.org/#download"


class TAOPretrainDataModule(TAODataModule):
    """TAO stage 1 (spec 5): train on LVIS v0.5 + COCO 2017 merged into one COCO-format json (the
    TAO toolkit's ``merge_coco_with_lvis.py``) as static images in TAO's vocabulary; val and test
    track TAO validation like :class:`TAODataModule`.

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


class WaymoDataModule(_DatasetModule):
    """Waymo Open in the converted layout; ``cameras`` picks which camera videos to use."""

    def __init__(
        self, root: str | Path, *, cameras: Sequence[str] = CAMERAS, **kwargs: Any
    ) -> None:
        self.cameras = tuple(cameras)
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return WAYMO_CLASSES

    def build_index(self, split: str) -> VideoIndex:
        return read_waymo(self.root, self.dataset_split(split), cameras=self.cameras)
