"""Where a run resumes from, and how checkpoints reach the disk.

:class:`AtomicCheckpointIO` (``trainer.plugins`` in ``conf/trainer/default.yaml``) writes every
checkpoint to a temporary file next to its target, fsyncs it and renames it over the target, so a
kill (SIGKILL, OOM, power loss) at any moment leaves either the previous or the new checkpoint,
never a truncated one.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from qdtrack_pl.models.checkpoint import load_official_checkpoint

log = logging.getLogger(__name__)
LIGHTNING_VERSION_KEY = "pytorch-lightning_version"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read (truncated, corrupted, not a checkpoint)."""


def _is_remote(path: str | Path) -> bool:
    return "://" in str(path)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename: fsync the folder entry (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(checkpoint: Any, path: str | Path) -> None:
    """``torch.save`` to ``.<name>.tmp`` in the target folder, flush + fsync, ``os.replace`` onto
    ``path`` (atomic on POSIX and Windows), fsync the folder. The temporary file is removed when
    the write fails; one left by a kill is overwritten by the next save."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with crash-safe local writes (:func:`save_atomic`) and
    reads that name the file when it is not a readable checkpoint. Remote URLs (``s3://``, ...)
    keep Lightning's own writer."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or _is_remote(path):
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)
            return
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self,
        path: Any,
        map_location: Callable | None = lambda storage, loc: storage,
        weights_only: bool | None = None,
    ) -> dict[str, Any]:
        try:
            return super().load_checkpoint(
                path, map_location=map_location, weights_only=weights_only
            )
        except (FileNotFoundError, PermissionError):
            raise
        except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
            if "weights only" in str(err).lower() or "weights_only" in str(err):
                raise
            raise CheckpointReadError(
                f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); the file is "
                "truncated or corrupted. Resume from another file of the run's checkpoints/ "
                "folder (ckpt_path=<file>) or start fresh (ckpt_path=null)"
            ) from err


def resolve_ckpt_path(ckpt_path: str | None, output_dir: str | Path) -> str | None:
    """Map ``ckpt_path`` to a file: ``None`` starts fresh, ``"last"`` resumes this run folder's
    last checkpoint (fresh start if there is none yet), anything else must exist."""
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        last = Path(output_dir) / LAST_CHECKPOINT
        return str(last) if last.is_file() else None
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={ckpt_path!r} does not exist; pass a .ckpt file from a run folder's "
            f"checkpoints/ or ckpt_path=last to resume the run in {output_dir}"
        )
    return str(path)


def load_weights(module: torch.nn.Module, ckpt_path: str | Path) -> None:
    """Load a checkpoint of ours (Lightning ``.ckpt``) or an official QDTrack checkpoint
    (mmdetection key layout) into a ``QDTrackModule``."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass "
            "ckpt_path=<run folder>/checkpoints/<file>.ckpt or the path of an official QDTrack .pth"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(checkpoint, dict) and LIGHTNING_VERSION_KEY in checkpoint:
        try:
            module.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as error:
            raise RuntimeError(
                f"{path} does not fit the configured model: pass the same model=/experiment= as "
                f"the run that wrote it.\n{error}"
            ) from error
        return
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} holds no state dict (got {type(checkpoint).__name__})")
    report = load_official_checkpoint(module.model, state_dict)
    log.info("loaded official checkpoint %s: %s", path, report)
