"""Trackers by name, for code that selects one from a string (Hydra configs use ``_target_``)."""

from __future__ import annotations

from typing import Any

from qdtrack_pl.tracking.base import Tracker
from qdtrack_pl.tracking.iou import IoUTracker
from qdtrack_pl.tracking.qdtrack import QDTracker
from qdtrack_pl.tracking.tao import TaoTracker

TRACKERS: dict[str, type[Tracker]] = {
    "qdtrack": QDTracker,
    "tao": TaoTracker,
    "iou": IoUTracker,
}


def build_tracker(name: str, **kwargs: Any) -> Tracker:
    """Instantiate the tracker registered as ``name`` with keyword parameters."""
    try:
        tracker_cls = TRACKERS[name]
    except KeyError:
        raise ValueError(f"unknown tracker {name!r}; expected one of {sorted(TRACKERS)}") from None
    tracker: Tracker = tracker_cls(**kwargs)
    return tracker
