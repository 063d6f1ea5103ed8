"""Drawing tracks on frames and writing them as videos."""

from qdtrack_pl.vis.draw import draw_tracks, track_color
from qdtrack_pl.vis.video import write_video

__all__ = ["draw_tracks", "track_color", "write_video"]
