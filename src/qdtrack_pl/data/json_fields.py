"""Reading native json annotation files with errors that name the file, the record and the field.

BDD100K, TAO, CrowdHuman and converted Waymo files are json; a typo in one of them should fail with
``file: record: field: expected X, got Y`` rather than a bare ``KeyError`` deep inside a reader.
"""

from __future__ import annotations

import json
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
    """Four numeric fields of a box record (e.g. BDD ``box2d`` x1, y1, x2, y2) as floats."""
    return [float(field(record, key, (int, float), where)) for key in keys]


def number_list(record: dict, key: str, length: int, where: str) -> list[float]:
    """A fixed-length list of numbers (e.g. ``bbox [x, y, w, h]``) as floats."""
    values = field(record, key, list, where)
    if len(values) != length or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise DatasetFormatError(
            f"{where}: field {key!r}: expected a list of {length} numbers, got {values!r}"
        )
    return [float(v) for v in values]


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
