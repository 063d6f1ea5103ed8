"""LightningModule around :class:`~qdtrack_pl.models.qdtrack.QDTrackModel`.

Training logs every weighted loss as ``train/<name>`` and their sum as ``train/loss``. Evaluation
steps only detect and embed: they return ``list[Detections]`` in original-image pixels for the
tracking callback, which runs the tracker over whole videos.

Numerical faults: a non-finite total loss (any term NaN/inf) or non-finite gradients are reported
with the global step, epoch, batch index and the offending terms; with ``nonfinite_loss="skip"``
(default) the step is skipped, so the weights and optimizer state stay as they were, and counted
(``train/nonfinite_steps``); ``"stop"`` raises :class:`NonFiniteLossError`. More than
``max_consecutive_nonfinite`` skipped steps in a row also stop the run (it has diverged).

The model is not stored in the hyper-parameters (the config builds it); the optimizer and
scheduler partials are, so a checkpoint of ours reloads with
``QDTrackModule.load_from_checkpoint(path, model=<QDTrackModel>, weights_only=False)``, the model
built from the same config (``weights_only=False``: the partials are pickled objects, so only
for trusted files). The config itself travels with the checkpoint: the training entry point hands
the module its resolved ``model`` config group (:meth:`QDTrackModule.remember_config`), and every
checkpoint stores it with the datamodule's class names under ``"qdtrack_model"``, from which
``qdtrack-track`` / ``qdtrack-eval`` rebuild the model
(:func:`~qdtrack_pl.lit.checkpointing.module_from_checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.types import LRSchedulerConfigType, OptimizerLRScheduler
from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LinearLR, LRScheduler

from qdtrack_pl.data.batch import FrameBatch, PairBatch
from qdtrack_pl.lit.lr_scaling import apply_auto_scale_lr
from qdtrack_pl.models.qdtrack import Detections, QDTrackModel

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]
NONFINITE_POLICIES = ("skip", "stop")
NONFINITE_STEPS_KEY = "qdtrack_nonfinite_steps"  # checkpoint entry: skipped steps so far
MODEL_CONFIG_KEY = "qdtrack_model"  # checkpoint entry: {"config": ..., "class_names": ...}


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss or gradient (``nonfinite_loss="stop"``, or too many
    skipped steps in a row). The offending step did not change the weights."""


