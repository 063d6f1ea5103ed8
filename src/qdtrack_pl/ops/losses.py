"""Quasi-dense similarity losses (docs/method.md §2) and their key x reference target matrix.

Both losses take one image's (K, R) similarity matrix between the K sampled key positives and the
R sampled reference boxes, and 0/1 targets from :func:`track_targets`. Empty or degenerate inputs
return a zero that stays attached to the graph, so ``backward()`` always works
(docs/method.md §8.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Stands in for -inf in masked log-sum-exp: finite so that no inf - inf or 0 * inf appears in the
# backward pass, yet small enough that twice of it still underflows softplus to exactly 0.
_MASKED_LOGIT = -0.25 * torch.finfo(torch.float32).max


def track_targets(key_track_ids: Tensor, ref_track_ids: Tensor, ref_is_positive: Tensor) -> Tensor:
    """(K, R) float 0/1: entry (i, j) = 1 iff reference sample j is a positive whose GT has the
    same track id as the GT of key sample i (docs/method.md §1.3 step 5).

    Identity is compared through track ids carried to the end of the pipeline (docs/method.md §8.3).
    Negative track ids mean "no identity" and never match.
    """
    if key_track_ids.dim() != 1 or ref_track_ids.shape != ref_is_positive.shape:
        raise ValueError(
            "expected key_track_ids (K,), ref_track_ids (R,) and ref_is_positive (R,); got "
            f"{tuple(key_track_ids.shape)}, {tuple(ref_track_ids.shape)}, "
            f"{tuple(ref_is_positive.shape)}"
        )
    same = key_track_ids[:, None] == ref_track_ids[None, :]
    valid = (key_track_ids >= 0)[:, None] & ref_is_positive.bool()[None, :]
    return (same & valid).float()


def _check_pair(similarity: Tensor, targets: Tensor) -> None:
    if similarity.dim() != 2 or similarity.shape != targets.shape:
        raise ValueError(
            f"similarity and targets must be (K, R) of one shape, got {tuple(similarity.shape)} "
            f"and {tuple(targets.shape)}"
        )


def _masked_logsumexp(values: Tensor, mask: Tensor) -> Tensor:
    """Row-wise log-sum-exp over the entries where ``mask`` holds (a large negative where none)."""
    return torch.logsumexp(torch.where(mask, values, _MASKED_LOGIT), dim=1)


def multi_positive_cross_entropy(
    similarity: Tensor, targets: Tensor, loss_weight: float = 0.25, eps: float = 1e-5
) -> Tensor:
    """Multi-positive cross-entropy, the paper's L_embed (docs/method.md §2.2).

    l_i = log(1 + sum_{p in P_i} sum_{n in N_i} exp(s_in - s_ip)). The double sum factorises into
    (sum_n e^{s_n}) (sum_p e^{-s_p}), so l_i = softplus(LSE_n s + LSE_p (-s)) in O(K R) instead of
    mmdet's O(K R^2). Rows without a positive get weight 0; the loss is
    ``loss_weight * sum_i w_i l_i / max(sum_i w_i, eps)``. Computed in float32 (§8.7).
    """
    _check_pair(similarity, targets)
    if similarity.numel() == 0:
        return similarity.sum() * 0.0
    sim = similarity.float()
    positive = targets > 0
    row_loss = F.softplus(_masked_logsumexp(sim, ~positive) + _masked_logsumexp(-sim, positive))
    row_weight = positive.any(dim=1).float()
    return loss_weight * (row_weight * row_loss).sum() / row_weight.sum().clamp(min=eps)


def embedding_l2_loss(
    cosine: Tensor,
    targets: Tensor,
    pos_margin: float = 0.0,
    neg_margin: float = 0.1,
    neg_pos_ub: float = 3.0,
    hard_mining: bool = True,
    loss_weight: float = 1.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Auxiliary L2 loss on cosine similarities (mmdet ``L2Loss`` as configured by QDTrack).

    Predictions are shifted down by the margin of their kind, clamped to [0, 1] and compared with
    the 0/1 targets by squared error. When negatives outnumber positives by more than
    ``neg_pos_ub``, only ``neg_pos_ub * max(1, #pos)`` negatives are kept: the costliest ones
    (``hard_mining``) or random ones. With no positive at all this keeps the ``neg_pos_ub``
    hardest negatives, as vis4d does, instead of dividing by zero. The loss is the mean over the
    kept entries times ``loss_weight``.
    """
    _check_pair(cosine, targets)
    if cosine.numel() == 0:
        return cosine.sum() * 0.0
    positive = targets > 0
    pred = cosine.float() - torch.where(positive, pos_margin, neg_margin)
    errors = (pred.clamp(0.0, 1.0) - positive.float()) ** 2
    keep = torch.ones_like(positive)
    num_pos = int(positive.sum())
    num_neg = positive.numel() - num_pos
    if neg_pos_ub > 0 and num_neg > neg_pos_ub * max(1, num_pos):
        neg_errors = errors.detach().flatten()[~positive.flatten()]
        if not hard_mining:
            gen_device = generator.device if generator is not None else neg_errors.device
            neg_errors = torch.rand(neg_errors.shape, generator=generator, device=gen_device)
        kept = torch.zeros_like(neg_errors, dtype=torch.bool)
        kept[neg_errors.topk(int(neg_pos_ub * max(1, num_pos))).indices] = True
        keep = positive.clone().flatten()
        keep[~positive.flatten()] = kept.to(keep.device)
        keep = keep.view_as(positive)
    return loss_weight * (errors * keep).sum() / keep.sum().clamp(min=1)
