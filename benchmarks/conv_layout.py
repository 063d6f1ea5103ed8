"""NCHW against NHWC for single convolutions of R50-FPN at 1088x608, forward and forward+backward.

Why ``channels_last`` applies to inference and ``channels_last_training`` is off by default
(docs/performance.md): how oneDNN's NHWC kernels compare depends on the CPU's vector ISA, and
backward more than forward. Each shape runs both layouts in one process, alternating, on the
torch threads of the run; the figure per layout is the fastest repeat.

    python -m benchmarks.conv_layout [--quick]

prints one JSON object: the CPU capability torch dispatches to, and per shape both layouts'
milliseconds and the NHWC speed-up (above 1: NHWC faster).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from benchmarks.common import print_json_run, time_repeats


class ConvShape(NamedTuple):
    what: str
    in_channels: int
    out_channels: int
    kernel: int
    height: int
    width: int


SHAPES = (  # stride-1 convolutions of ResNet-50 + FPN at 1088x608
    ConvShape("layer1 3x3 (C2)", 64, 64, 3, 152, 272),
    ConvShape("layer1 1x1 reduce (C2)", 256, 64, 1, 152, 272),
    ConvShape("layer1 1x1 expand (C2)", 64, 256, 1, 152, 272),
    ConvShape("layer2 3x3 (C3)", 128, 128, 3, 76, 136),
    ConvShape("layer3 3x3 (C4)", 256, 256, 3, 38, 68),
    ConvShape("layer4 3x3 (C5)", 512, 512, 3, 19, 34),
    ConvShape("FPN output / RPN 3x3 (P2)", 256, 256, 3, 152, 272),
)
QUICK_SCALE = 8  # quick mode: maps 8x smaller per side
CPU = torch.device("cpu")


def _timings(shape: ConvShape, nhwc: bool, scale: int, repeats: int) -> dict[str, float]:
    """Fastest forward (no graph) and forward+backward of one convolution, in ms."""
    layout = torch.channels_last if nhwc else torch.contiguous_format
    gen = torch.Generator().manual_seed(0)
    size = (1, shape.in_channels, shape.height // scale, shape.width // scale)
    x = torch.randn(size, generator=gen).contiguous(memory_format=layout).requires_grad_()
    conv = nn.Conv2d(
        shape.in_channels, shape.out_channels, shape.kernel, padding=shape.kernel // 2, bias=False
    ).to(memory_format=layout)

    def forward() -> None:
        with torch.no_grad():
            conv(x)

    def forward_backward() -> None:
        y = conv(x)
        y.backward(torch.ones_like(y))

    return {
        "forward_ms": 1e3 * min(time_repeats(forward, 1, repeats, CPU)),
        "forward_backward_ms": 1e3 * min(time_repeats(forward_backward, 1, repeats, CPU)),
    }


def run(quick: bool) -> dict[str, Any]:
    scale, repeats = (QUICK_SCALE, 2) if quick else (1, 3)
    shapes = []
    for shape in SHAPES:
        both: dict[str, list[dict[str, float]]] = {"nchw": [], "nhwc": []}
        for _ in range(2):  # alternating rounds; the best of each layout's repeats
            for name in both:
                both[name].append(_timings(shape, name == "nhwc", scale, repeats))
        best = {
            name: {key: min(t[key] for t in runs) for key in runs[0]} for name, runs in both.items()
        }
        shapes.append(
            shape._asdict()
            | {"height": shape.height // scale, "width": shape.width // scale}
            | best
            | {
                f"nhwc_speedup_{key[:-3]}": best["nchw"][key] / best["nhwc"][key]
                for key in best["nchw"]
            }
        )
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_threads": torch.get_num_threads(),
        "shapes": shapes,
    }


if __name__ == "__main__":
    print_json_run(__doc__, run, "8x smaller maps, 2 repeats")
