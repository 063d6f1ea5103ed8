"""The one exception dataset readers raise for data on disk that breaks its format."""

from __future__ import annotations


class DatasetFormatError(ValueError):
    """A dataset folder or file does not follow the layout its reader expects.

    The message names the offending path (and the 1-based line for text files), so a user can fix
    the data without reading the reader's code.
    """
