"""The Hydra entry points end to end on a small synthetic dataset: train -> eval -> track."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.utils import instantiate

from qdtrack_pl.cli.evaluate import run_eval
from qdtrack_pl.cli.track import run_tracking
from qdtrack_pl.cli.train import run_training
from qdtrack_pl.cli.utils import metric_value
from qdtrack_pl.eval.mot_results import read_mot_results
from qdtrack_pl.eval.trackeval_adapter import evaluate_tracking

pytestmark = pytest.mark.slow

SMALL_DATA = (
    "data.synth.num_train_sequences=2",
    "data.synth.num_val_sequences=1",
    "data.synth.num_test_sequences=1",
    "data.synth.frames_range=[12,14]",
    "data.synth.objects_range=[3,4]",
    "data.num_workers=0",
    "extras.print_config=false",
    "callbacks.rich_progress_bar=null",
    "++callbacks.model_summary=null",  # ++: the eval config has no model summary to drop
)


def _small(tmp_path: Path, *extra: str) -> list[str]:
    return [f"paths.data_dir={tmp_path / 'data'}", *SMALL_DATA, *extra]


@pytest.fixture
def trained_run(compose_config, tmp_path: Path) -> Path:
    cfg = compose_config(
        "train",
        _small(tmp_path, "trainer.max_epochs=1", "trainer.limit_train_batches=2"),
    )
    metrics = run_training(cfg)
    run_dir = Path(cfg.paths.output_dir)
    assert metric_value(metrics, cfg.optimized_metric) == metrics["val/HOTA"]
    return run_dir


def test_main_job_leaves_checkpoint_results_and_metrics(trained_run: Path) -> None:
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()
    saved = json.loads((trained_run / "metrics.json").read_text())
    for key in ("val/HOTA", "val/MOTA", "val/IDF1", "train/loss"):
        assert key in saved
    assert 0.0 <= saved["val/HOTA"] <= 100.0
    results = sorted((trained_run / "results" / "val").glob("*.txt"))
    assert len(results) == 1  # one val sequence
    read_mot_results(results[0])  # well-formed MOTChallenge rows


def test_eval_reproduces_the_final_evaluation_of_training(
    trained_run: Path, compose_config, tmp_path: Path
) -> None:
    training_metrics = json.loads((trained_run / "metrics.json").read_text())
    best = next((trained_run / "checkpoints").glob("epoch_*.ckpt"))
    cfg = compose_config("eval", _small(tmp_path, f"ckpt_path={best}"))
    metrics = run_eval(cfg)
    for key in ("val/HOTA", "val/MOTA", "val/IDF1"):
        assert metrics[key] == pytest.approx(training_metrics[key], abs=1e-6)


def test_iou_baseline_runs_behind_the_same_interface(
    trained_run: Path, compose_config, tmp_path: Path
) -> None:
    cfg = compose_config(
        "eval",
        _small(tmp_path, f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}", "tracker=iou"),
    )
    assert "val/HOTA" in run_eval(cfg)


def test_track_writes_mot_results_and_video_for_an_image_folder(
    trained_run: Path, compose_config, tmp_path: Path
) -> None:
    frames = next((tmp_path / "data" / "synth").glob("synth-*/val/*/img1"))
    out = tmp_path / "tracked"
    cfg = compose_config(
        "track",
        [
            f"paths.data_dir={tmp_path / 'data'}",
            f"ckpt_path={trained_run / 'checkpoints' / 'last.ckpt'}",
            f"input={frames}",
            f"output_dir={out}",
            "extras.print_config=false",
        ],
    )
    txt = run_tracking(cfg)
    sequence = frames.parent.name  # outputs are named after the sequence, not img1
    assert txt == out / f"{sequence}.txt" and txt.is_file()
    assert (out / f"{sequence}.mp4").stat().st_size > 0


def test_paper_r50_config_executes_one_training_step(compose_config, tmp_path: Path) -> None:
    cfg = compose_config(
        "train",
        _small(
            tmp_path,
            "model=qdtrack_r50",
            "debug=fdr",
            "data.batch_size=1",
            "data.eval_batch_size=1",
            "evaluate=false",
        ),
    )
    metrics = run_training(cfg)
    assert metrics["train/loss"] > 0.0


def test_main_job_scores_qdtrack_and_the_iou_baseline_on_val_and_test(
    compose_config, tmp_path: Path
) -> None:
    """``experiment=synth`` (what ``make train`` runs), shrunk: val is scored while training and
    test at the end, each for QDTrack and for the IoU baseline on the same detections; every key
    of metrics.json matches a re-scoring of the result files it wrote."""
    cfg = compose_config(
        "train",
        _small(
            tmp_path,
            "experiment=synth",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "data.num_workers=0",
            "tracker.init_score_thr=0.2",  # an untrained detector: let tracks start
            "tracker.obj_score_thr=0.1",
            "callbacks.tracking_evaluation.baselines.iou.init_score_thr=0.2",
            "callbacks.tracking_evaluation.baselines.iou.obj_score_thr=0.1",
        ),
    )
    metrics = run_training(cfg)
    run_dir = Path(cfg.paths.output_dir)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    datamodule = instantiate(cfg.data)
    for stage in ("val", "test"):
        gt = datamodule.eval_index(stage)
        for run in (stage, f"{stage}_iou"):
            for key in ("HOTA", "AssA", "IDF1", "IDSW", "GT_IDs", "GT_Dets"):
                assert f"{run}/{key}" in saved, (run, key)
            files = sorted((run_dir / "results" / run).glob("*.txt"))
            assert [f.stem for f in files] == [v.name for v in gt.videos]
            rescored = evaluate_tracking(
                gt,
                {f.stem: read_mot_results(f, gt.video(f.stem)) for f in files},
                class_names=gt.class_names,
            ).metrics
            assert saved[f"{run}/IDF1"] == pytest.approx(rescored["IDF1"], abs=1e-6)
        assert saved[f"{stage}/GT_IDs"] == saved[f"{stage}_iou/GT_IDs"]  # the same ground truth
