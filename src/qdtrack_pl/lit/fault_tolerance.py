"""Surviving interruption: step checkpoints, a checkpoint on SIGTERM, and the RNG state in every
checkpoint, so that ``ckpt_path=last`` continues a killed run exactly where it stopped.

Together with :class:`~qdtrack_pl.data.loading.samplers.ResumableDataLoader` (the loader's
position) and Lightning's loop state (epoch, batch, optimizer and scheduler), a run resumed from any
checkpoint this callback writes ends with the same weights and metrics as an uninterrupted run with
the same seed (``tests/reliability/test_interruption.py``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


def capture_rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + initialised CUDA) generator states, as plain containers."""
    legacy = np.random.get_state(legacy=True)  # ("MT19937", keys, pos, has_gauss, cached)
    if not isinstance(legacy, tuple):
        raise TypeError(f"numpy returned a {type(legacy).__name__} RNG state, expected a tuple")
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _tuples(value: Any) -> Any:
    """``random.setstate`` wants tuples (a checkpoint round trip may turn them into lists)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list | tuple) else value


class ResumeCheckpoint(pl.Callback):
    """Own ``<dirpath>/<filename>`` (``last.ckpt``, what ``ckpt_path=last`` resumes): write it every
    ``every_n_train_steps`` optimizer steps, at the end of every training epoch (after its
    validation) and when the process receives SIGTERM, and carry the RNG state in every checkpoint.

    - Step checkpoints bound the work a SIGKILL (or a crash) can cost to ``every_n_train_steps``
      steps; writes go through the trainer's checkpoint IO (``AtomicCheckpointIO``), so a kill
      during a write leaves the previous file intact.
    - SIGTERM (``kill``, SLURM pre-emption, ``docker stop``): Lightning finishes the running step
      (and the epoch's validation if it is the last step) and stops; this callback saves that
      state first, and the process exits with status 0.
    - An epoch's last batch gets no step checkpoint: the end-of-epoch one follows its validation,
      so a resumed run never skips a validation. A kill during validation resumes from the step
      before and reruns it.
    - The RNG state saved with a checkpoint is restored right before the first training step of
      the resumed run, so random sampling in the model continues the same stream.
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_train_steps: int = 100,
        filename: str = "last.ckpt",
        save_on_sigterm: bool = True,
    ) -> None:
        if every_n_train_steps < 0:
            raise ValueError(
                f"every_n_train_steps must be >= 0 (0 = only on SIGTERM), got {every_n_train_steps}"
            )
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename
        self.save_on_sigterm = save_on_sigterm
        self._last_saved_step = -1
        self._pending_rng: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    # -- saving ---------------------------------------------------------------------------------
    def _save(self, trainer: pl.Trainer, reason: str) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)
        self._last_saved_step = trainer.global_step
        log.info("saved %s at global step %d (%s)", self.path, trainer.global_step, reason)

    def _skip(self, trainer: pl.Trainer) -> bool:
        return bool(trainer.sanity_checking or getattr(trainer, "fast_dev_run", False))

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self._skip(trainer) or self._last_saved_step == trainer.global_step:
            return
        if _last_batch_of_epoch(trainer):
            return  # the end-of-epoch checkpoint follows the validation
        if self.save_on_sigterm and trainer.received_sigterm:
            self._save(trainer, "SIGTERM received")
        elif self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0:
            self._save(trainer, f"every {self.every_n_train_steps} steps")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._skip(trainer):
            self._save(trainer, f"end of epoch {trainer.current_epoch}")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """SIGTERM noticed after this step's ``on_train_batch_end`` (or at an epoch's last step,
        after its validation): save the finished step. Not from inside a validation run, which
        resumes from the checkpoint before it."""
        if not (self.save_on_sigterm and isinstance(exception, SIGTERMException)):
            return
        if self._skip(trainer) or trainer.validating or not trainer.training:
            return
        if self._last_saved_step != trainer.global_step:
            self._save(trainer, "SIGTERM received")

    # -- the RNG state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": capture_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_rng = state_dict.get("rng")

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._pending_rng is not None:
            restore_rng_state(self._pending_rng)
            self._pending_rng = None


def _last_batch_of_epoch(trainer: pl.Trainer) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return progress.is_last_batch or progress.current.ready >= trainer.num_training_batches
