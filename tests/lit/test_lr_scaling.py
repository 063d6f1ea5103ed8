"""Linear lr scaling to the total batch (auto_scale_lr): the factor, where it comes from, that the
schedulers see the scaled rate, the switch, the log line, and why it is on by default."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from qdtrack_pl.lit.lr_scaling import apply_auto_scale_lr, batch_geometry, scale_lr
from qdtrack_pl.lit.module import QDTrackModule

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "model"


def fake_trainer(batch_size: object = 2, devices: int = 1, nodes: int = 1, accumulate: int = 1):
    return SimpleNamespace(
        datamodule=SimpleNamespace(batch_size=batch_size),
        num_devices=devices,
        num_nodes=nodes,
        accumulate_grad_batches=accumulate,
    )


def _optimizer(lr: float = 0.02) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def test_total_batch_is_devices_times_batch_times_nodes_times_accumulation() -> None:
    geometry = batch_geometry(fake_trainer(batch_size=2, devices=4, nodes=2, accumulate=3))
    assert geometry is not None and geometry.total == 48
    assert batch_geometry(fake_trainer(batch_size=None)) is None
    assert batch_geometry(SimpleNamespace(datamodule=None)) is None


@pytest.mark.parametrize(
    ("trainer", "factor"),
    [
        (fake_trainer(batch_size=1), 1 / 16),  # one CPU, one pair
        (fake_trainer(batch_size=2, devices=8), 1.0),  # the paper's 8 GPUs x 2
        (fake_trainer(batch_size=2, devices=4, nodes=2, accumulate=2), 2.0),
    ],
)
def test_lr_scales_linearly(trainer: SimpleNamespace, factor: float) -> None:
    optimizer = _optimizer()
    assert apply_auto_scale_lr(optimizer, trainer, True, 16) == pytest.approx(factor)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * factor)
    assert optimizer.defaults["lr"] == pytest.approx(0.02 * factor)


def test_switched_off_or_without_base_nothing_changes() -> None:
    for enabled, base in ((False, 16), (True, None)):
        optimizer = _optimizer()
        assert apply_auto_scale_lr(optimizer, fake_trainer(1), enabled, base) is None
        assert optimizer.param_groups[0]["lr"] == 0.02


def test_unknown_batch_size_warns_and_keeps_lr(caplog: pytest.LogCaptureFixture) -> None:
    optimizer = _optimizer()
    with caplog.at_level(logging.WARNING):
        assert apply_auto_scale_lr(optimizer, SimpleNamespace(datamodule=None), True, 16) is None
    assert optimizer.param_groups[0]["lr"] == 0.02
    assert "batch size is unknown" in caplog.text


def test_scale_lr_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="base_batch_size"):
        scale_lr(_optimizer(), 1, 0)


def _module(name: str = "qdtrack_r50", **overrides: object) -> QDTrackModule:
    """``conf/model/<name>.yaml`` with a stand-in model (the optimiser is what is tested)."""
    cfg = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    kwargs = {
        key: instantiate(value) if OmegaConf.is_dict(value) else value
        for key, value in cfg.items()
        if key not in ("_target_", "model")
    }
    kwargs |= overrides
    model = torch.nn.Linear(2, 2)
    return QDTrackModule(model, **kwargs)  # type: ignore[arg-type]


def test_configure_optimizers_scales_before_the_schedulers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The warm-up and step schedulers start from the scaled rate; the factor is logged."""
    module = _module()
    module._trainer = fake_trainer(batch_size=1)  # type: ignore[assignment]
    with caplog.at_level(logging.INFO, logger="qdtrack_pl.lit.lr_scaling"):
        optimizers, schedulers = module.configure_optimizers()  # type: ignore[misc]
    optimizer = optimizers[0]
    assert module.lr_scale == pytest.approx(1 / 16)
    for entry in schedulers:
        assert entry["scheduler"].base_lrs == [pytest.approx(0.02 / 16)]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 / 16 * 0.001)  # warm-up start
    assert "learning rate scaled x0.0625" in caplog.text
    assert "model.auto_scale_lr=false" in caplog.text


def test_configure_optimizers_switch_off() -> None:
    module = _module(auto_scale_lr=False)
    module._trainer = fake_trainer(batch_size=1)  # type: ignore[assignment]
    _, schedulers = module.configure_optimizers()  # type: ignore[misc]
    assert schedulers[0]["scheduler"].base_lrs == [pytest.approx(0.02)]


def test_configs_document_their_base() -> None:
    """On by default; the paper config's lr is for 16 pairs, the CPU default's for its 4."""
    r50 = OmegaConf.load(CONF_DIR / "qdtrack_r50.yaml")
    small = OmegaConf.load(CONF_DIR / "qdtrack_small.yaml")
    assert r50.auto_scale_lr is True and r50.base_batch_size == 16
    assert small.auto_scale_lr is True and small.base_batch_size == 4
    with pytest.raises(ValueError, match="base_batch_size"):
        _module(base_batch_size=0)


@pytest.mark.slow
def test_unscaled_paper_lr_diverges_at_batch_1_and_scaled_stays_finite() -> None:
    """The issue's failure: random-init R50 at lr 0.02 (for 16 pairs) with one pair per step
    explodes by its second step and is NaN by its third; scaled to 1/16 it stays finite."""
    from benchmarks.training import TrainStep
    from benchmarks.workloads import (
        R50,
        build_model,
        build_optimizer,
        load_config,
        training_batches,
    )

    workload = R50._replace(width=320, height=192)
    cfg = load_config(workload)
    batches = training_batches(cfg, workload, torch.device("cpu"), 3)
    finite = {}
    for scaled in (False, True):
        model = build_model(cfg)
        optimizer = build_optimizer(cfg, model, total_batch=1 if scaled else 16)
        step = TrainStep(model, optimizer, torch.device("cpu"))
        for batch in batches:
            step(batch)
        finite[scaled] = step.losses_finite()
        if not scaled:
            assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    assert finite == {False: False, True: True}
