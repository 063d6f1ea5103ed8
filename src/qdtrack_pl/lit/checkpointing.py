"""Where a run resumes from."""

from __future__ import annotations

from pathlib import Path

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
