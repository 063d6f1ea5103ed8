"""SparseMultiScaleRoIAlign against torchvision's MultiScaleRoIAlign: same outputs and gradients
(fp32 rounding), same level assignment, every border case of the bilinear taps, both layouts."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign

from qdtrack_pl.models.roi_align import SparseMultiScaleRoIAlign, sampling_matrix

NAMES = ["0", "1", "2", "3"]
HEIGHT, WIDTH = 96, 160


def _features(batch: int, channels: int, dtype: torch.dtype, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        str(i): torch.randn(
            batch, channels, HEIGHT // 2 ** (i + 2), WIDTH // 2 ** (i + 2), generator=gen
        ).to(dtype)
        for i in range(4)
    }


def _boxes(count: int, seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Boxes of every size (sub-pixel to larger than the image), partly outside the image."""
    gen = torch.Generator().manual_seed(seed)
    wh = torch.rand(count, 2, generator=gen) ** 2 * torch.tensor([300.0, 200.0]) + 0.3
    xy = torch.rand(count, 2, generator=gen) * torch.tensor([WIDTH + 60.0, HEIGHT + 60.0]) - 40
    return torch.cat([xy, xy + wh], dim=1).to(dtype)


def _both(features: dict, boxes: list, sampling_ratio: int = 0, channels_last: bool = False):
    """Outputs and feature gradients of torchvision's pooler and ours on the same inputs."""
    results = []
    for pooler in (
        MultiScaleRoIAlign(NAMES, 7, sampling_ratio),
        SparseMultiScaleRoIAlign(NAMES, 7, sampling_ratio),
    ):
        leaves = {}
        for k, v in features.items():
            v = v.contiguous(memory_format=torch.channels_last) if channels_last else v.clone()
            leaves[k] = v.requires_grad_()
        out = pooler(leaves, boxes, [(HEIGHT, WIDTH)] * len(boxes))
        grad = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
        out.backward(grad)
        results.append((out.detach(), {k: v.grad for k, v in leaves.items()}))
    return results


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_outputs_and_gradients_match_torchvision(channels_last: bool, sampling_ratio: int) -> None:
    features = _features(batch=2, channels=16, dtype=torch.float32)
    boxes = [_boxes(120, seed=1), _boxes(70, seed=2)]
    (want, want_grads), (got, got_grads) = _both(features, boxes, sampling_ratio, channels_last)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for name in NAMES:
        torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-5, atol=1e-5)


def test_float64_agrees_to_double_rounding() -> None:
    """In float64 the only difference left is summation order: the taps are torchvision's."""
    features = _features(batch=1, channels=8, dtype=torch.float64)
    boxes = [_boxes(200, seed=3, dtype=torch.float64)]
    (want, want_grads), (got, got_grads) = _both(features, boxes)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for name in NAMES:
        torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-12, atol=1e-12)


def test_every_level_is_used_as_torchvision_assigns_it() -> None:
    """Boxes of sqrt(area) 56, 150, 300, 600 px go to P2..P5 (mmdet finest_scale=56 rule);
    each level's gradient is non-zero exactly where torchvision's is."""
    sizes = torch.tensor([56.0, 150.0, 300.0, 600.0])
    boxes = [torch.stack([torch.zeros(4), torch.zeros(4), sizes, sizes], dim=1)]
    features = _features(batch=1, channels=4, dtype=torch.float32)
    (want, want_grads), (got, got_grads) = _both(features, boxes)
    torch.testing.assert_close(got, want)
    for name in NAMES:
        assert (got_grads[name] != 0).any() == (want_grads[name] != 0).any()
        assert (want_grads[name] != 0).any(), f"level {name} unused"


def test_boxes_on_the_borders_and_outside() -> None:
    """Taps beyond the map (weight 0), on its last row/column (clamped) and boxes entirely off
    the image."""
    boxes = [
        torch.tensor(
            [
                [-30.0, -30.0, -5.0, -5.0],  # entirely above-left
                [WIDTH - 3.0, HEIGHT - 3.0, WIDTH + 40.0, HEIGHT + 40.0],  # past the corner
                [0.0, 0.0, WIDTH, HEIGHT],  # the whole image
                [10.0, 10.0, 10.2, 10.1],  # sub-pixel (width clamped to 1 bin unit)
                [WIDTH + 50.0, 0.0, WIDTH + 90.0, 20.0],  # right of the image
            ]
        )
    ]
    features = _features(batch=1, channels=3, dtype=torch.float32)
    (want, want_grads), (got, got_grads) = _both(features, boxes)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for name in NAMES:
        torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-5, atol=1e-6)


def test_images_without_boxes_and_no_boxes_at_all() -> None:
    features = _features(batch=3, channels=4, dtype=torch.float32)
    boxes = [_boxes(10, seed=4), torch.zeros(0, 4), _boxes(5, seed=5)]
    (want, want_grads), (got, got_grads) = _both(features, boxes)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    for name in NAMES:
        torch.testing.assert_close(got_grads[name], want_grads[name], rtol=1e-5, atol=1e-5)
    empty = SparseMultiScaleRoIAlign(NAMES, 7, 0)(
        features, [torch.zeros(0, 4)] * 3, [(HEIGHT, WIDTH)] * 3
    )
    assert empty.shape == (0, 4, 7, 7)


def test_switched_off_uses_torchvision(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sparse=False`` takes torchvision's path unchanged (as CUDA and non-float inputs do)."""
    import qdtrack_pl.models.roi_align as module

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("sparse path taken")

    monkeypatch.setattr(module, "sparse_multiscale_roi_align", fail)
    features = _features(batch=1, channels=4, dtype=torch.float32)
    boxes = [_boxes(8, seed=6)]
    off = SparseMultiScaleRoIAlign(NAMES, 7, 0, sparse=False)(features, boxes, [(HEIGHT, WIDTH)])
    want = MultiScaleRoIAlign(NAMES, 7, 0)(features, boxes, [(HEIGHT, WIDTH)])
    assert torch.equal(off, want)


def test_sampling_matrix_rows_sum_to_the_inside_share() -> None:
    """A box fully inside the map: every bin's weights sum to 1 (a proper average)."""
    rois = torch.tensor([[0.0, 8.0, 8.0, 40.0, 30.0]])
    matrix = sampling_matrix(rois, torch.tensor([0]), 49, (1, 24, 40), (7, 7), 0.25, 0)
    sums = matrix.to_dense().sum(dim=1)
    torch.testing.assert_close(sums, torch.ones(49))
