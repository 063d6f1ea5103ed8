"""MOT17 reader on the native-format fixture: detector copies, half split, ignore rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fixtures.mot17 import make_mot17
from qdtrack_pl.data.datasets.mot17 import read_mot17, split_frame
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mot17(tmp_path_factory.mktemp("data") / "MOT17")


def test_one_detector_copy_by_default_all_on_request(root: Path) -> None:
    assert [v.name for v in read_mot17(root, "train").videos] == ["MOT17-02-FRCNN"]
    assert [v.name for v in read_mot17(root, "train", detector="SDP").videos] == ["MOT17-02-SDP"]
    everything = read_mot17(root, "train", detector=None)
    assert sorted(v.name for v in everything.videos) == [
        "MOT17-02-DPM",
        "MOT17-02-FRCNN",
        "MOT17-02-SDP",
    ]


def test_class_rules_keep_pedestrians_and_ignore_distractors_and_conf0(root: Path) -> None:
    frames = read_mot17(root, "train").videos[0].frames
    second = frames[1].annotations  # MOT frame 2: ids 1, 2, 3 (car id 4 dropped)
    assert second.track_ids.tolist() == [1, 2, 3]
    assert second.ignore.tolist() == [False, True, True]
    assert second.class_ids.tolist() == [0, 0, 0]
    assert 4 not in {int(t) for f in frames for t in f.annotations.track_ids}


def test_half_split_restarts_indices_and_keeps_mot_frame_numbers(root: Path) -> None:
    assert split_frame(5) == 3 and split_frame(600) == 301
    train = read_mot17(root, "half-train").videos[0]
    val = read_mot17(root, "half-val").videos[0]
    assert [f.index for f in train.frames] == [0, 1, 2]
    assert [f.source_frame_id for f in train.frames] == [1, 2, 3]
    assert [f.index for f in val.frames] == [0, 1]
    assert [f.source_frame_id for f in val.frames] == [4, 5]
    assert val.frames[0].image_path.name == "000004.jpg"
    assert val.frames[0].annotations.track_ids.tolist() == [1, 2, 3, 5]
    assert val.frames[1].annotations.ignore.tolist() == [False, True, False]


def test_test_split_has_unannotated_frames(root: Path) -> None:
    video = read_mot17(root, "test").videos[0]
    assert video.name == "MOT17-01-FRCNN" and len(video) == 3
    assert not any(f.annotated for f in video.frames)


def test_errors_name_paths(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"detector must be one of"):
        read_mot17(root, "train", detector="FOO")
    only_dpm = make_mot17(tmp_path / "MOT17")
    for detector in ("FRCNN", "SDP"):
        shutil.rmtree(only_dpm / "train" / f"MOT17-02-{detector}")
    with pytest.raises(DatasetNotFoundError, match=r"no sequence folder named MOT17-XX-FRCNN"):
        read_mot17(only_dpm, "train")
    with pytest.raises(DatasetNotFoundError, match=r"nowhere/train.*motchallenge.net"):
        read_mot17(tmp_path / "nowhere", "half-val")


def test_malformed_gt_line_is_reported(tmp_path: Path) -> None:
    root = make_mot17(tmp_path / "MOT17")
    gt = root / "train" / "MOT17-02-FRCNN" / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",x"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=r"gt.txt:3"):
        read_mot17(root, "train")
