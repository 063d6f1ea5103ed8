"""QDTrack's quasi-dense embedding head with its own RoI extractor (docs/method.md §1.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn

from qdtrack_pl.ops.roi_pooling import ThreadedMultiScaleRoIAlign

FPN_LEVELS_P2_P5 = ("0", "1", "2", "3")  # torchvision BackboneWithFPN names of strides 4..32


class ConvGNReLU(nn.Sequential):
    """3x3 conv (no bias: a norm follows) + GroupNorm + ReLU, named like mmcv's ConvModule."""

    def __init__(self, in_channels: int, out_channels: int, num_groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.gn = nn.GroupNorm(num_groups, out_channels)
        self.relu = nn.ReLU(inplace=True)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")


class QuasiDenseEmbedHead(nn.Module):
    """RoIAlign (7x7, P2-P5) -> ``num_convs`` x ConvGNReLU -> ``num_fcs`` x (FC + ReLU) -> linear
    embedding. The output is deliberately not normalised: training and the tracker's bi-softmax
    use raw dot products (docs/method.md §8.7). Defaults are the paper's; the small CPU model
    narrows them.
    """

    def __init__(
        self,
        in_channels: int = 256,
        num_convs: int = 4,
        conv_channels: int = 256,
        num_groups: int = 32,
        num_fcs: int = 1,
        fc_channels: int = 1024,
        embed_channels: int = 256,
        roi_output_size: int = 7,
        roi_sampling_ratio: int = 0,
        featmap_names: Sequence[str] = FPN_LEVELS_P2_P5,
        embed_init_std: float = 0.01,
        threaded_roi_align: bool = True,
    ) -> None:
        super().__init__()
        self.roi_extractor = ThreadedMultiScaleRoIAlign(
            featmap_names=list(featmap_names),
            output_size=roi_output_size,
            sampling_ratio=roi_sampling_ratio,
            threaded=threaded_roi_align,
        )
        channels = [in_channels] + [conv_channels] * num_convs
        self.convs = nn.Sequential(
            *(ConvGNReLU(c_in, c_out, num_groups) for c_in, c_out in pairwise(channels))
        )
        flat = channels[-1] * roi_output_size * roi_output_size
        widths = [flat] + [fc_channels] * num_fcs
        linears = [nn.Linear(w_in, w_out) for w_in, w_out in pairwise(widths)]
        for fc in linears:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.fcs = nn.ModuleList(linears)
        self.fc_embed = nn.Linear(widths[-1], embed_channels)
        self.embed_channels = embed_channels
        nn.init.normal_(self.fc_embed.weight, std=embed_init_std)
        nn.init.zeros_(self.fc_embed.bias)

    def forward(
        self,
        features: Mapping[str, Tensor],
        boxes: list[Tensor],
        image_sizes: list[tuple[int, int]],
    ) -> Tensor:
        """Embed ``boxes`` (one (N_i, 4) xyxy tensor per image of ``features``) -> (sum N_i, D)."""
        if len(boxes) != next(iter(features.values())).shape[0]:
            raise ValueError(
                f"got boxes for {len(boxes)} images but features for a batch of a different size"
            )
        x = self.roi_extractor(dict(features), boxes, image_sizes)
        x = self.convs(x).flatten(start_dim=1)
        for fc in self.fcs:
            x = torch.relu(fc(x))
        return self.fc_embed(x)
