"""Progress bars: Lightning's rich bar in the training callbacks, and rich bars for TrackEval
scoring, rendering and conversion (qdtrack_pl.progress)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import rich
from pytorch_lightning.callbacks import RichProgressBar

from fixtures.track_results import gt_as_results
from qdtrack_pl.cli.utils import instantiate_list
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.trackeval_adapter import evaluate_tracking
from qdtrack_pl.progress import progress_bar


@pytest.fixture
def console_output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What rich's global console (the one Lightning's bar and ours share) writes."""
    buffer = io.StringIO()
    monkeypatch.setattr(rich.get_console(), "file", buffer)
    return buffer


def test_training_callbacks_include_the_rich_progress_bar(compose_config) -> None:
    cfg = compose_config("train", [])
    callbacks = instantiate_list(cfg.callbacks, "callbacks")
    assert any(isinstance(c, RichProgressBar) for c in callbacks)
    assert cfg.callbacks.tracking_evaluation.show_progress is True


def test_progress_bar_counts_and_can_be_switched_off(console_output: io.StringIO) -> None:
    with progress_bar(3, "converting segments", transient=False) as advance:
        for _ in range(3):
            advance(1)
    assert "converting segments" in console_output.getvalue()
    assert "3/3" in console_output.getvalue()
    with progress_bar(3, "silent", enabled=False) as advance:
        advance(1)
    assert "silent" not in console_output.getvalue()


def test_trackeval_scoring_shows_progress_without_changing_results(
    console_output: io.StringIO,
) -> None:
    frames = tuple(
        Frame(
            t, Path(f"{t}.jpg"), FrameAnnotations.from_rows([[t, 0, t + 10, 10]], [1], [0]), t + 1
        )
        for t in range(4)
    )
    gt = VideoIndex(
        tuple(Video(name, frames, 50, 20) for name in ("a", "b")), ("person", "car"), "toy"
    )
    results = gt_as_results(gt)
    quiet = evaluate_tracking(gt, results)
    shown = evaluate_tracking(gt, results, show_progress=True)
    assert shown.metrics == quiet.metrics and shown.metrics["HOTA"] == pytest.approx(100.0)
