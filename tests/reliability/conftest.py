"""Fixtures of the reliability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from fixtures.runs import TinyRuns, run_tiny_runs


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The CPU is shared: one intra-op thread; deterministic mode switched back off after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    """Two uninterrupted tiny runs (in the background) and one interrupted twice (SIGTERM, then
    SIGKILL) and resumed with ``ckpt_path=last``; about a minute on two cores."""
    return run_tiny_runs(tmp_path_factory.mktemp("tiny_runs"))
