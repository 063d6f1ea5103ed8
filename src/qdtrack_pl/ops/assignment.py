"""Greedy assignment in row order (docs/method.md §3.2 step 4).

The trackers walk detections in rank order; each takes its best memory column among those not yet
claimed and claims it when the affinity beats a threshold and the pair may claim. The walk is
inherently sequential (a claim changes what every later row sees), so it runs as a compiled loop:
N x M comparisons cost microseconds, where a Python loop cost milliseconds (see ``ops.host``).

Claimed columns are *excluded* from later rows' maxima. The original zeroes them instead; the two
agree on every decision whenever ``threshold >= 0`` (a zeroed column can only win with confidence
0, which does not beat a non-negative threshold), and exclusion never hands a column out twice.
``greedy_walk`` is the compiled loop (the trackers' compiled steps call it); ``greedy_assign`` wraps
it for numpy arrays and tensors.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from qdtrack_pl.ops.host import accepts_tensors

UNCLAIMED = -1


class GreedyAssignment(NamedTuple):
    """Per row, in row order."""

    claimed: np.ndarray  # (N,) int64: column the row claimed, -1 if none
    best_score: np.ndarray  # (N,): best affinity over the columns free at its turn (-inf: none)
    best_col: np.ndarray  # (N,) int64: that column (-1 where best_score is -inf)


@accepts_tensors
def greedy_assign(
    affinity: np.ndarray,
    threshold: float,
    row_ok: np.ndarray | None = None,
    col_ok: np.ndarray | None = None,
    pair_ok: np.ndarray | None = None,
) -> GreedyAssignment:
    """Row ``i`` claims its best free column ``c`` iff ``affinity[i, c] > threshold`` and the pair
    may claim: ``row_ok[i]`` (N,), ``col_ok[c]`` (M,) and ``pair_ok[i, c]`` (N, M), each optional.

    ``affinity`` is (N, M) with rows in priority order. A row whose best column may not be claimed
    claims nothing and frees nothing (it does not fall back to its second best). Ties go to the
    lowest column, as ``argmax`` breaks them.
    """
    if affinity.ndim != 2 or not np.issubdtype(affinity.dtype, np.floating):
        raise ValueError(
            f"affinity must be a 2-d float array, got {affinity.dtype} {affinity.shape}"
        )
    n, m = affinity.shape
    # the compiled loop does not check bounds: check the shapes here
    for name, mask, shape in (
        ("row_ok", row_ok, (n,)),
        ("col_ok", col_ok, (m,)),
        ("pair_ok", pair_ok, (n, m)),
    ):
        if mask is not None and mask.shape != shape:
            raise ValueError(f"{name} must have shape {shape} like the affinity, got {mask.shape}")
    return GreedyAssignment(*greedy_walk(affinity, threshold, row_ok, col_ok, pair_ok))


@numba.njit(cache=True)
def greedy_walk(
    affinity: np.ndarray,
    threshold: float,
    row_ok: np.ndarray | None,
    col_ok: np.ndarray | None,
    pair_ok: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compiled ``greedy_assign`` (the masks may be ``None``); returns its three arrays. The
    threshold is compared in the affinity's precision, as numpy and torch compare a Python float."""
    threshold = affinity.dtype.type(threshold)
    n, m = affinity.shape
    claimed = np.full(n, UNCLAIMED, dtype=np.int64)
    best_score = np.full(n, -np.inf, dtype=affinity.dtype)
    best_col = np.full(n, UNCLAIMED, dtype=np.int64)
    taken = np.zeros(m, dtype=np.bool_)
    for i in range(n):
        for c in range(m):
            if not taken[c] and affinity[i, c] > best_score[i]:
                best_score[i], best_col[i] = affinity[i, c], c
        col = best_col[i]
        if col < 0 or not best_score[i] > threshold:
            continue
        if row_ok is not None and not row_ok[i]:
            continue
        if col_ok is not None and not col_ok[col]:
            continue
        if pair_ok is not None and not pair_ok[i, col]:
            continue
        claimed[i] = col
        taken[col] = True
    return claimed, best_score, best_col
