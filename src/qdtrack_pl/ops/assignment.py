"""Greedy assignment in row order, vectorised into a few rounds (spec 3.2 step 4).

The trackers walk detections in rank order; each takes its best memory column among those not yet
claimed and claims it when the affinity beats a threshold and the pair may claim. Done row by row
this is a Python loop; here it runs in rounds. Each round computes every unresolved row's best
column over the columns still free. A row's result is stale only if an earlier row of the round
took that column, and only rows that may claim can change what later rows see, so the longest
prefix without a stale claimable row is exactly what the sequential walk produces. Its claims are
applied and the next round starts after it: usually one or two rounds, never more than N. Rows
that could not claim but were left stale are refreshed at the end: their best over the columns
claimed by no earlier row.

Claimed columns are *excluded* from later rows' maxima. The original zeroes them instead; the two
agree on every decision whenever ``threshold >= 0`` (a zeroed column can only win with confidence
0, which does not beat a non-negative threshold), and exclusion never hands a column out twice.
Runs on numpy arrays (see ``ops.host``); tensors are accepted too.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qdtrack_pl.ops.host import accepts_tensors

UNCLAIMED = -1


class GreedyAssignment(NamedTuple):
    """Per row, in row order."""

    claimed: np.ndarray  # (N,) int64: column the row claimed, -1 if none
    best_score: np.ndarray  # (N,): best affinity over the columns free at its turn (-inf: none)
    best_col: np.ndarray  # (N,) int64: that column (meaningless where best_score is -inf)


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
    claims nothing and frees nothing (it does not fall back to its second best).
    """
    n, m = affinity.shape
    if n == 0 or m == 0:
        none = np.full(n, UNCLAIMED)
        return GreedyAssignment(none, np.full(n, -np.inf, affinity.dtype), none.copy())
    may_claim = np.ones(n, dtype=bool) if row_ok is None else row_ok
    rows = np.arange(n)
    claimer = np.full(m, n)  # the row that claimed each column so far, n if none
    rounds: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (claimed, best, col) prefixes
    start = 0
    while start < n:
        block = affinity[start:] if not rounds else np.where(claimer < n, -np.inf, affinity[start:])
        col = block.argmax(axis=1)
        best = block[rows[: n - start], col]
        claims = (best > threshold) & may_claim[start:]
        if col_ok is not None:
            claims &= col_ok[col]
        if pair_ok is not None:
            claims &= pair_ok[rows[start:], col]
        size = _valid_prefix(col, claims, may_claim[start:], m)
        if size < n - start:
            col, best, claims = col[:size], best[:size], claims[:size]
        claimer[col[claims]] = rows[start : start + size][claims]  # distinct columns in a prefix
        rounds.append((np.where(claims, col, UNCLAIMED), best, col))
        start += size
    claimed, best, col = (
        rounds[0] if len(rounds) == 1 else (np.concatenate(p) for p in zip(*rounds, strict=True))
    )
    # rows that could not claim were left stale when an earlier row took their column: give them
    # their best over the columns claimed by no earlier row
    stale = (claimer[col] < rows).nonzero()[0]
    if stale.size:
        masked = np.where(claimer < stale[:, None], -np.inf, affinity[stale])
        col[stale] = masked.argmax(axis=1)
        best[stale] = masked[np.arange(stale.size), col[stale]]
    return GreedyAssignment(claimed=claimed, best_score=best, best_col=col)


def _valid_prefix(cols: np.ndarray, claims: np.ndarray, may_claim: np.ndarray, m: int) -> int:
    """Length of a round's valid prefix: up to the first row that may claim but whose column
    ``cols[i]`` an earlier row of the round claims (its result is stale)."""
    claim_rows = claims.nonzero()[0]
    taker = np.full(m, len(cols))
    np.minimum.at(taker, cols[claim_rows], claim_rows)  # first claimer of each column
    stale = (may_claim & (taker[cols] < np.arange(len(cols)))).nonzero()[0]
    return int(stale[0]) if stale.size else len(cols)
