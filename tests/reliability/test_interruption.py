"""Interruption: a run killed mid-training (SIGTERM, then SIGKILL) and resumed with
``ckpt_path=last`` in the same run folder ends with the same weights and metrics as an
uninterrupted run with the same seed. Real ``python -m qdtrack_pl.cli.train`` processes."""

from __future__ import annotations

import signal

import pytest
import torch

from fixtures.runs import TinyRuns, global_step, metrics, output_of, state_dict

pytestmark = pytest.mark.slow


def test_sigterm_saves_the_finished_step_and_exits_cleanly(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.sigterm_returncode == 0, output_of(tiny_runs.resumed)[-3000:]
    assert tiny_runs.sigterm_step >= 1
    assert "stopped by SIGTERM" in output_of(tiny_runs.resumed)


def test_sigkill_leaves_a_loadable_newer_checkpoint(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.sigkill_returncode == -signal.SIGKILL
    assert tiny_runs.sigkill_step > tiny_runs.sigterm_step  # the resumed run went on training


def test_resumed_run_ends_with_the_uninterrupted_weights_and_metrics(tiny_runs: TinyRuns) -> None:
    assert tiny_runs.final_returncode == 0, output_of(tiny_runs.resumed)[-3000:]
    last = "checkpoints/last.ckpt"
    assert global_step(tiny_runs.resumed / last) == global_step(tiny_runs.reference / last) == 6
    expected = state_dict(tiny_runs.reference / last)
    actual = state_dict(tiny_runs.resumed / last)
    assert expected.keys() == actual.keys()
    different = [k for k in expected if not torch.equal(expected[k], actual[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
    assert metrics(tiny_runs.resumed) == metrics(tiny_runs.reference)
    assert "train/loss" in metrics(tiny_runs.reference) and "val/HOTA" in metrics(
        tiny_runs.reference
    )
