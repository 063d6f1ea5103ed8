"""Similarity between detection embeddings and memory embeddings (docs/method.md §3.2, §3.3).

QDTrack scores with **unnormalised** dot products, exactly as in training: the embedding norm acts
as an inverse temperature (docs/method.md §8.7). ``AFFINITIES`` maps ``QDTracker``'s
``match_metric`` names to these functions; every one takes the host arrays ``(det_embeds (N, D),
memo_embeds (M, D))`` of the tracker (``ops.host``) and returns ``(N, M)``.

A small affinity (at most ``COMPILED_AFFINITY_MAX_ENTRIES`` entries: a frame of a few detections
against a short memory) is one compiled loop; a larger one is torch's matrix product and
softmaxes, whose vectorised kernels win there. At a few detections, torch's five operator calls
cost more than the arithmetic. Both paths agree to float32 rounding (tested), and the tracker only
compares affinities with thresholds and with each other.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

AffinityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

TAO_NORMALISER_EPS = 1e-6  # added to the exp-sums by the original TAO tracker
# Up to this many (N x M) entries the bi-softmax / softmax run compiled: the break-even against
# torch is ~700 entries on one CPU thread (a compiled exp is scalar, torch's vectorised).
COMPILED_AFFINITY_MAX_ENTRIES = 512


def bisoftmax(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> np.ndarray:
    """½ (softmax over memory per detection + softmax over detections per memory entry)."""
    if _runs_compiled(det_embeds, memo_embeds):
        return _compiled_bisoftmax(_compiled_dot_products(det_embeds, memo_embeds))
    feats = _torch_dot_products(det_embeds, memo_embeds)
    return feats.softmax(dim=1).add_(feats.softmax(dim=0)).div_(2).numpy()


def softmax(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> np.ndarray:
    """Softmax over the memory for each detection (the first half of ``bisoftmax``)."""
    if _runs_compiled(det_embeds, memo_embeds):
        return _compiled_softmax_rows(_compiled_dot_products(det_embeds, memo_embeds))
    return _torch_dot_products(det_embeds, memo_embeds).softmax(dim=1).numpy()


def cosine(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> np.ndarray:
    """Cosine similarity in [-1, 1]: scale-free, used when the embedding norm is not trusted."""
    return cosine_similarity(torch.from_numpy(det_embeds), torch.from_numpy(memo_embeds)).numpy()


def cosine_similarity(det_embeds: Tensor, memo_embeds: Tensor) -> Tensor:
    """``cosine`` on tensors (the TAO tracker averages it with its class-masked bi-softmax)."""
    return torch.mm(F.normalize(det_embeds, p=2, dim=1), F.normalize(memo_embeds, p=2, dim=1).t())


def _runs_compiled(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> bool:
    return len(det_embeds) * len(memo_embeds) <= COMPILED_AFFINITY_MAX_ENTRIES


def _torch_dot_products(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> Tensor:
    return torch.mm(torch.from_numpy(det_embeds), torch.from_numpy(memo_embeds).t())


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def _compiled_dot_products(det_embeds: np.ndarray, memo_embeds: np.ndarray) -> np.ndarray:
    """``det_embeds @ memo_embeds.T``, summed in SIMD lanes as a BLAS kernel sums (in another
    order than torch's: the two differ by float32 rounding)."""
    n, dim = det_embeds.shape
    m = len(memo_embeds)
    out = np.empty((n, m), dtype=det_embeds.dtype)
    for i in range(n):
        for j in range(m):
            total = det_embeds.dtype.type(0)
            for k in range(dim):
                total += det_embeds[i, k] * memo_embeds[j, k]
            out[i, j] = total
    return out


@numba.njit(cache=True)
def _compiled_softmax_rows(feats: np.ndarray) -> np.ndarray:
    """``softmax(dim=1)`` of a 2-d array (any strides), shifted by each row's maximum as torch's."""
    n, m = feats.shape
    out = np.empty((n, m), dtype=feats.dtype)
    if m == 0:
        return out
    for i in range(n):
        row_max = feats[i, 0]
        for j in range(1, m):
            row_max = max(row_max, feats[i, j])
        total = feats.dtype.type(0)
        for j in range(m):
            out[i, j] = np.exp(feats[i, j] - row_max)
            total += out[i, j]
        for j in range(m):
            out[i, j] /= total
    return out


@numba.njit(cache=True)
def _compiled_bisoftmax(feats: np.ndarray) -> np.ndarray:
    """``bisoftmax`` of the dot products ``feats``: the column softmax is the row softmax of the
    transposed view."""
    out = _compiled_softmax_rows(feats)
    out += _compiled_softmax_rows(feats.T).T
    out /= 2
    return out


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
