"""CrowdHuman reader on the native-format fixture: fbox, ignore rules, visibility, sizes, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.crowdhuman import make_crowdhuman
from qdtrack_pl.data.datasets.crowdhuman import read_crowdhuman
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_crowdhuman(tmp_path / "CrowdHuman")


def test_each_image_is_a_static_video_with_its_header_size(root: Path) -> None:
    index = read_crowdhuman(root, "val")
    assert index.class_names == ("pedestrian",)
    assert [v.name for v in index.videos] == [
        "273271_c9db000d5146c15",
        "273271_1a0d6000b9e1f5b7",
        "284193_faa9000f2678b5e",
    ]
    assert [(v.width, v.height) for v in index.videos] == [(80, 60), (100, 50), (40, 40)]
    assert all(v.is_static and len(v) == 1 for v in index.videos)
    assert index.videos[0].frames[0].image_path == root / "Images" / "273271,c9db000d5146c15.jpg"


def test_fbox_ignore_and_visibility(root: Path) -> None:
    first, second, third = (v.frames[0].annotations for v in read_crowdhuman(root, "val").videos)
    np.testing.assert_allclose(first.boxes, [[10, 5, 30, 45], [40, 10, 60, 50], [60, 0, 80, 20]])
    assert first.ignore.tolist() == [False, False, True]  # tag == 'mask'
    np.testing.assert_allclose(first.visibility, [1.0, 0.5, 1.0])
    assert first.track_ids.tolist() == [0, 1, 2] and first.class_ids.tolist() == [0, 0, 0]
    assert second.ignore.tolist() == [True, False]  # extra.ignore == 1
    np.testing.assert_allclose(second.boxes[1], [-10, 20, 20, 60])  # not clipped: fbox as given
    assert len(third) == 0


def test_malformed_line_names_file_line_and_field(root: Path) -> None:
    path = root / "annotation_val.odgt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"fbox": [5, 5, 10, 30]', '"fbox": [5, 5, 10]')
    path.write_text("\n".join(lines))
    with pytest.raises(
        DatasetFormatError, match=r"annotation_val.odgt: line 2: gtboxes\[0\]: field 'fbox'"
    ):
        read_crowdhuman(root, "val")


def test_unknown_tag_and_broken_json_are_errors(root: Path) -> None:
    path = root / "annotation_val.odgt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0].replace('"tag": "mask"', '"tag": "head"'), *lines[1:]]))
    with pytest.raises(DatasetFormatError, match=r"line 1: gtboxes\[2\]: field 'tag'.*'head'"):
        read_crowdhuman(root, "val")
    path.write_text("\n".join([lines[0], lines[1][:-5], lines[2]]))
    with pytest.raises(DatasetFormatError, match=r"annotation_val.odgt: line 2, column"):
        read_crowdhuman(root, "val")


def test_missing_image_and_missing_root(root: Path, tmp_path: Path) -> None:
    (root / "Images" / "284193,faa9000f2678b5e.jpg").unlink()
    with pytest.raises(DatasetFormatError, match=r"284193,faa9000f2678b5e.jpg: image listed"):
        read_crowdhuman(root, "val")
    with pytest.raises(DatasetNotFoundError, match=r"annotation_train.odgt.*crowdhuman.org"):
        read_crowdhuman(tmp_path / "none", "train")


def test_two_records_of_one_image_are_an_error_not_a_collision(root: Path) -> None:
    path = root / "annotation_val.odgt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[0]]) + "\n")  # line 4 repeats line 1's ID
    with pytest.raises(
        DatasetFormatError,
        match=r"annotation_val.odgt: line 4: field 'ID': '273271,c9db000d5146c15' is a second "
        r"record of the image of line 1",
    ):
        read_crowdhuman(root, "val")
    # "a,b" and "a_b" are different images but the same video name: also refused
    second = lines[0].replace("273271,c9db000d5146c15", "273271_c9db000d5146c15")
    path.write_text("\n".join([*lines, second]) + "\n")
    with pytest.raises(DatasetFormatError, match=r"line 4: field 'ID'.*video name"):
        read_crowdhuman(root, "val")
