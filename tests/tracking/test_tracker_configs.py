"""conf/tracker/*.yaml build the trackers they name; qdtrack.yaml holds the class defaults."""

from __future__ import annotations

import inspect

import pytest
from hydra.utils import instantiate

from qdtrack_pl.tracking import TRACKERS, IoUTracker, QDTracker, TaoTracker, build_tracker


@pytest.mark.parametrize(
    ("name", "cls"),
    [("qdtrack", QDTracker), ("mot17", QDTracker), ("bdd100k", QDTracker), ("synth", QDTracker),
     ("tao", TaoTracker), ("iou", IoUTracker), ("synth_iou", IoUTracker)],
)  # fmt: skip
def test_config_builds_its_tracker(compose_config, name: str, cls: type) -> None:
    cfg = compose_config("track", [f"tracker={name}", "ckpt_path=x", "input=y"])
    tracker = instantiate(cfg.tracker)
    assert type(tracker) is cls
    # every constructor knob is spelled out in the file
    assert set(cfg.tracker) - {"_target_"} == set(inspect.signature(cls).parameters)


def test_qdtrack_yaml_is_the_class_defaults_and_variants_differ(compose_config) -> None:
    defaults = {k: p.default for k, p in inspect.signature(QDTracker).parameters.items()}
    cfg = compose_config("track", ["tracker=qdtrack", "ckpt_path=x", "input=y"])
    assert {k: v for k, v in cfg.tracker.items() if k != "_target_"} == defaults
    mot17 = compose_config("track", ["tracker=mot17", "ckpt_path=x", "input=y"]).tracker
    assert (mot17.init_score_thr, mot17.memo_tracklet_frames) == (0.9, 30)
    bdd = compose_config("track", ["tracker=bdd100k", "ckpt_path=x", "input=y"]).tracker
    assert (bdd.init_score_thr, bdd.obj_score_thr) == (0.7, 0.3)
    synth = compose_config("train", ["experiment=synth"]).tracker
    assert (synth.match_metric, synth.match_score_thr, synth.init_score_thr) == ("cosine", 0.6, 0.9)


def test_experiment_synth_scores_the_iou_baseline_on_the_same_detections(compose_config) -> None:
    """make train reports test/* and test_iou/*: the IoU baseline rides in the same evaluation
    loop with the same birth and continuation scores, so only the association differs."""
    cfg = compose_config("train", ["experiment=synth"])
    evaluator = instantiate(cfg.callbacks.tracking_evaluation)
    main, baseline = evaluator.tracker, evaluator.baselines["iou"]
    assert isinstance(main, QDTracker) and isinstance(baseline, IoUTracker)
    assert (baseline.init_score_thr, baseline.obj_score_thr) == (
        main.init_score_thr,
        main.obj_score_thr,
    )
    assert cfg.eval_split == "test" and cfg.optimized_metric == "val/HOTA"


def test_registry() -> None:
    assert set(TRACKERS) == {"qdtrack", "tao", "iou"}
    assert isinstance(build_tracker("iou", match_iou_thr=0.3), IoUTracker)
    with pytest.raises(ValueError, match="unknown tracker"):
        build_tracker("sort")
