"""Convert official Waymo Open perception TFRecords (v1.x, one file per segment) to our layout.

Why a converter: the records are protobuf ``Frame`` messages. The maintained parser is the
``waymo-open-dataset-tf-*`` package, which pins TensorFlow and an old numpy/Python; its generated
``*_pb2`` modules, however, need only ``protobuf``. So this tool reads the TFRecord framing itself
and imports the Waymo protos lazily; install them without their dependencies::

    pip install --no-deps waymo-open-dataset-tf-2-12-0

Output (read by :mod:`qdtrack_pl.data.datasets.waymo`): ``<out>/images/<split>/<segment>/<CAMERA>/
<frame:06d>.jpg`` (the original jpg bytes, not re-encoded) and ``<out>/annotations/<split>/
<segment>.json`` with the 2D camera labels of the five cameras.

Usage: ``qdtrack-convert-waymo --input <folder of segment-*.tfrecord> --output data/Waymo
--split val``
"""

from __future__ import annotations

import argparse
import io
import json
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from qdtrack_pl.data.datasets.waymo import CAMERAS
from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.progress import progress_bar

WAYMO_FPS = 10.0  # all perception segments are 10 Hz
CAMERA_NAMES: dict[int, str] = {
    1: "FRONT",
    2: "FRONT_LEFT",
    3: "FRONT_RIGHT",
    4: "SIDE_LEFT",
    5: "SIDE_RIGHT",
}  # dataset.proto CameraName.Name
LABEL_TYPES: dict[int, str] = {
    0: "TYPE_UNKNOWN",
    1: "TYPE_VEHICLE",
    2: "TYPE_PEDESTRIAN",
    3: "TYPE_SIGN",
    4: "TYPE_CYCLIST",
}  # label.proto Label.Type
_LENGTH = struct.Struct("<Q")  # TFRecord: uint64 length, uint32 crc, data, uint32 crc
_CRC_BYTES = 4
PROTOS_HINT = (
    "reading Waymo TFRecords needs the Waymo protobuf modules: "
    "pip install --no-deps waymo-open-dataset-tf-2-12-0 (TensorFlow is not needed)"
)

FrameParser = Callable[[bytes], Any]


def iter_tfrecord(path: Path) -> Iterator[bytes]:
    """The payloads of a TFRecord file. CRCs are not verified; truncation is detected."""
    with open(path, "rb") as f:
        offset = 0
        while header := f.read(_LENGTH.size):
            if len(header) != _LENGTH.size:
                raise DatasetFormatError(f"{path}: byte {offset}: truncated record length")
            (length,) = _LENGTH.unpack(header)
            f.read(_CRC_BYTES)
            payload = f.read(length)
            if len(payload) != length or len(f.read(_CRC_BYTES)) != _CRC_BYTES:
                raise DatasetFormatError(
                    f"{path}: byte {offset}: record of {length} bytes is truncated"
                )
            offset += _LENGTH.size + 2 * _CRC_BYTES + length
            yield payload


def proto_frame_parser() -> FrameParser:
    """``bytes -> waymo.open_dataset.Frame``, importing the Waymo protos only when needed."""
    try:
        from waymo_open_dataset import dataset_pb2
    except ImportError as err:
        raise ImportError(PROTOS_HINT) from err
    return dataset_pb2.Frame.FromString


def center_box_to_xyxy(
    center_x: float, center_y: float, length: float, width: float
) -> list[float]:
    """Waymo 2D camera box (centre, ``length`` along image x, ``width`` along image y) to xyxy."""
    return [
        center_x - length / 2,
        center_y - width / 2,
        center_x + length / 2,
        center_y + width / 2,
    ]


def label_to_json(label: Any) -> dict:
    """One ``Label`` of ``camera_labels`` as ``{"id", "type", "box"}`` of the converted json."""
    if label.type not in LABEL_TYPES:
        raise DatasetFormatError(f"label {label.id!r}: unknown Label.Type {label.type}")
    box = label.box
    return {
        "id": label.id,
        "type": LABEL_TYPES[label.type],
        "box": center_box_to_xyxy(box.center_x, box.center_y, box.length, box.width),
    }


def convert_segment(
    records: Iterable[bytes], parse: FrameParser, out_root: Path, split: str
) -> Path:
    """Write one segment's camera jpgs and its annotation json; return the json path."""
    cameras: dict[str, dict] = {}
    segment = ""
    last_timestamp = None
    for frame_index, record in enumerate(records):
        frame = parse(record)
        segment = frame.context.name
        if last_timestamp is not None and frame.timestamp_micros <= last_timestamp:
            raise DatasetFormatError(
                f"segment {segment}: frame {frame_index}: timestamps are not increasing"
            )
        last_timestamp = frame.timestamp_micros
        labels = {CAMERA_NAMES.get(c.name): c.labels for c in frame.camera_labels}
        for image in frame.images:
            camera = CAMERA_NAMES.get(image.name)
            if camera not in CAMERAS:
                continue
            file_name = f"{segment}/{camera}/{frame_index:06d}.jpg"
            path = out_root / "images" / split / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(image.image)
            if camera not in cameras:
                width, height = Image.open(io.BytesIO(image.image)).size
                cameras[camera] = {"name": camera, "width": width, "height": height, "frames": []}
            cameras[camera]["frames"].append(
                {
                    "frame_index": frame_index,
                    "timestamp_micros": int(frame.timestamp_micros),
                    "file_name": file_name,
                    "labels": [label_to_json(label) for label in labels.get(camera, ())],
                }
            )
    if not cameras:
        raise DatasetFormatError("segment holds no camera images")
    out = out_root / "annotations" / split / f"{segment}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    ordered = [cameras[c] for c in CAMERAS if c in cameras]
    out.write_text(json.dumps({"segment": segment, "fps": WAYMO_FPS, "cameras": ordered}))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry ``qdtrack-convert-waymo``: convert every ``*.tfrecord`` of a folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="folder of segment-*.tfrecord")
    parser.add_argument("--output", type=Path, required=True, help="dataset root (data.root)")
    parser.add_argument("--split", required=True, help="split name to write, e.g. train or val")
    args = parser.parse_args(argv)
    files = sorted(args.input.glob("*.tfrecord"))
    if not files:
        raise SystemExit(f"no *.tfrecord files in {args.input}")
    parse = proto_frame_parser()
    with progress_bar(len(files), f"converting {args.split} segments", transient=False) as advance:
        for i, path in enumerate(files, start=1):
            out = convert_segment(iter_tfrecord(path), parse, args.output, args.split)
            print(f"[{i}/{len(files)}] {path.name} -> {out}")
            advance(1)
