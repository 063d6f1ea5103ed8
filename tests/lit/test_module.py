"""QDTrackModule: Lightning training loop, logged keys, schedules, evaluation outputs, reload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from qdtrack_pl.data.batch import FrameBatch, FrameTargets, PairBatch
from qdtrack_pl.lit.module import QDTrackModule
from qdtrack_pl.models.qdtrack import LOSS_KEYS, Detections

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"


def build_module(name: str = "qdtrack_small", **overrides: object) -> QDTrackModule:
    cfg = OmegaConf.create(
        {"data": {"num_classes": 3}, "model": OmegaConf.load(CONF_DIR / f"{name}.yaml")}
    )
    for key, value in overrides.items():
        OmegaConf.update(cfg, f"model.{key}", value)
    return instantiate(cfg.model)


def pair_batch(seed: int, batch_size: int = 2, height: int = 64, width: int = 96) -> PairBatch:
    """Bright boxes on noise; the reference boxes are the key boxes shifted by 2 px."""
    gen = torch.Generator().manual_seed(seed)
    boxes = torch.tensor([[8.0, 8.0, 40.0, 48.0], [50.0, 10.0, 90.0, 40.0]])
    targets = FrameTargets(boxes, torch.tensor([0, 2]), torch.tensor([4, 9]))
    ref_targets = FrameTargets(boxes + 2.0, torch.tensor([0, 2]), torch.tensor([4, 9]))
    images = torch.rand(2, batch_size, 3, height, width, generator=gen) * 0.2
    for (x1, y1, x2, y2), value in zip(boxes.long().tolist(), (0.9, 0.6), strict=True):
        images[0, :, :, y1:y2, x1:x2] = value
        images[1, :, :, y1 + 2 : y2 + 2, x1 + 2 : x2 + 2] = value
    return PairBatch(images[0], images[1], [targets] * batch_size, [ref_targets] * batch_size)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trainer(tmp_path: Path, max_steps: int) -> pl.Trainer:
    return pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        gradient_clip_val=10.0,
    )


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_fit_logs_every_loss_and_reloads_from_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = build_module(warmup_iters=2)
    loader = DataLoader([pair_batch(0), pair_batch(1)], batch_size=None)
    trainer = _trainer(tmp_path, max_steps=2)
    trainer.fit(module, loader)
    logged = trainer.callback_metrics
    for key in (*LOSS_KEYS, "loss"):
        assert f"train/{key}" in logged and torch.isfinite(logged[f"train/{key}"]), key
    total = sum(logged[f"train/{key}"] for key in LOSS_KEYS)
    assert logged["train/loss"].item() == pytest.approx(total.item(), rel=1e-5)

    path = tmp_path / "module.ckpt"
    trainer.save_checkpoint(path)
    reloaded = QDTrackModule.load_from_checkpoint(
        path, model=build_module().model, weights_only=False
    )
    assert reloaded.hparams.warmup_iters == 2
    assert reloaded.hparams.optimizer.keywords["lr"] == module.hparams.optimizer.keywords["lr"]
    for name, value in module.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], value), name


def test_optimizer_and_chained_warmup_with_step_decay() -> None:
    """The paper's schedule (qdtrack_r50): SGD, linear warm-up, step decay per epoch."""
    module = build_module(
        "qdtrack_r50", warmup_iters=4, warmup_ratio=0.1, **{"scheduler.milestones": [1]}
    )
    [optimizer], schedulers = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    group = optimizer.param_groups[0]
    assert (group["momentum"], group["weight_decay"]) == (0.9, 1e-4)
    frozen = {id(p) for p in module.model.parameters() if not p.requires_grad}
    assert not frozen & {id(p) for p in group["params"]}
    assert [s["interval"] for s in schedulers] == ["step", "epoch"]
    warmup, decay = (s["scheduler"] for s in schedulers)
    base = 0.02
    # mmcv linear warm-up: lr = base * (ratio + (1 - ratio) * it / warmup_iters)
    lrs = [group["lr"]]
    for it in range(1, 7):
        optimizer.step()
        warmup.step()
        if it == 2:  # an epoch ends during warm-up: the decay composes with it
            decay.step()
        lrs.append(group["lr"])
    warm = [0.1 + 0.9 * min(it, 4) / 4 for it in range(7)]
    expected = [base * w * (0.1 if it >= 2 else 1.0) for it, w in enumerate(warm)]
    assert lrs == pytest.approx(expected, rel=1e-6)


def test_no_warmup_and_no_scheduler() -> None:
    module = build_module(warmup_iters=0, scheduler=None)  # the CPU default: AdamW
    [optimizer], schedulers = module.configure_optimizers()
    assert isinstance(optimizer, torch.optim.AdamW)
    assert schedulers == [] and optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(ValueError, match="warmup_ratio"):
        QDTrackModule(module.model, module.hparams.optimizer, warmup_ratio=0.0)


def test_evaluation_steps_return_detections_in_original_pixels() -> None:
    torch.manual_seed(0)
    module = build_module().eval()
    images = pair_batch(0).key_images
    batch = FrameBatch(images, ["video-a", "video-a"], [0, 1], torch.tensor([2.0, 0.5]))
    with torch.no_grad():
        network = module.model.predict(images)
        outputs = [
            module.validation_step(batch, 0),
            module.test_step(batch, 0),
            module.predict_step(batch, 0),
        ]
    for detections in outputs:
        assert len(detections) == 2 and all(isinstance(d, Detections) for d in detections)
        for det, net, scale in zip(detections, network, (2.0, 0.5), strict=True):
            assert torch.allclose(det.boxes, net.boxes / scale)
            assert torch.equal(det.embeddings, net.embeddings) and torch.equal(
                det.scores, net.scores
            )
    assert len(module(images)) == 2


@pytest.mark.parametrize("model", ["qdtrack_small", "qdtrack_r50"])
def test_model_configs_compose_into_the_train_config(
    compose_config: Callable[..., DictConfig], model: str
) -> None:
    cfg = compose_config("train", overrides=[f"model={model}"])
    module = instantiate(cfg.model)
    assert isinstance(module, QDTrackModule)
    assert module.model.detector.num_classes == cfg.data.num_classes
    assert (
        module.model.embed_head.convs[0].conv.in_channels == cfg.model.model.detector.fpn_channels
    )


def test_init_from_loads_weights_but_not_the_training_state(compose_config, tmp_path) -> None:
    """``init_from`` (e.g. TAO stage 2 from stage 1) copies every weight of a checkpoint of ours."""
    from qdtrack_pl.cli.train import build_module as build_configured_module
    from qdtrack_pl.lit.checkpointing import LIGHTNING_VERSION_KEY

    torch.manual_seed(1)
    source = build_configured_module(compose_config("train", ["experiment=synth_tiny"]))
    path = tmp_path / "stage1.ckpt"
    torch.save({LIGHTNING_VERSION_KEY: "2.6", "state_dict": source.state_dict()}, path)
    torch.manual_seed(2)
    fresh = build_configured_module(compose_config("train", ["experiment=synth_tiny"]))
    initialised = build_configured_module(
        compose_config("train", ["experiment=synth_tiny", f"init_from={path}"])
    )
    weight = "model.embed_head.fc_embed.weight"
    assert not torch.equal(fresh.state_dict()[weight], source.state_dict()[weight])
    for name, value in source.state_dict().items():
        assert torch.equal(initialised.state_dict()[name], value), name
