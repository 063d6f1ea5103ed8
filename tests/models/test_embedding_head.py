"""QuasiDenseEmbedHead: paper topology and init, FPN level choice, empty inputs, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from qdtrack_pl.models.embedding_head import QuasiDenseEmbedHead


def _features(batch: int, size: int, channels: int) -> dict[str, torch.Tensor]:
    """P2-P5 maps of a ``size`` x ``size`` image, level k filled with the value k."""
    return {
        str(k): torch.full((batch, channels, size // 2 ** (k + 2), size // 2 ** (k + 2)), float(k))
        for k in range(4)
    }


def test_paper_topology_and_init() -> None:
    torch.manual_seed(0)
    head = QuasiDenseEmbedHead()
    assert len(head.convs) == 4
    for block in head.convs:
        assert block.conv.kernel_size == (3, 3) and block.conv.bias is None
        assert (block.conv.in_channels, block.conv.out_channels) == (256, 256)
        assert block.gn.num_groups == 32
        assert torch.equal(block.gn.weight, torch.ones(256))
    assert [(fc.in_features, fc.out_features) for fc in head.fcs] == [(256 * 7 * 7, 1024)]
    assert (head.fc_embed.in_features, head.fc_embed.out_features) == (1024, 256)
    assert torch.equal(head.fc_embed.bias, torch.zeros(256))
    assert head.fc_embed.weight.std().item() == pytest.approx(0.01, rel=0.05)
    # kaiming normal, fan_out, relu: std = sqrt(2 / (256 * 9))
    assert head.convs[0].conv.weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)


def test_output_shape_and_no_normalisation() -> None:
    torch.manual_seed(0)
    head = QuasiDenseEmbedHead(
        in_channels=8,
        num_convs=2,
        conv_channels=16,
        num_groups=4,
        fc_channels=32,
        embed_channels=12,
    )
    features = {k: torch.randn(2, 8, *v.shape[-2:]) for k, v in _features(2, 128, 1).items()}
    boxes = [
        torch.tensor([[0.0, 0.0, 40.0, 40.0], [10.0, 20.0, 90.0, 70.0]]),
        torch.tensor([[5.0, 5.0, 20.0, 30.0]]),
    ]
    out = head(features, boxes, [(128, 128)] * 2)
    assert out.shape == (3, 12)
    assert not torch.allclose(out.norm(dim=1), torch.ones(3))


def test_empty_boxes_give_empty_embeddings() -> None:
    head = QuasiDenseEmbedHead(
        in_channels=8, num_convs=1, conv_channels=8, num_groups=4, fc_channels=16, embed_channels=4
    )
    features = {k: torch.randn(2, 8, *v.shape[-2:]) for k, v in _features(2, 64, 1).items()}
    out = head(features, [torch.zeros(0, 4), torch.zeros(0, 4)], [(64, 64)] * 2)
    assert out.shape == (0, 4)


def test_level_choice_follows_mmdet_scale_rule() -> None:
    """mmdet: sqrt(wh) < 112 -> P2, < 224 -> P3, < 448 -> P4, else P5."""
    head = QuasiDenseEmbedHead(in_channels=1)
    scales = [56.0, 111.0, 113.0, 223.0, 225.0, 447.0, 449.0, 900.0]
    expected_levels = [0, 0, 1, 1, 2, 2, 3, 3]
    boxes = torch.tensor([[0.0, 0.0, s, s] for s in scales])
    pooled = head.roi_extractor(_features(1, 1024, 1), [boxes], [(1024, 1024)])
    assert pooled.mean(dim=(1, 2, 3)).tolist() == [float(k) for k in expected_levels]


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    head = QuasiDenseEmbedHead(
        in_channels=8, num_convs=2, conv_channels=8, num_groups=4, fc_channels=16, embed_channels=4
    )
    features = {
        k: torch.randn(1, 8, *v.shape[-2:], requires_grad=True)
        for k, v in _features(1, 64, 1).items()
    }
    head(features, [torch.tensor([[4.0, 4.0, 40.0, 50.0]])], [(64, 64)]).pow(2).sum().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert isinstance(head.convs[0].relu, nn.ReLU)


def test_rejects_box_list_of_wrong_length() -> None:
    head = QuasiDenseEmbedHead(
        in_channels=8, num_convs=1, conv_channels=8, num_groups=4, fc_channels=16, embed_channels=4
    )
    features = {k: torch.randn(2, 8, *v.shape[-2:]) for k, v in _features(2, 64, 1).items()}
    with pytest.raises(ValueError, match="boxes for 1 images"):
        head(features, [torch.zeros(0, 4)], [(64, 64)] * 2)
