"""Training pairs (docs/method.md §4.3): every annotated frame with at least one target
is a key; its reference is drawn uniformly from the frames within ``scope`` of it. With
``oversample_thr`` keys are repeated by their class repeat factor (mmdet's
``ClassBalancedDataset``, TAO's recipe; docs/method.md §4.7).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from qdtrack_pl.data.batch import FrameTargets
from qdtrack_pl.data.errors import ImageReadError
from qdtrack_pl.data.index import FrameAnnotations, VideoIndex
from qdtrack_pl.data.loading.transforms import AugmentParams, FrameTransform, load_image

log = logging.getLogger(__name__)


MIN_BOX_SIDE = 1.0  # docs/method.md §4.1: boxes narrower or shorter than one pixel are not targets


SEED_HIGH = 2**62  # range of the per-item seed drawn from torch's (worker-seeded) generator


MAX_REPLACEMENTS = 16  # consecutive pairs with unreadable images before a training item gives up


def training_mask(annotations: FrameAnnotations, width: int, height: int) -> np.ndarray:
    """Rows that are training targets: not ignored, at least a pixel wide and tall, and
    overlapping the image (docs/method.md §4.1)."""
    boxes = annotations.boxes
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    overlaps = (
        (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < width) & (boxes[:, 1] < height)
    )
    return ~annotations.ignore & (w >= MIN_BOX_SIDE) & (h >= MIN_BOX_SIDE) & overlaps


def repeat_factors(image_classes: Sequence[np.ndarray], oversample_thr: float) -> np.ndarray:
    """Per image, how often class-balanced sampling repeats it (LVIS repeat factor sampling,
    mmdet ``ClassBalancedDataset``): class ``c`` in a fraction ``f_c`` of the images gets
    ``max(1, sqrt(oversample_thr / f_c))``; an image takes the largest factor of its classes
    (1 if it has none). ``image_classes`` holds each image's distinct class ids."""
    if not oversample_thr > 0:
        raise ValueError(f"oversample_thr must be > 0, got {oversample_thr}")
    if not image_classes:
        return np.zeros(0)
    present = np.concatenate([np.asarray(c, dtype=np.int64) for c in image_classes])
    frequency = np.bincount(present) / len(image_classes) if present.size else np.zeros(0)
    with np.errstate(divide="ignore"):
        class_factor = np.maximum(1.0, np.sqrt(oversample_thr / frequency))
    return np.array([class_factor[c].max() if len(c) else 1.0 for c in image_classes])


class PairItem(NamedTuple):
    key_image: Tensor  # (3, H, W) float32 in [0, 1]
    ref_image: Tensor
    key_targets: FrameTargets
    ref_targets: FrameTargets
    skipped_images: tuple[str, ...] = ()  # unreadable images of the pairs this one replaced


