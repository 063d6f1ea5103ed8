"""LightningModule around :class:`~qdtrack_pl.models.qdtrack.QDTrackModel`.

Training logs every weighted loss as ``train/<name>`` and their sum as ``train/loss``. Evaluation
steps only detect and embed: they return ``list[Detections]`` in original-image pixels for the
tracking callback, which runs the tracker over whole videos.

The model is not stored in the hyper-parameters (the config builds it); the optimizer and
scheduler partials are, so a checkpoint of ours reloads with
``QDTrackModule.load_from_checkpoint(path, model=<QDTrackModel>, weights_only=False)``, the model
built from the same config (``weights_only=False``: the partials are pickled objects, so only
for trusted files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, LRScheduler

from qdtrack_pl.data.batch import FrameBatch, PairBatch
from qdtrack_pl.models.qdtrack import Detections, QDTrackModel

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]


class QDTrackModule(pl.LightningModule):
    """Training and detection/embedding inference for QDTrack.

    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``); the scheduler steps
    once per epoch (the paper's step decay). ``warmup_iters`` > 0 adds a linear per-iteration
    warm-up from ``warmup_ratio`` x lr; both schedulers are chainable, so they compose.
    """

    def __init__(
        self,
        model: QDTrackModel,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        warmup_iters: int = 1000,
        warmup_ratio: float = 0.001,
    ) -> None:
        super().__init__()
        if warmup_iters < 0 or not 0.0 < warmup_ratio <= 1.0:
            raise ValueError(
                "need warmup_iters >= 0 and 0 < warmup_ratio <= 1, "
                f"got {warmup_iters}, {warmup_ratio}"
            )
        self.save_hyperparameters(ignore=["model"], logger=False)
        self.model = model

    def forward(self, images: Tensor) -> list[Detections]:
        return self.model.predict(images)

    def training_step(self, batch: PairBatch, batch_idx: int) -> Tensor:
        losses = self.model.forward_train(batch)
        total = torch.stack(list(losses.values())).sum()
        batch_size = len(batch)
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        self.log("train/loss", total, batch_size=batch_size, prog_bar=True)
        return total

    def _detect(self, batch: FrameBatch) -> list[Detections]:
        """Detections in original-image pixels: network boxes / scale factor."""
        detections = self.model.predict(batch.images)
        return [
            d._replace(boxes=d.boxes / scale)
            for d, scale in zip(detections, batch.scale_factors.to(batch.images.dtype), strict=True)
        ]

    def validation_step(self, batch: FrameBatch, batch_idx: int) -> list[Detections]:
        return self._detect(batch)

    def test_step(self, batch: FrameBatch, batch_idx: int) -> list[Detections]:
        return self._detect(batch)

    def predict_step(
        self, batch: FrameBatch, batch_idx: int, dataloader_idx: int = 0
    ) -> list[Detections]:
        return self._detect(batch)

    def configure_optimizers(self) -> tuple[list[Optimizer], list[dict[str, Any]]]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.hparams.optimizer(params)
        schedulers: list[dict[str, Any]] = []
        if self.hparams.warmup_iters > 0:
            warmup = LinearLR(
                optimizer,
                start_factor=self.hparams.warmup_ratio,
                total_iters=self.hparams.warmup_iters,
            )
            schedulers.append({"scheduler": warmup, "interval": "step", "name": "warmup"})
        if self.hparams.scheduler is not None:
            schedulers.append(
                {"scheduler": self.hparams.scheduler(optimizer), "interval": "epoch", "name": "lr"}
            )
        return [optimizer], schedulers
