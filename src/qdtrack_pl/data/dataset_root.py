"""Checks that a dataset is where the config says, failing with the layout and download page.

A wrong ``data.root`` is the most common first-run error with real datasets; the message names the
missing path, what should be there and where the official download lives, so nobody has to read
the reader's code to fix it.
"""

from __future__ import annotations

from pathlib import Path


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
