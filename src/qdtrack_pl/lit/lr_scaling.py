"""Linear learning-rate scaling to the actual total batch (mmdetection's ``auto_scale_lr``).

The paper's learning rates are written for 16 images per optimiser step (8 GPUs x 2 pairs). A run
with another total batch (one CPU with one pair, 4 GPUs x 2 pairs, ...) scales them linearly:

    lr = configured lr x total batch / base_batch_size,
    total batch = devices x batch size per device x nodes x gradient-accumulation steps

(the linear scaling rule, Goyal et al. 2017; mmdet's ``auto_scale_lr`` with ``base_batch_size``
16). Unscaled, lr 0.02 on one pair drives a random-init R50 to a loss of 5e8 in its second step
and NaN in its third. ``QDTrackModule(auto_scale_lr=True, base_batch_size=...)`` applies it in
``configure_optimizers`` before the schedulers record their base rates, and logs the factor.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from torch.optim import Optimizer

log = logging.getLogger(__name__)


class BatchGeometry(NamedTuple):
    """What the total batch of one optimiser step is made of."""

    batch_size: int  # pairs per device and step
    devices: int
    nodes: int
    accumulate: int  # gradient-accumulation steps per optimiser step

    @property
    def total(self) -> int:
        return self.batch_size * self.devices * self.nodes * self.accumulate


def batch_geometry(trainer: Any) -> BatchGeometry | None:
    """The trainer's total-batch factors; None when the per-device batch size is unknown (no
    datamodule with an integer ``batch_size``)."""
    batch_size = getattr(getattr(trainer, "datamodule", None), "batch_size", None)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        return None
    return BatchGeometry(
        batch_size=batch_size,
        devices=int(getattr(trainer, "num_devices", 1) or 1),
        nodes=int(getattr(trainer, "num_nodes", 1) or 1),
        accumulate=int(getattr(trainer, "accumulate_grad_batches", 1) or 1),
    )


def scale_lr(optimizer: Optimizer, total_batch: int, base_batch_size: int) -> float:
    """Multiply every parameter group's lr (and the optimiser's default) by
    ``total_batch / base_batch_size``; returns the factor."""
    if total_batch < 1 or base_batch_size < 1:
        raise ValueError(
            f"need total_batch >= 1 and base_batch_size >= 1, got {total_batch}, {base_batch_size}"
        )
    factor = total_batch / base_batch_size
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    if "lr" in optimizer.defaults:
        optimizer.defaults["lr"] = optimizer.defaults["lr"] * factor
    return factor


def apply_auto_scale_lr(
    optimizer: Optimizer, trainer: Any, enabled: bool, base_batch_size: int | None
) -> float | None:
    """Scale ``optimizer`` to ``trainer``'s total batch when ``enabled`` and a base is set, and
    say so in the log; returns the factor applied (None: not scaled)."""
    if not enabled or base_batch_size is None:
        return None
    geometry = batch_geometry(trainer)
    if geometry is None:
        log.warning(
            "model.auto_scale_lr: the per-device batch size is unknown (no datamodule with an "
            "integer batch_size), so optimizer.lr is used as configured (for a total batch of %d)",
            base_batch_size,
        )
        return None
    before = optimizer.param_groups[0]["lr"]
    factor = scale_lr(optimizer, geometry.total, base_batch_size)
    log.info(
        "learning rate scaled x%.4g to %.6g (was %.6g): total batch %d = %d device(s) x %d "
        "pair(s) x %d node(s) x %d accumulation step(s), config lr is for base_batch_size %d "
        "(model.auto_scale_lr=false keeps optimizer.lr as configured)",
        factor,
        optimizer.param_groups[0]["lr"],
        before,
        geometry.total,
        geometry.devices,
        geometry.batch_size,
        geometry.nodes,
        geometry.accumulate,
        base_batch_size,
    )
    return factor
