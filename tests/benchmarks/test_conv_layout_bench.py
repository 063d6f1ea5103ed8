"""The layout benchmark times every convolution shape in both layouts, forward and backward."""

from __future__ import annotations

import pytest
import torch

from benchmarks import conv_layout


def test_quick_run_times_both_layouts_of_every_shape() -> None:
    result = conv_layout.run(quick=True)
    assert result["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert [s["what"] for s in result["shapes"]] == [s.what for s in conv_layout.SHAPES]
    for shape, entry in zip(conv_layout.SHAPES, result["shapes"], strict=True):
        assert entry["height"] == shape.height // conv_layout.QUICK_SCALE
        for layout in ("nchw", "nhwc"):
            assert 0 < entry[layout]["forward_ms"] < entry[layout]["forward_backward_ms"]
        for key in ("forward", "forward_backward"):
            ratio = entry["nchw"][f"{key}_ms"] / entry["nhwc"][f"{key}_ms"]
            assert entry[f"nhwc_speedup_{key}"] == pytest.approx(ratio)
