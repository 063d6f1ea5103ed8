"""BDD100K readers on the native-format fixture: classes, ignore rules, ids, frame order, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fixtures.bdd100k import VIDEO_A, VIDEO_B, make_bdd100k
from qdtrack_pl.data.datasets.bdd100k import (
    BDD100K_CLASSES,
    OCCLUDED_VISIBILITY,
    read_bdd100k_det,
    read_bdd100k_tracking,
)
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError
from qdtrack_pl.data.index import VideoIndex


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_bdd100k(tmp_path / "BDD100K")


def cls(name: str) -> int:
    return BDD100K_CLASSES.index(name)


def test_class_order_is_the_toolkit_json_order() -> None:
    assert BDD100K_CLASSES == (
        "pedestrian",
        "rider",
        "car",
        "truck",
        "bus",
        "train",
        "motorcycle",
        "bicycle",
    )


def test_tracking_videos_frames_and_sorting(root: Path) -> None:
    index = read_bdd100k_tracking(root, "val")
    assert [v.name for v in index.videos] == [VIDEO_A, VIDEO_B]
    video = index.video(VIDEO_A)
    assert (video.width, video.height, video.fps) == (1280, 720, 5.0)
    assert [f.index for f in video.frames] == [0, 1, 2, 3]
    assert [f.source_frame_id for f in video.frames] == [0, 1, 2, 3]
    assert video.frames[0].image_path == (
        root / "images" / "track" / "val" / VIDEO_A / f"{VIDEO_A}-0000001.jpg"
    )
    assert all(f.image_path.is_file() for v in index.videos for f in v.frames)


def test_tracking_class_and_ignore_rules(root: Path) -> None:
    index = read_bdd100k_tracking(root, "val")
    first, second = index.video(VIDEO_A).frames[:2]
    # frame 0: car, pedestrian, other vehicle (car ignore), rider; the traffic light is dropped
    a = first.annotations
    assert a.class_ids.tolist() == [cls("car"), cls("pedestrian"), cls("car"), cls("rider")]
    assert a.ignore.tolist() == [False, False, True, False]
    np.testing.assert_allclose(a.boxes[0], [100, 200, 140, 260])
    # frame 1 adds the crowd bus as an ignore region
    b = second.annotations
    assert b.class_ids.tolist()[-1] == cls("bus") and b.ignore.tolist()[-1]
    assert index.metadata["dropped_categories"] == {"traffic light": 1}
    video_b = index.video(VIDEO_B).frames[0].annotations
    names = [BDD100K_CLASSES[c] for c in video_b.class_ids]
    assert names == ["truck", "truck", "bicycle", "motorcycle", "pedestrian", "train"]
    assert video_b.ignore.tolist() == [False, True, False, False, True, False]


def test_track_ids_are_dense_per_video_and_stable(root: Path) -> None:
    video = read_bdd100k_tracking(root, "val").video(VIDEO_A)
    ids = [f.annotations.track_ids.tolist() for f in video.frames]
    assert ids[0] == [0, 1, 2, 3]  # "1", "2", "3", "5" in order of first appearance
    assert ids[1] == [0, 1, 2, 3, 4]  # + "4" (crowd bus)
    assert ids[3] == [0, 2, 3]  # the pedestrian ended at frame 2


def test_occlusion_becomes_visibility(root: Path) -> None:
    frames = read_bdd100k_tracking(root, "val").video(VIDEO_A).frames
    assert frames[2].annotations.visibility[0] == pytest.approx(OCCLUDED_VISIBILITY)
    assert frames[1].annotations.visibility[0] == 1.0


def test_det_split_is_static_images(root: Path) -> None:
    index = read_bdd100k_det(root, "val")
    assert len(index) == 2 and all(v.is_static and len(v) == 1 for v in index.videos)
    a = index.videos[0].frames[0].annotations
    assert a.class_ids.tolist() == [cls("car"), cls("pedestrian"), cls("truck")]
    assert a.ignore.tolist() == [False, True, True]
    assert a.track_ids.tolist() == [0, 1, 2]
    assert len(index.videos[1].frames[0].annotations) == 0  # frame without a labels field
    assert index.metadata["dropped_categories"] == {"traffic sign": 1}


def _rewrite(path: Path, edit: Callable[[list[dict]], object]) -> None:
    frames = json.loads(path.read_text())
    edit(frames)
    path.write_text(json.dumps(frames))


def test_unknown_class_is_an_error_or_a_counted_skip(root: Path) -> None:
    path = root / "labels" / "box_track_20" / "val" / f"{VIDEO_B}.json"
    _rewrite(path, lambda frames: frames[1]["labels"][0].update(category="tram"))
    with pytest.raises(DatasetFormatError, match=rf"{VIDEO_B}.json: frame 1: labels\[0\].*'tram'"):
        read_bdd100k_tracking(root, "val")
    index = read_bdd100k_tracking(root, "val", on_unknown="skip")
    assert index.metadata["skipped_unknown"] == {"tram": 1}


def test_malformed_box_names_file_frame_and_field(root: Path) -> None:
    path = root / "labels" / "box_track_20" / "val" / f"{VIDEO_B}.json"
    _rewrite(path, lambda frames: frames[2]["labels"][3]["box2d"].pop("y2"))
    with pytest.raises(
        DatasetFormatError, match=r"frame 2: labels\[3\]: box2d: missing field 'y2'"
    ):
        read_bdd100k_tracking(root, "val")


def test_invalid_json_names_the_line(root: Path) -> None:
    path = root / "labels" / "box_track_20" / "val" / f"{VIDEO_B}.json"
    path.write_text('[\n{"name": "x.jpg",\n "frameIndex": }\n]')
    with pytest.raises(DatasetFormatError, match=rf"{VIDEO_B}.json: line 3"):
        read_bdd100k_tracking(root, "val")


def test_missing_root_names_path_and_download_page(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"labels/box_track_20/val.*doc.bdd100k.com"):
        read_bdd100k_tracking(tmp_path / "nowhere", "val")


def _annotation_arrays(index: VideoIndex) -> list[tuple[list, ...]]:
    return [
        (
            f.annotations.track_ids.tolist(),
            f.annotations.class_ids.tolist(),
            f.annotations.ignore.tolist(),
            f.annotations.boxes.tolist(),
        )
        for v in index.videos
        for f in v.frames
    ]


def test_box_track_name_mapping_renames_older_categories(root: Path, tmp_path: Path) -> None:
    """The official box_track config's [name_mapping]: person -> pedestrian, bike -> bicycle,
    motor -> motorcycle, van / caravan -> car. A file using the old names reads exactly like the
    one using the 8 class names."""
    expected = _annotation_arrays(read_bdd100k_tracking(root, "val"))
    renamed = make_bdd100k(tmp_path / "renamed")
    label_dir = renamed / "labels" / "box_track_20" / "val"
    old_names = {"pedestrian": "person", "bicycle": "bike", "motorcycle": "motor"}

    def rename(frames: list[dict]) -> None:
        for frame in frames:
            for label in frame["labels"]:
                label["category"] = old_names.get(label["category"], label["category"])
                if label["category"] == "car":  # track "1": van in early frames, caravan later
                    label["category"] = "van" if frame["frameIndex"] < 2 else "caravan"

    for video in (VIDEO_A, VIDEO_B):
        _rewrite(label_dir / f"{video}.json", rename)
    text = (label_dir / f"{VIDEO_A}.json").read_text()
    assert '"person"' in text and '"caravan"' in text and '"pedestrian"' not in text
    assert _annotation_arrays(read_bdd100k_tracking(renamed, "val")) == expected


def test_integer_and_mixed_label_ids_are_the_same_tracks(root: Path, tmp_path: Path) -> None:
    """Ids may be strings, integers or both; each is read as its string, so 5 and "5" are one
    track (documented in docs/datasets.md)."""
    expected = _annotation_arrays(read_bdd100k_tracking(root, "val"))
    mixed = make_bdd100k(tmp_path / "mixed")
    path = mixed / "labels" / "box_track_20" / "val" / f"{VIDEO_A}.json"

    def to_int(frames: list[dict]) -> None:
        for frame in frames:  # ints in frames 0-1, strings in 2-3
            for label in frame["labels"]:
                if frame["frameIndex"] < 2:
                    label["id"] = int(label["id"])

    _rewrite(path, to_int)
    assert _annotation_arrays(read_bdd100k_tracking(mixed, "val")) == expected
    video = read_bdd100k_tracking(mixed, "val").video(VIDEO_A)
    # car "1" / 1, pedestrian "2" / 2, other vehicle, rider: dense ids 0..3 in first-seen order
    assert video.frames[0].annotations.track_ids.tolist() == [0, 1, 2, 3]
