"""Every dataset experiment runs the whole main job (train, track, evaluate with the dataset's
protocol) with ``trainer.fast_dev_run=true`` on its native-format fixture.

The schedule, tracker preset and protocol are the experiment's; only what makes a paper-size run
impossible on a CPU in seconds is overridden: the backbone (ResNet-10), the input size and the
pretrained weights (random init).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.bdd100k import make_bdd100k
from fixtures.crowdhuman import make_crowdhuman
from fixtures.lvis_coco import make_lvis_coco
from fixtures.mot17 import make_mot17
from fixtures.tao import make_tao
from fixtures.waymo import make_waymo_converted
from qdtrack_pl import api
from qdtrack_pl.data.datasets.tao import annotated_category_names, write_vocabulary

CPU_SIZED = (
    "trainer.fast_dev_run=true",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "model.model.detector.backbone=resnet10",
    "model.model.detector.pretrained_backbone=null",
    "model.model.detector.pretrained_detector=null",
    "init_from=null",
    "data.image_size=[128,96]",
    "data.batch_size=1",
    "data.num_workers=0",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
)


def _tao(data_dir: Path) -> None:
    annotations = make_tao(data_dir / "TAO", "train.json") / "annotations"
    (annotations / "validation.json").write_bytes((annotations / "train.json").read_bytes())
    names = annotated_category_names([annotations / "train.json"])
    write_vocabulary(names, annotations / "tao_classes.txt")


FIXTURES: dict[str, Callable[[Path], object]] = {
    "mot17": lambda d: make_mot17(d / "MOT17"),
    "mot17_crowdhuman": lambda d: (
        make_mot17(d / "MOT17"),
        make_crowdhuman(d / "CrowdHuman", "train"),
    ),
    "bdd100k": lambda d: [make_bdd100k(d / "BDD100K", s) for s in ("train", "val")],
    "tao": _tao,
    "tao_stage1": lambda d: (_tao(d), make_lvis_coco(d / "LVIS")),
    "waymo": lambda d: [make_waymo_converted(d / "Waymo", s) for s in ("train", "val")],
}
EXTRA = {"tao": ("data.num_classes=4",), "tao_stage1": ("data.num_classes=4",)}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", sorted(FIXTURES))
def test_experiment_trains_tracks_and_evaluates(experiment: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    FIXTURES[experiment](data_dir)
    overrides = [
        f"experiment={experiment}",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
        *CPU_SIZED,
        *EXTRA.get(experiment, ()),
    ]
    cfg = api.compose("train", overrides, output_dir=tmp_path / "run")
    metrics = api.train(overrides, output_dir=tmp_path / "run")
    metric = cfg.optimized_metric
    assert metric in metrics and math.isfinite(metrics[metric])
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())[metric] == metrics[metric]
    assert any((tmp_path / "run" / "results").rglob("*.*")), "no tracking results written"
