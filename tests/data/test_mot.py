"""MOTChallenge reader/writer: exact round trips, class rules, errors naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.formats.mot import (
    MappingClassRule,
    mot17_class_rule,
    read_mot_sequence,
    read_mot_split,
    synth_class_rule,
    write_mot_sequence,
)
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video
from qdtrack_pl.data.synth.config import SynthConfig
from qdtrack_pl.data.synth.generate import ensure_synth_dataset

WIDTH, HEIGHT, LENGTH = 64, 48, 4


def _write_images(seq_dir: Path, length: int = LENGTH) -> list[Path]:
    (seq_dir / "img1").mkdir(parents=True, exist_ok=True)
    paths = [seq_dir / "img1" / f"{i:06d}.jpg" for i in range(1, length + 1)]
    for path in paths:
        Image.new("RGB", (WIDTH, HEIGHT)).save(path)
    return paths


def _write_seqinfo(seq_dir: Path, length: int = LENGTH) -> None:
    seq_dir.mkdir(parents=True, exist_ok=True)
    (seq_dir / "seqinfo.ini").write_text(
        f"[Sequence]\nname={seq_dir.name}\nimDir=img1\nframeRate=25\nseqLength={length}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n"
    )


def _make_sequence(seq_dir: Path, gt_text: str | None) -> Path:
    _write_seqinfo(seq_dir)
    _write_images(seq_dir)
    if gt_text is not None:
        (seq_dir / "gt").mkdir(exist_ok=True)
        (seq_dir / "gt" / "gt.txt").write_text(gt_text)
    return seq_dir


def _assert_videos_equal(a: Video, b: Video) -> None:
    assert (a.name, a.width, a.height, a.fps, len(a)) == (b.name, b.width, b.height, b.fps, len(b))
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert (fa.index, fa.source_frame_id, fa.image_path) == (
            fb.index,
            fb.source_frame_id,
            fb.image_path,
        )
        for name in ("boxes", "track_ids", "class_ids", "visibility", "ignore"):
            va, vb = getattr(fa.annotations, name), getattr(fb.annotations, name)
            assert va.dtype == vb.dtype and np.array_equal(va, vb), (fa.index, name)


def test_write_then_read_is_exact_for_float32_boxes_and_empty_frames(tmp_path: Path) -> None:
    seq_dir = tmp_path / "seq-a"
    paths = _write_images(seq_dir)
    boxes = np.array([[10.3, 4.7, 30.1, 40.9], [-5.25, 1.0 / 3, 12.0, 47.99]], np.float32)
    frames = [
        Frame(
            0,
            paths[0],
            FrameAnnotations.from_rows(boxes, [3, 9], [1, 0], [0.25, 1.0], [False, True]),
            1,
        ),
        Frame(1, paths[1], FrameAnnotations.empty(), 2),  # no rows, still a frame
        Frame(2, paths[2], FrameAnnotations.from_rows(boxes[:1] + 1.1, [3], [1], [0.3]), 3),
        Frame(3, paths[3], FrameAnnotations.empty(), 4),
    ]
    video = Video("seq-a", tuple(frames), WIDTH, HEIGHT, fps=25.0)

    write_mot_sequence(video, seq_dir)
    _assert_videos_equal(read_mot_sequence(seq_dir, synth_class_rule(2)), video)
    lines = (seq_dir / "gt" / "gt.txt").read_text().splitlines()
    assert lines[1].split(",")[6:8] == ["0", "1"]  # ignore -> conf 0, class 0 -> MOT class 1
    assert lines[0].split(",")[8] == "0.25"


def test_generated_synth_gt_round_trips_byte_for_byte(tmp_path: Path) -> None:
    cfg = SynthConfig(
        num_train_sequences=2,
        num_val_sequences=1,
        num_test_sequences=1,
        frames_range=(12, 16),
        seed=3,
    )
    split_dir = ensure_synth_dataset(tmp_path / "cache", cfg, show_progress=False) / "train"
    index = read_mot_split(split_dir, synth_class_rule(len(cfg.classes)), cfg.classes)
    assert [v.name for v in index.videos] == ["synth-train-00", "synth-train-01"]
    for video in index.videos:
        out_dir = tmp_path / "rewritten" / video.name
        write_mot_sequence(video, out_dir)
        for name in ("gt/gt.txt", "seqinfo.ini"):
            assert (out_dir / name).read_text() == (split_dir / video.name / name).read_text()
        gt_rows = (split_dir / video.name / "gt" / "gt.txt").read_text().splitlines()
        assert sum(len(f.annotations) for f in video.frames) == len(gt_rows)


def test_mot17_rule_keeps_pedestrians_ignores_distractors_and_zero_conf(tmp_path: Path) -> None:
    gt = "\n".join(
        [
            "1,1,1,2,10,20,1,1,0.9",  # pedestrian -> target
            "1,2,5,5,10,20,0,1,1.0",  # pedestrian with conf 0 -> ignore
            "1,3,5,5,10,20,1,7,0.5",  # static person (distractor) -> ignore
            "1,4,5,5,10,20,1,3,1.0",  # car -> dropped
            "2,5,5,5,10,20,1,12,1.0",  # reflection -> ignore
            "2,6,5,5,10,20,1,4,1.0",  # bicycle -> dropped
        ]
    )
    video = read_mot_sequence(_make_sequence(tmp_path / "MOT17-02", gt), mot17_class_rule())
    first, second = video.frames[0].annotations, video.frames[1].annotations
    assert first.track_ids.tolist() == [1, 2, 3]
    assert first.ignore.tolist() == [False, True, True]
    assert first.class_ids.tolist() == [0, 0, 0]
    assert second.track_ids.tolist() == [5] and second.ignore.tolist() == [True]
    np.testing.assert_array_equal(first.boxes[0], [1, 2, 11, 22])


def test_min_visibility_rule_turns_low_visibility_rows_into_ignore(tmp_path: Path) -> None:
    gt = "1,1,1,2,10,20,1,1,0.05\n1,2,1,2,10,20,1,2,0.5\n"
    rule = MappingClassRule(targets={1: 0, 2: 1}, min_visibility=0.1)
    ann = read_mot_sequence(_make_sequence(tmp_path / "s", gt), rule).frames[0].annotations
    assert ann.ignore.tolist() == [True, False] and ann.class_ids.tolist() == [0, 1]


def test_frames_without_rows_exist_and_keep_their_numbers(tmp_path: Path) -> None:
    video = read_mot_sequence(
        _make_sequence(tmp_path / "s", "3,1,1,2,10,20,1,1,1\n"), synth_class_rule(1)
    )
    assert [len(f.annotations) for f in video.frames] == [0, 0, 1, 0]
    assert [f.source_frame_id for f in video.frames] == [1, 2, 3, 4]
    assert video.frames[2].image_path == tmp_path / "s" / "img1" / "000003.jpg"


def test_missing_gt_is_allowed_for_test_splits_only(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", None)
    video = read_mot_sequence(seq_dir, synth_class_rule(1), require_gt=False)
    assert len(video) == LENGTH and not any(f.annotated for f in video.frames)
    with pytest.raises(DatasetFormatError, match=re.escape(str(seq_dir / "gt" / "gt.txt"))):
        read_mot_sequence(seq_dir, synth_class_rule(1))


def _expect_error(seq_dir: Path, *fragments: str) -> None:
    with pytest.raises(DatasetFormatError) as info:
        read_mot_sequence(seq_dir, synth_class_rule(2))
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_missing_sequence_folder_and_seqinfo(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope", "missing sequence folder", str(tmp_path / "nope"))
    (tmp_path / "bare").mkdir()
    _expect_error(
        tmp_path / "bare", "missing sequence info file", str(tmp_path / "bare" / "seqinfo.ini")
    )


def test_missing_image_folder_names_the_expected_path(tmp_path: Path) -> None:
    _write_seqinfo(tmp_path / "s")
    _expect_error(tmp_path / "s", "missing image folder", str(tmp_path / "s" / "img1"))


def test_missing_image_names_the_first_missing_frame(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,1,1,2,10,20,1,1,1\n")
    (seq_dir / "img1" / "000003.jpg").unlink()
    _expect_error(seq_dir, "1 of 4 frames are missing", str(seq_dir / "img1" / "000003.jpg"))


def test_missing_gt_file_names_the_expected_path(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", None)
    _expect_error(seq_dir, "missing ground-truth file", str(seq_dir / "gt" / "gt.txt"))


def test_row_with_five_columns_names_file_line_and_expectation(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,1,1,2,10,20,1,1,1\n\n2,2,3,4,5\n")
    gt = seq_dir / "gt" / "gt.txt"
    _expect_error(seq_dir, f"{gt}:3:", "expected 9 comma-separated columns", "got 5")


def test_non_numeric_field_names_file_line_and_column(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,1,1,2,10,20,1,1,1\n2,1,abc,2,10,20,1,1,1\n")
    _expect_error(
        seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:2:", "column 'x' must be a number", "'abc'"
    )


def test_fractional_frame_number_is_rejected(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1.5,1,1,2,10,20,1,1,1\n")
    _expect_error(seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:1:", "column 'frame' must be an integer")


def test_frame_beyond_seq_length_names_file_line_and_range(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,1,1,2,10,20,1,1,1\n5,1,1,2,10,20,1,1,1\n")
    _expect_error(seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:2:", "frame 5 is outside 1..4")


def test_frame_zero_is_rejected(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "0,1,1,2,10,20,1,1,1\n")
    _expect_error(seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:1:", "frame 0 is outside 1..4")


def test_duplicate_id_in_one_frame_is_rejected(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,7,1,2,10,20,1,1,1\n1,7,5,2,10,20,1,1,1\n")
    _expect_error(
        seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:2:", "id 7 appears twice in frame 1", "line 1"
    )


def test_negative_box_size_is_rejected(tmp_path: Path) -> None:
    seq_dir = _make_sequence(tmp_path / "s", "1,1,1,2,-10,20,1,1,1\n")
    _expect_error(seq_dir, f"{seq_dir / 'gt' / 'gt.txt'}:1:", "width and height must be >= 0")


def test_sequence_without_annotations_is_an_error(tmp_path: Path) -> None:
    _expect_error(_make_sequence(tmp_path / "s", "\n"), "has no annotations (empty file)")
    seq_dir = _make_sequence(tmp_path / "t", "1,1,1,2,10,20,1,9,1\n")  # class 9 is not selected
    _expect_error(seq_dir, "no annotations of the selected classes", "[9]")


def test_split_without_sequences_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetFormatError, match="missing split folder"):
        read_mot_split(tmp_path / "absent", synth_class_rule(1), ["a"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="no sequence folders"):
        read_mot_split(tmp_path / "empty", synth_class_rule(1), ["a"])
