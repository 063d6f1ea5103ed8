"""TAO reader on the native-format fixture: sparse frames, merged categories, vocabulary, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fixtures.tao import make_tao
from qdtrack_pl.data.datasets.tao import annotated_category_names, read_tao, write_vocabulary
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_tao(tmp_path / "TAO")


def test_frames_are_ranks_of_annotated_images(root: Path) -> None:
    index = read_tao(root, "val")
    assert [v.name for v in index.videos] == ["train-YFCC100M-v_aaa", "train-LaSOT-v_bbb"]
    video = index.videos[0]
    assert [f.index for f in video.frames] == [0, 1, 2]
    assert [f.source_frame_id for f in video.frames] == [0, 30, 60]
    assert video.frames[1].image_path == root / "frames/train/YFCC100M/v_aaa/frame0031.jpg"
    assert video.fps == 1.0 and (video.width, video.height) == (64, 48)
    assert index.metadata["image_ids"]["train-YFCC100M-v_aaa"] == (200, 201, 202)
    assert index.metadata["video_ids"]["train-LaSOT-v_bbb"] == 11


def test_default_vocabulary_is_every_category_and_merged_ids_fold(root: Path) -> None:
    index = read_tao(root, "val")
    assert index.class_names == ("person", "car_(automobile)", "dog", "bicycle", "giraffe")
    assert index.metadata["category_ids"] == (1, 2, 3, 4, 5)
    frames = index.videos[0].frames
    # frame 1: person (track 100) and the car labelled with merged id 6 -> class of id 2
    assert frames[1].annotations.class_ids.tolist() == [0, 1]
    assert frames[1].annotations.track_ids.tolist() == [100, 101]
    np.testing.assert_allclose(frames[1].annotations.boxes[1], [32, 10, 48, 20])


def test_crowd_is_ignore(root: Path) -> None:
    first = read_tao(root, "val").videos[1].frames[0].annotations
    assert first.track_ids.tolist() == [103, 104]
    assert first.ignore.tolist() == [False, True]


def test_vocabulary_file_fixes_classes_and_drops_the_rest(root: Path, tmp_path: Path) -> None:
    names = annotated_category_names([root / "annotations" / "validation.json"])
    assert names == ["person", "car_(automobile)", "dog", "bicycle"]
    write_vocabulary(["bicycle", "person"], tmp_path / "vocab.txt")
    index = read_tao(root, "val", vocabulary=tmp_path / "vocab.txt")
    assert index.class_names == ("bicycle", "person")
    assert index.metadata["category_ids"] == (4, 1)
    assert index.videos[1].frames[0].annotations.class_ids.tolist() == [0, 1]
    assert index.metadata["dropped_categories"] == {2: 2, 3: 1}


def test_vocabulary_name_not_in_json_is_an_error(root: Path, tmp_path: Path) -> None:
    write_vocabulary(["person", "unicorn"], tmp_path / "vocab.txt")
    with pytest.raises(DatasetFormatError, match=r"vocab.txt.*'unicorn'"):
        read_tao(root, "val", vocabulary=tmp_path / "vocab.txt")


def test_malformed_bbox_names_file_record_and_field(root: Path) -> None:
    path = root / "annotations" / "validation.json"
    data = json.loads(path.read_text())
    data["annotations"][4]["bbox"] = [1, 2, 3]
    path.write_text(json.dumps(data))
    with pytest.raises(
        DatasetFormatError, match=r"validation.json: annotations\[4\]: field 'bbox'"
    ):
        read_tao(root, "val")


def test_missing_annotations_name_path_and_download_page(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"annotations/train.json.*taodataset.org"):
        read_tao(tmp_path, "train")


def _edit(root: Path, edit: Callable[[dict], object]) -> None:
    path = root / "annotations" / "validation.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_annotation_of_an_unknown_image_is_an_error_not_dropped(root: Path) -> None:
    _edit(root, lambda d: d["annotations"][6].update(image_id=999))
    with pytest.raises(
        DatasetFormatError,
        match=r"validation.json: annotations\[6\]: field 'image_id': 999 is not the id of any",
    ):
        read_tao(root, "val")


def test_image_of_an_unknown_video_is_an_error_not_dropped(root: Path) -> None:
    _edit(root, lambda d: d["images"][3].update(video_id=77))
    with pytest.raises(
        DatasetFormatError,
        match=r"validation.json: images\[3\]: field 'video_id': 77 is not the id of any",
    ):
        read_tao(root, "val")


def test_two_images_at_one_frame_index_are_an_error_not_two_frames(root: Path) -> None:
    # images[1] is image 200 (video 10, frame_index 0); give image 201 (images[2]) frame_index 0
    _edit(root, lambda d: d["images"][2].update(frame_index=0))
    with pytest.raises(
        DatasetFormatError,
        match=r"images\[2\]: field 'frame_index': video 10 already has an image at frame_index 0 "
        r"\(images\[1\]\)",
    ):
        read_tao(root, "val")


def test_one_track_twice_on_an_image_is_an_error(root: Path) -> None:
    _edit(root, lambda d: d["annotations"][3].update(track_id=100))  # image 200 has track 100
    with pytest.raises(
        DatasetFormatError,
        match=r"annotations\[3\]: field 'track_id': identity 100 appears twice in image 200 "
        r"\(first in annotations\[0\]\)",
    ):
        read_tao(root, "val")
