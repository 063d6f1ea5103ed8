"""Every shipped real-dataset config runs the whole main job (fit one step, track, evaluate with
the dataset's protocol) with ``trainer.fast_dev_run=true`` on a tiny native-format fixture: each
``conf/data/*.yaml`` on its own (the default model and tracker) and each ``conf/experiment/*.yaml``
(its schedule, tracker preset and protocol). The synthetic dataset and the experiments built on it
are covered by the workflow tests. Then the result files the run wrote are scored again with
``qdtrack-eval results=...``: outside the MOTChallenge benchmarks (whose official rules differ
from the training-time adapter on conf-0 rows) that gives exactly the run's metrics.

Only what makes a paper-size run impossible on a CPU in seconds is overridden: the backbone
(ResNet-10), the input size, the pretrained weights (random init), and the tracker thresholds
(an untrained detector scores far below the 0.8 that starts a track). One evaluation batch holds
every frame of the fixture, so fast_dev_run's single batch tracks the whole split.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from fixtures.bdd100k import make_bdd100k
from fixtures.cocovid import make_cocovid
from fixtures.crowdhuman import make_crowdhuman
from fixtures.lvis_coco import make_lvis_coco
from fixtures.mot17 import make_mot17
from fixtures.motchallenge import make_mot20
from fixtures.tao import make_tao
from fixtures.waymo import make_waymo_converted
from qdtrack_pl import api
from qdtrack_pl.cli.evaluate import run_eval
from qdtrack_pl.data.datasets.tao import annotated_category_names, write_vocabulary

CONF = Path(__file__).resolve().parents[2] / "conf"
SYNTH_DATA = "synth"
LOCALISATION = frozenset({"LocA", "MOTP"})  # mean IoU of matches: moved by box rounding only
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
    "data.eval_batch_size=64",
    "data.num_workers=0",
    "tracker.init_score_thr=0.01",
    "tracker.obj_score_thr=0.01",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
)


def _tao(data_dir: Path) -> None:
    annotations = make_tao(data_dir / "TAO", "train.json") / "annotations"
    (annotations / "validation.json").write_bytes((annotations / "train.json").read_bytes())
    names = annotated_category_names([annotations / "train.json"])
    write_vocabulary(names, annotations / "tao_classes.txt")


def _bdd100k(data_dir: Path) -> None:
    for split in ("train", "val"):
        make_bdd100k(data_dir / "BDD100K", split)


def _crowdhuman(data_dir: Path) -> None:
    for split in ("train", "val"):
        make_crowdhuman(data_dir / "CrowdHuman", split)


def _waymo(data_dir: Path) -> None:
    for split in ("train", "val"):
        make_waymo_converted(data_dir / "Waymo", split)


Fixture = Callable[[Path], object]
DATA: dict[str, Fixture] = {  # conf/data/<name>.yaml -> the fixture its default root expects
    "bdd100k": _bdd100k,
    "cocovid": lambda d: make_cocovid(d / "CocoVID"),
    "crowdhuman": _crowdhuman,
    "mot17": lambda d: make_mot17(d / "MOT17"),
    "motchallenge": lambda d: make_mot20(d / "MOT20"),  # benchmark: MOT20 by default
    "tao": _tao,
    "tao_pretrain": lambda d: (_tao(d), make_lvis_coco(d / "LVIS")),
    "waymo": _waymo,
}
EXPERIMENTS: dict[str, Fixture] = {
    "bdd100k": _bdd100k,
    "mot17": DATA["mot17"],
    "mot17_crowdhuman": lambda d: (make_mot17(d / "MOT17"), _crowdhuman(d)),
    "tao": _tao,
    "tao_stage1": DATA["tao_pretrain"],
    "waymo": _waymo,
}
EXTRA: dict[tuple[str, str], tuple[str, ...]] = {  # the fixtures' vocabularies are small
    ("data", "tao"): ("data.num_classes=4",),
    ("data", "tao_pretrain"): ("data.num_classes=4",),
    ("data", "cocovid"): ("data.num_classes=2",),
    ("experiment", "tao"): ("data.num_classes=4",),
    ("experiment", "tao_stage1"): ("data.num_classes=4",),
}


def experiment_data(name: str) -> str:
    """The data config an experiment selects, following its defaults list (``override /data: x``,
    or another experiment it extends); the train config's default (synth) when none is named."""
    defaults = OmegaConf.load(CONF / "experiment" / f"{name}.yaml").get("defaults") or []
    for entry in defaults:
        if isinstance(entry, str) and (CONF / "experiment" / f"{entry}.yaml").is_file():
            return experiment_data(entry)
        if not isinstance(entry, str):
            for key, value in entry.items():
                if key.split()[-1].strip("/") == "data":
                    return str(value)
    return SYNTH_DATA


