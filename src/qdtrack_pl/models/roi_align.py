"""Multi-level RoIAlign as sparse matrix products on CPU (issue 17), same numbers as torchvision's.

RoIAlign is linear in the feature map: every output cell ``(roi, channel, bin)`` is a weighted sum
of the same few bilinear taps in every channel. torchvision's CPU kernels walk that sum channel by
channel on one thread, and its backward recomputes the taps for every channel and scatters them one
at a time (``_roi_align_backward``: 1 s of a 5 s R50 training step at 1088x608). Here the taps of
all RoIs of one level become one sparse matrix ``W`` (rows: RoI bins, columns: feature-map
positions, values: bilinear weight / samples per bin), so that with the feature map seen as a
``(positions, channels)`` matrix

    output = W @ features          backward: grad_features = W.T @ grad_output

two multithreaded sparse-dense products over contiguous channel rows. The feature map is that
matrix without a copy when it is channels_last (``FasterRCNN(channels_last=True)``); otherwise one
copy per level is made.

The taps are torchvision's exactly (``aligned=False``, adaptive ``sampling_ratio=0`` grids of
``ceil(roi_size / output_size)`` samples, its border rules), and level assignment is
torchvision's ``LevelMapper`` (canonical 224 px at P4, i.e. mmdet's ``finest_scale=56``); results
differ from ``torchvision.ops.MultiScaleRoIAlign`` only by fp32 summation order. Only float32 /
float64 CPU tensors take this path; CUDA (and anything else) runs torchvision's kernels.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import (
    LevelMapper,
    _convert_to_roi_format,
    _filter_input,
    _setup_scales,
)

_SPARSE_DTYPES = (torch.float32, torch.float64)


def _rows(features: Tensor) -> Tensor:
    """(B, C, H, W) -> (B*H*W, C): a view when channels_last, else a copy."""
    b, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(b * h * w, c)


def sampling_matrix(
    rois: Tensor,
    roi_rows: Tensor,
    num_rows: int,
    feature_shape: tuple[int, int, int],
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
) -> Tensor:
    """The CSR matrix ``(num_rows, B*H*W)`` of RoIAlign's bilinear taps (``aligned=False``).

    ``rois`` (K, 5) ``(batch index, x1, y1, x2, y2)`` in image pixels, RoI ``k`` filling rows
    ``roi_rows[k] * bins + bin`` (``bins = out_h * out_w``, row-major); ``roi_rows`` must ascend.
    Arithmetic follows torchvision's ``roi_align_forward_kernel_impl`` step by step in the same
    dtype, so taps and weights agree bit for bit with its pre-computed ones.
    """
    batch, height, width = feature_shape
    out_h, out_w = output_size
    bins = out_h * out_w
    dtype, device = rois.dtype, rois.device
    start_w = rois[:, 1] * spatial_scale
    start_h = rois[:, 2] * spatial_scale
    roi_w = (rois[:, 3] * spatial_scale - start_w).clamp(min=1.0)
    roi_h = (rois[:, 4] * spatial_scale - start_h).clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio, dtype=torch.long)
        grid_w = torch.full_like(roi_w, sampling_ratio, dtype=torch.long)
    else:
        grid_h, grid_w = torch.ceil(roi_h / out_h).long(), torch.ceil(roi_w / out_w).long()
    per_roi = grid_h * grid_w * bins  # samples of each RoI
    total = int(per_roi.sum())
    roi = torch.repeat_interleave(
        torch.arange(len(rois), device=device), per_roi, output_size=total
    )
    k = torch.arange(total, device=device) - (per_roi.cumsum(0) - per_roi)[roi]
    gh, gw = grid_h[roi], grid_w[roi]
    ix, k = k % gw, k // gw
    iy, k = k % gh, k // gh
    pw, ph = k % out_w, k // out_w
    bh, bw = bin_h[roi], bin_w[roi]
    y = start_h[roi] + ph.to(dtype) * bh + (iy.to(dtype) + 0.5) * bh / gh.to(dtype)
    x = start_w[roi] + pw.to(dtype) * bw + (ix.to(dtype) + 0.5) * bw / gw.to(dtype)
    inside = (y >= -1.0) & (y <= height) & (x >= -1.0) & (x <= width)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y_low, x_low = y.long(), x.long()
    y_top, x_right = y_low >= height - 1, x_low >= width - 1
    y_low = torch.where(y_top, height - 1, y_low)
    x_low = torch.where(x_right, width - 1, x_low)
    y_high = torch.where(y_top, y_low, y_low + 1)
    x_high = torch.where(x_right, x_low, x_low + 1)
    ly = torch.where(y_top, 0.0, y - y_low.to(dtype))
    lx = torch.where(x_right, 0.0, x - x_low.to(dtype))
    hy, hx = 1.0 - ly, 1.0 - lx
    count = (gh * gw).to(dtype)
    weights = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx], dim=1)
    weights = weights * (inside.to(dtype) / count).unsqueeze(1)
    base = rois[:, 0].long()[roi] * (height * width)
    cols = torch.stack(
        [
            base + y_low * width + x_low,
            base + y_low * width + x_high,
            base + y_high * width + x_low,
            base + y_high * width + x_high,
        ],
        dim=1,
    )
    row = roi_rows[roi] * bins + ph * out_w + pw
    per_row = torch.bincount(row, minlength=num_rows) * 4
    crow = torch.zeros(num_rows + 1, dtype=torch.long, device=device)
    torch.cumsum(per_row, 0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            crow,
            cols.reshape(-1),
            weights.reshape(-1),
            (num_rows, batch * height * width),
            check_invariants=False,
        )


class _SparseLevels(torch.autograd.Function):
    """``sum_l W_l @ rows(features_l)`` -> (R, C); backward ``W_l.T @ grad`` per level."""

    @staticmethod
    def forward(
        ctx: Any, matrices: list[Tensor | None], num_rows: int, *features: Tensor
    ) -> Tensor:
        out = features[0].new_zeros(num_rows, features[0].shape[1])
        for matrix, feature in zip(matrices, features, strict=True):
            if matrix is not None:
                out.addmm_(matrix, _rows(feature))
        ctx.matrices = matrices
        ctx.shapes = [f.shape for f in features]
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        grads: list[Tensor | None] = []
        for i, (matrix, shape) in enumerate(zip(ctx.matrices, ctx.shapes, strict=True)):
            if not ctx.needs_input_grad[2 + i]:
                grads.append(None)
                continue
            b, c, h, w = shape
            if matrix is None:
                rows = grad.new_zeros(b * h * w, c)
            else:
                rows = matrix.t() @ grad
            grads.append(rows.view(b, h, w, c).permute(0, 3, 1, 2))
        return (None, None, *grads)


def sparse_multiscale_roi_align(
    features: list[Tensor],
    boxes: list[Tensor],
    output_size: tuple[int, int],
    sampling_ratio: int,
    scales: list[float],
    levels_of: Any,
) -> Tensor:
    """torchvision's ``_multiscale_roi_align`` (``aligned=False``) through sparse products; the
    (K, C, out_h, out_w) result has channels_last strides."""
    rois = _convert_to_roi_format(boxes)
    num_rois, channels = len(rois), features[0].shape[1]
    bins = output_size[0] * output_size[1]
    if len(features) == 1:
        levels = torch.zeros(num_rois, dtype=torch.long, device=rois.device)
    else:
        levels = levels_of(boxes)
    matrices: list[Tensor | None] = []
    for level, (feature, scale) in enumerate(zip(features, scales, strict=True)):
        index = torch.where(levels == level)[0]
        if len(index) == 0:
            matrices.append(None)
            continue
        b, _, h, w = feature.shape
        matrices.append(
            sampling_matrix(
                rois[index], index, num_rois * bins, (b, h, w), output_size, scale, sampling_ratio
            )
        )
    out = _SparseLevels.apply(matrices, num_rois * bins, *features)
    return out.view(num_rois, output_size[0], output_size[1], channels).permute(0, 3, 1, 2)


class SparseMultiScaleRoIAlign(MultiScaleRoIAlign):
    """``torchvision.ops.MultiScaleRoIAlign`` whose CPU float path runs as sparse products
    (:func:`sparse_multiscale_roi_align`); ``sparse=False`` (or CUDA inputs) keeps torchvision's
    kernels. Same constructor, same level mapping, no state of its own."""

    def __init__(
        self,
        featmap_names: list[str],
        output_size: int | tuple[int, int],
        sampling_ratio: int,
        *,
        sparse: bool = True,
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
        self.sparse = sparse

    def forward(
        self,
        x: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> Tensor:
        x_filtered = _filter_input(x, self.featmap_names)
        first = x_filtered[0]
        if not (
            self.sparse
            and first.device.type == "cpu"
            and first.dtype in _SPARSE_DTYPES
            and all(b.dtype == first.dtype for b in boxes)
            and not torch.jit.is_scripting()
        ):
            return super().forward(x, boxes, image_shapes)
        # torchvision declares these through a class-level ``__annotations__`` dict that mypy
        # cannot read; read them as the typed plain attributes they are (set in its __init__)
        scales: list[float] | None = self.__dict__.get("scales")
        map_levels: LevelMapper | None = self.__dict__.get("map_levels")
        if scales is None or map_levels is None:
            scales, map_levels = _setup_scales(
                x_filtered, image_shapes, self.canonical_scale, self.canonical_level
            )
            self.scales, self.map_levels = scales, map_levels
        if sum(len(b) for b in boxes) == 0:
            return first.new_zeros((0, first.shape[1], *self.output_size))
        return sparse_multiscale_roi_align(
            x_filtered,
            boxes,
            self.output_size,
            self.sampling_ratio,
            scales,
            map_levels,
        )


def taps_per_roi_bound(roi_size: float, stride: int, output_size: int = 7) -> int:
    """Non-zeros one RoI of ``roi_size`` pixels adds on a level of ``stride`` (sizing note)."""
    grid = math.ceil(max(roi_size / stride, 1.0) / output_size)
    return 4 * grid * grid * output_size * output_size
