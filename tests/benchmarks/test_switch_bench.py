"""The off/on machinery of the model benchmarks: variants, configs, interleaving, ratios, the
finite-loss flags and the report rows, on a tiny generated workload (no dataset, seconds)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from benchmarks import report, switches, train_probe
from benchmarks.training import Params
from benchmarks.workloads import R50, load_config

TINY = R50._replace(name="tiny-r50", width=160, height=96, objects_per_frame=4)


def test_variants_cover_off_on_and_each_switch_alone() -> None:
    names = [v.name for v in switches.variants(ablation=True)]
    assert names[:2] == ["off", "on"]
    assert names[2:] == [f"no_{s}" for s in switches.SWITCH_NAMES]
    by_name = {v.name: v for v in switches.variants(ablation=True)}
    assert not any(by_name["off"].settings.values()) and all(by_name["on"].settings.values())
    assert [k for k, v in by_name["no_fold_bn"].settings.items() if not v] == ["fold_bn"]


def test_configure_sets_every_key_and_never_tunes_at_build() -> None:
    cfg = load_config(TINY)
    on = switches.configure(cfg, switches.variants(False)[1])
    off = switches.configure(cfg, switches.variants(False)[0])
    for switch in switches.SWITCHES:
        for key in switch.keys:
            assert OmegaConf.select(off, key) is False
            assert OmegaConf.select(on, key) is (switch.name != "allocator")
    assert cfg.model.model.detector.fold_bn is True  # the original is left alone


def test_ratio_block() -> None:
    block = switches.ratio_block({"off": 300.0, "on": 100.0, "no_fold_bn": 150.0})
    assert block["speedup_on_vs_off"] == pytest.approx(3.0)
    assert block["per_switch"]["fold_bn"] == pytest.approx(
        {"what": switches.SWITCHES[1].what, "off_ms": 150.0, "on_ms": 100.0, "speedup": 1.5}
    )


@pytest.fixture(scope="module")
def probe_result() -> dict:
    original = train_probe.WORKLOADS
    train_probe.WORKLOADS = (TINY,)
    try:
        return train_probe.measure_cpu(TINY.name, Params(warmup=1, steps=2, ablation=True))
    finally:
        train_probe.WORKLOADS = original
        switches.activate(switches.variants(False)[1])


def test_training_probe_times_every_variant_with_finite_losses(probe_result: dict) -> None:
    assert set(probe_result["variants"]) == {v.name for v in switches.variants(True)}
    for name, variant in probe_result["variants"].items():
        assert variant["step"]["repeats"] == 2, name
        assert variant["losses_finite"] is True
        assert len(variant["loss_per_step"]) == 3  # warm-up + timed steps, all checked
    assert probe_result["losses_finite"] is True
    assert probe_result["speedup_on_vs_off"] == pytest.approx(
        probe_result["off_ms"] / probe_result["on_ms"]
    )
    assert set(probe_result["per_switch"]) == set(switches.SWITCH_NAMES)
    assert probe_result["lr"] == pytest.approx(0.02 / 16)  # scaled to the batch of 1


def test_a_nonfinite_loss_is_flagged() -> None:
    from benchmarks.training import TrainStep

    step = TrainStep(torch.nn.Linear(1, 1), torch.optim.SGD([torch.zeros(1)], lr=0.1), None)
    step.history = [{"a": torch.tensor(1.0)}, {"a": torch.tensor(float("nan"))}]
    assert step.losses_finite() is False


def test_report_rows_name_both_times_and_the_ratio(probe_result: dict) -> None:
    results = {
        "benchmarks": {
            "training": {"workloads": {"tiny": {"cpu_fp32": probe_result, "gpu": {"skipped": "x"}}}}
        }
    }
    rows = report.rows(results)
    headline = rows[0][2]
    assert f"{probe_result['speedup_on_vs_off']:.2f}x" in headline
    assert "losses finite" in headline
    assert sum("alone (others on)" in r[1] for r in rows) == len(switches.SWITCH_NAMES)
