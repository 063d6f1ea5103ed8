"""MOTChallenge result files: round trip, frame numbering, classes, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qdtrack_pl.data.index import Frame, FrameAnnotations, Video
from qdtrack_pl.eval.mot_results import TrackResults, read_mot_results, write_mot_results


def video(num_frames: int = 3, first_source_id: int = 1) -> Video:
    frames = tuple(
        Frame(i, Path(f"{i}.jpg"), FrameAnnotations.empty(), first_source_id + i)
        for i in range(num_frames)
    )
    return Video("seq", frames, width=100, height=100)


def results() -> TrackResults:
    return TrackResults(
        frame_indices=np.array([2, 0, 0]),
        track_ids=np.array([1, 3, 0]),
        boxes=np.array([[10, 20, 40, 80], [0.5, 1.25, 5.5, 11.25], [1, 2, 3, 4]], np.float32),
        scores=np.array([0.9, 0.25, 0.5], np.float32),
        class_ids=np.array([0, 2, -1]),
    )


def test_rows_are_sorted_and_in_mot_format(tmp_path: Path) -> None:
    path = write_mot_results(tmp_path / "out" / "seq.txt", results())
    assert path.read_text().splitlines() == [
        "1,0,1.00,2.00,2.00,2.00,0.5000,-1,-1,-1",
        "1,3,0.50,1.25,5.00,10.00,0.2500,3,-1,-1",
        "3,1,10.00,20.00,30.00,60.00,0.9000,1,-1,-1",
    ]


def test_round_trip_with_source_frame_ids(tmp_path: Path) -> None:
    vid = video(first_source_id=101)
    path = write_mot_results(tmp_path / "seq.txt", results(), vid)
    assert path.read_text().startswith("101,0,")
    back = read_mot_results(path, vid)
    order = np.lexsort((results().track_ids, results().frame_indices))
    for field in TrackResults._fields:
        np.testing.assert_allclose(getattr(back, field), getattr(results(), field)[order])


def test_round_trip_without_video_and_empty(tmp_path: Path) -> None:
    back = read_mot_results(write_mot_results(tmp_path / "a.txt", results()))
    assert sorted(back.frame_indices.tolist()) == [0, 0, 2]
    empty = read_mot_results(write_mot_results(tmp_path / "b.txt", TrackResults.empty()))
    assert empty.boxes.shape == (0, 4)


def test_reader_accepts_submissions_without_classes(tmp_path: Path) -> None:
    path = tmp_path / "sub.txt"
    path.write_text("1, 7, 0, 0, 10, 10, 1\n\n2,7,1,0,10,10,0.5,-1,-1,-1\n")
    back = read_mot_results(path)
    assert back.class_ids.tolist() == [-1, -1]
    assert back.boxes[1].tolist() == [1, 0, 11, 10]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,1,0,0,10,10\n", r"bad\.txt:1: expected at least 7"),
        ("1,1,0,0,10,10,0.5\n1,2,x,0,10,10,0.5\n", r"bad\.txt:2: non-numeric"),
        ("0,1,0,0,10,10,0.5\n", r"bad\.txt:1: frame numbers are 1-based"),
        ("1,1.5,0,0,10,10,0.5\n", r"bad\.txt:1: frame and id must be integers"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_mot_results(path)


def test_frames_outside_the_video_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "seq.txt"
    path.write_text("9,1,0,0,10,10,0.5\n")
    with pytest.raises(ValueError, match=r"seq\.txt:1: frame 9 is not a frame of video 'seq'"):
        read_mot_results(path, video())
    with pytest.raises(ValueError, match="beyond video 'seq'"):
        write_mot_results(tmp_path / "w.txt", results(), video(num_frames=2))


def test_coerce_validates_fields() -> None:
    bad = results()._replace(boxes=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"boxes must have shape \(3, 4\)"):
        TrackResults.coerce(bad, name="x")
    with pytest.raises(ValueError, match="track_ids must be integers"):
        TrackResults.coerce(results()._replace(track_ids=np.array([0.5, 1, 2])))
    with pytest.raises(ValueError, match="frame_indices must be >= 0"):
        TrackResults.coerce(results()._replace(frame_indices=np.array([-1, 0, 0])))
