"""Faster R-CNN + FPN assembled from torchvision components with QDTrack's defaults.

The defaults are those of docs/method.md §1.1.

torchvision provides the RPN, the RoI box head and their losses; this module only wires them,
owns the input normalisation and padding, and converts class ids at the boundary (ours are
0-based, torchvision reserves 0 for the background).

Differences to mmdet that come with torchvision and are kept: the RoI box regression loss is
SmoothL1 (beta 1/9) instead of L1, RoIAlign uses ``aligned=False``, and anchors are rounded. The
RoI level assignment is mmdet's: torchvision's ``LevelMapper`` (canonical 224 px at level 4) maps
``sqrt(w * h)`` < 112 px to P2, 112-224 to P3, 224-448 to P4 and the rest to P5, exactly mmdet's
``SingleRoIExtractor`` with ``finest_scale=56``; RoIAlign 7x7 with ``sampling_ratio=0`` (adaptive
``ceil(roi / 7)`` samples per bin) on both sides.

Speed switches (issue 17, docs/performance.md; each one keeps the outputs to fp32 rounding):
``fold_bn`` applies frozen BatchNorms through the preceding convolution's weights
(:mod:`qdtrack_pl.models.bn_folding`), ``channels_last`` runs the CPU network in NHWC, weights
included (oneDNN otherwise re-lays out every NCHW weight at every call), in eval mode only unless
``channels_last_training``, and ``threaded_roi_align`` pools large RoIAlign calls on all threads.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NamedTuple

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.ops import FrozenBatchNorm2d

from qdtrack_pl.data.batch import FrameTargets
from qdtrack_pl.models.bn_folding import fold_batchnorms
from qdtrack_pl.models.checkpoint import LoadReport, load_state_dict_report, read_state_dict
from qdtrack_pl.models.embedding_head import FPN_LEVELS_P2_P5
from qdtrack_pl.ops.roi_pooling import ThreadedMultiScaleRoIAlign

Norm = Literal["frozen_bn", "bn", "gn"]
ResNetStyle = Literal["pytorch", "caffe"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)  # RGB, 0-255 scale (mmdet / torchvision ImageNet)
IMAGENET_STD = (58.395, 57.12, 57.375)
GN_GROUPS = 32  # GroupNorm groups when norm="gn" (every ResNet width is a multiple of 32)
_RESNET_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")  # freezing order


class DetectorOutput(NamedTuple):
    """Final detections of one image in input-tensor pixels."""

    boxes: Tensor  # (N, 4) xyxy
    scores: Tensor  # (N,)
    class_ids: Tensor  # (N,) int64, 0-based


def _norm_layer(norm: Norm) -> Callable[[int], nn.Module]:
    if norm == "frozen_bn":
        return FrozenBatchNorm2d
    if norm == "bn":
        return nn.BatchNorm2d
    if norm == "gn":
        return lambda channels: nn.GroupNorm(GN_GROUPS, channels)
    raise ValueError(f"norm must be 'frozen_bn', 'bn' or 'gn', got {norm!r}")


def _weights_url(name: str) -> str:
    """Download address of torchvision's default ImageNet weights for ``name`` (no download)."""
    return torchvision.models.get_model_weights(name).DEFAULT.url


#: ResNets torchvision does not name: basic blocks per stage. ``resnet10`` halves resnet18's depth
#: for the CPU default; there are no ImageNet weights for it.
EXTRA_RESNETS: dict[str, list[int]] = {"resnet10": [1, 1, 1, 1]}


def _build_resnet(name: str, norm: Norm) -> torchvision.models.ResNet:
    if name in EXTRA_RESNETS:
        return torchvision.models.ResNet(
            torchvision.models.resnet.BasicBlock, EXTRA_RESNETS[name], norm_layer=_norm_layer(norm)
        )
    return torchvision.models.get_model(name, weights=None, norm_layer=_norm_layer(norm))


