"""BatchNorm folding: same outputs and gradients as conv + norm, same state dict, nothing folded
while a BatchNorm trains, folded weights cached only while nothing changes."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from qdtrack_pl.models.bn_folding import (
    BNFoldedConv2d,
    FoldedNormMixin,
    fold_batchnorms,
    unfold_batchnorms,
)


def _randomise_norms(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial statistics and affine parameters, so that a missed fold shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, FrozenBatchNorm2d | nn.BatchNorm2d):
                n = m.running_mean.shape[0]
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)


def _close(got: torch.Tensor, want: torch.Tensor, rel: float = 1e-4, what: str = "") -> None:
    """Equal up to fp32 rounding: the largest difference is tiny next to the largest value."""
    scale = want.abs().max().item()
    assert (got - want).abs().max().item() <= rel * scale, what


def _resnet(norm: type[nn.Module], depth: str = "resnet50") -> nn.Module:
    torch.manual_seed(0)
    model = torchvision.models.get_model(depth, weights=None, norm_layer=norm)
    _randomise_norms(model)
    return model


@pytest.mark.parametrize("depth", ["resnet18", "resnet50"])
def test_frozen_bn_resnet_gives_the_same_outputs_and_gradients(depth: str) -> None:
    plain = _resnet(FrozenBatchNorm2d, depth)
    folded = copy.deepcopy(plain)
    assert fold_batchnorms(folded) == sum(isinstance(m, nn.Conv2d) for m in plain.modules())
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    want, got = plain(x), folded(x)
    _close(got, want)
    want.square().sum().backward()
    got.square().sum().backward()
    for (name, p), q in zip(plain.named_parameters(), folded.parameters(), strict=True):
        _close(q.grad, p.grad, rel=1e-3, what=name)


def test_state_dict_keys_parameters_and_flags_are_unchanged() -> None:
    plain = _resnet(FrozenBatchNorm2d, "resnet18")
    plain.layer1.requires_grad_(False)
    folded = copy.deepcopy(plain)
    fold_batchnorms(folded)
    assert list(folded.state_dict()) == list(plain.state_dict())
    for (name, p), (_, q) in zip(plain.named_parameters(), folded.named_parameters(), strict=True):
        assert torch.equal(p, q) and p.requires_grad == q.requires_grad, name
    # loading a plain checkpoint into the folded model is the same as loading it before folding
    other = _resnet(FrozenBatchNorm2d, "resnet18")
    _randomise_norms(other, seed=5)
    folded.load_state_dict(other.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(folded(x), other(x), rtol=1e-4, atol=1e-4)


def test_trainable_batchnorm_is_folded_only_in_eval_mode() -> None:
    plain = _resnet(nn.BatchNorm2d, "resnet18")
    folded = copy.deepcopy(plain)
    fold_batchnorms(folded)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    # training: batch statistics, running stats updated exactly as without folding
    assert torch.equal(folded.train()(x), plain.train()(x))
    assert torch.equal(folded.bn1.running_mean, plain.bn1.running_mean)
    # eval: the running statistics, folded into the convolutions
    with torch.no_grad():
        torch.testing.assert_close(folded.eval()(x), plain.eval()(x), rtol=1e-4, atol=1e-4)


def test_cached_fold_follows_parameter_updates() -> None:
    """No-grad calls reuse the folded weights until an in-place update (optimizer, load) or a
    device/dtype move changes a parameter or buffer."""
    plain = _resnet(FrozenBatchNorm2d, "resnet18").eval()
    folded = copy.deepcopy(plain)
    fold_batchnorms(folded)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        first = folded(x)
        assert torch.equal(folded(x), first)
    with torch.no_grad():
        for model in (plain, folded):
            model.conv1.weight.mul_(1.5)
            model.layer1[0].bn1.running_var.add_(0.3)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), plain(x), rtol=1e-4, atol=1e-4)
        assert not torch.allclose(folded(x), first)
    folded64, plain64 = folded.double(), plain.double()
    with torch.no_grad():
        torch.testing.assert_close(folded64(x.double()), plain64(x.double()))


def test_inference_cache_does_not_leak_into_training() -> None:
    """Weights folded under inference_mode are not reused when autograd needs them."""
    model = _resnet(FrozenBatchNorm2d, "resnet18")
    fold_batchnorms(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        model(x)
    model(x).sum().backward()  # would raise if an inference tensor were saved for backward
    assert model.conv1.weight.grad is not None


def test_copies_pickles_and_unfold_are_independent_and_exact() -> None:
    model = _resnet(FrozenBatchNorm2d, "resnet18").eval()
    fold_batchnorms(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = model(x)
        clone = copy.deepcopy(model)
        restored = pickle.loads(pickle.dumps(model))
        clone.layer1[0].bn1.running_mean.add_(1.0)  # the copy's conv reads the copy's norm
        torch.testing.assert_close(restored(x), want)
        assert torch.equal(model(x), want)
        assert not torch.allclose(clone(x), want)
    assert unfold_batchnorms(model) > 0
    assert not any(isinstance(m, BNFoldedConv2d | FoldedNormMixin) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-4)


def test_a_replaced_norm_is_not_folded() -> None:
    """SyncBatchNorm conversion replaces the norms: the convolutions then stop folding."""
    plain = _resnet(nn.BatchNorm2d, "resnet18").eval()
    folded = copy.deepcopy(plain)
    fold_batchnorms(folded)
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(folded).eval()
    assert isinstance(converted.bn1, nn.SyncBatchNorm)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), plain(x), rtol=1e-4, atol=1e-4)