class PairDataset(Dataset[PairItem]):
    """Key/reference pairs of one :class:`VideoIndex`.

    With ``skip_nomatch`` the reference is drawn uniformly among the in-scope frames that share at
    least one target identity with the key, which is the distribution upstream's resample-until-
    matched loop converges to, reached without retries. When no in-scope frame shares an identity
    the key is paired with itself (a static pair), so every key instance still has its positive.
    Static videos (``Video.is_static``) always pair an image with itself and number its instances
    ``0..N-1``, as upstream does for detection images, whatever ``scope``; ``scope=0`` pairs every
    key with itself (no other frame is in scope), the rule for a dataset of static images only
    (CrowdHuman).

    A pair whose key or reference image is missing or undecodable is replaced by the pair of the
    next key (same seed, so still reproducible), with a warning naming the file; the item reports
    the skipped files in ``PairItem.skipped_images`` so training can count them. After
    ``MAX_REPLACEMENTS`` unreadable pairs in a row it raises :class:`ImageReadError`.
    """

    def __init__(
        self,
        index: VideoIndex,
        transform: FrameTransform,
        scope: int,
        skip_nomatch: bool = True,
        oversample_thr: float | None = None,
    ) -> None:
        if scope < 0:
            raise ValueError(
                f"scope must be >= 0 frames (0: every key is its own reference), got {scope}"
            )
        self.index = index
        self.transform = transform
        self.scope = scope
        self.skip_nomatch = skip_nomatch
        self.targets = [
            [training_mask(f.annotations, v.width, v.height) for f in v.frames]
            for v in index.videos
        ]
        self.keys = [
            (v, f.index)
            for v, video in enumerate(index.videos)
            for f in video.frames
            if f.annotated and self.targets[v][f.index].any()
        ]
        if oversample_thr is not None:
            key_classes = [
                np.unique(index.videos[v].frames[f].annotations.class_ids[self.targets[v][f]])
                for v, f in self.keys
            ]
            repeats = np.ceil(repeat_factors(key_classes, oversample_thr)).astype(int)
            self.keys = [self.keys[i] for i in np.repeat(np.arange(len(self.keys)), repeats)]

    def __len__(self) -> int:
        return len(self.keys)

    def target_ids(self, video_idx: int, frame_idx: int) -> np.ndarray:
        """Track ids of the frame's training targets."""
        ann = self.index.videos[video_idx].frames[frame_idx].annotations
        return ann.track_ids[self.targets[video_idx][frame_idx]]

    def ref_candidates(self, video_idx: int, key_idx: int) -> list[int]:
        """Frames a reference may come from: in scope, annotated, not the key, and (with
        ``skip_nomatch``) sharing a target identity (id >= 0) with the key."""
        video = self.index.videos[video_idx]
        lo, hi = max(0, key_idx - self.scope), min(len(video) - 1, key_idx + self.scope)
        frames = [t for t in range(lo, hi + 1) if t != key_idx and video.frames[t].annotated]
        if not self.skip_nomatch:
            return frames
        key_ids = self.target_ids(video_idx, key_idx)
        key_ids = key_ids[key_ids >= 0]  # -1 = no identity, never a match
        return [t for t in frames if np.isin(key_ids, self.target_ids(video_idx, t)).any()]

    def sample_ref(self, item: int, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(video index, key frame, reference frame)`` of pair ``item``."""
        video_idx, key_idx = self.keys[item]
        if self.index.videos[video_idx].is_static:
            return video_idx, key_idx, key_idx
        candidates = self.ref_candidates(video_idx, key_idx)
        ref_idx = int(rng.choice(candidates)) if candidates else key_idx
        return video_idx, key_idx, ref_idx

    def __getitem__(self, item: int | tuple[int, int]) -> PairItem:
        """Pair of key ``item``. ``(index, seed)`` (from ``EpochSampler``) fixes the draw of the
        reference and augmentation; a bare index draws its seed from torch's generator, so
        DataLoader worker seeding still makes it reproducible."""
        if isinstance(item, tuple):
            index, seed = int(item[0]), int(item[1])
        else:
            index, seed = int(item), int(torch.randint(SEED_HIGH, ()).item())
        skipped: list[str] = []
        for attempt in range(min(MAX_REPLACEMENTS, len(self))):
            rng = np.random.default_rng(seed if attempt == 0 else [seed, attempt])
            candidate = (index + attempt) % len(self)
            video_idx, key_idx, ref_idx = self.sample_ref(candidate, rng)
            try:
                pair = self.load_pair(video_idx, key_idx, ref_idx, self.transform.sample(rng))
            except ImageReadError as err:
                skipped.append(str(err.path))
                log.warning("skipping training pair %d: %s", candidate, err)
                continue
            return pair._replace(skipped_images=tuple(skipped))
        raise ImageReadError(
            f"{len(skipped)} training pairs in a row have unreadable images (first: "
            f"{skipped[0]}); check data.root and the dataset's image folders",
            skipped[0],
        )

    def load_pair(
        self, video_idx: int, key_idx: int, ref_idx: int, params: AugmentParams
    ) -> PairItem:
        """Both frames under one augmentation draw (the reference with its own crop if the crop is
        independent), with their training targets."""
        key_image, key_targets = self._load(video_idx, key_idx, params)
        if ref_idx == key_idx:
            return PairItem(key_image, key_image, key_targets, key_targets)
        ref_image, ref_targets = self._load(video_idx, ref_idx, params.for_reference())
        return PairItem(key_image, ref_image, key_targets, ref_targets)

    def _load(
        self, video_idx: int, frame_idx: int, params: AugmentParams
    ) -> tuple[Tensor, FrameTargets]:
        video = self.index.videos[video_idx]
        frame = video.frames[frame_idx]
        ann = frame.annotations.select(self.targets[video_idx][frame_idx])
        track_ids = np.arange(len(ann)) if video.is_static else ann.track_ids
        out = self.transform(load_image(frame.image_path), torch.from_numpy(ann.boxes), params)
        keep = out.keep.numpy()
        targets = FrameTargets(
            boxes=out.boxes,
            class_ids=torch.from_numpy(ann.class_ids[keep]),
            track_ids=torch.from_numpy(track_ids[keep].astype(np.int64)),
        )
        return out.image, targets
