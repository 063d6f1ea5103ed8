"""Run the tracking evaluation loop (validate or test) and return its metrics."""

from __future__ import annotations

import pytorch_lightning as pl

EVAL_SPLITS = ("val", "test")


def run_evaluation(
    trainer: pl.Trainer,
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    split: str,
    ckpt_path: str | None,
) -> dict[str, float]:
    """Track + evaluate ``split`` with the weights in ``ckpt_path`` (or the module's own)."""
    if split not in EVAL_SPLITS:
        raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {split!r}")
    loop = trainer.validate if split == "val" else trainer.test
    # Our checkpoints pickle the optimizer/scheduler partials: load them as trusted files.
    results = loop(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
    return {k: float(v) for k, v in (results[0] if results else {}).items()}
