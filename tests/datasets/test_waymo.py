"""Waymo Open: the reader of the converted layout, and the converter from official TFRecords.

The converter's TFRecord framing, label mapping and segment writing run without the Waymo protos
(frames are stand-ins with the proto's attribute names); one test parses real ``Frame`` protos and
runs only where ``waymo_open_dataset`` is importable.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from fixtures.waymo import (
    SEGMENT,
    frame_specs,
    make_waymo_converted,
    namespace_frame,
    proto_frame_bytes,
    write_tfrecord,
)
from qdtrack_pl.data.datasets.waymo import CLASS_NAMES, read_waymo
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError
from qdtrack_pl.tools.convert_waymo import (
    center_box_to_xyxy,
    convert_segment,
    iter_tfrecord,
    label_to_json,
    proto_frame_parser,
)

VEHICLE, PEDESTRIAN, CYCLIST = range(3)


def check_converted(root: Path) -> None:
    """What the fixture's segment must read as, whichever way it was produced."""
    index = read_waymo(root, "val")
    assert index.class_names == CLASS_NAMES == ("vehicle", "pedestrian", "cyclist")
    assert [v.name for v in index.videos] == [f"{SEGMENT}_FRONT", f"{SEGMENT}_SIDE_LEFT"]
    front, side = index.videos
    assert (front.width, front.height, front.fps) == (64, 48, 10.0)
    assert (side.width, side.height) == (64, 32)
    assert [f.source_frame_id for f in front.frames] == [0, 1, 2]
    assert front.frames[1].image_path == root / "images/val" / SEGMENT / "FRONT/000001.jpg"
    assert all(f.image_path.is_file() for v in index.videos for f in v.frames)
    first, _, last = (f.annotations for f in front.frames)
    assert first.class_ids.tolist() == [VEHICLE, PEDESTRIAN]  # the sign is dropped
    np.testing.assert_allclose(first.boxes[0], [15, 16, 25, 24])
    assert last.class_ids.tolist() == [VEHICLE, CYCLIST]
    assert last.track_ids.tolist() == [0, 2]  # veh_a, ped_b, cyc_c in order of appearance
    assert side.frames[0].annotations.track_ids.tolist() == [0]  # ids are per camera video
    assert index.metadata["dropped_types"] == {"TYPE_SIGN": 3, "TYPE_UNKNOWN": 1}


def test_reader_on_converted_fixture(tmp_path: Path) -> None:
    check_converted(make_waymo_converted(tmp_path / "Waymo"))


def test_reader_camera_selection_and_errors(tmp_path: Path) -> None:
    root = make_waymo_converted(tmp_path / "Waymo")
    assert [v.name for v in read_waymo(root, "val", cameras=("SIDE_LEFT",)).videos] == [
        f"{SEGMENT}_SIDE_LEFT"
    ]
    with pytest.raises(ValueError, match="unknown Waymo cameras"):
        read_waymo(root, "val", cameras=("REAR",))
    path = root / "annotations" / "val" / f"{SEGMENT}.json"
    path.write_text(path.read_text().replace('"TYPE_CYCLIST"', '"TYPE_TRAM"'))
    with pytest.raises(
        DatasetFormatError, match=r"cameras\[0\]: frames\[2\]: labels\[1\]: field 'type'"
    ):
        read_waymo(root, "val")
    with pytest.raises(DatasetNotFoundError, match=r"qdtrack-convert-waymo.*waymo.com/open"):
        read_waymo(tmp_path / "nothing", "train")


def test_camera_box_mapping() -> None:
    # length runs along image x, width along image y (label.proto, camera labels)
    assert center_box_to_xyxy(10, 20, 4, 6) == [8, 17, 12, 23]
    label = SimpleNamespace(
        id="x", type=4, box=SimpleNamespace(center_x=10, center_y=20, length=4, width=6)
    )
    assert label_to_json(label) == {"id": "x", "type": "TYPE_CYCLIST", "box": [8, 17, 12, 23]}
    with pytest.raises(DatasetFormatError, match="unknown Label.Type 9"):
        label_to_json(SimpleNamespace(id="y", type=9, box=label.box))


def test_tfrecord_framing_round_trip_and_truncation(tmp_path: Path) -> None:
    path = write_tfrecord(tmp_path / "a.tfrecord", [b"first", b"", b"third record"])
    assert list(iter_tfrecord(path)) == [b"first", b"", b"third record"]
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(DatasetFormatError, match=r"a.tfrecord: byte 37: record of 12 bytes"):
        list(iter_tfrecord(path))


def test_convert_segment_then_read(tmp_path: Path) -> None:
    frames = [namespace_frame(spec) for spec in frame_specs(tmp_path)]
    record_file = write_tfrecord(
        tmp_path / f"{SEGMENT}.tfrecord", [str(i).encode() for i in range(len(frames))]
    )
    out = convert_segment(
        iter_tfrecord(record_file), lambda b: frames[int(b)], tmp_path / "Waymo", "val"
    )
    assert out == tmp_path / "Waymo" / "annotations" / "val" / f"{SEGMENT}.json"
    assert not (tmp_path / "Waymo" / "images" / "val" / SEGMENT / "REAR").exists()
    check_converted(tmp_path / "Waymo")


def test_convert_rejects_out_of_order_frames(tmp_path: Path) -> None:
    frames = [namespace_frame(spec) for spec in frame_specs(tmp_path)][::-1]
    with pytest.raises(DatasetFormatError, match="frame 1: timestamps are not increasing"):
        convert_segment([b"0", b"1"], lambda b: frames[int(b)], tmp_path / "Waymo", "val")


def test_missing_protos_give_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "waymo_open_dataset", None)
    with pytest.raises(ImportError, match="pip install --no-deps waymo-open-dataset"):
        proto_frame_parser()


def test_convert_real_frame_protos(tmp_path: Path) -> None:
    pytest.importorskip("waymo_open_dataset.dataset_pb2", reason="Waymo protos not installed")
    payloads = [proto_frame_bytes(spec) for spec in frame_specs(tmp_path)]
    record_file = write_tfrecord(tmp_path / f"{SEGMENT}.tfrecord", payloads)
    convert_segment(iter_tfrecord(record_file), proto_frame_parser(), tmp_path / "Waymo", "val")
    check_converted(tmp_path / "Waymo")
