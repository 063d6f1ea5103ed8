"""qdtrack_pl.runtime: the glibc malloc tuning is effective in-process, respects the user's own
settings and does nothing where the C library is not glibc."""

from __future__ import annotations

import pytest

from qdtrack_pl import runtime

glibc_only = pytest.mark.skipif(runtime.glibc_version() is None, reason="needs glibc")


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
    assert runtime.set_glibc_defaults() is False
    assert runtime.tune_allocator(False).tuned is False


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
