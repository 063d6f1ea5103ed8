"""Frozen BatchNorm folded into the preceding convolution's weights (issue 17).

A frozen BatchNorm (torchvision's ``FrozenBatchNorm2d``, or ``BatchNorm2d`` in eval mode) is an
affine map per channel, ``y = x * scale + shift`` with ``scale = gamma / sqrt(var + eps)`` and
``shift = beta - mean * scale``. After a convolution it equals the convolution with its weights
scaled per output channel and ``shift`` as bias:

    bn(conv(x, W)) = conv(x, W * scale) + shift

so the network skips two full passes over every activation (and one in backward) per conv. The
fold is recomputed from the current parameters in every forward (a pass over the weights, not the
activations): ``W`` stays the trained parameter, gradients reach it through ``W * scale`` exactly
as they did through the BatchNorm, and checkpoints keep their keys (``conv1.weight``,
``bn1.running_mean``, ...). When nothing needs a gradient (inference, frozen stages) the folded
weights are cached until a parameter or buffer changes (tracked by tensor versions; inference
tensors, which track none, by identity and dtype: outside ``torch.inference_mode`` they cannot be
modified in place).

A BatchNorm that is *training* (batch statistics) is not folded: the pair then runs as before.
:func:`fold_batchnorms` rewires a module tree in place; ``FasterRCNN(fold_bn=...)`` calls it on
the ResNet body. See docs/performance.md.
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d

Norm: TypeAlias = FrozenBatchNorm2d | nn.BatchNorm2d


def is_foldable(norm: object) -> bool:
    """Whether ``norm`` is an affine map right now (frozen, or BatchNorm with running stats in
    eval mode)."""
    if isinstance(norm, FrozenBatchNorm2d):
        return True
    return (
        isinstance(norm, nn.BatchNorm2d)
        and not norm.training
        and norm.running_mean is not None
        and norm.running_var is not None
    )


def _norm_tensors(norm: Norm) -> tuple[Tensor | None, Tensor | None, Tensor, Tensor]:
    """``weight``, ``bias``, ``running_mean``, ``running_var`` of a norm (parameters or buffers)."""
    running_mean = cast("Tensor | None", norm.running_mean)
    running_var = cast("Tensor | None", norm.running_var)
    if running_mean is None or running_var is None:
        raise ValueError(
            f"{type(norm).__name__} has no running statistics (track_running_stats=False): "
            "it cannot be folded into a convolution"
        )
    return (
        cast("Tensor | None", norm.weight),
        cast("Tensor | None", norm.bias),
        running_mean,
        running_var,
    )


def _affine(norm: Norm) -> tuple[Tensor, Tensor]:
    """``scale``, ``shift`` of a foldable norm, computed as ``FrozenBatchNorm2d.forward`` does."""
    norm_weight, norm_bias, running_mean, running_var = _norm_tensors(norm)
    weight = norm_weight if norm_weight is not None else torch.ones_like(running_var)
    bias = norm_bias if norm_bias is not None else torch.zeros_like(running_mean)
    scale = weight * (running_var + norm.eps).rsqrt()
    return scale, bias - running_mean * scale


class FoldedNormMixin:
    """A norm that lets the convolution before it apply it: identity while foldable and paired
    with its :class:`BNFoldedConv2d`, an ordinary norm otherwise."""

    def forward(self, x: Tensor) -> Tensor:
        parent, conv_name = self.__dict__["_fold_pair"]
        if is_foldable(self) and isinstance(parent._modules.get(conv_name), BNFoldedConv2d):
            return x
        return super().forward(x)  # type: ignore[misc]


class FoldedFrozenBatchNorm2d(FoldedNormMixin, FrozenBatchNorm2d):
    """``FrozenBatchNorm2d`` applied by the preceding :class:`BNFoldedConv2d`."""


class FoldedBatchNorm2d(FoldedNormMixin, nn.BatchNorm2d):
    """``BatchNorm2d`` applied by the preceding :class:`BNFoldedConv2d` while in eval mode."""


class BNFoldedConv2d(nn.Conv2d):
    """``nn.Conv2d`` that applies the norm after it through its weights whenever that norm is
    foldable. The norm is looked up by name in the common parent at every call (not held as a
    submodule: it stays where it was, with the same state-dict keys), so a norm replaced later
    (e.g. by ``SyncBatchNorm.convert_sync_batchnorm``) is simply not folded."""

    def _paired_norm(self) -> Norm | None:
        parent, norm_name = self.__dict__["_fold_pair"]
        norm = parent._modules.get(norm_name)
        if isinstance(norm, FoldedNormMixin) and is_foldable(norm):
            return cast(Norm, norm)  # FoldedFrozenBatchNorm2d | FoldedBatchNorm2d
        return None

    def forward(self, x: Tensor) -> Tensor:
        norm = self._paired_norm()
        if norm is None:
            return super().forward(x)
        weight, bias = self._folded(norm)
        return self._conv_forward(x, weight, bias)

    def _folded(self, norm: Norm) -> tuple[Tensor, Tensor]:
        tensors = (self.weight, self.bias, *_norm_tensors(norm))
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
            return self._fold(norm)  # part of the graph: recomputed every call
        key = (
            torch.is_inference_mode_enabled(),
            *(
                (None, 0, None)
                if t is None
                # inference tensors track no version (reading it raises)
                else (t.data_ptr(), None if t.is_inference() else t._version, t.dtype)
                for t in tensors
            ),
        )
        cached = self.__dict__.get("_fold_cache")
        if cached is None or cached[0] != key:
            cached = (key, self._fold(norm))
            self.__dict__["_fold_cache"] = cached
        return cached[1]

    def _fold(self, norm: Norm) -> tuple[Tensor, Tensor]:
        scale, shift = _affine(norm)
        weight = self.weight * scale.to(self.weight.dtype).reshape(-1, 1, 1, 1)
        if self.bias is not None:
            shift = shift + self.bias * scale
        return weight, shift.to(self.weight.dtype)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_fold_cache", None)  # derived tensors: rebuilt on the next call
        return state


def _as(cls: type[nn.Module], module: nn.Module) -> nn.Module:
    """A ``cls`` instance holding ``module``'s state (parameters, buffers, flags) as it is."""
    converted = cls.__new__(cls)
    converted.__dict__.update(module.__dict__)
    converted.__dict__.pop("_fold_pair", None)
    converted.__dict__.pop("_fold_cache", None)
    return converted


