"""QDTrack: Faster R-CNN plus a quasi-dense embedding head trained on key/reference pairs.

Training follows docs/method.md §1.3: one backbone call on key and reference images together;
detection losses on the key frame only; key proposals are the RPN's training-mode proposals (the
ones the box head sees), reference proposals come from the RPN with its *test* settings and no
graph, as in QDTrack and mmtracking (§8.6). Embedding RoIs are sampled per frame against
that frame's own GT; the key side embeds only the sampled positives, the reference side all
samples. Losses: multi-positive cross-entropy on raw dot products and the auxiliary L2 loss on
cosine similarities, each averaged over the images of the batch.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from qdtrack_pl import runtime
from qdtrack_pl.data.batch import FrameTargets, PairBatch
from qdtrack_pl.models.detector import FasterRCNN, to_torchvision_targets
from qdtrack_pl.models.embedding_head import QuasiDenseEmbedHead
from qdtrack_pl.ops.losses import embedding_l2_loss, multi_positive_cross_entropy, track_targets
from qdtrack_pl.ops.sampling import EmbeddingRoISampler, RoISample

LOSS_KEYS = (
    "loss_rpn_cls",
    "loss_rpn_bbox",
    "loss_cls",
    "loss_bbox",
    "loss_embed",
    "loss_embed_aux",
)


class Detections(NamedTuple):
    """Final detections of one image with their tracking embeddings."""

    boxes: Tensor  # (N, 4) xyxy, pixels of the tensor given to predict (or the original image)
    scores: Tensor  # (N,)
    class_ids: Tensor  # (N,) int64, 0-based
    embeddings: Tensor  # (N, D), not normalised


def _check_pair_batch(batch: PairBatch) -> None:
    key, ref = batch.key_images, batch.ref_images
    if key.dim() != 4 or key.shape[1] != 3:
        raise ValueError(f"key_images must be (B, 3, H, W), got {tuple(key.shape)}")
    if key.shape != ref.shape:
        raise ValueError(
            f"key_images {tuple(key.shape)} and ref_images {tuple(ref.shape)} differ in shape"
        )
    if not len(batch.key_targets) == len(batch.ref_targets) == key.shape[0]:
        raise ValueError(
            f"PairBatch holds {key.shape[0]} image pairs but {len(batch.key_targets)} key and "
            f"{len(batch.ref_targets)} reference targets"
        )
    for targets in (*batch.key_targets, *batch.ref_targets):
        n = targets.boxes.shape[0]
        if (
            targets.boxes.shape != (n, 4)
            or targets.class_ids.shape != (n,)
            or targets.track_ids.shape != (n,)
        ):
            raise ValueError(
                "FrameTargets must hold boxes (N, 4), class_ids (N,), track_ids (N,); got "
                f"{tuple(targets.boxes.shape)}, {tuple(targets.class_ids.shape)}, "
                f"{tuple(targets.track_ids.shape)}"
            )


class QDTrackModel(nn.Module):
    """Detector + embedding head + embedding-branch sampler and loss settings.

    ``embed_head`` and ``sampler`` left as ``None`` build the paper's defaults.
    ``tune_allocator`` applies :func:`qdtrack_pl.runtime.tune_allocator` to the process when
    the model is built (before any step; docs/performance.md).
    """

    def __init__(
        self,
        detector: FasterRCNN,
        embed_head: QuasiDenseEmbedHead | None = None,
        sampler: EmbeddingRoISampler | None = None,
        embed_loss_weight: float = 0.25,
        aux_loss_weight: float = 1.0,
        aux_pos_margin: float = 0.0,
        aux_neg_margin: float = 0.1,
        aux_neg_pos_ub: float = 3.0,
        aux_hard_mining: bool = True,
        freeze_detector: bool = False,
        tune_allocator: bool = True,
    ) -> None:
        super().__init__()
        # process-wide glibc malloc settings for large tensors (qdtrack_pl.runtime, issue 17)
        self.allocator = runtime.tune_allocator(tune_allocator)
        self.detector = detector
        self.embed_head = (
            embed_head if embed_head is not None else QuasiDenseEmbedHead(detector.fpn_channels)
        )
        self.sampler = sampler if sampler is not None else EmbeddingRoISampler()
        self.embed_loss_weight = embed_loss_weight
        self.aux_loss_weight = aux_loss_weight
        self.aux_pos_margin = aux_pos_margin
        self.aux_neg_margin = aux_neg_margin
        self.aux_neg_pos_ub = aux_neg_pos_ub
        self.aux_hard_mining = aux_hard_mining
        self.freeze_detector = freeze_detector
        if freeze_detector:
            self.detector.requires_grad_(False)
            self.detector.eval()

    def train(self, mode: bool = True) -> QDTrackModel:
        """A frozen detector stays in eval mode (its BatchNorm statistics never move)."""
        super().train(mode)
        if self.freeze_detector:
            self.detector.eval()
        return self

    def forward_train(
        self, batch: PairBatch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Weighted training losses ``LOSS_KEYS`` of a batch of key/reference pairs; with
        ``freeze_detector`` only the two embedding losses (the detector is not trained)."""
        _check_pair_batch(batch)
        num = len(batch)
        images, features = self.detector.extract_features(
            torch.cat([batch.key_images, batch.ref_images])
        )
        key_images = ImageList(images.tensors[:num], images.image_sizes[:num])
        ref_images = ImageList(images.tensors[num:], images.image_sizes[num:])
        key_features = OrderedDict((k, v[:num]) for k, v in features.items())
        ref_features = OrderedDict((k, v[num:]) for k, v in features.items())

        # TAO stage 2 (docs/method.md §5.4): key proposals as at test time, no losses
        if self.freeze_detector:
            key_proposals = self.detector.inference_proposals(key_images, key_features)
            losses: dict[str, Tensor] = {}
        else:
            det_targets = to_torchvision_targets(batch.key_targets)
            key_proposals, losses = self.detector.rpn_losses(key_images, key_features, det_targets)
            losses |= self.detector.roi_losses(key_images, key_features, key_proposals, det_targets)
        ref_proposals = self.detector.inference_proposals(ref_images, ref_features)

        losses["loss_embed"], losses["loss_embed_aux"] = self._embedding_branch(
            features, images.image_sizes, key_proposals, ref_proposals, batch, generator
        )
        return {key: losses[key] for key in LOSS_KEYS if key in losses}

    def _embedding_branch(
        self,
        features: dict[str, Tensor],
        image_sizes: list[tuple[int, int]],
        key_proposals: list[Tensor],
        ref_proposals: list[Tensor],
        batch: PairBatch,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """Sample RoIs per frame, embed key positives and all reference samples in one head call
        (features hold the B key images, then the B reference images), and average the two
        embedding losses over the image pairs."""
        num = len(batch)
        key_samples = [
            self.sampler(p, t.boxes, generator)
            for p, t in zip(key_proposals, batch.key_targets, strict=True)
        ]
        ref_samples = [
            self.sampler(p, t.boxes, generator)
            for p, t in zip(ref_proposals, batch.ref_targets, strict=True)
        ]
        rois = [s.pos_boxes for s in key_samples] + [s.boxes for s in ref_samples]
        per_image = self.embed_head(features, rois, image_sizes).split([len(r) for r in rois])
        pairs = zip(
            per_image[:num],
            per_image[num:],
            key_samples,
            ref_samples,
            batch.key_targets,
            batch.ref_targets,
            strict=True,
        )
        losses = torch.stack(
            [
                torch.stack(self._embedding_losses(key, ref, ks, rs, kt, rt, generator))
                for key, ref, ks, rs, kt, rt in pairs
            ]
        )
        loss_embed, loss_aux = losses.mean(dim=0)
        return loss_embed, loss_aux

    def _embedding_losses(
        self,
        key_embeds: Tensor,
        ref_embeds: Tensor,
        key_sample: RoISample,
        ref_sample: RoISample,
        key_targets: FrameTargets,
        ref_targets: FrameTargets,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """Weighted (multi-positive CE, auxiliary L2) of one key/reference pair."""
        ref_pos_ids = ref_targets.track_ids[ref_sample.pos_gt_indices]
        ref_ids = torch.cat([ref_pos_ids, ref_pos_ids.new_full((len(ref_sample.neg_boxes),), -1)])
        targets = track_targets(
            key_targets.track_ids[key_sample.pos_gt_indices], ref_ids, ref_sample.is_positive
        )
        # Raw dot products of unnormalised embeddings overflow half precision (docs/method.md §8.7).
        with torch.autocast(key_embeds.device.type, enabled=False):
            key, ref = key_embeds.float(), ref_embeds.float()
            similarity = key @ ref.T
            cosine = F.normalize(key, dim=1) @ F.normalize(ref, dim=1).T
        loss = multi_positive_cross_entropy(similarity, targets, loss_weight=self.embed_loss_weight)
        aux = embedding_l2_loss(
            cosine,
            targets,
            pos_margin=self.aux_pos_margin,
            neg_margin=self.aux_neg_margin,
            neg_pos_ub=self.aux_neg_pos_ub,
            hard_mining=self.aux_hard_mining,
            loss_weight=self.aux_loss_weight,
            generator=generator,
        )
        return loss, aux

    @torch.no_grad()
    def predict(self, images: Tensor) -> list[Detections]:
        """Detections with embeddings for a (B, 3, H, W) [0, 1] batch; boxes in its pixels.

        The final boxes (after score threshold and NMS) are embedded with the embedding head's
        own RoI extractor; no sampling happens at test time (docs/method.md §1.3, "Test time").
        """
        image_list, features = self.detector.extract_features(images)
        detections = self.detector.detect(image_list, features)
        embeddings = self.embed_head(
            features, [d.boxes for d in detections], image_list.image_sizes
        )
        return [
            Detections(d.boxes, d.scores, d.class_ids, e)
            for d, e in zip(
                detections, embeddings.split([len(d.boxes) for d in detections]), strict=True
            )
        ]
