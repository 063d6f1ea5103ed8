"""torchvision's multi-scale RoIAlign with its CPU kernel spread over torch's threads (issue 17).

torchvision's CPU ``roi_align`` kernel loops over the RoIs on one thread, whatever
``torch.get_num_threads()`` allows: in R50 inference at 1088x608 it was 17 % of a frame, run on
one of two cores (docs/performance.md). Every RoI's output depends only on its own box and its
level's map, so :class:`ThreadedMultiScaleRoIAlign` sorts the RoIs by level, cuts them into short
runs, and lets the calling thread and ``torch.get_num_threads() - 1`` helper threads take runs
until none is left, each pooling with torchvision's kernel (which releases the GIL); the rows then
go back in order. The result is bit-identical to torchvision's, and each map is made NCHW once per
call instead of once per kernel call.

Threads are used only where a call holds enough work for each of them (RoIs x channels, at
least ``MIN_WORK_PER_THREAD``: the R50 box head's proposals, not the small config's calls), and
only on CPU without a graph (inference, or features that need no gradient) and
without autocast (which is per thread): a threaded backward would allocate one full-size
gradient per thread. Everything else, and ``threaded=False``, is torchvision's own forward.

The helpers run with one OpenMP thread each. A helper that entered torch's OpenMP parallel
regions (the kernel zero-fills its output) would start an OpenMP team of its own; with more
OpenMP threads than cores, libgomp stops spin-waiting in every team, and each parallel region of
the main thread then pays a wake-up (the small backbone went from 18 to 24 ms per frame). OpenMP's
thread count is per thread, so ``omp_set_num_threads(1)`` in a helper leaves the caller's as it
was. Without an OpenMP runtime to ask (another torch build), the pooling stays on one thread.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor, wait
from functools import cache
from typing import NamedTuple, cast

import torch
import torchvision
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import LevelMapper

log = logging.getLogger(__name__)

# Below this much work per thread (RoIs x feature channels), handing runs to threads costs more
# than it saves. Measured by ``python -m benchmarks.roi_align`` (docs/performance.md): 256 and 100
# RoIs of 64 channels (the small config) pooled 0.83x and 0.76x as fast on 2 threads, 826 and 100
# RoIs of 256 channels (R50) 1.49x and 1.03x.
MIN_WORK_PER_THREAD = 48 * 256
RUNS_PER_THREAD = 4  # short runs, taken as threads free up: levels cost unequal time per RoI
OPENMP_LIBRARIES = ("libgomp.so.1", "libiomp5.so", "libomp.so")  # as torch builds link them

_EXECUTORS: dict[tuple[int, int], ThreadPoolExecutor] = {}  # (process id, helpers) -> pool


@cache
def _openmp() -> ctypes.CDLL | None:
    """The OpenMP runtime torch has loaded (never a new one), or None."""
    if "OpenMP" not in torch.__config__.parallel_info():
        return None
    for name in OPENMP_LIBRARIES:
        try:
            return ctypes.CDLL(name, mode=os.RTLD_NOLOAD)
        except (OSError, AttributeError):  # not loaded; RTLD_NOLOAD is POSIX only
            continue
    log.info("no OpenMP runtime found in this process: RoIAlign stays on one thread")
    return None


def _one_openmp_thread() -> None:
    """Helper initialiser: torch's per-thread OpenMP set-up first (it would reset the count at the
    first parallel region), then one OpenMP thread for this thread only."""
    openmp = _openmp()
    assert openmp is not None  # helpers exist only with a runtime
    torch.get_num_threads()
    openmp.omp_set_num_threads(1)


def _executor(helpers: int) -> ThreadPoolExecutor:
    """``helpers`` helper threads, one pool per process and size (a forked child cannot use its
    parent's threads)."""
    key = (os.getpid(), helpers)
    pool = _EXECUTORS.get(key)
    if pool is None:
        pool = _EXECUTORS[key] = ThreadPoolExecutor(
            helpers, thread_name_prefix="roi_align", initializer=_one_openmp_thread
        )
    return pool


class Segment(NamedTuple):
    """RoIs ``start:stop`` of the level-sorted RoIs, all on feature level ``level``."""

    level: int
    start: int
    stop: int


def split_by_level(level_counts: list[int], parts: int) -> list[list[Segment]]:
    """Cut RoIs sorted by level (``level_counts[l]`` of them on level ``l``) into at most
    ``parts`` non-empty runs of near-equal length, each run a list of single-level segments."""
    total = sum(level_counts)
    level_starts = list(itertools.accumulate(level_counts, initial=0))
    bounds = [round(k * total / parts) for k in range(parts + 1)]
    runs = []
    for begin, end in itertools.pairwise(bounds):
        run = [
            Segment(level, max(lo, begin), min(hi, end))
            for level, (lo, hi) in enumerate(itertools.pairwise(level_starts))
            if max(lo, begin) < min(hi, end)
        ]
        if run:
            runs.append(run)
    return runs


def feature_scales(features: list[Tensor], image_shapes: list[tuple[int, int]]) -> list[float]:
    """Each map's scale as a power of two, from its height against the tallest image (the rule
    torchvision's ``MultiScaleRoIAlign`` infers its scales by)."""
    if not image_shapes:
        raise ValueError("image_shapes must name at least one image")
    height = max(h for h, _ in image_shapes)
    return [2.0 ** round(math.log2(f.shape[-2] / height)) for f in features]


class ThreadedMultiScaleRoIAlign(MultiScaleRoIAlign):  # type: ignore[misc]  # untyped upstream
    """``torchvision.ops.MultiScaleRoIAlign`` (same arguments, level mapping and kernel) that pools
    on all of torch's threads when it safely can; see the module docstring."""

    # set by the first call, as torchvision's own forward does
    scales: list[float] | None
    map_levels: LevelMapper | None

    def __init__(
        self,
        featmap_names: list[str],
        output_size: int | tuple[int, int],
        sampling_ratio: int,
        *,
        threaded: bool = True,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ) -> None:
        super().__init__(
            featmap_names,
            output_size,
            sampling_ratio,
            canonical_scale=canonical_scale,
            canonical_level=canonical_level,
        )
        self.threaded = threaded

    def threads_for(self, features: list[Tensor], num_rois: int) -> int:
        """How many threads a call on ``features`` with ``num_rois`` RoIs uses (1: torchvision's
        own forward)."""
        if not self.threaded or len(features) < 2 or torchvision._is_tracing():
            return 1
        if features[0].device.type != "cpu" or torch.is_autocast_enabled("cpu"):
            return 1
        if torch.is_grad_enabled() and any(f.requires_grad for f in features):
            return 1
        work = num_rois * features[0].shape[1]
        threads = min(torch.get_num_threads(), work // MIN_WORK_PER_THREAD)
        return threads if threads > 1 and _openmp() is not None else 1

    def forward(
        self,
        x: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> Tensor:
        """(sum N_i, C, *output_size) pooled features of ``boxes`` (xyxy, image pixels)."""
        features = [v for k, v in x.items() if k in self.featmap_names]  # torchvision's order
        threads = self.threads_for(features, sum(len(b) for b in boxes))
        if threads == 1:
            return cast("Tensor", super().forward(x, boxes, image_shapes))
        if self.scales is None or self.map_levels is None:
            self.scales = feature_scales(features, image_shapes)
            self.map_levels = LevelMapper(
                int(-math.log2(self.scales[0])),
                int(-math.log2(self.scales[-1])),
                canonical_scale=self.canonical_scale,
                canonical_level=self.canonical_level,
            )
        return self._pool_threaded(features, boxes, self.scales, self.map_levels, threads)

    def _pool_threaded(
        self,
        features: list[Tensor],
        boxes: list[Tensor],
        scales: list[float],
        map_levels: LevelMapper,
        threads: int,
    ) -> Tensor:
        rois = torch.cat(
            [torch.cat([b.new_full((len(b), 1), i), b], dim=1) for i, b in enumerate(boxes)]
        )
        levels = map_levels(boxes)
        order = torch.argsort(levels, stable=True)
        sorted_rois = rois[order]
        counts = torch.bincount(levels, minlength=len(features)).tolist()
        maps = [f.contiguous() for f in features]  # the kernel's layout, once per map
        runs = split_by_level(counts, threads * RUNS_PER_THREAD)
        pooled: list[Tensor | None] = [None] * len(runs)
        next_run = itertools.count()  # next() is atomic under the GIL
        inference = torch.is_inference_mode_enabled()

        def take_runs() -> None:
            # grad and inference modes are per thread: the helpers take the caller's
            with torch.inference_mode(inference), torch.no_grad():
                while (i := next(next_run)) < len(runs):
                    pooled[i] = torch.cat(
                        [
                            roi_align(
                                maps[s.level],
                                sorted_rois[s.start : s.stop],
                                output_size=self.output_size,
                                spatial_scale=scales[s.level],
                                sampling_ratio=self.sampling_ratio,
                            )
                            for s in runs[i]
                        ]
                    )

        helpers = [_executor(threads - 1).submit(take_runs) for _ in range(threads - 1)]
        try:
            take_runs()
        finally:  # the helpers write into this call's lists: never leave while they run
            wait(helpers)
        for helper in helpers:
            helper.result()  # a helper's error, raised here
        result = features[0].new_empty((len(rois), maps[0].shape[1], *self.output_size))
        result[order] = torch.cat(cast("list[Tensor]", pooled))  # every run is pooled by now
        return result
