"""Reproducibility: with ``seed`` fixed and ``trainer.deterministic=true``, two CPU runs give
identical per-step losses, metrics and weights."""

from __future__ import annotations

import pytest
import torch

from fixtures.runs import TinyRuns, metrics, state_dict, step_losses

pytestmark = pytest.mark.slow


def test_two_seeded_deterministic_runs_are_identical(tiny_runs: TinyRuns) -> None:
    losses = step_losses(tiny_runs.reference)
    assert len(losses) == 6  # every optimizer step logged
    assert step_losses(tiny_runs.again) == losses
    assert metrics(tiny_runs.again) == metrics(tiny_runs.reference)
    first = state_dict(tiny_runs.reference / "checkpoints" / "last.ckpt")
    second = state_dict(tiny_runs.again / "checkpoints" / "last.ckpt")
    assert all(torch.equal(first[k], second[k]) for k in first)
