"""The exceptions dataset readers raise: data that is missing (with where to download it) or that
breaks its format (with the file, the record and the field).

A wrong ``data.root`` is the most common first-run error with real datasets; the message names the
missing path, what should be there and where the official download lives.
"""

from __future__ import annotations

from pathlib import Path


class DatasetFormatError(ValueError):
    """A dataset folder or file does not follow the layout its reader expects.

    The message names the offending path (and the 1-based line for text files), so a user can fix
    the data without reading the reader's code.
    """


class ImageReadError(DatasetFormatError):
    """An image file listed by a dataset is missing or cannot be decoded.

    ``path`` is the file. The single-message constructor keeps the exception re-raisable by
    ``torch.utils.data`` when it crosses a DataLoader worker boundary.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


def read_text(path: Path) -> str:
    """A whole UTF-8 text file; a file that is not UTF-8 (binary garbage, a truncated multi-byte
    character) is a :class:`DatasetFormatError` naming the file and the byte offset."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetFormatError(
            f"{path}: not a UTF-8 text file (undecodable byte at offset {err.start}); "
            "the file is corrupted or is not an annotation file"
        ) from None


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder the reader needs is missing."""


def require_path(path: Path, *, dataset: str, what: str, download_url: str) -> Path:
    """Return ``path`` if it exists, else raise naming the expected path and the download page."""
    if not path.exists():
        raise DatasetNotFoundError(
            f"{dataset}: expected {what} at {path}, which does not exist. Download {dataset} from "
            f"{download_url} and lay it out as described in docs/datasets.md (or set data.root)."
        )
    return path
