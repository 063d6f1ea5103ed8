"""Rank-ordered suppression: which boxes overlap a higher-ranked box too much (spec 3.2 step 2).

QDTrack's duplicate removal, its backdrop NMS and the TAO distractor NMS all share one rule: walking
boxes in rank order, box ``i`` is dropped if its IoU with **any** box ranked above it exceeds ``i``'s
threshold, whether or not that box was itself dropped. Because dropped boxes still suppress, the rule
needs no sequential pass: it is a masked row-wise ``any`` over the strictly lower triangle.
"""

from __future__ import annotations

import torch
from torch import Tensor


def overlaps_higher_ranked(ious: Tensor, thresholds: Tensor | float) -> Tensor:
    """Boolean (N,): row ``i`` has ``ious[i, j] > thresholds[i]`` for some ``j < i``.

    ``ious`` is (N, N) among rank-ordered boxes (highest first); ``thresholds`` is a scalar or (N,).
    Pre-mask ``ious`` (e.g. to 0 across classes) to restrict which pairs may suppress.
    """
    n = ious.shape[0]
    limits = thresholds[:, None] if isinstance(thresholds, Tensor) else thresholds
    higher_ranked = torch.ones(n, n, dtype=torch.bool, device=ious.device).tril_(-1)
    return ((ious > limits) & higher_ranked).any(dim=1)
