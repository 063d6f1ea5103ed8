"""TAO stage 1 data: the merged LVIS v0.5 + COCO json read as static images in TAO's vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fixtures.lvis_coco import make_lvis_coco
from qdtrack_pl.data.datasets.lvis_coco import read_coco_static
from qdtrack_pl.data.errors import DatasetFormatError

CLASSES = ("person", "dog", "bus_(vehicle)")


def test_images_become_static_videos_in_the_vocabulary(tmp_path: Path) -> None:
    path = make_lvis_coco(tmp_path / "LVIS")
    index = read_coco_static(path, tmp_path / "LVIS" / "images", CLASSES, "lvis_coco_train")
    assert index.class_names == CLASSES
    assert [v.name for v in index.videos] == [f"lvis_coco_train-{i}" for i in (1, 2, 3)]
    for video in index.videos:
        assert video.is_static and len(video) == 1 and (video.width, video.height) == (64, 48)
    assert all(v.frames[0].image_path.is_file() for v in index.videos)
    first = index.videos[0].frames[0].annotations
    np.testing.assert_array_equal(first.boxes, [[2, 3, 12, 23], [30, 10, 42, 18], [40, 20, 60, 40]])
    assert first.class_ids.tolist() == [0, 1, 0]
    assert first.track_ids.tolist() == [0, 1, 2]  # identities for the static pair
    assert first.ignore.tolist() == [False, False, True]  # iscrowd
    assert len(index.videos[1].frames[0].annotations) == 0  # its giraffe is outside the vocabulary
    assert index.metadata["dropped_categories"] == {7: 1}


def test_a_vocabulary_with_no_category_of_the_json_is_an_error(tmp_path: Path) -> None:
    path = make_lvis_coco(tmp_path / "LVIS")
    with pytest.raises(DatasetFormatError, match="none of its category names"):
        read_coco_static(path, tmp_path, ("zebra",), "x")


def test_a_malformed_annotation_names_its_index(tmp_path: Path) -> None:
    path = make_lvis_coco(tmp_path / "LVIS")
    data = json.loads(path.read_text())
    del data["annotations"][1]["bbox"]
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError, match=r"annotations\[1\].*bbox"):
        read_coco_static(path, tmp_path, CLASSES, "x")
