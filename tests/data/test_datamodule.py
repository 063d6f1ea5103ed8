"""SynthDataModule from conf/data/synth.yaml: loaders, evaluation order, seeding, Lightning."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fixtures.synth import SMALL_SYNTH
from qdtrack_pl.data.batch import FrameBatch, PairBatch
from qdtrack_pl.data.datamodule import VideoDataModule
from qdtrack_pl.data.synth.config import SynthConfig
from qdtrack_pl.data.synth.datamodule import SynthDataModule

CONF = Path(__file__).resolve().parents[2] / "conf" / "data" / "synth.yaml"
SMALL_SYNTH_VALUES = {
    f.name: list(v) if isinstance(v := getattr(SMALL_SYNTH, f.name), tuple) else v
    for f in dataclasses.fields(SynthConfig)
}


def _datamodule(data_dir: Path, **overrides: Any) -> SynthDataModule:
    """``conf/data/synth.yaml`` with ``paths.data_dir`` = ``data_dir`` and the small generator."""
    cfg = OmegaConf.create(
        {"data": OmegaConf.load(CONF), "seed": 7, "paths": {"data_dir": str(data_dir)}}
    )
    cfg.data.synth = SMALL_SYNTH_VALUES
    cfg.data.show_progress = False
    for key, value in overrides.items():
        OmegaConf.update(cfg, f"data.{key}", value)
    return instantiate(cfg.data)


def test_yaml_documents_every_knob_with_the_code_defaults() -> None:
    data = OmegaConf.load(CONF)
    synth = OmegaConf.to_container(data.synth)
    defaults = dataclasses.asdict(SynthConfig())
    assert synth == {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}
    loader_args = set(inspect.signature(VideoDataModule.__init__).parameters) - {"self"}
    synth_args = set(inspect.signature(SynthDataModule.__init__).parameters) - {"self", "kwargs"}
    assert loader_args | synth_args <= set(data)
    assert data.image_size == [data.synth.width, data.synth.height]  # trains at native size


def test_prepare_and_setup_read_the_generated_splits(tmp_path: Path) -> None:
    dm = _datamodule(tmp_path)
    dm.prepare_data()
    assert [p.name for p in (tmp_path / "synth").iterdir()] == [SMALL_SYNTH.cache_key()]
    dm.setup("fit")
    assert dm.class_names == ("person", "car", "box")
    assert len(dm.index("train")) == 2 and len(dm.eval_index("val")) == 1
    test, val = dm.eval_index("test"), dm.eval_index("val")  # test is held out, not val again
    assert [v.name for v in test.videos] == ["synth-test-00"]
    assert [v.name for v in val.videos] == ["synth-val-00"]
    assert all(f.image_path.parent.parent.parent.name == "test" for f in test.videos[0].frames)
    assert dm.eval_index("validate") is dm.eval_index("val")
    with pytest.raises(ValueError, match="unknown stage 'bogus'"):
        dm.eval_index("bogus")


def test_wrong_num_classes_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InstantiationException, match="num_classes=2 but the dataset has 3"):
        _datamodule(tmp_path, num_classes=2)


def test_train_loader_yields_padded_pair_batches(tmp_path: Path) -> None:
    dm = _datamodule(tmp_path, batch_size=3)
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert len(loader.dataset) == sum(
        len(v) for v in dm.index("train").videos
    )  # all frames are keys
    batch = next(iter(loader))
    assert isinstance(batch, PairBatch) and len(batch) == 3
    assert batch.key_images.shape == batch.ref_images.shape
    assert batch.key_images.dtype == torch.float32 and batch.key_images.shape[1] == 3
    assert batch.key_images.shape[-2] % 32 == 0 and batch.key_images.shape[-1] % 32 == 0
    assert 0.0 <= float(batch.key_images.min()) and float(batch.key_images.max()) <= 1.0
    for key, ref in zip(batch.key_targets, batch.ref_targets, strict=True):
        assert key.boxes.dtype == torch.float32 and key.class_ids.dtype == torch.int64
        assert set(key.track_ids.tolist()) & set(ref.track_ids.tolist())
        assert int(key.class_ids.max()) < 3


def _first_batches(dm: SynthDataModule, count: int) -> list[PairBatch]:
    dm.setup("fit")
    iterator = iter(dm.train_dataloader())
    return [next(iterator) for _ in range(count)]


def test_training_batches_are_reproducible_from_the_seed_with_workers(tmp_path: Path) -> None:
    kwargs = {"batch_size": 2, "num_workers": 2, "scale_range": [0.8, 1.2]}
    first = _first_batches(_datamodule(tmp_path, **kwargs), 3)
    again = _first_batches(_datamodule(tmp_path, **kwargs), 3)
    reseeded = _first_batches(_datamodule(tmp_path, seed=8, **kwargs), 3)
    for a, b in zip(first, again, strict=True):
        assert a.key_images.shape == b.key_images.shape
        torch.testing.assert_close(a.ref_images, b.ref_images)
        for ta, tb in zip(a.ref_targets, b.ref_targets, strict=True):
            torch.testing.assert_close(ta.boxes, tb.boxes)
    assert any(
        a.key_images.shape != c.key_images.shape or not torch.equal(a.key_images, c.key_images)
        for a, c in zip(first, reseeded, strict=True)
    )


def test_eval_loaders_visit_every_frame_once_in_video_order(tmp_path: Path) -> None:
    dm = _datamodule(tmp_path, eval_batch_size=4)
    dm.setup("validate")
    loaders = {"val": dm.val_dataloader(), "test": dm.test_dataloader()}
    loaders["predict"] = dm.predict_dataloader()
    for stage, loader in loaders.items():
        expected = [(v.name, f.index) for v in dm.eval_index(stage).videos for f in v.frames]
        seen = []
        for batch in loader:
            assert isinstance(batch, FrameBatch) and batch.images.shape[-2:] == (192, 320)
            assert batch.scale_factors.tolist() == [1.0] * len(batch)
            seen += list(zip(batch.video_names, batch.frame_indices, strict=True))
        assert seen == expected


class _FrameOrder(pl.LightningModule):
    """Records which frames the Lightning loops hand over."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def validation_step(self, batch: FrameBatch, batch_idx: int) -> None:
        self.seen += list(zip(batch.video_names, batch.frame_indices, strict=True))

    def predict_step(self, batch: FrameBatch, batch_idx: int) -> list[int]:
        return batch.frame_indices


def test_lightning_keeps_the_video_order(tmp_path: Path) -> None:
    dm = _datamodule(tmp_path, eval_batch_size=5)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    module = _FrameOrder()
    trainer.validate(module, datamodule=dm, verbose=False)
    video = dm.eval_index("val").videos[0]
    assert module.seen == [(video.name, f.index) for f in video.frames]
    predicted = trainer.predict(module, datamodule=dm)
    predict_video = dm.eval_index("predict").videos[0]
    assert [i for batch in predicted for i in batch] == list(range(len(predict_video)))
