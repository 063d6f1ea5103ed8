"""Shared key/reference augmentation: boxes follow the pixels, and one draw means one transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qdtrack_pl.data.loading.transforms import (
    AugmentParams,
    FrameTransform,
    PhotometricJitter,
    PhotometricParams,
    keep_ratio_scale,
)

BOX = [10.0, 8.0, 30.0, 20.0]


def _image_with_white_box(width: int = 64, height: int = 48) -> torch.Tensor:
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    x1, y1, x2, y2 = (int(v) for v in BOX)
    image[:, y1:y2, x1:x2] = 255
    return image


def _white_bounds(image: torch.Tensor) -> list[int]:
    ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


@pytest.mark.parametrize(
    ("size", "bounds", "expected"),
    [
        ((1920, 1080), (1088, 1088), 1088 / 1920),  # MOT17: the long side is the limit
        ((1280, 720), (1296, 720), 1.0),  # BDD100K: unchanged
        ((640, 384), (320, 192), 0.5),
        ((480, 640), (1333, 800), 800 / 480),  # portrait: the short side reaches 800 first
    ],
)
def test_keep_ratio_scale(size: tuple[int, int], bounds: tuple[int, int], expected: float) -> None:
    assert keep_ratio_scale(*size, bounds) == pytest.approx(expected)


def test_resize_scales_boxes_with_the_pixels() -> None:
    out = FrameTransform(image_size=(32, 24))(_image_with_white_box(), torch.tensor([BOX]))
    assert out.image.shape == (3, 24, 32) and out.image.dtype == torch.float32
    assert out.scale_factor == 0.5
    assert out.boxes.tolist() == [[5.0, 4.0, 15.0, 10.0]]
    assert _white_bounds(out.image) == [5, 4, 15, 10]


def test_flip_mirrors_image_and_boxes_identically() -> None:
    image = _image_with_white_box()
    out = FrameTransform(image_size=(64, 48))(image, torch.tensor([BOX]), AugmentParams(flip=True))
    assert out.boxes.tolist() == [[34.0, 8.0, 54.0, 20.0]]
    assert _white_bounds(out.image) == [34, 8, 54, 20]
    torch.testing.assert_close(out.image, image.flip(-1).float() / 255)


def test_boxes_left_outside_are_dropped_with_a_keep_mask() -> None:
    boxes = torch.tensor([[-20.0, -20, -5, -5], [60, 40, 70, 50], [0, 0, 10, 10], [70, 0, 80, 9]])
    out = FrameTransform(image_size=(64, 48))(
        _image_with_white_box(), boxes, AugmentParams(flip=True)
    )
    assert out.keep.tolist() == [False, True, True, False]
    assert out.boxes.tolist() == [[-6.0, 40.0, 4.0, 50.0], [54.0, 0.0, 64.0, 10.0]]


def test_one_draw_transforms_two_frames_the_same_way() -> None:
    transform = FrameTransform(
        image_size=(64, 48),
        scale_range=(0.8, 1.2),
        flip_prob=0.5,
        photometric=PhotometricJitter(prob=1.0),
    )
    rng = np.random.default_rng(0)
    image = torch.randint(0, 256, (3, 48, 64), dtype=torch.uint8)
    sizes = set()
    for _ in range(10):
        params = transform.sample(rng)
        a = transform(image, torch.tensor([BOX]), params)
        b = transform(image.clone(), torch.tensor([BOX]), params)
        torch.testing.assert_close(a.image, b.image)
        torch.testing.assert_close(a.boxes, b.boxes)
        assert 0.8 <= params.scale_ratio <= 1.2 and a.scale_factor == params.scale_ratio
        assert 0.0 <= float(a.image.min()) and float(a.image.max()) <= 1.0
        sizes.add(tuple(a.image.shape))
        assert a.boxes[0, 2] - a.boxes[0, 0] == pytest.approx(20 * a.image.shape[-1] / 64)
    assert len(sizes) > 3  # the jitter does change the size


def test_photometric_changes_colour_not_geometry() -> None:
    image = _image_with_white_box()
    params = AugmentParams(photometric=PhotometricParams(brightness=-0.2, contrast=0.5))
    out = FrameTransform(image_size=(64, 48))(image, torch.tensor([BOX]), params)
    assert out.boxes.tolist() == [BOX]
    assert out.image.max().item() == pytest.approx(0.4)  # (1 - 0.2) * 0.5
    assert out.image.min().item() == 0.0  # clamped


def test_inference_returns_the_scale_that_maps_boxes_back() -> None:
    image, scale = FrameTransform(image_size=(96, 72)).inference(_image_with_white_box())
    assert image.shape == (3, 72, 96) and scale == 1.5
    network_box = torch.tensor(_white_bounds(image), dtype=torch.float32)
    assert (network_box / scale).tolist() == BOX


def test_crop_moves_boxes_with_the_pixels_and_drops_boxes_cut_away() -> None:
    transform = FrameTransform(image_size=(64, 48), crop_size=(32, 24))
    boxes = torch.tensor([BOX, [50.0, 40.0, 60.0, 46.0]])  # the second lies outside any 32x24 crop
    # origin (0.5, 0.25): x0 = int(0.5 * (64 - 32 + 1)) = 16, y0 = int(0.25 * (48 - 24 + 1)) = 6
    out = transform(_image_with_white_box(), boxes, AugmentParams(crop_origin=(0.5, 0.25)))
    assert tuple(out.image.shape) == (3, 24, 32)
    assert out.keep.tolist() == [True, False] and out.scale_factor == 1.0
    assert out.boxes.tolist() == [[-6.0, 2.0, 14.0, 14.0]]  # not clipped (bbox_clip_border=False)
    assert _white_bounds(out.image) == [0, 2, 14, 14]  # the visible part of the box


def test_independent_crop_draws_the_reference_offset_separately() -> None:
    rng = np.random.default_rng(0)
    shared = FrameTransform(crop_size=(32, 24)).sample(rng)
    assert shared.crop_origin == shared.ref_crop_origin == shared.for_reference().crop_origin
    independent = FrameTransform(crop_size=(32, 24), independent_crop=True).sample(rng)
    assert independent.for_reference().crop_origin == independent.ref_crop_origin
    assert independent.crop_origin != independent.ref_crop_origin
    no_crop = FrameTransform().sample(rng)
    assert no_crop.crop_origin is None and no_crop.for_reference() == no_crop
