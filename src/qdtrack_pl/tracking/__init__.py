"""Trackers (state across frames) with one interface: ``reset()`` and ``update(...)``."""

from qdtrack_pl.tracking.base import Tracker, TrackerOutput
from qdtrack_pl.tracking.iou import IoUTracker
from qdtrack_pl.tracking.qdtrack import QDTracker
from qdtrack_pl.tracking.registry import TRACKERS, build_tracker
from qdtrack_pl.tracking.tao import TaoTracker

__all__ = [
    "TRACKERS",
    "IoUTracker",
    "QDTracker",
    "TaoTracker",
    "Tracker",
    "TrackerOutput",
    "build_tracker",
]
