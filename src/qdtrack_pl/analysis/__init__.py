"""Inspection helpers for notebooks and reports, above the renderer and the evaluation.

Nothing here feeds training or the official metrics (TrackEval computes those); these functions
answer "where did it go wrong" questions:

- :mod:`~qdtrack_pl.analysis.tracks`: which ground-truth object changed track id on which frame
  (TrackEval's CLEAR matching, so the switches are TrackEval's ``IDSW``), how long each track and
  each identity lives;
- :mod:`~qdtrack_pl.analysis.embeddings`: how well the embeddings of one frame retrieve the same
  objects in another;
- :mod:`~qdtrack_pl.analysis.plots`: the matplotlib figures of the notebooks (imported on its
  own: ``matplotlib`` is in the ``dev`` extra).
"""

from qdtrack_pl.analysis.embeddings import (
    IdentityMargin,
    Retrieval,
    embed_boxes,
    identity_margin,
    nearest_neighbours,
    similarity,
)
from qdtrack_pl.analysis.tracks import (
    IdSwitch,
    frame_matches,
    gt_timelines,
    id_switches,
    matched_tracks,
    segments,
    track_timelines,
)

__all__ = [
    "IdSwitch",
    "IdentityMargin",
    "Retrieval",
    "embed_boxes",
    "frame_matches",
    "gt_timelines",
    "id_switches",
    "identity_margin",
    "matched_tracks",
    "nearest_neighbours",
    "segments",
    "similarity",
    "track_timelines",
]
