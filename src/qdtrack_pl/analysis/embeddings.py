"""How well embeddings tell instances apart: embeddings of given boxes, similarity matrices with
the tracker's metrics, nearest-neighbour retrieval and the identity margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor

from qdtrack_pl.ops.affinity import AFFINITIES
from qdtrack_pl.ops.host import to_device, to_host

if TYPE_CHECKING:
    from qdtrack_pl.models.qdtrack import QDTrackModel


@torch.no_grad()
def embed_boxes(model: QDTrackModel, images: Tensor, boxes: Sequence[Tensor]) -> list[Tensor]:
    """Embeddings of given boxes (e.g. the ground truth) with a ``QDTrackModel``: ``images`` is a
    (B, 3, H, W) [0, 1] batch, ``boxes`` one (N_i, 4) xyxy tensor per image in its pixels."""
    image_list, features = model.detector.extract_features(images)
    embeds = model.embed_head(features, [b.float() for b in boxes], image_list.image_sizes)
    return list(embeds.split([len(b) for b in boxes]))


def similarity(key_embeds: Tensor, ref_embeds: Tensor, metric: str = "bisoftmax") -> Tensor:
    """(N, M) similarity between key and reference embeddings with a tracker ``match_metric``
    (``bisoftmax``, ``softmax``, ``cosine``) or ``dot`` (the raw logits the loss trains)."""
    if metric == "dot":
        return key_embeds @ ref_embeds.T
    if metric not in AFFINITIES:
        raise ValueError(f"unknown metric {metric!r}; expected dot or one of {sorted(AFFINITIES)}")
    affinity = AFFINITIES[metric](to_host(key_embeds), to_host(ref_embeds))
    return to_device(affinity, key_embeds.device)


class Retrieval(NamedTuple):
    """Nearest-neighbour retrieval of key instances among reference instances."""

    nearest: np.ndarray  # (N,) index of each key instance's most similar reference instance
    correct: np.ndarray  # (N,) bool: it has the same identity (False when the id is absent)
    accuracy: float  # among key instances whose identity is present in the reference frame


def nearest_neighbours(
    sim: Tensor, key_ids: Sequence[int] | np.ndarray, ref_ids: Sequence[int] | np.ndarray
) -> Retrieval:
    """Top-1 retrieval from an (N, M) similarity matrix with the instances' identities."""
    key_ids, ref_ids = np.asarray(key_ids), np.asarray(ref_ids)
    if sim.shape != (len(key_ids), len(ref_ids)):
        raise ValueError(f"similarity {tuple(sim.shape)} vs {len(key_ids)} x {len(ref_ids)} ids")
    if sim.shape[1] == 0:
        empty = np.zeros(len(key_ids), bool)
        return Retrieval(np.full(len(key_ids), -1), empty, float("nan"))
    nearest = sim.argmax(dim=1).cpu().numpy()
    correct = ref_ids[nearest] == key_ids
    present = np.isin(key_ids, ref_ids)
    accuracy = float(correct[present].mean()) if present.any() else float("nan")
    return Retrieval(nearest, correct, accuracy)


class IdentityMargin(NamedTuple):
    """Cosine similarity of embeddings between two frames of a video, split by identity."""

    same: float  # mean over pairs of one instance seen in both frames
    different: float  # mean over pairs of two different instances
    margin: float  # same - different: how far apart the two distributions sit on average
    same_pairs: int
    different_pairs: int


def identity_margin(
    frames: Sequence[tuple[Tensor, Sequence[int] | np.ndarray]], gap: int = 1
) -> IdentityMargin:
    """Embedding separation on held-out frames: every frame ``t`` of a video against frame
    ``t + gap``; ``frames`` holds (embeddings (N_t, D), identities (N_t,)) in frame order.

    Pairs from all frame pairs are pooled before averaging, so frames with many instances weigh
    more. Raises ``ValueError`` if no pair of one kind exists (the margin would be undefined).
    """
    if gap < 1:
        raise ValueError(f"gap must be >= 1, got {gap}")
    same_sum = different_sum = 0.0
    same_count = different_count = 0
    for (key, key_ids), (ref, ref_ids) in zip(frames[:-gap], frames[gap:], strict=True):
        cosine = similarity(key.float(), ref.float(), metric="cosine").cpu().numpy()
        same_id = np.asarray(key_ids)[:, None] == np.asarray(ref_ids)[None, :]
        same_sum += float(cosine[same_id].sum())
        different_sum += float(cosine[~same_id].sum())
        same_count += int(same_id.sum())
        different_count += int((~same_id).sum())
    if not same_count or not different_count:
        raise ValueError(
            f"need pairs of the same and of different identities {gap} frame(s) apart; got "
            f"{same_count} same and {different_count} different"
        )
    same, different = same_sum / same_count, different_sum / different_count
    return IdentityMargin(same, different, same - different, same_count, different_count)