class QDTrackModule(pl.LightningModule):
    """Training and detection/embedding inference for QDTrack.

    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``); the scheduler steps
    once per epoch (the paper's step decay). ``warmup_iters`` > 0 adds a linear per-iteration
    warm-up from ``warmup_ratio`` x lr; both schedulers are chainable, so they compose.
    ``auto_scale_lr`` with a ``base_batch_size`` scales the optimizer's lr linearly to the run's
    total batch (devices x batch size x nodes x accumulation) at the start, as mmdetection's
    ``auto_scale_lr`` does (:mod:`qdtrack_pl.lit.lr_scaling`); no ``base_batch_size``: no scaling.
    """

    def __init__(
        self,
        model: QDTrackModel,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        warmup_iters: int = 1000,
        warmup_ratio: float = 0.001,
        nonfinite_loss: Literal["skip", "stop"] = "skip",
        max_consecutive_nonfinite: int | None = 20,
        auto_scale_lr: bool = True,
        base_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if warmup_iters < 0 or not 0.0 < warmup_ratio <= 1.0:
            raise ValueError(
                "need warmup_iters >= 0 and 0 < warmup_ratio <= 1, "
                f"got {warmup_iters}, {warmup_ratio}"
            )
        if nonfinite_loss not in NONFINITE_POLICIES:
            raise ValueError(
                f"nonfinite_loss must be one of {NONFINITE_POLICIES}, got {nonfinite_loss!r}"
            )
        if max_consecutive_nonfinite is not None and max_consecutive_nonfinite < 1:
            raise ValueError(
                f"max_consecutive_nonfinite must be >= 1 or None, got {max_consecutive_nonfinite}"
            )
        if base_batch_size is not None and base_batch_size < 1:
            raise ValueError(f"base_batch_size must be >= 1 or None, got {base_batch_size}")
        self.save_hyperparameters(ignore=["model"], logger=False)
        self.model = model
        self.nonfinite_steps = 0  # steps skipped for a NaN/inf loss or gradient (checkpointed)
        self._consecutive_nonfinite = 0
        self._batch_idx = -1
        self._step_faulty = False  # this step's loss or gradients were NaN/inf
        self.skipped_images: set[str] = set()  # unreadable training images (replaced pairs)
        self._reported_images = 0
        self.model_config: dict[str, Any] | None = None  # the config that built ``model``

    def remember_config(self, model_config: Mapping[str, Any]) -> None:
        """Keep the resolved ``model`` config group that built this module; every checkpoint
        then stores it (with the datamodule's class names) so that the model can be rebuilt."""
        self.model_config = dict(model_config)

    def _class_names(self) -> list[str] | None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        try:
            names = getattr(datamodule, "class_names", None)
        except Exception:  # a vocabulary that cannot be read here: the checkpoint goes without
            return None
        return None if names is None else [str(name) for name in names]

    def forward(self, images: Tensor) -> list[Detections]:
        return self.model.predict(images)

    def training_step(self, batch: PairBatch, batch_idx: int) -> Tensor | None:
        self._batch_idx, self._step_faulty = batch_idx, False
        self.skipped_images.update(getattr(batch, "skipped_images", ()))
        losses = self.model.forward_train(batch)
        total = torch.stack(list(losses.values())).sum()
        batch_size = len(batch)
        if not torch.isfinite(total):
            terms = ", ".join(
                f"{name}={value.item()}" for name, value in losses.items() if not value.isfinite()
            )
            self._nonfinite(f"loss ({terms or f'total={total.item()}'})")
            return None
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        self.log("train/loss", total, batch_size=batch_size, prog_bar=True)
        self.log("train/nonfinite_steps", float(self.nonfinite_steps), batch_size=batch_size)
        return total

    # -- numerical faults -----------------------------------------------------------------------
    def _nonfinite(self, what: str) -> None:
        """Report a NaN/inf ``what``; skip the step (return None) or raise, as configured."""
        self.nonfinite_steps += 1
        self._consecutive_nonfinite += 1
        self._step_faulty = True
        where = (
            f"non-finite {what} at global step {self.global_step} "
            f"(epoch {self.current_epoch}, batch {self._batch_idx})"
        )
        if self.hparams["nonfinite_loss"] == "stop":
            raise NonFiniteLossError(
                f"{where}; stopping (model.nonfinite_loss=stop). This step did not update the "
                "weights; resume from checkpoints/last.ckpt after fixing the cause"
            )
        limit = self.hparams["max_consecutive_nonfinite"]
        if limit is not None and self._consecutive_nonfinite > limit:
            raise NonFiniteLossError(
                f"{where}; {self._consecutive_nonfinite} steps in a row were non-finite, the "
                "training has diverged: lower the learning rate or set trainer.gradient_clip_val "
                "(model.max_consecutive_nonfinite sets this limit)"
            )
        log.warning(
            "%s; step skipped, weights unchanged (model.nonfinite_loss=skip; %d skipped so far)",
            where,
            self.nonfinite_steps,
        )
        if self._trainer is not None:
            self.log("train/nonfinite_steps", float(self.nonfinite_steps))
        return None

    def on_before_optimizer_step(self, optimizer: Optimizer) -> None:
        """A finite loss can still give NaN/inf gradients: drop them all (the optimizer then
        leaves every parameter as it is) or stop, as for a non-finite loss. Skipped under a
        gradient scaler (fp16 AMP), which handles inf gradients itself."""
        if getattr(self._trainer, "precision_plugin", None) is not None and getattr(
            self.trainer.precision_plugin, "scaler", None
        ):
            return
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads or bool(torch.isfinite(torch.nn.utils.get_total_norm(grads))):
            return
        names = [
            name
            for name, p in self.named_parameters()
            if p.grad is not None and not torch.isfinite(p.grad).all()
        ]
        for p in self.parameters():
            p.grad = None
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        self._nonfinite(f"gradients ({shown})")

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._step_faulty:
            self._consecutive_nonfinite = 0

    def on_train_epoch_end(self) -> None:
        """Summary of the training images that could not be read (their pairs were replaced)."""
        if len(self.skipped_images) > self._reported_images:
            self._reported_images = len(self.skipped_images)
            shown = sorted(self.skipped_images)[:5]
            log.warning(
                "%d unreadable training image(s) so far; their pairs were replaced by other pairs: "
                "%s%s",
                len(self.skipped_images),
                ", ".join(shown),
                " ..." if len(self.skipped_images) > len(shown) else "",
            )
        if self.skipped_images:
            self.log("train/skipped_images", float(len(self.skipped_images)))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[NONFINITE_STEPS_KEY] = self.nonfinite_steps
        if self.model_config is not None:
            checkpoint[MODEL_CONFIG_KEY] = {
                "config": self.model_config,
                "class_names": self._class_names(),
            }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.nonfinite_steps = int(checkpoint.get(NONFINITE_STEPS_KEY, 0))
        stored = checkpoint.get(MODEL_CONFIG_KEY)
        if self.model_config is None and isinstance(stored, Mapping):
            self.model_config = dict(stored.get("config") or {}) or None

    def detect(self, batch: FrameBatch) -> list[Detections]:
        """Detections in original-image pixels: network boxes / scale factor."""
        detections = self.model.predict(batch.images)
        return [
            d._replace(boxes=d.boxes / scale)
            for d, scale in zip(detections, batch.scale_factors.to(batch.images.dtype), strict=True)
        ]

    # Lightning types step outputs as a loss or a dict; ours hand detections to the tracker
    def validation_step(  # type: ignore[override]
        self, batch: FrameBatch, batch_idx: int
    ) -> list[Detections]:
        return self.detect(batch)

    def test_step(  # type: ignore[override]
        self, batch: FrameBatch, batch_idx: int
    ) -> list[Detections]:
        return self.detect(batch)

    def predict_step(
        self, batch: FrameBatch, batch_idx: int, dataloader_idx: int = 0
    ) -> list[Detections]:
        return self.detect(batch)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        params = [p for p in self.model.parameters() if p.requires_grad]
        hparams = self.hparams
        optimizer: Optimizer = hparams["optimizer"](params)
        # before the schedulers read their base rates; hparams of older checkpoints lack the keys
        self.lr_scale = apply_auto_scale_lr(
            optimizer,
            self._trainer,
            hparams.get("auto_scale_lr", False),
            hparams.get("base_batch_size"),
        )
        schedulers: list[LRSchedulerConfigType] = []
        if hparams["warmup_iters"] > 0:
            warmup = LinearLR(
                optimizer,
                start_factor=hparams["warmup_ratio"],
                total_iters=hparams["warmup_iters"],
            )
            schedulers.append({"scheduler": warmup, "interval": "step", "name": "warmup"})
        if hparams["scheduler"] is not None:
            schedulers.append(
                {"scheduler": hparams["scheduler"](optimizer), "interval": "epoch", "name": "lr"}
            )
        # Lightning takes scheduler config dicts in the list; its type alias names only objects
        return cast(OptimizerLRScheduler, ([optimizer], schedulers))
