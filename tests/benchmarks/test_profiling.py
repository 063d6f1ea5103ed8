"""The profiling tables name the operators that the model and the tracker actually run."""

from __future__ import annotations

from benchmarks import profiling


def test_tracker_profile_counts_its_top_level_operators() -> None:
    table = profiling.profile_tracker(num_dets=10, rows=5)
    per_update = int(table.rsplit("top-level operators per update:", 1)[1])
    assert per_update > 0
    assert "Self CPU" in table


def test_training_profile_lists_the_backward_kernels() -> None:
    table = profiling.profile_training("small", steps=1, rows=40)
    assert "convolution_backward" in table


def test_inference_profile_lists_the_roi_align_kernel() -> None:
    table = profiling.profile_inference("small", frames=1, rows=200)
    assert "torchvision::roi_align" in table and "backward" not in table
