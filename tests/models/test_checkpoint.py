"""Weight loading: official QDTrack (mmdetection) checkpoints in their three key layouts, and
torchvision ImageNet / COCO weights for the detector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision

from qdtrack_pl.models.checkpoint import (
    convert_mmdet_state_dict,
    load_official_checkpoint,
    load_state_dict_report,
)
from qdtrack_pl.models.detector import FasterRCNN
from qdtrack_pl.models.qdtrack import QDTrackModel

NUM_CLASSES = 8  # BDD100K

# Official key names and shapes (QD@b28af06 / mmdet 2.x layout) for an 8-class R50 model, written
# out from the mmdet module definitions: FPN, RPNHead, Shared2FCBBoxHead, QuasiDenseEmbedHead.
OFFICIAL_HEADS: dict[str, tuple[int, ...]] = {
    "neck.lateral_convs.0.conv.weight": (256, 256, 1, 1),
    "neck.lateral_convs.0.conv.bias": (256,),
    "neck.lateral_convs.1.conv.weight": (256, 512, 1, 1),
    "neck.lateral_convs.1.conv.bias": (256,),
    "neck.lateral_convs.2.conv.weight": (256, 1024, 1, 1),
    "neck.lateral_convs.2.conv.bias": (256,),
    "neck.lateral_convs.3.conv.weight": (256, 2048, 1, 1),
    "neck.lateral_convs.3.conv.bias": (256,),
    "neck.fpn_convs.0.conv.weight": (256, 256, 3, 3),
    "neck.fpn_convs.0.conv.bias": (256,),
    "neck.fpn_convs.1.conv.weight": (256, 256, 3, 3),
    "neck.fpn_convs.1.conv.bias": (256,),
    "neck.fpn_convs.2.conv.weight": (256, 256, 3, 3),
    "neck.fpn_convs.2.conv.bias": (256,),
    "neck.fpn_convs.3.conv.weight": (256, 256, 3, 3),
    "neck.fpn_convs.3.conv.bias": (256,),
    "rpn_head.rpn_conv.weight": (256, 256, 3, 3),
    "rpn_head.rpn_conv.bias": (256,),
    "rpn_head.rpn_cls.weight": (3, 256, 1, 1),
    "rpn_head.rpn_cls.bias": (3,),
    "rpn_head.rpn_reg.weight": (12, 256, 1, 1),
    "rpn_head.rpn_reg.bias": (12,),
    "roi_head.bbox_head.shared_fcs.0.weight": (1024, 12544),
    "roi_head.bbox_head.shared_fcs.0.bias": (1024,),
    "roi_head.bbox_head.shared_fcs.1.weight": (1024, 1024),
    "roi_head.bbox_head.shared_fcs.1.bias": (1024,),
    "roi_head.bbox_head.fc_cls.weight": (9, 1024),  # 8 classes + background (last)
    "roi_head.bbox_head.fc_cls.bias": (9,),
    "roi_head.bbox_head.fc_reg.weight": (32, 1024),  # 4 x 8, no background slot
    "roi_head.bbox_head.fc_reg.bias": (32,),
    "roi_head.track_head.convs.0.conv.weight": (256, 256, 3, 3),
    "roi_head.track_head.convs.0.gn.weight": (256,),
    "roi_head.track_head.convs.0.gn.bias": (256,),
    "roi_head.track_head.convs.1.conv.weight": (256, 256, 3, 3),
    "roi_head.track_head.convs.1.gn.weight": (256,),
    "roi_head.track_head.convs.1.gn.bias": (256,),
    "roi_head.track_head.convs.2.conv.weight": (256, 256, 3, 3),
    "roi_head.track_head.convs.2.gn.weight": (256,),
    "roi_head.track_head.convs.2.gn.bias": (256,),
    "roi_head.track_head.convs.3.conv.weight": (256, 256, 3, 3),
    "roi_head.track_head.convs.3.gn.weight": (256,),
    "roi_head.track_head.convs.3.gn.bias": (256,),
    "roi_head.track_head.fcs.0.weight": (1024, 12544),
    "roi_head.track_head.fcs.0.bias": (1024,),
    "roi_head.track_head.fc_embed.weight": (256, 1024),
    "roi_head.track_head.fc_embed.bias": (256,),
}


def _official_backbone() -> dict[str, torch.Tensor]:
    """mmdet's ResNet-50 uses torchvision's parameter names (plus BN ``num_batches_tracked``)."""
    resnet = torchvision.models.resnet50(weights=None)
    return {
        f"backbone.{k}": torch.randn_like(v.float())
        for k, v in resnet.state_dict().items()
        if not k.startswith("fc.")
    }


def _official_state_dict(layout: str) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=gen) for k, shape in OFFICIAL_HEADS.items()}
    state |= _official_backbone()
    if layout == "b28af06":
        return state
    embed_prefix = {"head": "track_head.track_head.", "mmtracking": "track_head.embed_head."}[
        layout
    ]
    return {
        k.replace("roi_head.track_head.", embed_prefix) if "track_head" in k else f"detector.{k}": v
        for k, v in state.items()
    }


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def r50_model() -> QDTrackModel:
    torch.manual_seed(0)
    return QDTrackModel(FasterRCNN(num_classes=NUM_CLASSES))


@pytest.mark.parametrize("layout", ["b28af06", "head", "mmtracking"])
def test_every_official_key_maps_onto_the_model(r50_model: QDTrackModel, layout: str) -> None:
    state = _official_state_dict(layout)
    report = load_official_checkpoint(r50_model, state)
    assert report.missing_keys == []
    assert report.unexpected_keys == []
    assert report.shape_mismatch_keys == []
    assert str(report) == "all keys matched"
    own = r50_model.state_dict()
    prefix = "" if layout == "b28af06" else "detector."
    embed = {
        "b28af06": "roi_head.track_head.",
        "head": "track_head.track_head.",
        "mmtracking": "track_head.embed_head.",
    }[layout]
    pairs = {  # ours: official
        "embed_head.convs.2.gn.bias": f"{embed}convs.2.gn.bias",
        "embed_head.convs.3.conv.weight": f"{embed}convs.3.conv.weight",
        "embed_head.fcs.0.weight": f"{embed}fcs.0.weight",
        "embed_head.fc_embed.weight": f"{embed}fc_embed.weight",
        "detector.rpn.head.conv.0.0.weight": f"{prefix}rpn_head.rpn_conv.weight",
        "detector.rpn.head.cls_logits.bias": f"{prefix}rpn_head.rpn_cls.bias",
        "detector.rpn.head.bbox_pred.weight": f"{prefix}rpn_head.rpn_reg.weight",
        "detector.backbone.fpn.inner_blocks.3.0.bias": f"{prefix}neck.lateral_convs.3.conv.bias",
        "detector.backbone.fpn.layer_blocks.1.0.bias": f"{prefix}neck.fpn_convs.1.conv.bias",
        "detector.roi_heads.box_head.fc7.weight": f"{prefix}roi_head.bbox_head.shared_fcs.1.weight",
        "detector.backbone.body.layer3.2.bn2.bias": f"{prefix}backbone.layer3.2.bn2.bias",
    }
    for ours, official in pairs.items():
        assert torch.equal(own[ours], state[official]), ours


def test_box_predictor_class_layout_is_converted(r50_model: QDTrackModel) -> None:
    state = _official_state_dict("b28af06")
    load_official_checkpoint(r50_model, state)
    predictor = r50_model.detector.roi_heads.box_predictor
    x = torch.randn(5, 1024)
    fc_cls = (
        x @ state["roi_head.bbox_head.fc_cls.weight"].T + state["roi_head.bbox_head.fc_cls.bias"]
    )
    fc_reg = (
        x @ state["roi_head.bbox_head.fc_reg.weight"].T + state["roi_head.bbox_head.fc_reg.bias"]
    )
    with torch.no_grad():
        scores, deltas = predictor(x)
    # torchvision: background first; mmdet: background last
    assert torch.allclose(scores[:, 0], fc_cls[:, NUM_CLASSES], atol=1e-5)
    assert torch.allclose(scores[:, 1:], fc_cls[:, :NUM_CLASSES], atol=1e-5)
    # class k's deltas sit at 4 (k + 1) in torchvision, at 4 k in mmdet; the background slot is 0
    assert torch.allclose(deltas[:, 4:], fc_reg, atol=1e-5)
    assert torch.equal(deltas[:, :4], torch.zeros(5, 4))


def test_mismatches_are_reported_not_raised(r50_model: QDTrackModel) -> None:
    state = _official_state_dict("b28af06")
    del state["rpn_head.rpn_cls.bias"]
    state["roi_head.mask_head.conv_logits.weight"] = torch.zeros(1)
    state["roi_head.bbox_head.fc_cls.weight"] = torch.zeros(81, 1024)  # an 80-class checkpoint
    report = load_official_checkpoint(r50_model, state)
    assert report.missing_keys == ["detector.rpn.head.cls_logits.bias"]
    assert report.unexpected_keys == ["roi_head.mask_head.conv_logits.weight"]
    assert report.shape_mismatch_keys == ["detector.roi_heads.box_predictor.cls_score.weight"]
    assert "missing (1)" in str(report) and "unexpected (1)" in str(report)


def test_loads_an_mmcv_checkpoint_file(r50_model: QDTrackModel, tmp_path: Path) -> None:
    state = _official_state_dict("head")
    path = tmp_path / "qdtrack-frcnn_r50_fpn_12e_bdd100k.pth"
    torch.save({"meta": {"epoch": 12}, "state_dict": state, "optimizer": {}}, path)
    assert load_official_checkpoint(r50_model, path).missing_keys == []
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_official_checkpoint(r50_model, tmp_path / "absent.pth")


def test_unmapped_keys_are_returned_by_the_converter() -> None:
    converted, unmapped = convert_mmdet_state_dict(
        {"rpn_head.rpn_cls.bias": torch.zeros(3), "foo.bar": torch.zeros(1)}
    )
    assert list(converted) == ["detector.rpn.head.cls_logits.bias"]
    assert unmapped == ["foo.bar"]


def test_pretrained_backbone_loads_torchvision_imagenet_weights(tmp_path: Path) -> None:
    torch.manual_seed(1)
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), path)
    det = FasterRCNN(
        num_classes=2, backbone="resnet18", fpn_channels=32, pretrained_backbone=str(path)
    )
    body = det.backbone.body
    assert torch.equal(body.layer3[1].conv2.weight, resnet.layer3[1].conv2.weight)
    assert torch.equal(body.bn1.running_mean, resnet.bn1.running_mean)
    with pytest.raises(FileNotFoundError, match=r"download\.pytorch\.org/models/resnet50"):
        FasterRCNN(num_classes=2, pretrained_backbone=str(tmp_path / "resnet50.pth"))


def test_pretrained_detector_loads_torchvision_coco_weights(tmp_path: Path) -> None:
    torch.manual_seed(1)
    coco = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    path = tmp_path / "fasterrcnn_resnet50_fpn_coco.pth"
    torch.save(coco.state_dict(), path)
    det = FasterRCNN(num_classes=NUM_CLASSES, pretrained_detector=str(path))
    assert det.pretrained_report is not None
    assert det.pretrained_report.shape_mismatch_keys == [
        "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.box_predictor.cls_score.bias",
        "roi_heads.box_predictor.bbox_pred.weight",
        "roi_heads.box_predictor.bbox_pred.bias",
    ]
    assert torch.equal(det.rpn.head.conv[0][0].weight, coco.rpn.head.conv[0][0].weight)
    assert torch.equal(det.roi_heads.box_head.fc7.weight, coco.roi_heads.box_head.fc7.weight)
    assert torch.equal(
        det.backbone.fpn.layer_blocks[2][0].weight, coco.backbone.fpn.layer_blocks[2][0].weight
    )
    with pytest.raises(FileNotFoundError, match="fasterrcnn_resnet50_fpn"):
        FasterRCNN(num_classes=2, pretrained_detector=str(tmp_path / "absent.pth"))


def test_caffe_style_moves_the_stride_and_loads_like_pytorch_style() -> None:
    det = FasterRCNN(num_classes=1, resnet_style="caffe")
    block = det.backbone.body.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    report = load_state_dict_report(det, FasterRCNN(num_classes=1).state_dict())
    assert report == ([], [], [])