SHIPPED_DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml") if p.stem != SYNTH_DATA)
SHIPPED_EXPERIMENTS = sorted(
    p.stem for p in (CONF / "experiment").glob("*.yaml") if experiment_data(p.stem) != SYNTH_DATA
)
RUNS = [("data", n) for n in SHIPPED_DATA] + [("experiment", n) for n in SHIPPED_EXPERIMENTS]


def test_every_shipped_real_dataset_config_has_a_fixture_run() -> None:
    """A new conf/data or conf/experiment file fails here until it gets a fixture above."""
    assert SHIPPED_DATA == sorted(DATA), "conf/data without a fixture run (or a stale entry)"
    assert SHIPPED_EXPERIMENTS == sorted(EXPERIMENTS), "conf/experiment without a fixture run"
    assert experiment_data("mot17_crowdhuman") == "mot17"  # extends experiment=mot17
    assert experiment_data("synth_tiny") == SYNTH_DATA


def _written_results(run: Path, data_cfg: DictConfig) -> tuple[Path, bool]:
    """Where the run left the files its protocol reads, and whether the protocol is a
    MOTChallenge benchmark's (official rules, not the training-time adapter)."""
    module = get_class(data_cfg._target_)
    protocol = module.evaluation_protocol
    stage = run / "results" / "val"
    if protocol == "bdd100k":
        return stage / "bdd100k" / "trackers" / "qdtrack" / "data", False
    if protocol == "tao":
        return stage / "tao" / "trackers" / "qdtrack" / "data" / "results.json", False
    return stage, hasattr(module, "official_ground_truth")


@pytest.mark.slow
@pytest.mark.parametrize(("group", "name"), RUNS, ids=[f"{g}={n}" for g, n in RUNS])
def test_config_trains_tracks_evaluates_and_rescores(group: str, name: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (DATA if group == "data" else EXPERIMENTS)[name](data_dir)
    overrides = [
        f"{group}={name}",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={tmp_path / 'logs'}",
        *CPU_SIZED,
        *EXTRA.get((group, name), ()),
    ]
    run = tmp_path / "run"
    cfg = api.compose("train", overrides, output_dir=run)
    metrics = api.train(overrides, output_dir=run)
    metric = cfg.optimized_metric
    assert metric in metrics and math.isfinite(metrics[metric])
    assert json.loads((run / "metrics.json").read_text())[metric] == metrics[metric]
    assert any((run / "results").rglob("*.*")), "no tracking results written"

    written, official = _written_results(run, cfg.data)
    same_data = [o for o in overrides if o.startswith(("data", "experiment", "paths.data_dir"))]
    scored_cfg = api.compose(
        "eval", [*same_data, f"results={written}"], output_dir=tmp_path / "scored"
    )
    scored = run_eval(scored_cfg)
    assert scored and all(math.isfinite(v) for v in scored.values())
    if official:  # MOTChallenge rules: a conf-0 prediction is a false positive there
        assert "val/HOTA" in scored and "val/MOTA" in scored
    else:
        # the run's metrics went through Lightning's logging as float32; MOTChallenge text
        # rounds boxes to hundredths of a pixel, which moves the localisation means a little
        expected = {k: metrics[k] for k in scored}
        close = {k: v for k, v in scored.items() if k.rsplit("/", 1)[-1] not in LOCALISATION}
        assert close == pytest.approx({k: expected[k] for k in close}, rel=1e-6, abs=1e-6)
        for key in scored.keys() - close.keys():
            assert scored[key] == pytest.approx(expected[key], abs=0.1), key
