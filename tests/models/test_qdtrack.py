"""QDTrackModel: training losses, gradients, degenerate frames, prediction, and a tiny overfit.

Models are built from the real Hydra configs in conf/model/ (random init, CPU).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from qdtrack_pl.data.batch import FrameTargets, PairBatch
from qdtrack_pl.lit.module import QDTrackModule
from qdtrack_pl.models import qdtrack as qdtrack_module
from qdtrack_pl.models.qdtrack import LOSS_KEYS, Detections, QDTrackModel

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"
NUM_CLASSES = 2
COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.2], [0.2, 0.3, 0.95]])
CLASS_OF_OBJECT = torch.tensor([0, 1, 1])
DETECTION_KEYS = ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox")


def build_module(name: str, num_classes: int = NUM_CLASSES, **overrides: object) -> QDTrackModule:
    """Instantiate ``conf/model/<name>.yaml`` as Hydra would, with ``data.num_classes`` set."""
    cfg = OmegaConf.create(
        {"data": {"num_classes": num_classes}, "model": OmegaConf.load(CONF_DIR / f"{name}.yaml")}
    )
    for key, value in overrides.items():
        OmegaConf.update(cfg, f"model.{key}", value)
    return instantiate(cfg.model)


def _draw(boxes: torch.Tensor, height: int, width: int, gen: torch.Generator) -> torch.Tensor:
    image = 0.1 + 0.05 * torch.rand(3, height, width, generator=gen)
    for (x1, y1, x2, y2), colour in zip(boxes.round().long().tolist(), COLOURS, strict=False):
        image[:, y1:y2, x1:x2] = colour[:, None, None]
    return image


def rectangle_scene(
    batch_size: int = 2, height: int = 96, width: int = 128, seed: int = 0
) -> PairBatch:
    """Three coloured rectangles per pair (track ids 0-2, classes by colour) that move a few
    pixels between the key and the reference frame."""
    gen = torch.Generator().manual_seed(seed)
    keys, refs, key_targets, ref_targets = [], [], [], []
    for _ in range(batch_size):
        wh = 16 + 24 * torch.rand(3, 2, generator=gen)
        xy = torch.rand(3, 2, generator=gen) * (torch.tensor([width, height]) - wh - 8)
        key = torch.cat([xy, xy + wh], dim=1)
        ref = (key + (torch.rand(3, 1, generator=gen) - 0.5) * 8).clamp(min=0)
        keys.append(_draw(key, height, width, gen))
        refs.append(_draw(ref, height, width, gen))
        key_targets.append(FrameTargets(key, CLASS_OF_OBJECT.clone(), torch.arange(3)))
        ref_targets.append(FrameTargets(ref, CLASS_OF_OBJECT.clone(), torch.arange(3)))
    return PairBatch(torch.stack(keys), torch.stack(refs), key_targets, ref_targets)


def _with(batch: PairBatch, **fields: object) -> PairBatch:
    """``PairBatch._replace`` does not work: NamedTuple._make checks ``len``, which PairBatch
    redefines as the batch size."""
    return PairBatch(**{**batch._asdict(), **fields})


def _empty_targets() -> FrameTargets:
    return FrameTargets(
        torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The CPU is shared: one intra-op thread avoids oversubscription stalls (stable timing)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_model() -> QDTrackModel:
    torch.manual_seed(0)
    return build_module("qdtrack_small").model


def test_forward_train_returns_the_six_finite_losses(small_model: QDTrackModel) -> None:
    losses = small_model.train().forward_train(rectangle_scene())
    assert tuple(losses) == LOSS_KEYS
    for name, value in losses.items():
        assert value.dim() == 0 and torch.isfinite(value), name
        assert value.item() > 0, name


def test_frozen_detector_trains_only_the_embedding_head() -> None:
    """TAO stage 2: no detection losses, no detector gradients, BatchNorm statistics unchanged
    (the detector stays in eval mode through ``train()``), the embedding head learns."""
    torch.manual_seed(0)
    module = build_module("qdtrack_small", **{"model.freeze_detector": True})
    model = module.model.train()
    assert not model.detector.training and model.embed_head.training
    [optimizer], _ = module.configure_optimizers()
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for p in model.embed_head.parameters()}
    detector_before = {k: v.clone() for k, v in model.detector.state_dict().items()}
    losses = model.forward_train(rectangle_scene())
    assert tuple(losses) == ("loss_embed", "loss_embed_aux")
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.detector.parameters())
    assert model.embed_head.fc_embed.weight.grad.abs().sum() > 0
    for name, value in model.detector.state_dict().items():  # running BN stats included
        assert torch.equal(value, detector_before[name]), name


def test_gradients_flow_into_every_component(small_model: QDTrackModel) -> None:
    small_model.train().zero_grad()
    sum(small_model.forward_train(rectangle_scene()).values()).backward()
    det = small_model.detector
    parts = {
        "backbone": det.backbone.body.layer1[0].conv1.weight,
        "backbone stem": det.backbone.body.conv1.weight,
        "fpn": det.backbone.fpn.layer_blocks[0][0].weight,
        "rpn head": det.rpn.head.cls_logits.weight,
        "rpn conv": det.rpn.head.conv[0][0].weight,
        "box head": det.roi_heads.box_head.fc6.weight,
        "box predictor": det.roi_heads.box_predictor.bbox_pred.weight,
        "embed convs": small_model.embed_head.convs[0].conv.weight,
        "embed fc": small_model.embed_head.fc_embed.weight,
    }
    for name, param in parts.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_embedding_losses_alone_reach_the_backbone(small_model: QDTrackModel) -> None:
    small_model.train().zero_grad()
    losses = small_model.forward_train(rectangle_scene())
    (losses["loss_embed"] + losses["loss_embed_aux"]).backward()
    assert small_model.detector.backbone.body.layer4[0].conv1.weight.grad.abs().sum() > 0
    assert small_model.detector.roi_heads.box_head.fc6.weight.grad is None


def test_one_backbone_call_and_reference_proposals_use_test_settings(
    small_model: QDTrackModel,
) -> None:
    calls: list[int] = []
    handle = small_model.detector.backbone.register_forward_hook(
        lambda m, i, o: calls.append(i[0].shape[0])
    )
    seen: list[int] = []
    sampler = small_model.sampler

    def recording_sampler(proposals, gt_boxes, generator=None):  # type: ignore[no-untyped-def]
        seen.append(len(proposals))
        return sampler(proposals, gt_boxes, generator)

    rpn = small_model.detector.rpn
    saved = dict(rpn._post_nms_top_n)
    rpn._post_nms_top_n = {"training": 60, "testing": 7}
    small_model.sampler = recording_sampler  # type: ignore[assignment]
    try:
        small_model.train().forward_train(rectangle_scene(batch_size=2))
    finally:
        small_model.sampler = sampler
        rpn._post_nms_top_n = saved
        handle.remove()
    assert calls == [4]  # key and reference images in one batch
    assert all(7 < n <= 60 for n in seen[:2]) and seen[2:] == [7, 7]


def test_sparse_mode_embeds_only_gt_boxes_with_one_positive_each() -> None:
    """``sampler.mode=sparse``: the embedding head sees exactly the key and reference GT boxes,
    and every key object has one positive (its own identity in the reference frame)."""
    torch.manual_seed(0)
    model = build_module("qdtrack_small", **{"model.sampler.mode": "sparse"}).model
    seen: list[torch.Tensor] = []
    head = model.embed_head.forward

    def recording_head(features, rois, image_sizes):  # type: ignore[no-untyped-def]
        seen.extend(r.clone() for r in rois)
        return head(features, rois, image_sizes)

    targets: list[torch.Tensor] = []
    track_targets = qdtrack_module.track_targets

    def recording_targets(key_ids, ref_ids, ref_is_positive):  # type: ignore[no-untyped-def]
        targets.append(track_targets(key_ids, ref_ids, ref_is_positive))
        return targets[-1]

    scene = rectangle_scene(batch_size=2)
    model.embed_head.forward = recording_head  # type: ignore[method-assign]
    qdtrack_module.track_targets = recording_targets  # type: ignore[assignment]
    try:
        losses = model.train().forward_train(scene)
    finally:
        qdtrack_module.track_targets = track_targets
    gt = [t.boxes for t in scene.key_targets] + [t.boxes for t in scene.ref_targets]
    assert len(seen) == len(gt)
    for rois, boxes in zip(seen, gt, strict=True):
        torch.testing.assert_close(rois, boxes)
    assert [tuple(t.shape) for t in targets] == [(3, 3), (3, 3)]
    for pair in targets:
        torch.testing.assert_close(pair, torch.eye(3))  # one positive per key object
    assert torch.isfinite(losses["loss_embed"]) and losses["loss_embed"] > 0


def test_frames_without_boxes(small_model: QDTrackModel) -> None:
    scene = rectangle_scene(batch_size=3)
    key_targets = [scene.key_targets[0], _empty_targets(), scene.key_targets[2]]
    ref_targets = [scene.ref_targets[0], scene.ref_targets[1], _empty_targets()]
    batch = _with(scene, key_targets=key_targets, ref_targets=ref_targets)
    small_model.train().zero_grad()
    losses = small_model.forward_train(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()

    empty = _with(scene, key_targets=[_empty_targets()] * 3, ref_targets=[_empty_targets()] * 3)
    losses = small_model.forward_train(empty)
    assert losses["loss_embed"].item() == 0.0
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()


def test_zero_proposals(small_model: QDTrackModel) -> None:
    rpn = small_model.detector.rpn
    saved = dict(rpn._post_nms_top_n)
    rpn._post_nms_top_n = {"training": 0, "testing": 0}
    try:
        scene = rectangle_scene(batch_size=2)
        no_boxes = _with(
            scene, key_targets=[_empty_targets()] * 2, ref_targets=[_empty_targets()] * 2
        )
        for batch in (scene, no_boxes):
            small_model.train().zero_grad()
            losses = small_model.forward_train(batch)
            assert all(torch.isfinite(v) for v in losses.values())
            sum(losses.values()).backward()
        assert losses["loss_cls"].item() == 0.0 and losses["loss_embed"].item() == 0.0
        detections = small_model.eval().predict(scene.key_images)
        assert [len(d.boxes) for d in detections] == [0, 0]
        assert detections[0].embeddings.shape == (0, small_model.embed_head.embed_channels)
    finally:
        rpn._post_nms_top_n = saved


def test_embedding_similarities_stay_float32_under_autocast(small_model: QDTrackModel) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = small_model.train().forward_train(rectangle_scene(batch_size=1))
    assert losses["loss_embed"].dtype == losses["loss_embed_aux"].dtype == torch.float32
    assert all(torch.isfinite(v) for v in losses.values())


def test_predict_returns_well_formed_detections(small_model: QDTrackModel) -> None:
    images = rectangle_scene(batch_size=2, height=90, width=120).key_images  # not a multiple of 32
    for mode in (False, True):  # works in eval mode and also when called on a training model
        detections = small_model.train(mode).predict(images)
        assert len(detections) == 2
        for det in detections:
            assert isinstance(det, Detections)
            n = len(det.boxes)
            assert (
                det.boxes.shape == (n, 4)
                and det.scores.shape == (n,)
                and det.class_ids.shape == (n,)
            )
            assert det.embeddings.shape == (n, 128)
            assert det.class_ids.dtype == torch.int64
            assert ((det.class_ids >= 0) & (det.class_ids < NUM_CLASSES)).all()
            assert (det.boxes[:, 0::2] <= 120).all() and (det.boxes[:, 1::2] <= 90).all()
            assert (det.scores >= 0.05).all() and n <= 100
            assert not det.embeddings.requires_grad


def test_rejects_inconsistent_pair_batches(small_model: QDTrackModel) -> None:
    scene = rectangle_scene(batch_size=2)
    with pytest.raises(ValueError, match="2 image pairs but 2 key and 1 reference"):
        small_model.forward_train(_with(scene, ref_targets=scene.ref_targets[:1]))
    with pytest.raises(ValueError, match="differ in shape"):
        small_model.forward_train(_with(scene, ref_images=scene.ref_images[:, :, :64]))
    bad = scene.key_targets[0]._replace(track_ids=torch.arange(2))
    with pytest.raises(ValueError, match="track_ids"):
        small_model.forward_train(_with(scene, key_targets=[bad, scene.key_targets[1]]))


@pytest.mark.slow
def test_cpu_default_losses_fall_on_synth_frames(compose_config, tmp_path: Path) -> None:
    """The CPU default (``experiment=synth``: qdtrack_small, its optimizer, grad clip 10) on a
    real ``data=synth`` batch: 30 steps (10 of warm-up) make the detection and both embedding
    losses fall. One batch is repeated so the decrease measures learning, not batch noise."""
    cfg = compose_config(
        "train",
        [
            "experiment=synth",
            f"data.root={tmp_path / 'synth'}",
            "data.show_progress=false",
            "data.num_workers=0",
            "data.batch_size=2",
            "data.synth.num_train_sequences=2",
            "data.synth.num_val_sequences=1",
            "data.synth.num_test_sequences=1",
            "data.synth.frames_range=[24,30]",
            "model.warmup_iters=10",
        ],
    )
    torch.manual_seed(0)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    module = instantiate(cfg.model)
    model = module.model.train()
    [optimizer], schedulers = module.configure_optimizers()
    warmup = schedulers[0]["scheduler"]
    history = []
    for _ in range(30):
        losses = model.forward_train(batch)
        optimizer.zero_grad()
        torch.stack(list(losses.values())).sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        warmup.step()
        history.append({k: v.item() for k, v in losses.items()})

    def mean(key_fn, rows):  # type: ignore[no-untyped-def]
        return sum(key_fn(r) for r in rows) / len(rows)

    detection = lambda r: sum(r[k] for k in DETECTION_KEYS)  # noqa: E731
    first, last = history[:5], history[-5:]
    assert mean(detection, last) < 0.7 * mean(detection, first)
    assert mean(lambda r: r["loss_embed"], last) < 0.7 * mean(lambda r: r["loss_embed"], first)
    assert mean(lambda r: r["loss_embed_aux"], last) < 0.7 * mean(
        lambda r: r["loss_embed_aux"], first
    )


@pytest.mark.slow
def test_r50_config_trains_and_predicts_at_small_resolution() -> None:
    torch.manual_seed(0)
    model = build_module("qdtrack_r50", num_classes=8).model.train()
    frozen = model.detector.backbone.body
    assert not any(p.requires_grad for p in frozen.layer1.parameters())
    assert not frozen.conv1.weight.requires_grad
    assert all(p.requires_grad for p in frozen.layer2.parameters())
    batch = rectangle_scene(batch_size=1, height=96, width=128)
    losses = model.forward_train(batch)
    assert tuple(losses) == LOSS_KEYS and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert model.embed_head.convs[3].conv.weight.grad.abs().sum() > 0
    detections = model.eval().predict(batch.key_images)
    assert len(detections) == 1 and detections[0].embeddings.shape[1] == 256
    assert len(detections[0].boxes) <= 100
