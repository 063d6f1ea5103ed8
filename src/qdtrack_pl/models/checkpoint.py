"""Loading weights: official QDTrack (mmdetection layout) checkpoints and plain state dicts.

Official checkpoints come in three layouts (docs/method.md §8.10; commit names: §0): QD@b28af06
(``backbone.*``, ``neck.*``, ``rpn_head.*``, ``roi_head.bbox_head.*``, ``roi_head.track_head.*``),
QD@HEAD (the same under ``detector.*`` with the embedding head at ``track_head.track_head.*``) and
mmtracking (``detector.*``, ``track_head.embed_head.*``). :func:`convert_mmdet_state_dict` maps any
of them to the key names of :class:`~qdtrack_pl.models.qdtrack.QDTrackModel`;
:func:`load_state_dict_report` loads what fits and reports the rest instead of failing on the first
mismatch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

# (official pattern, our replacement); applied once the "detector." prefix is stripped.
_KEY_RULES: tuple[tuple[str, str], ...] = (
    (r"^backbone\.", "detector.backbone.body."),
    (r"^neck\.lateral_convs\.(\d+)\.conv\.", r"detector.backbone.fpn.inner_blocks.\1.0."),
    (r"^neck\.fpn_convs\.(\d+)\.conv\.", r"detector.backbone.fpn.layer_blocks.\1.0."),
    (r"^rpn_head\.rpn_conv\.", "detector.rpn.head.conv.0.0."),
    (r"^rpn_head\.rpn_cls\.", "detector.rpn.head.cls_logits."),
    (r"^rpn_head\.rpn_reg\.", "detector.rpn.head.bbox_pred."),
    (r"^roi_head\.bbox_head\.shared_fcs\.0\.", "detector.roi_heads.box_head.fc6."),
    (r"^roi_head\.bbox_head\.shared_fcs\.1\.", "detector.roi_heads.box_head.fc7."),
    (r"^roi_head\.bbox_head\.fc_cls\.", "detector.roi_heads.box_predictor.cls_score."),
    (r"^roi_head\.bbox_head\.fc_reg\.", "detector.roi_heads.box_predictor.bbox_pred."),
    (r"^(?:roi_head\.track_head|track_head\.track_head|track_head\.embed_head)\.", "embed_head."),
)
_CLS_SCORE = "detector.roi_heads.box_predictor.cls_score."
_BBOX_PRED = "detector.roi_heads.box_predictor.bbox_pred."


class LoadReport(NamedTuple):
    """What a partial load did: keys our model kept at their current values, source keys that
    were not used, and keys skipped because the shapes differ (e.g. another class count)."""

    missing_keys: list[str]
    unexpected_keys: list[str]
    shape_mismatch_keys: list[str]

    def __str__(self) -> str:
        parts = [
            f"{name} ({len(keys)}): {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''}"
            for name, keys in zip(("missing", "unexpected", "shape mismatch"), self, strict=True)
            if keys
        ]
        return "; ".join(parts) or "all keys matched"


def _map_key(key: str) -> str | None:
    key = key.removeprefix("detector.")
    for pattern, replacement in _KEY_RULES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    return None


def convert_mmdet_state_dict(
    state_dict: Mapping[str, Tensor],
) -> tuple[dict[str, Tensor], list[str]]:
    """Rename official keys to ours and convert the box predictor's class layout.

    mmdet's ``fc_cls`` has C + 1 outputs with background *last*, torchvision's ``cls_score`` has it
    *first*; mmdet's class-specific ``fc_reg`` has 4C outputs with no background slot, torchvision's
    ``bbox_pred`` has 4(C + 1), so a zero background block is prepended (never used at test time).
    Returns ``(converted, unmapped_keys)``.
    """
    converted: dict[str, Tensor] = {}
    unmapped: list[str] = []
    for key, value in state_dict.items():
        new_key = _map_key(key)
        if new_key is None:
            unmapped.append(key)
            continue
        if new_key.startswith(_CLS_SCORE):
            value = torch.cat([value[-1:], value[:-1]])
        elif new_key.startswith(_BBOX_PRED):
            value = torch.cat([value.new_zeros((4, *value.shape[1:])), value])
        converted[new_key] = value
    return converted, unmapped


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Tensors of a ``.pth`` file, unwrapping mmcv's / Lightning's ``{"state_dict": ...}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    loaded = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(loaded, Mapping) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping):
        raise TypeError(f"{path} does not hold a state dict (got {type(loaded).__name__})")
    return {k: v for k, v in loaded.items() if isinstance(v, Tensor)}


def load_state_dict_report(module: nn.Module, state_dict: Mapping[str, Tensor]) -> LoadReport:
    """Load every entry whose name and shape match ``module``; report the others."""
    own = module.state_dict()
    mismatch = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    fitting = {k: v for k, v in state_dict.items() if k not in mismatch}
    result = module.load_state_dict(fitting, strict=False)
    ignorable = [k for k in result.missing_keys if k.endswith("num_batches_tracked")]
    missing = [k for k in result.missing_keys if k not in mismatch and k not in ignorable]
    return LoadReport(missing, list(result.unexpected_keys), mismatch)


def load_official_checkpoint(
    model: nn.Module, checkpoint: str | Path | Mapping[str, Tensor]
) -> LoadReport:
    """Load an official QDTrack checkpoint (any of the three key layouts) into ``model``."""
    state_dict = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    converted, unmapped = convert_mmdet_state_dict(state_dict)
    report = load_state_dict_report(model, converted)
    return report._replace(unexpected_keys=unmapped + report.unexpected_keys)
