"""``make bench`` plumbing: the quick tracker benchmark runs, agrees with the reference on every
frame and writes the results schema. Timing targets are the benchmark's verdict, not a test's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report, run, tracker_latency

MACHINE_KEYS = {
    "cpu",
    "cpu_capability",
    "logical_cores",
    "usable_cores",
    "torch",
    "cuda_available",
    "gpu",
}
TIMING_KEYS = {"median_ms", "p90_ms", "mean_ms", "min_ms", "max_ms", "repeats"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "results.json"
    run.main(["--quick", "--only", "tracker_latency", "--output", str(output)])
    return json.loads(output.read_text())


def test_results_file_describes_the_run(results: dict) -> None:
    assert results["mode"] == "quick"
    assert results["command"].startswith("python -m benchmarks.run --quick")
    assert MACHINE_KEYS <= results["machine"].keys()
    assert list(results["benchmarks"]) == ["tracker_latency"]


def test_tracker_block_holds_every_figure(results: dict) -> None:
    block = results["benchmarks"]["tracker_latency"]
    assert block["threads"] == 1
    assert set(block["counts"]) == {str(n) for n in tracker_latency.DETECTION_COUNTS}
    for entry in block["counts"].values():
        assert entry["outputs_identical"] is True
        assert entry["frames_compared"] > 0
        for side in ("ours", "reference"):
            assert TIMING_KEYS <= entry[side].keys()
            assert entry[side]["median_ms"] > 0
        assert entry["speedup"] == pytest.approx(
            entry["reference"]["median_ms"] / entry["ours"]["median_ms"]
        )
        assert entry["mean_memory_tracks"] > 0 and entry["mean_memory_backdrops"] > 0
    target = block["target"]
    assert target["detections"] == tracker_latency.TARGET_COUNT
    assert isinstance(target["passed"], bool)
    assert isinstance(target["min_speedup_at_every_count"], bool)


def test_dense_stream_reports_the_tail(results: dict) -> None:
    dense = results["benchmarks"]["tracker_latency"]["dense"]
    assert dense["stream"]["detections"] == 300 and dense["stream"]["turnover"] == 0.3
    for clock in ("wall", "cpu"):
        tail = dense[clock]
        assert 0 < tail["median_ms"] <= tail["p90_ms"] <= tail["p99_ms"] <= tail["max_ms"]
        assert tail["p90_over_median"] == pytest.approx(tail["p90_ms"] / tail["median_ms"])
    assert dense["mean_births_per_frame"] > 10  # the turnover is real: many births per frame
    assert dense["passed"] == (dense["wall"]["p90_over_median"] <= 1.5)


def test_markdown_table_lists_the_tracker_figures(results: dict) -> None:
    table = report.markdown(results)
    assert "| benchmark | figure | value |" in table
    # a row per count, the target verdict and the dense stream
    assert table.count("| tracker |") == len(tracker_latency.DETECTION_COUNTS) + 2


@pytest.mark.parametrize("num_dets", tracker_latency.DETECTION_COUNTS)
def test_scenes_have_exactly_the_requested_detections(num_dets: int) -> None:
    for frame in tracker_latency.make_scene(num_dets, num_frames=5, seed=1):
        assert len(frame.boxes) == len(frame.scores) == len(frame.embeddings) == num_dets
        assert frame.embeddings.shape[1] == tracker_latency.EMBED_DIM


def test_a_tracker_mismatch_fails_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality check is live: a tracker that drops its last output is caught."""
    original = tracker_latency.QDTracker.update

    def lossy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        out = original(self, *args, **kwargs)
        return type(out)(*(t[:-1] for t in out))

    monkeypatch.setattr(tracker_latency.QDTracker, "update", lossy)
    with pytest.raises(AssertionError, match="differ"):
        tracker_latency.measure_count(10, tracker_latency.Params(2, 2, 1))


def test_output_folder_is_created(tmp_path: Path, results: dict) -> None:
    """``--output`` into a missing folder works (``bench/`` is not in the repository)."""
    target = tmp_path / "new" / "results.json"
    run.main(["--quick", "--only", "tracker_latency", "--output", str(target)])
    assert json.loads(target.read_text())["schema_version"] == results["schema_version"]
