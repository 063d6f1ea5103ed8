"""The speed switches of issue 17 keep the model's numbers: losses, gradients and detections of
the configured models (random init, fixed seed, fixed input) with every switch off (the code
before the issue) and on (the defaults).

End to end the comparison runs in float64. In float32 the switches change summation orders
(folded weights, NHWC convolutions), i.e. values by ~1e-6 relative; a random-init
network's objectness scores are near-ties, so such differences can swap a proposal at a top-k or
NMS boundary and, through the samplers, move a loss by ~1e-3. In float64 the same rounding is
~1e-15 and no decision flips, so everything must agree to double rounding. The float32 test checks
every continuous stage on fixed inputs instead (features, RPN maps, both RoI heads).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchvision.ops import MultiScaleRoIAlign

from qdtrack_pl import runtime
from qdtrack_pl.data.batch import FrameTargets, PairBatch
from qdtrack_pl.models.qdtrack import QDTrackModel

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"
SWITCH_KEYS = ("fold_bn", "channels_last", "threaded_roi_align")
HEIGHT, WIDTH = 96, 128


def build(name: str, on: bool, seed: int = 0) -> QDTrackModel:
    """``conf/model/<name>.yaml``'s model with every model switch ``on`` (or off)."""
    cfg = OmegaConf.create(
        {"data": {"num_classes": 2}, "model": OmegaConf.load(CONF_DIR / f"{name}.yaml")}
    )
    for key in SWITCH_KEYS:
        OmegaConf.update(cfg, f"model.model.detector.{key}", on)
    OmegaConf.update(cfg, "model.model.tune_allocator", False)
    torch.manual_seed(seed)
    return instantiate(cfg.model.model)


def scene(dtype: torch.dtype, batch_size: int = 2) -> PairBatch:
    """Textured frames with three boxes that move a little between key and reference."""
    gen = torch.Generator().manual_seed(3)
    boxes = torch.tensor([[10.0, 12.0, 50.0, 70.0], [60.0, 20.0, 110.0, 60.0], [5, 60, 40, 90]])
    keys = torch.rand(batch_size, 3, HEIGHT, WIDTH, generator=gen, dtype=dtype)
    refs = (keys + 0.05 * torch.rand(keys.shape, generator=gen, dtype=dtype)).clamp(0, 1)
    targets = [
        FrameTargets(boxes.to(dtype) + i, torch.tensor([0, 1, 1]), torch.arange(3))
        for i in range(batch_size)
    ]
    moved = [t._replace(boxes=t.boxes + 2) for t in targets]
    return PairBatch(keys, refs, targets, moved)


def _losses_and_grads(model: QDTrackModel, batch: PairBatch):
    model.train()
    torch.manual_seed(7)  # torchvision's samplers draw from the global generator
    losses = model.forward_train(batch, generator=torch.Generator().manual_seed(11))
    torch.stack(list(losses.values())).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads


def _close(got: torch.Tensor, want: torch.Tensor, rel: float, what: str = "") -> None:
    """Equal up to rounding: the largest difference is tiny next to the largest value."""
    assert got.shape == want.shape, what
    scale = max(want.abs().max().item(), 1e-30) if want.numel() else 1.0
    diff = (got - want).abs().max().item() if want.numel() else 0.0
    assert diff <= rel * scale, f"{what}: {diff} > {rel} x {scale}"


@pytest.mark.parametrize("name", ["qdtrack_small", "qdtrack_r50"])
def test_losses_gradients_and_detections_before_and_after_float64(name: str) -> None:
    off, on = build(name, False).double(), build(name, True).double()
    batch = scene(torch.float64)
    want_losses, want_grads = _losses_and_grads(off, batch)
    got_losses, got_grads = _losses_and_grads(on, batch)
    assert list(got_losses) == list(want_losses)
    for key in want_losses:
        _close(got_losses[key], want_losses[key], 1e-9, key)
        assert torch.isfinite(got_losses[key])
    assert got_grads.keys() == want_grads.keys()
    for key in want_grads:
        _close(got_grads[key], want_grads[key], 1e-7, key)

    off.eval(), on.eval()
    with torch.inference_mode():
        want, got = off.predict(batch.key_images), on.predict(batch.key_images)
    for w, g in zip(want, got, strict=True):
        assert len(g.boxes) == len(w.boxes) > 0
        assert torch.equal(g.class_ids, w.class_ids)
        for field in ("boxes", "scores", "embeddings"):
            _close(getattr(g, field), getattr(w, field), 1e-9, field)


@pytest.mark.parametrize("name", ["qdtrack_small", "qdtrack_r50"])
def test_every_continuous_stage_agrees_float32(name: str) -> None:
    """Features, RPN maps, box-head and embedding-head outputs on the same fixed boxes."""
    off, on = build(name, False).eval(), build(name, True).eval()
    images = scene(torch.float32).key_images
    boxes = [torch.tensor([[8.0, 8.0, 60.0, 80.0], [40.0, 10.0, 126.0, 90.0], [2, 2, 20, 20]])] * 2
    stages = []
    with torch.inference_mode():
        for model in (off, on):
            image_list, features = model.detector.extract_features(images)
            feature_list = list(features.values())
            objectness, deltas = model.detector.rpn.head(feature_list)
            roi_heads = model.detector.roi_heads
            pooled = roi_heads.box_roi_pool(features, boxes, image_list.image_sizes)
            scores, regression = roi_heads.box_predictor(roi_heads.box_head(pooled))
            embeds = model.embed_head(features, boxes, image_list.image_sizes)
            stages.append(
                {"tensor": image_list.tensors}
                | {f"feature {k}": v for k, v in features.items()}
                | {f"objectness {i}": o for i, o in enumerate(objectness)}
                | {f"rpn deltas {i}": d for i, d in enumerate(deltas)}
                | {"box scores": scores, "box regression": regression, "embeddings": embeds}
            )
    want, got = stages
    assert torch.equal(got["tensor"], want["tensor"])  # normalisation and padding: exact
    assert got["feature 0"].is_contiguous(memory_format=torch.channels_last)
    for key in want:
        _close(got[key], want[key], 2e-4, key)


