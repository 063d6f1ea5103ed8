"""Numerical faults: a NaN/inf loss or gradient is reported with the step and batch and the step
is skipped (weights and optimizer state untouched) or the run stops, as configured; empty frames,
all-negative samples and empty memories give finite losses and well-formed tracker outputs."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from qdtrack_pl.data.batch import FrameTargets, PairBatch
from qdtrack_pl.lit.module import NONFINITE_STEPS_KEY, NonFiniteLossError, QDTrackModule
from qdtrack_pl.tracking.registry import TRACKERS

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"
pytestmark = pytest.mark.usefixtures("one_thread")


class ToyModel(nn.Module):
    """Stands in for QDTrackModel: two loss terms from one weight; chosen steps go wrong."""

    def __init__(self, bad_steps: dict[int, str]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))
        self.bad_steps = bad_steps  # call number -> "nan" | "inf" | "grad"
        self.calls = 0

    def forward_train(self, batch: PairBatch) -> dict[str, torch.Tensor]:
        fault = self.bad_steps.get(self.calls)
        self.calls += 1
        x = batch.key_images.mean()
        loss_a = (self.weight * x).square().sum()
        loss_b = self.weight.abs().sum() * 0.1
        if fault == "nan":
            loss_b = loss_b * float("nan")
        elif fault == "inf":
            loss_a = loss_a + float("inf")
        elif fault == "grad":  # finite value, infinite gradient: d sqrt(u) / du at u = 0
            loss_b = loss_b + torch.sqrt(self.weight - self.weight.detach()).sum()
        return {"loss_a": loss_a, "loss_b": loss_b}


def toy_batch(i: int) -> PairBatch:
    images = torch.full((1, 3, 8, 8), 0.1 * (i + 1))
    targets = [FrameTargets(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0))]
    return PairBatch(images, images, targets, targets)


def fit(module: QDTrackModule, tmp_path: Path, steps: int) -> list[torch.Tensor]:
    """Train ``steps`` batches; returns the weight after each step."""
    seen: list[torch.Tensor] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            seen.append(pl_module.model.weight.detach().clone())

    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Record()],
    )
    loader = torch.utils.data.DataLoader([toy_batch(i) for i in range(steps)], batch_size=None)
    trainer.fit(module, loader)
    return seen


def toy_module(bad_steps: dict[int, str], **kwargs) -> QDTrackModule:
    optimizer = functools.partial(torch.optim.SGD, lr=0.1, momentum=0.9)
    return QDTrackModule(ToyModel(bad_steps), optimizer, warmup_iters=0, **kwargs)


FIT_WARNINGS = (
    "ignore:You defined a `validation_step` but have no `val_dataloader`",
    "ignore:`training_step` returned `None`",
)


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("fault", ["nan", "inf", "grad"])
def test_a_non_finite_step_is_skipped_reported_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    module = toy_module({1: fault})
    caplog.set_level(logging.WARNING, logger="qdtrack_pl.lit.module")
    weights = fit(module, tmp_path, steps=4)
    assert torch.equal(weights[1], weights[0])  # the faulty step changed nothing
    assert not torch.equal(weights[2], weights[1])  # training went on
    assert all(torch.isfinite(w).all() for w in weights)
    assert module.nonfinite_steps == 1
    message = caplog.text
    assert "global step 1 (epoch 0, batch 1)" in message and "step skipped" in message
    expected_term = {"nan": "loss_b=nan", "inf": "loss_a=inf", "grad": "model.weight"}[fault]
    assert expected_term in message


@pytest.mark.filterwarnings(*FIT_WARNINGS)
def test_stop_policy_raises_naming_step_and_terms(tmp_path: Path) -> None:
    module = toy_module({2: "nan"}, nonfinite_loss="stop")
    with pytest.raises(NonFiniteLossError, match=r"loss \(loss_b=nan\) at global step 2 .*batch 2"):
        fit(module, tmp_path, steps=4)
    assert torch.isfinite(module.model.weight).all()


@pytest.mark.filterwarnings(*FIT_WARNINGS)
@pytest.mark.parametrize("fault", ["nan", "grad"])
def test_a_diverged_run_stops_after_too_many_skipped_steps(tmp_path: Path, fault: str) -> None:
    module = toy_module({i: fault for i in range(1, 10)}, max_consecutive_nonfinite=3)
    with pytest.raises(NonFiniteLossError, match=r"global step 4 .*4 steps in a row were non-fin"):
        fit(module, tmp_path, steps=8)
    interrupted = toy_module({1: fault, 2: fault, 4: fault, 5: fault}, max_consecutive_nonfinite=2)
    fit(interrupted, tmp_path, steps=8)  # a good step in between resets the count
    assert interrupted.nonfinite_steps == 4


def test_the_skipped_step_count_is_checkpointed_and_validated() -> None:
    module = toy_module({})
    module.nonfinite_steps = 5
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    restored = toy_module({})
    restored.on_load_checkpoint(checkpoint)
    assert checkpoint[NONFINITE_STEPS_KEY] == restored.nonfinite_steps == 5
    with pytest.raises(ValueError, match="nonfinite_loss must be one of"):
        toy_module({}, nonfinite_loss="ignore")


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_skipped_unreadable_images_are_counted_by_the_module(tmp_path: Path) -> None:
    module = toy_module({})
    batch = toy_batch(0)
    batch = PairBatch(*batch[:4], skipped_images=("a.jpg", "b.jpg"))
    module.training_step(batch, 0)
    module.training_step(PairBatch(*batch[:4], skipped_images=("a.jpg",)), 1)
    assert module.skipped_images == {"a.jpg", "b.jpg"}


# ---------------------------------------------------------------- degenerate batches, real model


@pytest.fixture(scope="module")
def small_module() -> QDTrackModule:
    torch.manual_seed(0)
    cfg = OmegaConf.create(
        {"data": {"num_classes": 2}, "model": OmegaConf.load(CONF_DIR / "qdtrack_small.yaml")}
    )
    cfg.model.model.detector.backbone = "resnet10"
    return instantiate(cfg.model)


def scene(key_ids: list[int], ref_ids: list[int]) -> PairBatch:
    boxes = torch.tensor([[8.0, 8.0, 40.0, 48.0], [50.0, 10.0, 90.0, 40.0]])[: len(key_ids)]
    images = torch.rand(2, 1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 0.2
    key = FrameTargets(boxes, torch.zeros(len(key_ids), dtype=torch.long), torch.tensor(key_ids))
    ref = FrameTargets(
        boxes[: len(ref_ids)], torch.zeros(len(ref_ids), dtype=torch.long), torch.tensor(ref_ids)
    )
    return PairBatch(images[0], images[1], [key], [ref])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.parametrize(
    ("key_ids", "ref_ids"),
    [([], []), ([3, 4], [7, 8]), ([3, 4], [])],
    ids=["no-boxes", "no-matching-identity", "empty-reference"],
)
def test_degenerate_batches_give_finite_losses_and_a_real_step(
    small_module: QDTrackModule, key_ids: list[int], ref_ids: list[int]
) -> None:
    small_module.train()
    loss = small_module.training_step(scene(key_ids, ref_ids), 0)
    assert loss is not None and torch.isfinite(loss)
    loss.backward()
    assert small_module.nonfinite_steps == 0


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_trackers_take_empty_frames_and_an_empty_memory(name: str) -> None:
    tracker = TRACKERS[name]()
    empty = (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, 8))
    for frame_id in (0, 1):  # nothing in memory, then nothing to match
        out = tracker.update(*empty, frame_id=frame_id)
        assert out.track_ids.shape == out.det_indices.shape == (0,)
    one = (
        torch.tensor([[0.0, 0.0, 10.0, 10.0]]),
        torch.tensor([0.99]),
        torch.zeros(1, dtype=torch.long),
        torch.ones(1, 8),
    )
    assert tracker.update(*one, frame_id=2).track_ids.tolist() == [0]
    assert tracker.update(*empty, frame_id=3).track_ids.numel() == 0
