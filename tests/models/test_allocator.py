"""qdtrack_pl.runtime: the glibc malloc tuning is effective in-process, respects the user's own
settings, is never undone by a model built without it, and does nothing off glibc."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qdtrack_pl import runtime

glibc_only = pytest.mark.skipif(runtime.glibc_version() is None, reason="needs glibc")
# Run in a fresh interpreter: once a process has been tuned its heap holds large free chunks that
# keep serving big blocks, so glibc's untuned behaviour can only be seen in an untouched process.
FAULTS_SCRIPT = """
import json, resource, torch
from qdtrack_pl import runtime

def cycle():  # allocate, fill and free one 64 MiB tensor (above glibc's 32 MiB mmap ceiling)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

untuned = [cycle() for _ in range(4)]
status = runtime.tune_allocator(True)
tuned_cycles = [cycle() for _ in range(32)]
print(json.dumps({"tuned": status.tuned, "untuned": untuned, "tuned_cycles": tuned_cycles}))
"""
WARMUP_CYCLES = 16  # tuned cycles allowed to fault while freed blocks merge (8-10 seen here)
PAGES = 64 * 2**20 // 4096  # pages of one block


@glibc_only
def test_tuned_heap_stops_refaulting_large_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Untuned, every 64 MiB block is mapped and faulted in page by page again. Tuned, the heap
    keeps it: after a short warm-up a cycle faults no page. (torch allocates 64-byte aligned and
    glibc's aligned allocations over-ask by the alignment, so the first freed blocks are a little
    too small to reuse until neighbours merge: 8-10 cycles here, not always consecutive; a
    training step reuses its blocks from its third or fourth step on.)"""
    for name in (runtime.ENV_SWITCH, *runtime.USER_MALLOC_ENV, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    done = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["tuned"]
    assert min(result["untuned"]) > PAGES // 2  # faulted again every time
    assert max(result["tuned_cycles"][WARMUP_CYCLES:]) < PAGES // 100  # reused, not refaulted


@glibc_only
@pytest.mark.parametrize(
    ("env", "value"),
    [
        (runtime.ENV_SWITCH, "0"),
        ("MALLOC_MMAP_MAX_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1000000"),
    ],
)
def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.setattr(runtime, "_state", {"tuned": False})
    monkeypatch.setenv(env, value)
    status = runtime.tune_allocator(True)
    assert not status.tuned and env in status.reason
    assert not runtime.is_tuned()


def test_not_glibc_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_glibc", lambda: None)
    monkeypatch.setattr(runtime, "_state", {"tuned": False})
    assert runtime.tune_allocator(True) == runtime.AllocatorStatus(
        False, "not glibc: nothing to tune"
    )
    assert runtime.tune_allocator(False).tuned is False


def test_a_model_without_the_switch_does_not_undo_it(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(runtime, "_state", {"tuned": True})
    monkeypatch.setattr(runtime, "_mallopt", lambda *args: calls.append(args))
    assert runtime.tune_allocator(False).tuned is True
    assert calls == [] and runtime.is_tuned()


def test_switched_off_leaves_an_untouched_process_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    monkeypatch.setattr(runtime, "_state", {"tuned": False})
    monkeypatch.setattr(runtime, "_mallopt", lambda *args: calls.append(args))
    assert runtime.tune_allocator(False).tuned is False
    assert calls == []


def test_the_model_applies_its_config_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from qdtrack_pl.models.detector import FasterRCNN
    from qdtrack_pl.models.qdtrack import QDTrackModel

    seen: list[bool] = []
    monkeypatch.setattr(
        runtime, "tune_allocator", lambda enabled=True: seen.append(enabled) or "status"
    )
    detector = FasterRCNN(num_classes=1, backbone="resnet10", norm="bn", fpn_channels=16)
    QDTrackModel(detector, tune_allocator=False)
    QDTrackModel(detector)
    assert seen == [False, True]
