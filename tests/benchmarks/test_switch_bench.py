"""The off/on machinery of the model benchmarks: variants, configs, alternating runs, pooling,
ratios, the finite-loss flags and the report rows, on a tiny generated workload (no dataset,
seconds)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from benchmarks import report, switches, train_probe, workloads
from benchmarks.training import Params, combine_cpu_runs
from benchmarks.workloads import R50, SMALL, load_config, workload_named

TINY = R50._replace(name="tiny-r50", width=160, height=96, objects_per_frame=4)


def test_variants_cover_off_on_and_each_switch_alone() -> None:
    names = [v.name for v in switches.variants(ablation=True)]
    assert names[:2] == ["off", "on"]
    assert names[2:] == [f"no_{s}" for s in switches.SWITCH_NAMES]
    by_name = {v.name: v for v in switches.variants(ablation=True)}
    assert not any(by_name["off"].settings.values()) and all(by_name["on"].settings.values())
    assert [k for k, v in by_name["no_fold_bn"].settings.items() if not v] == ["fold_bn"]


def test_configure_sets_every_key() -> None:
    cfg = load_config(TINY)
    on = switches.configure(cfg, switches.variant_named("on"))
    off = switches.configure(cfg, switches.variant_named("off"))
    for switch in switches.SWITCHES:
        for key in switch.keys:
            assert OmegaConf.select(off, key) is False
            assert OmegaConf.select(on, key) is True
    assert (
        OmegaConf.select(
            switches.configure(cfg, switches.variant_named("no_fold_bn")),
            "model.model.detector.fold_bn",
        )
        is False
    )
    assert cfg.model.model.detector.fold_bn is True  # the original is left alone
    with pytest.raises(ValueError, match="unknown switch variant 'fast'"):
        switches.variant_named("fast")


def test_alternating_rotates_the_order_every_round() -> None:
    chosen = switches.variants(ablation=False) + [switches.variant_named("no_fold_bn")]
    order: list[str] = []
    runs = switches.alternating(lambda v: order.append(v.name) or {"round": len(order)}, chosen, 3)
    assert order == [
        "off",
        "on",
        "no_fold_bn",
        "on",
        "no_fold_bn",
        "off",
        "no_fold_bn",
        "off",
        "on",
    ]
    assert [r["round"] for r in runs["off"]] == [1, 6, 8]


def test_pooled_takes_the_median_over_every_run() -> None:
    pool = switches.pooled(
        [{"seconds": [0.1, 0.3], "faults": [5, 0]}, {"seconds": [0.2], "faults": [1]}]
    )
    assert pool["timing"]["median_ms"] == pytest.approx(200.0)
    assert pool["timing"]["repeats"] == 3
    assert pool["minor_faults_per_call"] == 1


def test_ratio_block() -> None:
    block = switches.ratio_block({"off": 300.0, "on": 100.0, "no_fold_bn": 150.0})
    assert block["speedup_on_vs_off"] == pytest.approx(3.0)
    assert block["per_switch"]["fold_bn"] == pytest.approx(
        {"what": switches.SWITCHES[1].what, "off_ms": 150.0, "on_ms": 100.0, "speedup": 1.5}
    )


@pytest.fixture(scope="module")
def probe_result() -> dict:
    """Every variant's probe run in this process (a subprocess per variant is what ``make bench``
    does; here the process is tuned by the first model built), combined as the benchmark does."""
    original = workloads.WORKLOADS
    workloads.WORKLOADS = (TINY,)  # what ``workload_named`` looks up
    params = Params(warmup=1, steps=2, ablation=True, rounds=1)
    try:
        runs = switches.alternating(
            lambda v: train_probe.measure_cpu(TINY.name, params, v.name),
            switches.variants(ablation=True),
            params.rounds,
        )
    finally:
        workloads.WORKLOADS = original
    return combine_cpu_runs(runs, params)


def test_training_probe_times_every_variant_with_finite_losses(probe_result: dict) -> None:
    assert set(probe_result["variants"]) == {v.name for v in switches.variants(True)}
    for name, variant in probe_result["variants"].items():
        assert variant["step"]["repeats"] == 2, name
        assert variant["losses_finite"] is True
        assert [len(run) for run in variant["loss_per_step"]] == [3]  # warm-up + timed steps
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


def test_workloads_are_found_by_full_name_or_model_and_unknown_names_are_refused() -> None:
    assert workload_named("small@320x192") is workload_named("small") is SMALL
    assert workload_named("r50") is R50
    with pytest.raises(ValueError, match="unknown workload 'r101'"):
        workload_named("r101")
