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
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class GreedyAssignment(NamedTuple):
    """Per row, in row order."""

    claimed: Tensor  # (N,) int64: column the row claimed, -1 if none
    best_score: Tensor  # (N,): best affinity over the columns free at its turn (-inf: none)
    best_col: Tensor  # (N,) int64: that column (meaningless where best_score is -inf)


def greedy_assign(
    affinity: Tensor,
    threshold: float,
    row_ok: Tensor | None = None,
    col_ok: Tensor | None = None,
    pair_ok: Tensor | None = None,
) -> GreedyAssignment:
    """Row ``i`` claims its best free column ``c`` iff ``affinity[i, c] > threshold`` and the pair
    may claim: ``row_ok[i]`` (N,), ``col_ok[c]`` (M,) and ``pair_ok[i, c]`` (N, M), each optional.

    ``affinity`` is (N, M) with rows in priority order. A row whose best column may not be claimed
    claims nothing and frees nothing (it does not fall back to its second best).
    """
    n, m = affinity.shape
    device = affinity.device
    if n == 0 or m == 0:
        return GreedyAssignment(
            claimed=torch.full((n,), -1, dtype=torch.long, device=device),
            best_score=torch.full((n,), float("-inf"), dtype=affinity.dtype, device=device),
            best_col=torch.full((n,), -1, dtype=torch.long, device=device),
        )
    rows = torch.arange(n, device=device)
    # claimer[c]: the row that claimed column c so far, n if none
    claimer = torch.full((m,), n, dtype=torch.long, device=device)
    parts: list[tuple[Tensor, Tensor, Tensor]] = []  # (claimed, best, col) of each valid prefix
    start = 0
    while start < n:
        block = affinity[start:]
        if start:
            block = block.masked_fill((claimer < n)[None, :], float("-inf"))
        best, col = block.max(dim=1)
        claims = best > threshold
        if row_ok is not None:
            claims &= row_ok[start:]
        if col_ok is not None:
            claims &= col_ok.index_select(0, col)
        if pair_ok is not None:
            claims &= pair_ok[start:].gather(1, col[:, None]).squeeze(1)
        block_rows = rows[start:]
        bids = torch.where(claims, block_rows, n)  # each row's bid for its column, n: none
        claimed_now = claimer.scatter_reduce(0, col, bids, reduce="amin")
        # stale: an earlier row of this round (not of an earlier round, whose columns are masked
        # and only reappear as a row's argmax when all are -inf) took the row's column
        taker = claimed_now.index_select(0, col)
        stale = (taker >= start) & (taker < block_rows)
        if row_ok is not None:
            stale &= row_ok[start:]
        stop = int(torch.where(stale, block_rows, n).min())
        size = stop - start
        if stop < n:  # only the valid prefix's claims stand
            claimed_now = claimer.scatter_reduce(0, col[:size], bids[:size], reduce="amin")
        parts.append((torch.where(claims[:size], col[:size], -1), best[:size], col[:size]))
        claimer, start = claimed_now, stop
    claimed, best, col = (
        (torch.cat(p) for p in zip(*parts, strict=True)) if len(parts) > 1 else parts[0]
    )
    # rows that could not claim were left stale when an earlier row took their column: give them
    # their best over the columns claimed by no earlier row
    stale_rows = (claimer.index_select(0, col) < rows).nonzero().squeeze(1)
    if stale_rows.numel():
        taken_before = claimer[None, :] < stale_rows[:, None]
        masked = affinity.index_select(0, stale_rows).masked_fill(taken_before, float("-inf"))
        fresh_best, fresh_col = masked.max(dim=1)
        best = best.index_copy(0, stale_rows, fresh_best)
        col = col.index_copy(0, stale_rows, fresh_col)
    return GreedyAssignment(claimed=claimed, best_score=best, best_col=col)