# (conv, norm) attribute pairs of torchvision's ResNet stem, BasicBlock, Bottleneck, downsample
_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("0", "1"))


def fold_batchnorms(root: nn.Module) -> int:
    """Fold every ``conv -> BatchNorm`` pair of torchvision ResNet modules under ``root`` in
    place (stem, blocks, downsample branches); returns the number of pairs. Parameters, buffers,
    state-dict keys and ``requires_grad`` flags are untouched (the same tensors)."""
    count = 0
    for module in list(root.modules()):
        for conv_name, norm_name in _PAIRS:
            conv = module._modules.get(conv_name)
            norm = module._modules.get(norm_name)
            if not (
                type(conv) is nn.Conv2d
                and type(norm) in (FrozenBatchNorm2d, nn.BatchNorm2d)
                and isinstance(norm, (FrozenBatchNorm2d, nn.BatchNorm2d))  # for type checkers
            ):
                continue
            running_mean = cast("Tensor | None", norm.running_mean)
            if (
                running_mean is not None
                and conv.out_channels == len(running_mean)
                and conv.padding_mode == "zeros"
            ):
                norm_cls = (
                    FoldedFrozenBatchNorm2d
                    if isinstance(norm, FrozenBatchNorm2d)
                    else FoldedBatchNorm2d
                )
                folded_norm = _as(norm_cls, norm)
                folded_conv = _as(BNFoldedConv2d, conv)
                folded_norm.__dict__["_fold_pair"] = (module, conv_name)
                folded_conv.__dict__["_fold_pair"] = (module, norm_name)
                module._modules[norm_name] = folded_norm
                module._modules[conv_name] = folded_conv
                count += 1
    return count


def unfold_batchnorms(root: nn.Module) -> int:
    """Undo :func:`fold_batchnorms`: plain ``nn.Conv2d`` and norms again; returns the pairs."""
    count = 0
    for module in list(root.modules()):
        for name, child in list(module._modules.items()):
            if isinstance(child, BNFoldedConv2d):
                module._modules[name] = _as(nn.Conv2d, child)
                count += 1
            elif isinstance(child, FoldedFrozenBatchNorm2d):
                module._modules[name] = _as(FrozenBatchNorm2d, child)
            elif isinstance(child, FoldedBatchNorm2d):
                module._modules[name] = _as(nn.BatchNorm2d, child)
    return count