UNTUNED_STEP_SCRIPT = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from test_speed_switches import _losses_and_grads, build, scene
from qdtrack_pl import runtime
torch.set_num_threads(int(sys.argv[3]))
torch.save(_losses_and_grads(build("qdtrack_small", True), scene(torch.float32)), sys.argv[2])
assert not runtime.is_tuned()
"""


def test_allocator_setting_changes_no_number(tmp_path: Path) -> None:
    """The allocator decides where tensors live, never what they hold: a step in an untouched
    process (``QDTRACK_MALLOC_TUNING=0``) and one in this tuned process are bit-identical."""
    runtime.tune_allocator(True)
    got_losses, got_grads = _losses_and_grads(build("qdtrack_small", True), scene(torch.float32))
    saved = tmp_path / "untuned.pt"
    env = os.environ | {runtime.ENV_SWITCH: "0"}
    subprocess.run(
        [
            sys.executable,
            "-c",
            UNTUNED_STEP_SCRIPT,
            str(Path(__file__).parent),
            str(saved),
            str(torch.get_num_threads()),
        ],
        env=env,
        check=True,
    )
    want_losses, want_grads = torch.load(saved)
    assert all(torch.equal(got_losses[k], want_losses[k]) for k in want_losses)
    assert all(torch.equal(got_grads[k], want_grads[k]) for k in want_grads)


def test_configs_turn_every_switch_on() -> None:
    """The defaults are the fast path; each switch is one documented config key."""
    for name in ("qdtrack_small", "qdtrack_r50"):
        model_cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml").model
        assert model_cfg.tune_allocator is True
        for key in SWITCH_KEYS:
            assert model_cfg.detector[key] is True, (name, key)
        assert model_cfg.detector.channels_last_training is False  # slower on AVX2 CPUs
    model = build("qdtrack_small", True)
    assert model.detector.channels_last


def test_channels_last_weights_follow_the_device() -> None:
    """NHWC convolution weights on CPU (oneDNN re-lays out NCHW ones at every call), kept through
    casts, NCHW again on another device; without the switch always NCHW. The same Parameter
    objects throughout."""
    on, off = build("qdtrack_small", True).eval(), build("qdtrack_small", False).eval()
    convs = [p for p in on.detector.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)
    on.double()
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert {id(p) for p in on.detector.parameters() if p.dim() == 4} == {id(p) for p in convs}
    assert all(p.is_contiguous() for p in off.detector.parameters() if p.dim() == 4)
    on.to("meta")  # any device but the CPU (a GPU): NCHW, as the inputs there
    assert all(p.is_contiguous() for p in on.detector.parameters() if p.dim() == 4)


def test_training_mode_runs_nchw_unless_channels_last_training() -> None:
    """``channels_last`` lays the network out NHWC for eval (inference) and NCHW for training,
    re-laid by the first forward after a mode change, however the flag was set (Lightning
    restores it after validation without ``train()``), unless ``channels_last_training``; an
    optimiser step after an eval round trip is exactly that of the model that never left NCHW."""
    model, nchw = build("qdtrack_small", True), build("qdtrack_small", True)
    detector = model.detector
    convs = [p for p in detector.parameters() if p.dim() == 4]
    batch = scene(torch.float32)

    def forward_layout() -> tuple[bool, bool]:
        with torch.no_grad():
            image_list, _ = detector.extract_features(batch.key_images)
        nhwc = image_list.tensors.is_contiguous(memory_format=torch.channels_last)
        return nhwc, all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)

    assert model.training and not detector.runs_nhwc()
    assert all(p.is_contiguous() for p in convs)
    model.eval()
    assert detector.runs_nhwc() and forward_layout() == (True, True)
    for module in model.modules():  # as Lightning's mode restore does it
        module.training = True
    assert forward_layout() == (False, False) and all(p.is_contiguous() for p in convs)
    model.eval()
    forward_layout()
    model.train()
    steps = []
    for net in (model, nchw):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        _losses_and_grads(net, batch)
        optimizer.step()
        steps.append({n: p.detach().clone() for n, p in net.named_parameters()})
    assert all(torch.equal(steps[0][name], value) for name, value in steps[1].items())
    detector.channels_last_training = True
    assert detector.runs_nhwc() and forward_layout() == (True, True)


def test_both_heads_pool_with_torchvisions_roialign_as_configured() -> None:
    """RoIAlign 7x7, adaptive sampling (``sampling_ratio=0``) and mmdet's level mapping
    (``finest_scale=56`` = 224 px at P4), with torchvision's own kernels, threaded as switched."""
    cfg = OmegaConf.load(CONF_DIR / "qdtrack_small.yaml").model
    for on in (False, True):
        model = build("qdtrack_small", on)
        pools = (model.detector.roi_heads.box_roi_pool, model.embed_head.roi_extractor)
        assert [(isinstance(p, MultiScaleRoIAlign), p.threaded) for p in pools] == [(True, on)] * 2
    for pool in pools:
        assert pool.output_size == (7, 7) and pool.sampling_ratio == 0
        assert (pool.canonical_scale, pool.canonical_level) == (224, 4)
        assert pool.featmap_names == ["0", "1", "2", "3"]  # P2-P5
    assert cfg.detector.roi_sampling_ratio == 0 and cfg.embed_head.roi_sampling_ratio == 0
