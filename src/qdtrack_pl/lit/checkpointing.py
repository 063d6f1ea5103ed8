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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from qdtrack_pl.lit.module import MODEL_CONFIG_KEY, QDTrackModule
from qdtrack_pl.models.checkpoint import load_official_checkpoint

log = logging.getLogger(__name__)
LIGHTNING_VERSION_KEY = "pytorch-lightning_version"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
WEIGHT_FILE_KEYS = frozenset({"pretrained_backbone", "pretrained_detector"})
# model keys that no longer exist, and why dropping them from an older checkpoint's config changes
# nothing it computes
REMOVED_MODEL_KEYS = {
    "sparse_roi_align": "a speed switch computing torchvision's RoIAlign another way (removed)",
}


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


def read_checkpoint(ckpt_path: str | Path) -> Any:
    """The loaded contents of a checkpoint file (ours or an official ``.pth``), on the CPU."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass "
            "ckpt_path=<run folder>/checkpoints/<file>.ckpt or the path of an official QDTrack .pth"
        )
    # ours pickle the optimizer/scheduler partials: trusted files only
    return torch.load(path, map_location="cpu", weights_only=False)


class StoredModel(NamedTuple):
    """What a checkpoint of ours says about its model (:data:`MODEL_CONFIG_KEY`)."""

    config: dict[str, Any]  # the training run's ``model`` config group, resolved
    class_names: tuple[str, ...] | None  # the dataset's classes, in class-id order


def stored_model(checkpoint: Any) -> StoredModel | None:
    """The model config and class names a checkpoint of ours carries; None for official
    checkpoints and ours from before they carried it."""
    entry = checkpoint.get(MODEL_CONFIG_KEY) if isinstance(checkpoint, Mapping) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), Mapping):
        return None
    names = entry.get("class_names")
    return StoredModel(dict(entry["config"]), None if names is None else tuple(names))


def inference_config(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """``model_config`` with every weight file it would load at build time (``pretrained_*``)
    set to null (the checkpoint holds all the weights, and those files may not exist here), and
    without the keys of :data:`REMOVED_MODEL_KEYS`, so that older checkpoints still load."""
    dropped: list[str] = []

    def strip(node: Any, at: str) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                if key in REMOVED_MODEL_KEYS:
                    dropped.append(f"{at}{key} ({REMOVED_MODEL_KEYS[key]})")
                else:
                    out[key] = None if key in WEIGHT_FILE_KEYS else strip(value, f"{at}{key}.")
            return out
        if isinstance(node, list):
            return [strip(v, at) for v in node]
        return node

    config: dict[str, Any] = strip(model_config, "")
    if dropped:
        log.warning("checkpoint config: ignoring keys that no longer exist: %s", ", ".join(dropped))
    return config


class LoadedModule(NamedTuple):
    module: QDTrackModule  # with the checkpoint's weights
    stored: StoredModel | None  # what the checkpoint carries (None: official checkpoints)
    from_stored_config: bool  # built from the checkpoint's own model config


def module_from_checkpoint(
    ckpt_path: str | Path,
    model_config: DictConfig | Mapping[str, Any] | None = None,
    use_stored: bool = True,
) -> LoadedModule:
    """A ``QDTrackModule`` with the weights of ``ckpt_path``, built from the model config the
    checkpoint carries (when ``use_stored`` and it carries one), else from ``model_config`` (a
    ``model`` config group). The checkpoint file is read once."""
    from hydra.utils import instantiate

    checkpoint = read_checkpoint(ckpt_path)
    stored = stored_model(checkpoint)
    from_stored = use_stored and stored is not None
    if use_stored and stored is not None:
        model_config = OmegaConf.create(inference_config(stored.config))
    elif model_config is None:
        raise ValueError(
            f"{ckpt_path} carries no model config (an official checkpoint, or one of ours from "
            "before checkpoints stored it): pass the model=/experiment= it was trained with"
        )
    module = instantiate(model_config)
    if not isinstance(module, QDTrackModule):
        raise TypeError(f"the model config builds a {type(module).__name__}, not a QDTrackModule")
    load_weights(module, ckpt_path, checkpoint)
    return LoadedModule(module, stored, from_stored)


def load_weights(module: QDTrackModule, ckpt_path: str | Path, checkpoint: Any = None) -> None:
    """Load a checkpoint of ours (Lightning ``.ckpt``) or an official QDTrack checkpoint
    (mmdetection key layout) into a ``QDTrackModule``; ``checkpoint``: its contents if already
    read (:func:`read_checkpoint`)."""
    path = Path(ckpt_path)
    if checkpoint is None:
        checkpoint = read_checkpoint(path)
    if isinstance(checkpoint, dict) and LIGHTNING_VERSION_KEY in checkpoint:
        try:
            module.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as error:
            raise RuntimeError(
                f"{path} does not fit the configured model: drop the model overrides to build "
                "the model the checkpoint was trained with, or pass the same model=/experiment= "
                f"as the run that wrote it.\n{error}"
            ) from error
        return
    state_dict = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, dict):
        raise ValueError(f"{path} holds no state dict (got {type(checkpoint).__name__})")
    report = load_official_checkpoint(module.model, state_dict)
    log.info("loaded official checkpoint %s: %s", path, report)