def build_resnet_fpn(
    name: str = "resnet50",
    norm: Norm = "frozen_bn",
    trainable_stages: int = 3,
    style: ResNetStyle = "pytorch",
    fpn_channels: int = 256,
    pretrained: str | None = None,
) -> BackboneWithFPN:
    """ResNet C2-C5 + FPN P2-P6 (P6 = stride-2 max-pool of P5, as mmdet's default FPN).

    ``trainable_stages`` counts from layer4 down (3 = the paper's ``frozen_stages=1``: stem and
    layer1 frozen; 5 = everything trains); frozen stages keep their statistics only with
    ``norm="frozen_bn"``, as mmdet's ``norm_eval``. ``style="caffe"`` moves the stride of each
    bottleneck's first block to its 1x1 conv, as mmdet's caffe ResNet (MOT17 detector) does.
    """
    if not 0 <= trainable_stages <= len(_RESNET_STAGES):
        raise ValueError(
            f"trainable_stages must lie in [0, {len(_RESNET_STAGES)}], got {trainable_stages}"
        )
    resnet = _build_resnet(name, norm)
    if style == "caffe":
        for layer in (resnet.layer2, resnet.layer3, resnet.layer4):
            block = layer[0]
            if not hasattr(block, "conv3"):
                raise ValueError(f"caffe style needs a bottleneck ResNet, {name} has basic blocks")
            block.conv1.stride, block.conv2.stride = block.conv2.stride, block.conv1.stride
    elif style != "pytorch":
        raise ValueError(f"style must be 'pytorch' or 'caffe', got {style!r}")
    if pretrained is not None:
        if name in EXTRA_RESNETS:
            raise ValueError(
                f"no pretrained weights exist for {name}; set pretrained_backbone: null"
            )
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(
                f"pretrained_backbone {path} does not exist: download torchvision's ImageNet "
                f"{name} weights from {_weights_url(name)} and save them at that path (or set "
                "pretrained_backbone: null to start from random init)"
            )
        # The classifier (fc) is dropped with the backbone's head below, so it may be absent.
        report = load_state_dict_report(resnet, read_state_dict(path))
        missing = [k for k in report.missing_keys if not k.startswith("fc.")]
        if missing or report.unexpected_keys or report.shape_mismatch_keys:
            raise ValueError(f"{path} does not fit a torchvision {name}: {report}")
    frozen = _RESNET_STAGES[: len(_RESNET_STAGES) - trainable_stages]
    for param_name, param in resnet.named_parameters():
        if param_name.split(".")[0] in frozen or (
            param_name.startswith("bn1.") and "conv1" in frozen
        ):
            param.requires_grad_(False)
    stage_channels = [resnet.inplanes // 8 * 2**i for i in range(4)]
    return BackboneWithFPN(
        resnet,
        return_layers={f"layer{i + 1}": str(i) for i in range(4)},
        in_channels_list=stage_channels,
        out_channels=fpn_channels,
    )


@contextmanager
def inference_settings(*modules: nn.Module) -> Iterator[None]:
    """Temporarily switch modules to eval mode. Used on the RPN and RoI heads, which hold no
    normalisation or dropout: their ``training`` flag only selects proposal counts, NMS
    settings and whether losses are computed."""
    states = [m.training for m in modules]
    try:
        for m in modules:
            m.train(False)
        yield
    finally:
        for m, state in zip(modules, states, strict=True):
            m.train(state)


def to_torchvision_targets(targets: Sequence[FrameTargets]) -> list[dict[str, Tensor]]:
    """Our 0-based class ids -> torchvision's 1-based labels (0 = background)."""
    return [{"boxes": t.boxes.float(), "labels": t.class_ids.long() + 1} for t in targets]


class FasterRCNN(nn.Module):
    """Faster R-CNN R50-FPN with the mmdet 2.x settings of QDTrack; every size is a parameter.

    Images arrive as float RGB in [0, 1]; the model scales them to 0-255, normalises with
    ``pixel_mean`` / ``pixel_std`` (optionally in BGR order for caffe weights) and pads the
    bottom/right to a multiple of ``size_divisor``. Boxes are in input pixels throughout.

    Speed switches, all on by default, none changing results beyond fp32 rounding:
    ``fold_bn`` folds the ResNet's frozen (or eval-mode) BatchNorms into its convolutions and
    ``channels_last`` keeps the convolution weights and the inputs in NHWC on CPU, so that every
    feature map is NHWC and oneDNN re-lays out no weight per call; on a GPU both stay as they
    were (NCHW), whatever device the model was on before. In training mode the network stays
    NCHW unless ``channels_last_training`` is set too: oneDNN's NHWC 3x3 convolution backward was
    up to 2.4x slower than NCHW on an AVX2 CPU (docs/performance.md). ``train()`` / ``eval()``
    and every forward re-lay the weights if the mode changed: Lightning restores training flags
    after validation without calling ``train()``. ``threaded_roi_align`` pools the box
    head's RoIs on all of torch's CPU threads where no gradient flows
    (:mod:`qdtrack_pl.ops.roi_pooling`).
    """

    # registered buffers (non-persistent), declared for type checkers
    pixel_mean: Tensor
    pixel_std: Tensor

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        norm: Norm = "frozen_bn",
        trainable_stages: int = 3,
        resnet_style: ResNetStyle = "pytorch",
        fpn_channels: int = 256,
        anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
        aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
        rpn_fg_iou_thresh: float = 0.7,
        rpn_bg_iou_thresh: float = 0.3,
        rpn_batch_size_per_image: int = 256,
        rpn_positive_fraction: float = 0.5,
        rpn_pre_nms_top_n_train: int = 2000,
        rpn_post_nms_top_n_train: int = 1000,
        rpn_pre_nms_top_n_test: int = 1000,
        rpn_post_nms_top_n_test: int = 1000,
        rpn_nms_thresh: float = 0.7,
        roi_output_size: int = 7,
        roi_sampling_ratio: int = 0,
        box_head_channels: int = 1024,
        box_fg_iou_thresh: float = 0.5,
        box_bg_iou_thresh: float = 0.5,
        box_batch_size_per_image: int = 512,
        box_positive_fraction: float = 0.25,
        box_score_thresh: float = 0.05,
        box_nms_thresh: float = 0.5,
        box_detections_per_img: int = 100,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
        bgr: bool = False,
        size_divisor: int = 32,
        pretrained_backbone: str | None = None,
        pretrained_detector: str | None = None,
        fold_bn: bool = True,
        channels_last: bool = True,
        channels_last_training: bool = False,
        threaded_roi_align: bool = True,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        num_levels = len(FPN_LEVELS_P2_P5) + 1  # P2-P6
        if len(anchor_sizes) != num_levels:
            raise ValueError(
                f"anchor_sizes needs one size per FPN level P2-P6 ({num_levels}), "
                f"got {anchor_sizes}"
            )
        self.num_classes = num_classes
        self.fpn_channels = fpn_channels
        self.size_divisor = size_divisor
        self.bgr = bgr
        self.channels_last = channels_last
        self.channels_last_training = channels_last_training
        self.register_buffer(
            "pixel_mean",
            torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1),
            persistent=False,
        )
        self.register_buffer(
            "pixel_std",
            torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1),
            persistent=False,
        )

        self.backbone = build_resnet_fpn(
            backbone, norm, trainable_stages, resnet_style, fpn_channels, pretrained_backbone
        )
        if fold_bn:
            fold_batchnorms(self.backbone.body)
        anchors = AnchorGenerator(
            sizes=tuple((int(s),) for s in anchor_sizes),
            aspect_ratios=(tuple(float(r) for r in aspect_ratios),) * num_levels,
        )
        self.rpn = RegionProposalNetwork(
            anchors,
            RPNHead(fpn_channels, anchors.num_anchors_per_location()[0]),
            fg_iou_thresh=rpn_fg_iou_thresh,
            bg_iou_thresh=rpn_bg_iou_thresh,
            batch_size_per_image=rpn_batch_size_per_image,
            positive_fraction=rpn_positive_fraction,
            pre_nms_top_n={"training": rpn_pre_nms_top_n_train, "testing": rpn_pre_nms_top_n_test},
            post_nms_top_n={
                "training": rpn_post_nms_top_n_train,
                "testing": rpn_post_nms_top_n_test,
            },
            nms_thresh=rpn_nms_thresh,
        )
        self.roi_heads = RoIHeads(
            ThreadedMultiScaleRoIAlign(
                list(FPN_LEVELS_P2_P5),
                roi_output_size,
                roi_sampling_ratio,
                threaded=threaded_roi_align,
            ),
            TwoMLPHead(fpn_channels * roi_output_size**2, box_head_channels),
            FastRCNNPredictor(box_head_channels, num_classes + 1),
            fg_iou_thresh=box_fg_iou_thresh,
            bg_iou_thresh=box_bg_iou_thresh,
            batch_size_per_image=box_batch_size_per_image,
            positive_fraction=box_positive_fraction,
            bbox_reg_weights=None,  # (10, 10, 5, 5) = mmdet target_stds (0.1, 0.1, 0.2, 0.2)
            score_thresh=box_score_thresh,
            nms_thresh=box_nms_thresh,
            detections_per_img=box_detections_per_img,
        )
        self.pretrained_report: LoadReport | None = None
        if pretrained_detector is not None:
            self.pretrained_report = self._load_torchvision_detector(Path(pretrained_detector))
        self._match_weight_layout()

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> FasterRCNN:
        """Every move or cast (``.to``, ``.cuda``, ``.double``) re-matches the weight layout to the
        new device (``channels_last``)."""
        super()._apply(fn, recurse)
        self._match_weight_layout()
        return self

    def train(self, mode: bool = True) -> FasterRCNN:
        """``train()`` / ``eval()`` re-lay the weights at once (``channels_last_training``)."""
        super().train(mode)
        self._match_weight_layout()
        return self

    def runs_nhwc(self) -> bool:
        """Whether the network runs in NHWC now: ``channels_last`` on CPU, in training mode only
        with ``channels_last_training``."""
        return (
            self.channels_last
            and self.pixel_mean.device.type == "cpu"
            and (self.channels_last_training or not self.training)
        )

    def _match_weight_layout(self) -> None:
        """With ``channels_last``: NHWC convolution weights where :meth:`runs_nhwc`, NCHW
        otherwise. The same ``Parameter`` objects get new storage, so optimisers holding them
        are unaffected."""
        if not self.channels_last:
            return
        layout = torch.channels_last if self.runs_nhwc() else torch.contiguous_format
        with torch.no_grad():
            for param in self.parameters():
                if param.dim() == 4 and not param.is_contiguous(memory_format=layout):
                    param.data = param.data.contiguous(memory_format=layout)

    def _load_torchvision_detector(self, path: Path) -> LoadReport:
        """torchvision COCO Faster R-CNN weights; the class-dependent predictor is skipped when
        ``num_classes`` differs from COCO's (it then keeps its random init)."""
        if not path.is_file():
            url = torchvision.models.get_model_weights("fasterrcnn_resnet50_fpn").DEFAULT.url
            raise FileNotFoundError(
                f"pretrained_detector {path} does not exist: download torchvision's COCO "
                f"fasterrcnn_resnet50_fpn weights from {url} and save them at that path "
                "(or set pretrained_detector: null)"
            )
        report = load_state_dict_report(self, read_state_dict(path))
        if report.unexpected_keys or report.missing_keys:
            raise ValueError(f"{path} does not fit this detector's architecture: {report}")
        return report

    def extract_features(self, images: Tensor) -> tuple[ImageList, OrderedDict[str, Tensor]]:
        """Normalise, pad to ``size_divisor``, run backbone + FPN on a (B, 3, H, W) [0, 1] batch."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        self._match_weight_layout()  # training and eval may differ (``channels_last_training``)
        batch, _, height, width = images.shape
        pad_h = -height % self.size_divisor
        pad_w = -width % self.size_divisor
        # One padded buffer, filled in place: the same arithmetic as ((x * 255) - mean) / std
        # followed by zero padding, without four intermediate images.
        x = torch.empty(
            (batch, 3, height + pad_h, width + pad_w),
            dtype=torch.promote_types(images.dtype, self.pixel_mean.dtype),
            device=images.device,
            memory_format=torch.channels_last if self.runs_nhwc() else torch.contiguous_format,
        )
        x[:, :, height:].zero_()
        x[:, :, :height, width:].zero_()
        inner = x[:, :, :height, :width]
        torch.mul(images.flip(1) if self.bgr else images, 255.0, out=inner)
        inner.sub_(self.pixel_mean).div_(self.pixel_std)
        image_list = ImageList(x, [(int(height), int(width))] * batch)
        return image_list, self.backbone(x)

    def rpn_losses(
        self,
        images: ImageList,
        features: OrderedDict[str, Tensor],
        targets: list[dict[str, Tensor]],
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Training-mode proposals and the RPN losses."""
        proposals, losses = self.rpn(images, features, targets)
        return proposals, {
            "loss_rpn_cls": losses["loss_objectness"],
            "loss_rpn_bbox": losses["loss_rpn_box_reg"],
        }

    @torch.no_grad()
    def inference_proposals(
        self, images: ImageList, features: OrderedDict[str, Tensor]
    ) -> list[Tensor]:
        """Proposals with the test-time RPN settings and no graph (never differentiated)."""
        with inference_settings(self.rpn):
            proposals, _ = self.rpn(images, features)
        return proposals

    def roi_losses(
        self,
        images: ImageList,
        features: OrderedDict[str, Tensor],
        proposals: list[Tensor],
        targets: list[dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        """RoI box head losses; zero (attached to the graph) when there is nothing to sample."""
        if sum(len(p) + len(t["boxes"]) for p, t in zip(proposals, targets, strict=True)) == 0:
            zero = sum(p.sum() for p in self.roi_heads.parameters()) * 0.0
            return {"loss_cls": zero, "loss_bbox": zero}
        _, losses = self.roi_heads(features, proposals, images.image_sizes, targets)
        return {"loss_cls": losses["loss_classifier"], "loss_bbox": losses["loss_box_reg"]}

    def detect(self, images: ImageList, features: OrderedDict[str, Tensor]) -> list[DetectorOutput]:
        """Final detections (score threshold, per-class NMS, top-k) with the test settings."""
        with inference_settings(self.rpn, self.roi_heads):
            proposals, _ = self.rpn(images, features)
            results, _ = self.roi_heads(features, proposals, images.image_sizes)
        return [DetectorOutput(r["boxes"], r["scores"], r["labels"] - 1) for r in results]
