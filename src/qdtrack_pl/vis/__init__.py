"""Drawing tracks on frames and writing them as videos."""

from qdtrack_pl.vis.draw import draw_tracks, track_color
from qdtrack_pl.vis.render import render_tracks, sequence_source, write_tracks_video
from qdtrack_pl.vis.video import write_video

__all__ = [
    "draw_tracks",
    "render_tracks",
    "sequence_source",
    "track_color",
    "write_tracks_video",
    "write_video",
]
