"""The Lightning data module all datasets share: loaders, augmentation, evaluation ground truth.

A dataset subclasses :class:`VideoDataModule` and implements :meth:`~VideoDataModule.build_index`
(one split into a :class:`VideoIndex`) and :attr:`~VideoDataModule.class_names`; everything else,
training pairs, video-ordered evaluation loaders and seeding, lives here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.data.loading.collate import collate_frames, collate_pairs
from qdtrack_pl.data.loading.pairs import PairDataset
from qdtrack_pl.data.loading.samplers import EpochSampler, ResumableDataLoader
from qdtrack_pl.data.loading.sequence import SequenceDataset, VideoSequenceSampler
from qdtrack_pl.data.loading.transforms import FrameTransform, PhotometricJitter

# Which split each Lightning stage reads for evaluation.
EVAL_SPLIT_OF_STAGE = {
    "fit": "val",
    "validate": "val",
    "val": "val",
    "test": "test",
    "predict": "test",
}


class VideoDataModule(pl.LightningDataModule, ABC):
    """Training pairs from the "train" split, whole videos in order for "val" and "test".

    Args:
        batch_size: pairs per training batch.
        eval_batch_size: frames per evaluation batch (frames stay in video order).
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: pin batches for faster host-to-GPU copies.
        persistent_workers: keep workers alive between epochs (only when ``num_workers > 0``).
        scope: reference frames are drawn within +-scope frames of the key (docs/method.md §4.3);
            0 pairs every key with itself (static images), as static videos always are.
        skip_nomatch: draw references only among frames sharing an identity with the key.
        oversample_thr: class-balanced key sampling (repeat factor ``sqrt(thr / class frequency)``,
            docs/method.md §4.7, TAO: 1e-3); None draws every key once per epoch.
        image_size: keep-ratio resize bounds (long side, short side), training and inference.
        scale_range: training resize jitter, multiplies the keep-ratio factor; (1, 1) = off.
        flip_prob: training horizontal-flip probability (shared by key and reference).
        photometric: ``PhotometricJitter`` arguments for training, or None for no colour jitter.
        crop_size: training random crop (width, height) after the resize, or None
            (docs/method.md §4.4).
        independent_crop: key and reference draw their crops separately (MOT17, §4.4).
        pad_divisor: batches are zero-padded to a multiple of this (§4.4 ``SeqPad``).
        seed: seeds the training shuffle and, through it, every worker's random stream.
    """

    #: Name of the evaluation protocol (``qdtrack_pl.eval.protocols``) that scores this dataset.
    evaluation_protocol: str = "mot"

    def __init__(
        self,
        *,
        batch_size: int = 2,
        eval_batch_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = True,
        scope: int = 3,
        skip_nomatch: bool = True,
        oversample_thr: float | None = None,
        image_size: tuple[int, int] = (320, 192),
        scale_range: tuple[float, float] = (1.0, 1.0),
        flip_prob: float = 0.5,
        photometric: Mapping[str, Any] | None = None,
        crop_size: tuple[int, int] | None = None,
        independent_crop: bool = False,
        pad_divisor: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.scope = scope
        self.skip_nomatch = skip_nomatch
        self.oversample_thr = oversample_thr
        self.pad_divisor = pad_divisor
        self.seed = seed
        size = (int(image_size[0]), int(image_size[1]))
        jitter = None if photometric is None else PhotometricJitter(**_tuples(photometric))
        self.train_transform = FrameTransform(
            image_size=size,
            scale_range=(float(scale_range[0]), float(scale_range[1])),
            flip_prob=flip_prob,
            photometric=jitter,
            crop_size=None if crop_size is None else (int(crop_size[0]), int(crop_size[1])),
            independent_crop=independent_crop,
        )
        self.eval_transform = FrameTransform(image_size=size)
        self._indices: dict[str, VideoIndex] = {}

    @property
    @abstractmethod
    def class_names(self) -> tuple[str, ...]:
        """The class vocabulary, in the order of the 0-based class ids."""

    @abstractmethod
    def build_index(self, split: str) -> VideoIndex:
        """Read split ``"train"``, ``"val"`` or ``"test"`` from disk."""

    def check_vocabulary(
        self, num_classes: int | None = None, class_names: Sequence[str] | None = None
    ) -> None:
        """Fail at start-up when config values the model interpolates (``num_classes``,
        ``class_names``) disagree with the dataset, instead of training a head of the wrong size."""
        actual = self.class_names
        if num_classes is not None and num_classes != len(actual):
            raise ValueError(
                f"{type(self).__name__}: num_classes={num_classes} but the dataset has "
                f"{len(actual)} classes {list(actual)}"
            )
        if class_names is not None and tuple(class_names) != actual:
            raise ValueError(
                f"{type(self).__name__}: class_names {list(class_names)} differ from the "
                f"dataset's {list(actual)} (the order is the class-id order)"
            )

    def index(self, split: str) -> VideoIndex:
        """The split's index, built once per process."""
        if split not in self._indices:
            self._indices[split] = self.build_index(split)
        return self._indices[split]

    def eval_index(self, stage: str = "val") -> VideoIndex:
        """The ground truth that tracking results of ``stage`` are scored against."""
        if stage not in EVAL_SPLIT_OF_STAGE:
            raise ValueError(
                f"unknown stage {stage!r}; expected one of {list(EVAL_SPLIT_OF_STAGE)}"
            )
        return self.index(EVAL_SPLIT_OF_STAGE[stage])

    def setup(self, stage: str | None = None) -> None:
        """Read the splits ``stage`` needs (all three reads are cached)."""
        if stage in (None, "fit"):
            self.index("train")
        self.eval_index(stage or "fit")

    def _loader_kwargs(self) -> dict[str, Any]:
        return {
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
        }

    def train_dataloader(self) -> DataLoader:
        """Shuffled pairs (see :meth:`train_sampler`); the loader's position is saved in
        checkpoints (:mod:`qdtrack_pl.data.loading.samplers`), so a run resumed mid-epoch trains
        on the batches an uninterrupted run would."""
        index = self.index("train")
        dataset = PairDataset(
            index, self.train_transform, self.scope, self.skip_nomatch, self.oversample_thr
        )
        if len(dataset) == 0:
            raise DatasetFormatError(
                f"the train split ({index.name or type(self).__name__}, {len(index)} videos) has "
                "no training pair: no annotated frame has a target (a non-ignored box of at least "
                "1 pixel overlapping the image); check the annotations and the class rules"
            )
        return ResumableDataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self.train_sampler(dataset),
            # the loader's own generator: creating an iterator never touches the global RNG
            generator=torch.Generator().manual_seed(self.seed),
            collate_fn=partial(collate_pairs, pad_divisor=self.pad_divisor),
            **self._loader_kwargs(),
        )

    def train_sampler(self, dataset: PairDataset) -> EpochSampler:
        """Shuffled pairs, one permutation per epoch from ``(seed, epoch)``; under
        ``torch.distributed`` each rank draws its own disjoint shard (Lightning calls
        ``set_epoch``), so ``use_distributed_sampler: false`` keeps training sharded."""
        return EpochSampler(len(dataset), seed=self.seed)

    def frame_dataloader(self, stage: str) -> DataLoader:
        """Frames of the ``stage`` split, whole videos in order (per rank under DDP)."""
        dataset = SequenceDataset(self.eval_index(stage), self.eval_transform)
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=VideoSequenceSampler(dataset.video_lengths()),
            collate_fn=partial(collate_frames, pad_divisor=self.pad_divisor),
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader:
        return self.frame_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.frame_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self.frame_dataloader("predict")


def _tuples(values: Mapping[str, Any]) -> dict[str, Any]:
    """Config lists (Hydra hands over lists) as tuples, so frozen dataclasses stay hashable."""
    return {
        k: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else v
        for k, v in dict(values).items()
    }


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


class NativeDataModule(VideoDataModule):
    """A dataset read from its native files below ``root``: the stage-to-dataset split map and the
    vocabulary check (``num_classes`` / ``class_names`` config values, which the model config
    interpolates, must match the reader's vocabulary)."""

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
