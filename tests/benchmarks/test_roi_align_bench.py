"""The RoIAlign benchmark times both of a workload's pooling calls, threaded and on one thread,
and reports the threads the pooling rule picks for them."""

from __future__ import annotations

import pytest
import torch

from benchmarks import roi_align
from benchmarks.workloads import SMALL


def test_small_workload_calls_are_timed_both_ways_and_stay_on_one_thread() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = roi_align.measure(SMALL, quick=True)
    finally:
        torch.set_num_threads(before)
    assert set(result) == {"box_head", "embedding_head"}
    for call in result.values():
        assert call["channels"] == 64 and call["rois"] > 0
        assert call["threads_chosen"] == 1  # too little work per thread at 64 channels
        for side in ("threaded", "one_thread"):
            assert call[side]["repeats"] == 4 and call[side]["median_ms"] > 0
        ratio = call["one_thread"]["median_ms"] / call["threaded"]["median_ms"]
        assert call["speedup"] == pytest.approx(ratio)
