"""Where a run resumes from."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from qdtrack_pl.models.checkpoint import load_official_checkpoint

log = logging.getLogger(__name__)
LIGHTNING_VERSION_KEY = "pytorch-lightning_version"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


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
            f"checkpoint {path} does not exist; pass ckpt_path=<run folder>/checkpoints/<file>.ckpt "
            "or the path of an official QDTrack .pth"
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
