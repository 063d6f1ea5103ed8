"""The threaded multi-scale RoIAlign pools exactly what torchvision's does, on several threads
only where that is safe, and leaves the caller's OpenMP thread count alone."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign

from qdtrack_pl.ops import roi_pooling
from qdtrack_pl.ops.roi_pooling import (
    MIN_WORK_PER_THREAD,
    Segment,
    ThreadedMultiScaleRoIAlign,
    feature_scales,
    split_by_level,
)

NAMES = ["0", "1", "2", "3"]
IMAGE_SHAPES = [(512, 640), (480, 640)]  # padded batch 512 x 640, strides 4..32


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def low_work_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' 4-channel maps with a few hundred RoIs count as enough work for two threads
    (``test_one_thread_where_threads_do_not_pay_or_are_not_safe`` checks the real threshold)."""
    monkeypatch.setattr(roi_pooling, "MIN_WORK_PER_THREAD", 4 * 16)


def feature_maps(channels_last: bool) -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(0)
    maps = {
        name: torch.randn(2, 4, 512 // stride, 640 // stride, generator=gen)
        for name, stride in zip(NAMES, (4, 8, 16, 32), strict=True)
    }
    if channels_last:
        maps = {k: v.contiguous(memory_format=torch.channels_last) for k, v in maps.items()}
    return maps


def boxes_on_every_level(count: int, seed: int) -> list[Tensor]:
    """``count`` boxes per image, sides 16-640 px, so that every FPN level gets some (P5 from
    sqrt(area) 448 px on)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for height, width in IMAGE_SHAPES:
        side = 16 * 40 ** torch.rand(count, 2, generator=gen)
        corner = torch.rand(count, 2, generator=gen) * torch.tensor([width, height])
        out.append(torch.cat([corner, corner + side], dim=1))
    return out


def pools() -> tuple[MultiScaleRoIAlign, ThreadedMultiScaleRoIAlign]:
    return MultiScaleRoIAlign(NAMES, 7, 0), ThreadedMultiScaleRoIAlign(NAMES, 7, 0)


@pytest.mark.usefixtures("two_threads", "low_work_threshold")
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad])
def test_threaded_pooling_is_bit_identical_to_torchvisions(
    channels_last: bool, mode, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, threaded = pools()
    features, boxes = feature_maps(channels_last), boxes_on_every_level(150, seed=1)
    calls: list[int] = []

    def counting_roi_align(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    real = roi_pooling.roi_align
    monkeypatch.setattr(roi_pooling, "roi_align", counting_roi_align)
    with mode():
        assert threaded.threads_for(list(features.values()), 300) == 2
        want = reference(features, boxes, IMAGE_SHAPES)
        got = threaded(features, boxes, IMAGE_SHAPES)
    levels = torch.bincount(reference.map_levels(boxes), minlength=4)
    assert (levels > 0).all()  # the boxes cover every level
    assert sum(calls) == 300 and len(calls) >= 2 * roi_pooling.RUNS_PER_THREAD  # short runs
    assert got.shape == (300, 4, 7, 7)
    assert torch.equal(got, want)
    assert threaded.scales == reference.scales


@pytest.mark.usefixtures("two_threads", "low_work_threshold")
def test_pooling_with_gradient_is_torchvisions_own() -> None:
    reference, threaded = pools()
    features = {k: v.requires_grad_() for k, v in feature_maps(False).items()}
    boxes = boxes_on_every_level(150, seed=2)
    assert threaded.threads_for(list(features.values()), 300) == 1
    got = threaded(features, boxes, IMAGE_SHAPES)
    (got_grad,) = torch.autograd.grad(got.square().sum(), features["0"])
    want = reference(features, boxes, IMAGE_SHAPES)
    (want_grad,) = torch.autograd.grad(want.square().sum(), features["0"])
    assert torch.equal(got, want) and torch.equal(got_grad, want_grad)
    assert got_grad.abs().sum() > 0


@pytest.mark.usefixtures("two_threads")
def test_one_thread_where_threads_do_not_pay_or_are_not_safe() -> None:
    _, pool = pools()
    features = list(feature_maps(False).values())  # 4 channels
    enough = 2 * MIN_WORK_PER_THREAD // 4
    with torch.inference_mode():
        assert pool.threads_for(features, enough) == 2
        assert pool.threads_for(features, enough - 1) == 1  # too little work for two
        plenty = 10**6
        assert pool.threads_for(features, plenty) == 2  # never more than torch's threads
        small, r50 = ([f[:1, :1].expand(1, c, -1, -1) for f in features] for c in (64, 256))
        assert pool.threads_for(small, 256) == 1  # the small config's box head: slower on 2
        assert pool.threads_for(r50, 1000) == 2  # R50's proposals: 1.5x as fast on 2
        assert pool.threads_for(features[:1], plenty) == 1  # one level: one kernel call
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert pool.threads_for(features, plenty) == 1  # autocast is per thread
        torch.set_num_threads(1)
        assert pool.threads_for(features, plenty) == 1
        torch.set_num_threads(2)
        pool.threaded = False
        assert pool.threads_for(features, plenty) == 1


@pytest.mark.usefixtures("two_threads", "low_work_threshold")
def test_helpers_run_one_openmp_thread_and_leave_the_callers_count() -> None:
    with torch.inference_mode():
        _, pool = pools()
        pool(feature_maps(False), boxes_on_every_level(100, seed=3), IMAGE_SHAPES)
    helper_threads = roi_pooling._executor(1).submit(torch.get_num_threads).result()
    assert (helper_threads, torch.get_num_threads()) == (1, 2)


def test_split_by_level_cuts_sorted_rois_into_single_level_runs() -> None:
    assert split_by_level([5, 0, 3, 2], 3) == [
        [Segment(0, 0, 3)],
        [Segment(0, 3, 5), Segment(2, 5, 7)],
        [Segment(2, 7, 8), Segment(3, 8, 10)],
    ]
    assert split_by_level([2, 0], 8) == [[Segment(0, 0, 1)], [Segment(0, 1, 2)]]  # no empty runs


@pytest.mark.parametrize("counts", [[40, 3, 0, 17], [0, 0, 9, 0], [1, 1, 1, 1], [100, 0, 0, 1]])
@pytest.mark.parametrize("parts", [1, 2, 8])
def test_split_by_level_covers_every_roi_once_on_its_level(counts: list[int], parts: int) -> None:
    runs = split_by_level(counts, parts)
    segments = list(itertools.chain.from_iterable(runs))
    covered = [i for s in segments for i in range(s.start, s.stop)]
    assert covered == list(range(sum(counts)))
    starts = list(itertools.accumulate(counts, initial=0))
    assert all(starts[s.level] <= s.start < s.stop <= starts[s.level + 1] for s in segments)
    assert len(runs) <= parts and all(runs)
    lengths = [sum(s.stop - s.start for s in run) for run in runs]
    assert max(lengths) - min(lengths) <= 1


def test_feature_scales_are_torchvisions() -> None:
    features = list(feature_maps(False).values())
    assert feature_scales(features, IMAGE_SHAPES) == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    reference, _ = pools()
    reference(feature_maps(False), boxes_on_every_level(2, seed=4), IMAGE_SHAPES)
    assert reference.scales == [1 / 4, 1 / 8, 1 / 16, 1 / 32]
    with pytest.raises(ValueError, match="at least one image"):
        feature_scales(features, [])
