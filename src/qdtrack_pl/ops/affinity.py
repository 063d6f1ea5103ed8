"""Similarity between detection embeddings and memory embeddings (docs/method.md §3.2, §3.3).

QDTrack scores with **unnormalised** dot products, exactly as in training: the embedding norm acts
as an inverse temperature (docs/method.md §8.7). ``AFFINITIES`` maps the tracker's
``match_metric`` names to these functions; every function takes ``(det_embeds (N, D),
memo_embeds (M, D))`` and returns ``(N, M)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

AffinityFn = Callable[[Tensor, Tensor], Tensor]

TAO_NORMALISER_EPS = 1e-6  # added to the exp-sums by the original TAO tracker


def bisoftmax(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """½ (softmax over memory per detection + softmax over detections per memory entry)."""
    feats = torch.mm(det_embeds, memo_embeds.t())
    return feats.softmax(dim=1).add_(feats.softmax(dim=0)).div_(2)


def softmax(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """Softmax over the memory for each detection (the first half of ``bisoftmax``)."""
    return torch.mm(det_embeds, memo_embeds.t()).softmax(dim=1)


def cosine(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """Cosine similarity in [-1, 1]: scale-free, used when the embedding norm is not trusted."""
    return torch.mm(F.normalize(det_embeds, p=2, dim=1), F.normalize(memo_embeds, p=2, dim=1).t())


AFFINITIES: dict[str, AffinityFn] = {
    "bisoftmax": bisoftmax,
    "softmax": softmax,
    "cosine": cosine,
}


def get_affinity(name: str) -> AffinityFn:
    """Look up a ``match_metric`` name, failing with the list of valid names."""
    try:
        return AFFINITIES[name]
    except KeyError:
        raise ValueError(
            f"unknown match_metric {name!r}; expected one of {sorted(AFFINITIES)}"
        ) from None


def class_masked_bisoftmax(
    det_embeds: Tensor, memo_embeds: Tensor, same_class: Tensor, eps: float = TAO_NORMALISER_EPS
) -> Tensor:
    """The TAO tracker's bi-softmax: ``exp`` of the raw dot products is class-masked *before* it is
    normalised over rows and over columns (each sum + ``eps``), then the two are averaged.

    Each normalisation is evaluated shifted by its row's / column's largest dot product (floored
    at 0: ``exp(F - s) / (sum exp(F - s) + eps * exp(-s))`` equals the original), so dot products
    beyond ~88, where the original overflows float32 to NaN (docs/method.md §8.7), stay finite.
    """
    feats = torch.mm(det_embeds, memo_embeds.t()).masked_fill(~same_class, float("-inf"))
    if feats.numel() == 0:
        return feats
    row_shift = feats.amax(dim=1, keepdim=True).clamp(min=0)
    col_shift = feats.amax(dim=0, keepdim=True).clamp(min=0)
    row_exps = (feats - row_shift).exp()
    col_exps = (feats - col_shift).exp()
    det_to_memo = row_exps / (row_exps.sum(dim=1, keepdim=True) + eps * (-row_shift).exp())
    memo_to_det = col_exps / (col_exps.sum(dim=0, keepdim=True) + eps * (-col_shift).exp())
    return (det_to_memo + memo_to_det) / 2
