"""Image loading and the geometric/photometric augmentation shared by the key and reference frame.

One :class:`AugmentParams` draw is applied to both frames of a pair (docs/method.md §4.4: resize
scale, flip and photometric distortion are shared), so an object keeps the same look and size in
both views. The optional random crop (MOT17: 1088x1088) is drawn for each frame on its own when
``independent_crop`` (upstream ``share_params=False``). Inference uses the same class with no
randomness and reports the resize factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

from qdtrack_pl.data.errors import ImageReadError

MAX_UINT8 = 255.0


def load_image(path: str | Path) -> Tensor:
    """Decode an image file into a uint8 RGB CHW tensor (PIL's libjpeg-turbo: ~1 ms at 320x192;
    torchvision's decoders are deprecated from 0.29).

    A missing, truncated or undecodable file raises :class:`ImageReadError` naming the file.
    """
    try:
        with Image.open(path) as image:
            array = np.array(image.convert("RGB"))  # a writable copy, as torch expects
    except FileNotFoundError:
        raise ImageReadError(f"{path}: image file is missing", path) from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL: UnidentifiedImageError, truncated
        raise ImageReadError(
            f"{path}: cannot decode image ({err}); expected a readable image file", path
        ) from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def keep_ratio_scale(width: int, height: int, image_size: tuple[int, int]) -> float:
    """The mmdet keep-ratio factor: the largest scale with long side <= ``image_size[0]`` and short
    side <= ``image_size[1]``."""
    long_side, short_side = max(image_size), min(image_size)
    return min(long_side / max(width, height), short_side / min(width, height))


class PhotometricParams(NamedTuple):
    """One draw of the photometric distortion; identity values mean "not applied"."""

    brightness: float = 0.0  # added to [0, 1] pixel values
    contrast: float = 1.0  # multiplies pixel values
    saturation: float = 1.0
    hue: float = 0.0  # fraction of the hue circle


@dataclass(frozen=True)
class PhotometricJitter:
    """mmdet ``PhotoMetricDistortion`` on [0, 1] images; each operation fires with ``prob``.

    Defaults are the MOT17 values of docs/method.md §4.4 (brightness ±32/255, contrast and
    saturation [0.5, 1.5], hue ±18 degrees).
    """

    brightness_delta: float = 32 / 255
    contrast_range: tuple[float, float] = (0.5, 1.5)
    saturation_range: tuple[float, float] = (0.5, 1.5)
    hue_delta: float = 18 / 360
    prob: float = 0.5

    def sample(self, rng: np.random.Generator) -> PhotometricParams:
        fire = rng.random(4) < self.prob
        draws = (
            rng.uniform(-self.brightness_delta, self.brightness_delta),
            rng.uniform(*self.contrast_range),
            rng.uniform(*self.saturation_range),
            rng.uniform(-self.hue_delta, self.hue_delta),
        )
        identity = PhotometricParams()
        return PhotometricParams(
            *(d if f else i for d, f, i in zip(draws, fire, identity, strict=True))
        )


def apply_photometric(image: Tensor, params: PhotometricParams) -> Tensor:
    """Distort a float [0, 1] CHW image; the result is clamped back to [0, 1]."""
    image = ((image + params.brightness) * params.contrast).clamp(0.0, 1.0)
    if params.saturation != 1.0:
        image = TF.adjust_saturation(image, params.saturation)
    if params.hue != 0.0:
        image = TF.adjust_hue(image, params.hue)
    return image


class AugmentParams(NamedTuple):
    """One random draw shared by every frame of a training pair."""

    scale_ratio: float = 1.0  # multiplies the keep-ratio resize factor
    flip: bool = False
    photometric: PhotometricParams | None = None
    crop_origin: tuple[float, float] | None = None  # crop offset, fractions of the x, y margin
    ref_crop_origin: tuple[float, float] | None = None  # the reference's (= crop_origin if shared)

    def for_reference(self) -> AugmentParams:
        """The draw the reference frame of a pair uses (its own crop if independent)."""
        return self._replace(crop_origin=self.ref_crop_origin)


NO_AUGMENT = AugmentParams()  # inference: keep-ratio resize only


class TransformedFrame(NamedTuple):
    image: Tensor  # (3, H, W) float32 in [0, 1]
    boxes: Tensor  # (M, 4) float32 xyxy in the output image
    keep: Tensor  # (N,) bool over the input boxes: which survived (M = keep.sum())
    scale_factor: float  # output = input * scale_factor (keep-ratio factor times the jitter)


@dataclass(frozen=True)
class FrameTransform:
    """Keep-ratio resize (with optional scale jitter), horizontal flip and photometric jitter.

    ``image_size`` is mmdet's ``img_scale`` (long side, short side bounds). ``scale_range`` is the
    ``ratio_range`` jitter; ``(1, 1)`` disables it. ``flip_prob`` 0 and ``photometric`` None disable
    the others, which is what inference uses.
    """

    image_size: tuple[int, int] = (320, 192)
    scale_range: tuple[float, float] = (1.0, 1.0)
    flip_prob: float = 0.0
    photometric: PhotometricJitter | None = None
    crop_size: tuple[int, int] | None = None  # (width, height) random crop after the resize
    independent_crop: bool = False  # key and reference draw their crops separately

    def sample(self, rng: np.random.Generator) -> AugmentParams:
        params = AugmentParams(
            scale_ratio=float(rng.uniform(*self.scale_range)),
            flip=bool(rng.random() < self.flip_prob),
            photometric=None if self.photometric is None else self.photometric.sample(rng),
        )
        if self.crop_size is None:
            return params
        crop = (float(rng.random()), float(rng.random()))
        ref_crop = (float(rng.random()), float(rng.random())) if self.independent_crop else crop
        return params._replace(crop_origin=crop, ref_crop_origin=ref_crop)

    def __call__(
        self, image: Tensor, boxes: Tensor, params: AugmentParams = NO_AUGMENT
    ) -> TransformedFrame:
        """Transform a uint8 CHW image and its xyxy boxes; boxes left with no area inside the
        output image (also after a crop) are dropped (``keep`` says which, so ids and classes can
        follow); the others keep their full extent (``bbox_clip_border=False``)."""
        height, width = image.shape[-2:]
        scale = keep_ratio_scale(width, height, self.image_size) * params.scale_ratio
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        if (new_w, new_h) != (width, height):
            image = TF.resize(image, [new_h, new_w], antialias=True)
        boxes = boxes.float() * torch.tensor([new_w / width, new_h / height] * 2)
        if params.flip:
            image = image.flip(-1)
            boxes = torch.stack(
                [new_w - boxes[:, 2], boxes[:, 1], new_w - boxes[:, 0], boxes[:, 3]], 1
            )
        if params.crop_origin is not None and self.crop_size is not None:
            image, boxes = _crop(image, boxes, self.crop_size, params.crop_origin)
            new_h, new_w = image.shape[-2:]
        image = image.to(torch.float32).div_(MAX_UINT8)
        if params.photometric is not None:
            image = apply_photometric(image, params.photometric)
        keep = _inside(boxes, new_w, new_h)
        return TransformedFrame(image, boxes[keep], keep, scale)

    def inference(self, image: Tensor) -> tuple[Tensor, float]:
        """Resize only; returns the float image and the factor from original to network pixels."""
        out = self(image, torch.zeros(0, 4))
        return out.image, out.scale_factor


def _crop(
    image: Tensor, boxes: Tensor, size: tuple[int, int], origin: tuple[float, float]
) -> tuple[Tensor, Tensor]:
    """Cut a ``size`` (width, height) window whose offset is ``origin`` times the margin (+1,
    uniform integers as mmdet's ``RandomCrop``); an image smaller than the window stays whole
    along that axis. Boxes move with the window and are not clipped."""
    height, width = image.shape[-2:]
    x0 = int(origin[0] * (max(width - size[0], 0) + 1))
    y0 = int(origin[1] * (max(height - size[1], 0) + 1))
    image = image[:, y0 : y0 + size[1], x0 : x0 + size[0]]
    return image, boxes - torch.tensor([x0, y0, x0, y0], dtype=boxes.dtype)


def _inside(boxes: Tensor, width: int, height: int) -> Tensor:
    """Boxes with a positive-area overlap with the ``width`` x ``height`` image."""
    x1 = boxes[:, 0].clamp(min=0)
    y1 = boxes[:, 1].clamp(min=0)
    x2 = boxes[:, 2].clamp(max=width)
    y2 = boxes[:, 3].clamp(max=height)
    return (x2 > x1) & (y2 > y1)
