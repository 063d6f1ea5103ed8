"""The real datasets' data modules, instantiated from their conf/data/*.yaml on the fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fixtures.bdd100k import make_bdd100k
from fixtures.crowdhuman import make_crowdhuman
from fixtures.lvis_coco import make_lvis_coco
from fixtures.mot17 import make_mot17
from fixtures.tao import make_tao
from fixtures.waymo import make_waymo_converted
from qdtrack_pl.data.datamodule import VideoDataModule, merge_indices
from qdtrack_pl.data.datasets.tao import annotated_category_names, write_vocabulary
from qdtrack_pl.data.errors import DatasetNotFoundError
from qdtrack_pl.data.loading.pairs import PairDataset

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"


def datamodule(name: str, data_dir: Path, **overrides: object) -> VideoDataModule:
    """``conf/data/<name>.yaml`` resolved with ``paths.data_dir`` = ``data_dir``, then built
    (its Hydra defaults list, e.g. tao.yaml's headline metric, is not part of the module's
    arguments)."""
    data = OmegaConf.load(CONF / f"{name}.yaml")
    data.pop("defaults", None)
    cfg = OmegaConf.create(
        {
            "data": data,
            "seed": 0,
            "paths": {"data_dir": str(data_dir)},
        }
    )
    for key, value in overrides.items():
        OmegaConf.update(cfg, f"data.{key}", value)
    cfg.data.num_workers = 0
    return instantiate(cfg.data)


def test_mot17_half_split_stages(tmp_path: Path) -> None:
    make_mot17(tmp_path / "MOT17")
    dm = datamodule("mot17", tmp_path)
    assert dm.class_names == ("pedestrian",)
    assert [len(v) for v in dm.index("train").videos] == [3]
    assert [f.source_frame_id for f in dm.eval_index("val").videos[0].frames] == [4, 5]


def test_mot17_with_crowdhuman_training_images(tmp_path: Path) -> None:
    make_mot17(tmp_path / "MOT17")
    make_crowdhuman(tmp_path / "CrowdHuman", "train")
    dm = datamodule("mot17", tmp_path, crowdhuman_root=str(tmp_path / "CrowdHuman"))
    train = dm.index("train")
    assert len(train) == 1 + 3 and sum(v.is_static for v in train.videos) == 3


def test_crowdhuman(tmp_path: Path) -> None:
    make_crowdhuman(tmp_path / "CrowdHuman", "val")
    dm = datamodule("crowdhuman", tmp_path)
    assert len(dm.eval_index("val")) == 3


def test_crowdhuman_scope_0_trains_every_image_as_its_own_reference(tmp_path: Path) -> None:
    """conf/data/crowdhuman.yaml has scope: 0 (static images): the training loader builds and
    every pair is an image with itself; a negative scope is still refused."""
    make_crowdhuman(tmp_path / "CrowdHuman", "train")
    dm = datamodule("crowdhuman", tmp_path, image_size=[64, 48], photometric=None)
    assert dm.scope == 0
    dataset = dm.train_dataloader().dataset
    # image 1 has 2 targets, image 2 one (its other person is an ignore region), image 3 none
    assert len(dataset) == 2
    for item in range(len(dataset)):
        _, key, ref = dataset.sample_ref(item, np.random.default_rng(item))
        assert key == ref == 0
        pair = dataset[(item, 7)]
        assert pair.key_image is pair.ref_image
        assert pair.key_targets.track_ids.tolist() == pair.ref_targets.track_ids.tolist()
    with pytest.raises(ValueError, match="scope must be >= 0 frames"):
        PairDataset(dm.index("train"), dm.train_transform, scope=-1)


def test_bdd100k_training_adds_det_images(tmp_path: Path) -> None:
    make_bdd100k(tmp_path / "BDD100K", "train")
    make_bdd100k(tmp_path / "BDD100K", "val")
    dm = datamodule("bdd100k", tmp_path)
    assert len(dm.index("train")) == 2 + 2
    assert len(dm.eval_index("val")) == 2
    assert len(datamodule("bdd100k", tmp_path, det_train=False).index("train")) == 2


def test_tao_with_and_without_vocabulary_file(tmp_path: Path) -> None:
    root = make_tao(tmp_path / "TAO", "train.json")
    (root / "annotations" / "validation.json").write_bytes(
        (root / "annotations" / "train.json").read_bytes()
    )
    with pytest.raises(InstantiationException, match="vocabulary file .*tao_classes.txt"):
        datamodule("tao", tmp_path)
    write_vocabulary(
        annotated_category_names([root / "annotations" / "train.json"]),
        root / "annotations" / "tao_classes.txt",
    )
    with pytest.raises(InstantiationException, match="num_classes=482 but the dataset has 4"):
        datamodule("tao", tmp_path)
    dm = datamodule("tao", tmp_path, num_classes=4)
    assert dm.class_names == ("person", "car_(automobile)", "dog", "bicycle")
    assert dm.eval_index("val").num_frames() == 5
    default = datamodule("tao", tmp_path, vocabulary=None, num_classes=None)
    assert len(default.class_names) == 5


def test_tao_stage1_trains_on_lvis_coco_and_tracks_tao_val(tmp_path: Path, compose_config) -> None:
    root = make_tao(tmp_path / "TAO", "validation.json")
    write_vocabulary(
        annotated_category_names([root / "annotations" / "validation.json"]),
        root / "annotations" / "tao_classes.txt",
    )
    cfg = compose_config(  # composed: tao_pretrain.yaml extends tao.yaml
        "train", ["data=tao_pretrain", f"paths.data_dir={tmp_path}", "data.num_classes=4"]
    )
    dm = instantiate(cfg.data)
    with pytest.raises(DatasetNotFoundError, match="lvisv0.5\\+coco_train.json"):
        dm.index("train")
    make_lvis_coco(tmp_path / "LVIS")
    train = dm.index("train")
    assert len(train) == 3 and all(v.is_static for v in train.videos)
    assert train.class_names == dm.class_names == ("person", "car_(automobile)", "dog", "bicycle")
    # person and dog keep their vocabulary ids; the bus is not in TAO's vocabulary here
    assert train.videos[0].frames[0].annotations.class_ids.tolist() == [0, 2, 0]
    assert dm.eval_index("val").num_frames() == 5
    assert dm.oversample_thr == 1e-3


def test_waymo(tmp_path: Path) -> None:
    make_waymo_converted(tmp_path / "Waymo", "val")
    dm = datamodule("waymo", tmp_path)
    assert len(dm.eval_index("val")) == 2


def test_config_that_disagrees_with_the_data_fails_early(tmp_path: Path) -> None:
    with pytest.raises(InstantiationException, match="class_names .* differ"):
        datamodule("bdd100k", tmp_path, class_names=["car", "pedestrian"])


def test_merge_requires_one_vocabulary(tmp_path: Path) -> None:
    make_mot17(tmp_path / "MOT17")
    make_waymo_converted(tmp_path / "Waymo", "val")
    mot = datamodule("mot17", tmp_path).index("train")
    waymo = datamodule("waymo", tmp_path).index("val")
    with pytest.raises(ValueError, match="different class lists"):
        merge_indices([mot, waymo], "x")
