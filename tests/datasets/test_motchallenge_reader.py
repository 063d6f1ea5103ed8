"""The MOTChallenge benchmarks' own layouts and rules: MOT15's ten columns and bare seqinfo.ini,
CRLF files, MOT20's extra distractor class, and every rule that leaves a row out saying so."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures.motchallenge import MOT15_SEQ, MOT20_SEQ, make_mot15, make_mot20
from qdtrack_pl.data.datasets.motchallenge import read_motchallenge
from qdtrack_pl.data.errors import DatasetFormatError

MOT_LOGGER = "qdtrack_pl.data.formats.mot"


@pytest.fixture
def mot15(tmp_path: Path) -> Path:
    return make_mot15(tmp_path / "MOT15")


@pytest.fixture
def mot20(tmp_path: Path) -> Path:
    return make_mot20(tmp_path / "MOT20")


def test_mot15_ten_columns_are_world_coordinates_not_classes(mot15: Path) -> None:
    assert b"\r\n" in (mot15 / "train" / MOT15_SEQ / "gt" / "gt.txt").read_bytes()  # CRLF file
    video = read_motchallenge(mot15, "train", benchmark="MOT15").videos[0]
    assert len(video) == 4 and [f.source_frame_id for f in video.frames] == [1, 2, 3, 4]
    first, second = video.frames[0].annotations, video.frames[1].annotations
    # id 2 has world coordinates 3.5, 12.25, 0 in columns 8-10: still a pedestrian (class 0)
    assert first.track_ids.tolist() == [1, 2] and first.class_ids.tolist() == [0, 0]
    np.testing.assert_array_equal(first.boxes, [[3, 4, 11, 20], [30, 10, 40, 30]])
    np.testing.assert_array_equal(first.visibility, [1.0, 1.0])
    assert second.track_ids.tolist() == [1, 2, 3]
    assert second.ignore.tolist() == [False, False, True]  # conf 0
    assert sum(len(f.annotations) for f in video.frames) == 4 + 4 + 2


def test_mot15_bare_seqinfo_falls_back_to_the_first_image_and_says_so_once(
    mot15: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=MOT_LOGGER):
        index = read_motchallenge(mot15, "train", benchmark="MOT15")
    video = index.videos[0]
    assert (video.width, video.height, video.fps) == (64, 48, 30.0)
    assert video.frames[0].image_path == mot15 / "train" / MOT15_SEQ / "img1" / "000001.jpg"
    fallbacks = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
    assert len(fallbacks) == 1
    assert "imDir, frameRate, imWidth, imHeight, imExt" in fallbacks[0]
    assert "imWidth=64 imHeight=48" in fallbacks[0] and "imExt=.jpg" in fallbacks[0]
    test = read_motchallenge(mot15, "test", benchmark="MOT15").videos[0]
    assert len(test) == 2 and not any(f.annotated for f in test.frames)


def test_mot15_rows_with_nine_columns_are_refused(mot15: Path) -> None:
    gt = mot15 / "train" / MOT15_SEQ / "gt" / "gt.txt"
    gt.write_text("1,1,3,4,8,16,1,1,1.0\n")
    with pytest.raises(DatasetFormatError, match=r"gt.txt:1: expected 10 comma-separated columns"):
        read_motchallenge(mot15, "train", benchmark="MOT15")


def test_mot20_class_6_is_a_distractor_and_mot17_rules_drop_it(mot20: Path) -> None:
    val = read_motchallenge(mot20, "half-val", benchmark="MOT20").videos[0]
    assert [f.source_frame_id for f in val.frames] == [4, 5]
    ann = val.frames[0].annotations
    assert ann.track_ids.tolist() == [1, 2, 3]  # id 4 (car) dropped
    assert ann.ignore.tolist() == [False, True, True]  # non-MOT vehicle, conf-0 pedestrian
    as_mot17 = read_motchallenge(mot20, "half-val", benchmark="MOT17").videos[0].frames[0]
    assert as_mot17.annotations.track_ids.tolist() == [1, 3]
    with pytest.raises(ValueError, match="only MOT17 ships detector copies"):
        read_motchallenge(mot20, "train", benchmark="MOT20", detector="FRCNN")


def _summary(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == MOT_LOGGER and " rows: " in r.getMessage()]


def test_one_summary_per_sequence_counts_kept_ignored_and_dropped_rows(
    mot20: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gt = mot20 / "train" / MOT20_SEQ / "gt" / "gt.txt"
    with gt.open("a") as f:  # a box half a pixel wide, and one entirely right of the 64x48 image
        f.write("1,5,10,10,0.5,20,1,1,1.0\n2,6,100,10,8,16,1,1,1.0\n")
    with caplog.at_level(logging.INFO, logger=MOT_LOGGER):
        read_motchallenge(mot20, "train", benchmark="MOT20")
    (record,) = _summary(caplog)
    assert record.levelno == logging.WARNING
    # 22 rows: targets 5 (id 1) + 2 (the new ones); ignore 5 class-6 + 5 conf-0; dropped 5 cars
    assert record.getMessage() == (
        f"{gt}: 22 rows: 7 targets, 10 ignore regions (conf 0: 5, ignored class or low "
        "visibility: 5), 5 dropped (class 3: 5); 2 kept rows can never be training targets "
        "(1 narrower or shorter than 1 px, 1 outside the 64x48 image)"
    )


def test_visibility_outside_zero_one_names_file_line_and_column(mot20: Path) -> None:
    gt = mot20 / "train" / MOT20_SEQ / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",1.7"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DatasetFormatError, match=r"gt.txt:3: column 'visibility' must be in \[0, 1\].*'1.7'"
    ):
        read_motchallenge(mot20, "train", benchmark="MOT20")


def test_non_numeric_seqinfo_value_names_file_and_key(mot20: Path) -> None:
    info = mot20 / "train" / MOT20_SEQ / "seqinfo.ini"
    info.write_text(info.read_text().replace("imWidth=64", "imWidth=640px"))
    with pytest.raises(
        DatasetFormatError,
        match=r"seqinfo.ini: \[Sequence\] key 'imWidth': expected a positive integer, got '640px'",
    ):
        read_motchallenge(mot20, "train", benchmark="MOT20")


def test_sequence_folder_without_seqinfo_is_an_error_naming_it(mot20: Path) -> None:
    stray = mot20 / "train" / "MOT20-02"
    shutil.copytree(mot20 / "train" / MOT20_SEQ, stray)
    (stray / "seqinfo.ini").unlink()
    (mot20 / "train" / ".ipynb_checkpoints").mkdir()  # hidden folders are not sequences
    with pytest.raises(
        DatasetFormatError, match=rf"{stray}: sequence folder without seqinfo.ini.*1 of the 2"
    ):
        read_motchallenge(mot20, "train", benchmark="MOT20")
