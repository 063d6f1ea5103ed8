"""conf/experiment/<dataset>.yaml compose with the train config and carry the schedules of
docs/method.md §5."""

from __future__ import annotations

from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "conf"
# experiment -> (data module, tracker, epochs, lr, lr steps, warm-up iters, grad clip, metric)
SCHEDULES = {
    "mot17": ("MOT17DataModule", "mot17", 4, 0.02, [3], 0, 35, "val/HOTA"),
    "mot17_crowdhuman": ("MOT17DataModule", "mot17", 4, 0.02, [3], 0, 35, "val/HOTA"),
    "bdd100k": ("BDD100KDataModule", "bdd100k", 12, 0.02, [8, 11], 1000, None, "val/mMOTA"),
    "tao": ("TAODataModule", "tao", 12, 0.002, [8, 11], 1000, None, "val/TrackAP50_75"),
    "tao_stage1": (
        "TAOPretrainDataModule",
        "tao",
        24,
        0.02,
        [16, 22],
        1000,
        None,
        "val/TrackAP50_75",
    ),
    "waymo": ("WaymoDataModule", "bdd100k", 12, 0.02, [8, 11], 1000, None, "val/HOTA"),
}
NEEDED = [CONF / "model" / "qdtrack_r50.yaml"] + [
    CONF / "tracker" / f"{name}.yaml" for name in ("mot17", "bdd100k", "tao")
]


@pytest.mark.parametrize("experiment", sorted(SCHEDULES))
def test_experiment_composes_with_the_schedule(experiment: str, compose_config) -> None:
    missing = [str(p.relative_to(CONF)) for p in NEEDED if not p.is_file()]
    if missing:
        pytest.skip(f"config groups not written yet: {missing}")
    cfg = compose_config("train", [f"experiment={experiment}", "paths.data_dir=/datasets"])
    module, tracker, epochs, lr, steps, warmup, clip, metric = SCHEDULES[experiment]
    assert cfg.data._target_.endswith(module)
    assert cfg.data.root.startswith("/datasets/")
    assert cfg.hydra.runtime.choices.tracker == tracker
    assert cfg.trainer.max_epochs == epochs
    assert cfg.model.optimizer.lr == lr
    assert list(cfg.model.scheduler.milestones) == steps
    assert cfg.model.warmup_iters == warmup
    assert cfg.trainer.gradient_clip_val == clip
    assert cfg.optimized_metric == metric
    assert cfg.model.model.detector.num_classes == cfg.data.num_classes


def test_tao_stage2_starts_from_stage1_with_the_detector_frozen(compose_config) -> None:
    cfg = compose_config("train", ["experiment=tao", "paths.data_dir=/datasets"])
    assert cfg.model.model.freeze_detector is True
    assert cfg.init_from.endswith("qdtrack_tao_stage1_r101.ckpt")
    stage1 = compose_config("train", ["experiment=tao_stage1", "paths.data_dir=/datasets"])
    assert stage1.model.model.freeze_detector is False and stage1.data.oversample_thr == 1e-3
