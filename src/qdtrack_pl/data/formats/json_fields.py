"""Reading native json annotation files with errors that name the file, the record and the field.

BDD100K, TAO, CrowdHuman and converted Waymo files are json; a typo in one of them should fail with
``file: record: field: expected X, got Y`` rather than a bare ``KeyError`` deep inside a reader.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from qdtrack_pl.data.errors import DatasetFormatError


def load_json(path: Path) -> Any:
    """Parse a whole json file; a syntax error reports the file, line and column."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            f"{path}: line {err.lineno}, column {err.colno}: invalid json ({err.msg})"
        ) from err
    except UnicodeDecodeError as err:
        raise DatasetFormatError(
            f"{path}: not a UTF-8 json file (undecodable byte at offset {err.start}); the file is "
            "corrupted or truncated"
        ) from None


def parse_json_line(line: str, path: Path, line_no: int) -> Any:
    """Parse one line of a json-lines file (CrowdHuman ``.odgt``), naming the line on error."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            f"{path}: line {line_no}, column {err.colno}: invalid json ({err.msg})"
        ) from err


def field(record: dict, key: str, expected: type | tuple[type, ...], where: str) -> Any:
    """``record[key]`` checked against ``expected``; ``where`` names the file and the record."""
    if not isinstance(record, dict):
        raise DatasetFormatError(f"{where}: expected a json object, got {type(record).__name__}")
    if key not in record:
        raise DatasetFormatError(f"{where}: missing field {key!r}")
    value = record[key]
    # bool is an int in Python; a flag where a number is expected is a format error.
    if not isinstance(value, expected) or (
        isinstance(value, bool) and bool not in _as_tuple(expected)
    ):
        raise DatasetFormatError(
            f"{where}: field {key!r}: expected {_type_names(expected)}, got {value!r}"
        )
    return value


def number_box(record: dict, keys: tuple[str, str, str, str], where: str) -> list[float]:
    """Four finite numeric fields of a corner box record (e.g. BDD ``box2d`` x1, y1, x2, y2) as
    floats; a box with x2 < x1 or y2 < y1 (negative size) is an error."""
    values = [float(field(record, key, (int, float), where)) for key in keys]
    for key, value in zip(keys, values, strict=True):
        if not math.isfinite(value):
            raise DatasetFormatError(
                f"{where}: field {key!r}: expected a finite number, got {value}"
            )
    if values[2] < values[0] or values[3] < values[1]:
        raise DatasetFormatError(
            f"{where}: negative box size: expected {keys[2]} >= {keys[0]} and {keys[3]} >= "
            f"{keys[1]}, got {dict(zip(keys, values, strict=True))}"
        )
    return values


def number_list(record: dict, key: str, length: int, where: str) -> list[float]:
    """A fixed-length list of numbers (e.g. ``bbox [x, y, w, h]``) as floats."""
    values = field(record, key, list, where)
    if len(values) != length or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise DatasetFormatError(
            f"{where}: field {key!r}: expected a list of {length} numbers, got {values!r}"
        )
    if not all(math.isfinite(v) for v in values):
        raise DatasetFormatError(f"{where}: field {key!r}: expected finite numbers, got {values!r}")
    return [float(v) for v in values]


def xywh_box(record: dict, key: str, where: str) -> list[float]:
    """An ``[x, y, w, h]`` box field (TAO ``bbox``, CrowdHuman ``fbox``) as ``xyxy``; negative
    width or height is an error (zero is allowed: such boxes are never training targets)."""
    x, y, w, h = number_list(record, key, 4, where)
    if w < 0 or h < 0:
        raise DatasetFormatError(
            f"{where}: field {key!r}: negative box size: expected width and height >= 0, "
            f"got w={w:g}, h={h:g}"
        )
    return [x, y, x + w, y + h]


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _type_names(expected: type | tuple[type, ...]) -> str:
    names = {
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "list": "a list",
        "dict": "an object",
        "bool": "true/false",
    }
    return " or ".join(names.get(t.__name__, t.__name__) for t in _as_tuple(expected))
