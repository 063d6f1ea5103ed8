"""A checkpoint that knows its model: every checkpoint of ours carries its resolved ``model``
config and class names; ``qdtrack-track`` / ``qdtrack-eval`` build the model from it unless the
command line overrides model keys. ``qdtrack-track`` also reads MOT sequence folders and names
its outputs after the sequence."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from qdtrack_pl.cli.run import checkpoint_module, overrides_of
from qdtrack_pl.cli.track import _to_tensor
from qdtrack_pl.data.loading.frames import FrameSource
from qdtrack_pl.lit.checkpointing import (
    LIGHTNING_VERSION_KEY,
    StoredModel,
    inference_config,
    module_from_checkpoint,
    stored_model,
)
from qdtrack_pl.lit.module import MODEL_CONFIG_KEY

TINY = "experiment=synth_tiny"
CLASSES = ["person", "car", "box"]


def _tiny_checkpoint(compose_config, path: Path) -> dict:
    """A Lightning-style checkpoint of the synth_tiny model, saved the way on_save_checkpoint
    writes it; returns the model config it carries."""
    cfg = compose_config("train", [TINY])
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    module = instantiate(cfg.model)
    module.remember_config(model_config)
    checkpoint = {LIGHTNING_VERSION_KEY: "2.6", "state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    checkpoint[MODEL_CONFIG_KEY]["class_names"] = CLASSES  # (the trainer's datamodule says so)
    torch.save(checkpoint, path)
    return model_config


def test_the_checkpoint_carries_the_resolved_model_config(compose_config, tmp_path: Path) -> None:
    ckpt = tmp_path / "tiny.ckpt"
    model_config = _tiny_checkpoint(compose_config, ckpt)
    stored = stored_model(torch.load(ckpt, weights_only=False))
    assert stored == StoredModel(model_config, tuple(CLASSES))
    assert stored.config["model"]["detector"]["num_classes"] == 3  # interpolation resolved
    assert stored_model({"state_dict": {}}) is None  # official / older checkpoints: none


def test_the_module_is_rebuilt_from_the_stored_config(compose_config, tmp_path: Path) -> None:
    ckpt = tmp_path / "tiny.ckpt"
    _tiny_checkpoint(compose_config, ckpt)
    # the eval/track defaults configure qdtrack_small (resnet18, 64-channel FPN): it does not fit
    cfg = compose_config("track", [f"ckpt_path={ckpt}", "input=x"])
    assert cfg.model.model.detector.fpn_channels != 32 and overrides_of("model") == []
    loaded = checkpoint_module(cfg)
    assert loaded.module.model.detector.fpn_channels == 32 and loaded.class_names == tuple(CLASSES)
    reference = torch.load(ckpt, weights_only=False)["state_dict"]
    for key, value in loaded.module.state_dict().items():
        assert torch.equal(value, reference[key]), key
    # model keys on the command line: the configured model, which does not fit this checkpoint
    cfg = compose_config("track", [f"ckpt_path={ckpt}", "input=x", "model.warmup_iters=5"])
    assert overrides_of("model") == ["model.warmup_iters=5"]
    with pytest.raises(RuntimeError, match="does not fit the configured model"):
        checkpoint_module(cfg)
    # data keys on the command line: the configured class names
    cfg = compose_config("track", [f"ckpt_path={ckpt}", "input=x", "data=mot17"])
    assert checkpoint_module(cfg).class_names == ("pedestrian",)


def test_official_checkpoints_without_a_config_need_the_configured_model(tmp_path: Path) -> None:
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {"backbone.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="carries no model config"):
        module_from_checkpoint(path)


def test_weight_files_are_not_loaded_again_when_rebuilding() -> None:
    config = {"model": {"detector": {"pretrained_backbone": "/elsewhere/r50.pth", "fpn": 8}}}
    assert inference_config(config) == {
        "model": {"detector": {"pretrained_backbone": None, "fpn": 8}}
    }


def test_keys_of_removed_switches_are_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {"model": {"detector": {"sparse_roi_align": True, "fpn": 8}}}
    with caplog.at_level("WARNING"):
        assert inference_config(config) == {"model": {"detector": {"fpn": 8}}}
    assert "model.detector.sparse_roi_align" in caplog.text


def test_experiment_is_a_group_of_the_track_config(compose_config) -> None:
    cfg = compose_config("track", ["experiment=synth", "ckpt_path=x", "input=y"])
    assert cfg.tracker.match_metric == "cosine"  # conf/tracker/synth.yaml
    assert compose_config("eval", ["experiment=synth", "ckpt_path=x"]).tracker.match_score_thr


# -- inputs of qdtrack-track -----------------------------------------------------------------------
def _images(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (8, 6), (i, 0, 0)).save(folder / f"{i + 1:06d}.jpg")
    return folder


def test_sequence_folders_are_read_and_named_after_the_sequence(tmp_path: Path) -> None:
    seq = tmp_path / "SEQ-01"
    _images(seq / "img1")
    for path in (seq, seq / "img1"):  # without seqinfo.ini: the img1/ convention
        source = FrameSource.open(path)
        assert (
            source.path == seq / "img1" and source.name == "SEQ-01" and source.known_fps() is None
        )
    (seq / "seqinfo.ini").write_text(
        "[Sequence]\nname=SEQ-01\nimDir=img1\nframeRate=25\nseqLength=2\n"
        "imWidth=8\nimHeight=6\nimExt=.jpg\n"
    )
    for path in (seq, seq / "img1"):
        source = FrameSource.open(path)
        assert source.name == "SEQ-01" and source.fps() == 25.0
        assert len(list(source)) == 2
    plain = FrameSource.open(_images(tmp_path / "my_frames"))
    assert plain.name == "my_frames" and plain.fps() == 10.0


def test_frames_are_writable_and_make_no_numpy_warning(tmp_path: Path) -> None:
    frame = next(iter(FrameSource.open(_images(tmp_path / "frames"))))
    assert frame.flags.writeable
    read_only = np.zeros((6, 8, 3), np.uint8)
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, scale = _to_tensor(read_only, None)
    assert image.shape == (1, 3, 6, 8) and scale == 1.0


# -- end to end: a synth_tiny checkpoint tracked with no other argument ----------------------------
def _cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-W", "default", "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"},
    )
    assert proc.returncode == 0, f"{module} {args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_track_needs_only_the_checkpoint_and_the_input(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _cli(
        "qdtrack_pl.cli.train",
        [TINY, f"paths.data_dir={tmp_path / 'data'}", f"hydra.run.dir={run}", "evaluate=false"],
        cwd=tmp_path,
    )
    ckpt = run / "checkpoints" / "last.ckpt"
    seq = next((tmp_path / "data" / "synth").glob("synth-*/val/*"))  # a MOT sequence folder

    work = tmp_path / "elsewhere"
    work.mkdir()
    proc = _cli("qdtrack_pl.cli.track", [f"ckpt_path={ckpt}", f"input={seq}"], cwd=work)
    (out,) = (work / "logs" / "track" / "runs").iterdir()
    assert (out / f"{seq.name}.txt").is_file() and (out / f"{seq.name}.mp4").stat().st_size > 0
    assert "model built from the config stored in" in proc.stdout + proc.stderr
    assert "not writable" not in proc.stderr

    # experiment= is a group of the track config; img1/ itself is named after its sequence
    out = tmp_path / "tracked"
    args = [f"ckpt_path={ckpt}", f"input={seq / 'img1'}", "experiment=synth", f"output_dir={out}"]
    _cli("qdtrack_pl.cli.track", [*args, "write_video=false"], cwd=work)
    assert (out / f"{seq.name}.txt").is_file()
