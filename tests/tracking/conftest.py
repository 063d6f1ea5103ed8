"""Tracker tests run on one CPU thread: per-frame tensors are tiny, and on a loaded machine the
intra-op thread pool turns microsecond ops into millisecond waits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
