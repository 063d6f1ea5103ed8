"""Evaluation protocols by name: each dataset's datamodule names the one that scores it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.bdd100k import evaluate_bdd100k
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.tao import evaluate_tao
from qdtrack_pl.eval.trackeval_adapter import EvalResult, evaluate_tracking


class ProtocolResult(NamedTuple):
    """Flat metrics (percentages in 0-100) plus a printable table."""

    metrics: dict[str, float]
    table: str
    details: EvalResult | None = None  # per-class / per-sequence breakdown where available


def _mot(
    gt: VideoIndex,
    results: Mapping[str, TrackResults],
    iou: float,
    work_dir: Path | None,
    show_progress: bool = False,
) -> ProtocolResult:
    result = evaluate_tracking(
        gt, results, iou_threshold=iou, class_names=gt.class_names, show_progress=show_progress
    )
    return ProtocolResult(result.metrics, result.table(), result)


def _from_dict(evaluate: Callable[..., dict[str, float]]) -> Callable[..., ProtocolResult]:
    def run(
        gt: VideoIndex,
        results: Mapping[str, TrackResults],
        iou: float,
        work_dir: Path | None,
        show_progress: bool = False,  # TrackEval's dataset classes report their own progress
    ) -> ProtocolResult:
        metrics = evaluate(gt, results, work_dir=work_dir)
        width = max(map(len, metrics), default=0)
        table = "\n".join(f"{k.ljust(width)} {v:10.2f}" for k, v in sorted(metrics.items()))
        return ProtocolResult(metrics, table)

    return run


PROTOCOLS: dict[str, Callable[..., ProtocolResult]] = {
    "mot": _mot,  # TrackEval HOTA / CLEAR / Identity, per class and class-averaged
    "bdd100k": _from_dict(evaluate_bdd100k),  # TrackEval BDD100K: mMOTA, mIDF1, mHOTA
    "tao": _from_dict(evaluate_tao),  # TrackEval TAO: Track mAP
}


def evaluate_protocol(
    name: str,
    gt: VideoIndex,
    results: Mapping[str, TrackResults],
    iou_threshold: float = 0.5,
    work_dir: Path | None = None,
    show_progress: bool = False,
) -> ProtocolResult:
    """Score ``results`` against ``gt`` with the protocol called ``name`` (``show_progress``: a
    progress bar over the sequences where the protocol supports one)."""
    if name not in PROTOCOLS:
        raise ValueError(
            f"unknown evaluation protocol {name!r}; expected one of {sorted(PROTOCOLS)}"
        )
    return PROTOCOLS[name](gt, results, iou_threshold, work_dir, show_progress=show_progress)
