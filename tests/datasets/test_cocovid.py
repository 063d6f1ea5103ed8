"""CocoVID (MMTracking's video-COCO json): reader, data module from conf/data/cocovid.yaml, errors
naming file, record and field, and evaluation by class with the shared TrackEval adapter."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fixtures.cocovid import make_cocovid
from fixtures.track_results import drop_row, gt_as_results
from qdtrack_pl.data.datasets.cocovid import CocoVIDDataModule, read_cocovid
from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.eval.protocols import evaluate_protocol

CONF = Path(__file__).resolve().parents[2] / "conf" / "data" / "cocovid.yaml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_cocovid(tmp_path / "CocoVID")


def datamodule(data_dir: Path, **overrides: object) -> CocoVIDDataModule:
    cfg = OmegaConf.create(
        {"data": OmegaConf.load(CONF), "seed": 0, "paths": {"data_dir": str(data_dir)}}
    )
    for key, value in {"num_classes": 2, "num_workers": 0, **overrides}.items():
        OmegaConf.update(cfg, f"data.{key}", value)
    return instantiate(cfg.data)


def test_videos_frames_identities_and_ignore_regions(root: Path) -> None:
    dm = datamodule(root.parent)
    assert dm.class_names == ("pedestrian", "car")  # category ids 1, 2 in id order
    index = dm.eval_index("val")
    a, b = index.videos
    assert (a.name, len(a), a.width, a.height) == ("seq-a", 3, 64, 48)
    assert [f.source_frame_id for f in a.frames] == [0, 1, 2]  # sorted by frame_id
    assert a.frames[1].image_path == root / "val" / "seq-a" / "img1" / "000002.jpg"
    second = a.frames[1].annotations
    assert second.track_ids.tolist() == [10, 11, 12]  # instance_id
    assert second.class_ids.tolist() == [0, 1, 0]
    assert second.ignore.tolist() == [False, False, True]  # iscrowd
    np.testing.assert_array_equal(second.boxes[0], [4, 4, 12, 20])
    first_b = b.frames[0].annotations
    assert (b.width, b.height) == (48, 32)
    assert first_b.ignore.tolist() == [False, True]  # "ignore": true
    np.testing.assert_allclose(first_b.visibility, [0.5, 1.0])
    assert len(dm.index("train")) == 2


def _edit(root: Path, edit: Callable[[dict], object]) -> Path:
    path = root / "annotations" / "val_cocoformat.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["annotations"][2].update(image_id=42),
            r"annotations\[2\]: field 'image_id': 42 is not the id of any entry of 'images'",
        ),
        (
            lambda d: d["images"][0].update(video_id=9),
            r"images\[0\]: field 'video_id': 9 is not the id of any entry of 'videos'",
        ),
        (  # images[0] is frame 2 of video 1; images[2] is frame 1 -> make it 2 as well
            lambda d: d["images"][2].update(frame_id=2),
            r"images\[2\]: field 'frame_id': video 1 already has an image at frame_id 2 "
            r"\(images\[0\]\)",
        ),
        (  # annotation 5 (car, image 2) takes the pedestrian's instance 10 on the same image
            lambda d: d["annotations"][4].update(instance_id=10),
            r"annotations\[4\]: field 'instance_id': identity 10 appears twice in image 2",
        ),
        (
            lambda d: d["annotations"][0].pop("instance_id"),
            r"annotations\[0\]: missing field 'instance_id'",
        ),
        (
            lambda d: d["annotations"][6].update(visibility=1.5),
            r"annotations\[6\]: field 'visibility': expected the visible fraction in \[0, 1\]",
        ),
        (
            lambda d: d["categories"].append({"id": 3, "name": "bus"}),
            r"field 'categories': \['pedestrian', 'car', 'bus'\] differ from the train json's",
        ),
    ],
)
def test_broken_records_name_file_record_and_field(
    root: Path, edit: Callable[[dict], object], message: str
) -> None:
    path = _edit(root, edit)
    with pytest.raises(DatasetFormatError, match=rf"{re.escape(str(path))}: .*{message}"):
        datamodule(root.parent).eval_index("val")


def test_read_without_a_vocabulary_takes_the_json_categories(root: Path) -> None:
    index = read_cocovid(root / "annotations" / "val_cocoformat.json", root / "val")
    assert index.class_names == ("pedestrian", "car") and index.num_frames() == 5


def test_evaluation_by_class_with_the_shared_adapter(root: Path) -> None:
    dm = datamodule(root.parent)
    assert dm.evaluation_protocol == "mot"
    gt = dm.eval_index("val")
    results = gt_as_results(gt)
    results["seq-b"] = drop_row(results["seq-b"], frame_index=1, track_id=20)
    metrics = evaluate_protocol("mot", gt, results).metrics
    # car: GT 4 (instance 11 x2, 20 x2), TP 3, FN 1 -> MOTA 75; IDF1 = 2*3 / (2*3 + 1)
    # pedestrian: GT 3, all matched -> 100; the class average of the two
    assert metrics["MOTA"] == pytest.approx((100 + 75) / 2)
    assert metrics["IDF1"] == pytest.approx((100 + 100 * 6 / 7) / 2)
    # every class pooled: GT 7, 1 miss
    assert metrics["all/MOTA"] == pytest.approx(100 * 6 / 7)
