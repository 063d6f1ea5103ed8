"""Scoring result files that already exist, without a checkpoint or a model.

``qdtrack-eval data=<name> data.root=<root> results=<folder or file>`` reads the files in the
format of the dataset's protocol and scores them against the evaluation split's ground truth with
that same protocol, so the table and ``metrics.json`` are those a tracking run prints and writes:

- MOTChallenge benchmarks (``data=mot17``, ``data=motchallenge``): a folder of
  ``<sequence>.txt`` (or one such file), scored by TrackEval's ``MotChallenge2DBox`` with the
  benchmark's rules (MOT15 / 16 / 17 / 20);
- protocol ``mot`` (CrowdHuman, Waymo, CocoVID, synth): ``<video>.txt`` files the same way
  (:func:`read_mot_result_folder`), scored by the shared adapter as in training;
- ``bdd100k``: scalabel prediction json, all videos in one list or one file per video in a folder
  (:func:`qdtrack_pl.eval.bdd100k.read_scalabel_results`);
- ``tao``: the TAO result json or the folder holding it
  (:func:`qdtrack_pl.eval.tao.read_tao_results`).

MOTChallenge text rows use the dataset's frame numbers (``Frame.source_frame_id``: the MOT frame
number, also in the half splits), as ``write_mot_results`` writes them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.bdd100k import read_scalabel_results
from qdtrack_pl.eval.mot_results import TrackResults, read_mot_results
from qdtrack_pl.eval.protocols import ProtocolResult, evaluate_protocol
from qdtrack_pl.eval.tao import read_tao_results
from qdtrack_pl.eval.trackeval_adapter import evaluate_mot_challenge

log = logging.getLogger(__name__)

MOT_SUFFIX = ".txt"


def read_mot_result_folder(
    path: Path, gt: VideoIndex
) -> tuple[VideoIndex, dict[str, TrackResults]]:
    """MOTChallenge text results for the videos of ``gt``: a folder with one ``<video>.txt`` per
    video (a video without its file is an error listing what is missing; ``.txt`` files of no
    video are passed over with a warning and a count), or a single ``<video>.txt`` (then only
    that video is scored). Returns the ground truth actually scored and the results."""
    videos = {v.name: v for v in gt.videos}
    if path.is_file():
        if path.stem not in videos:
            raise DatasetFormatError(
                f"{path}: the file name must be a video of {gt.name!r} (<video>.txt), e.g. "
                f"{sorted(videos)[:3]}"
            )
        gt = replace(gt, videos=(videos[path.stem],))
        files = {path.stem: path}
    elif path.is_dir():
        files = {name: path / f"{name}{MOT_SUFFIX}" for name in videos}
        missing = [f for f in files.values() if not f.is_file()]
        if missing:
            raise DatasetFormatError(
                f"{path}: {len(missing)} of the {len(files)} videos of {gt.name!r} have no result "
                f"file, e.g. {missing[0]}; expected one <video>.txt per video (pass one file to "
                "score a single video)"
            )
        extra = sorted(p.name for p in path.glob(f"*{MOT_SUFFIX}") if p.stem not in videos)
        if extra:
            log.warning(
                "%s: %d result files are not videos of %r and are not scored: %s",
                path,
                len(extra),
                gt.name,
                extra[:5],
            )
    else:
        raise DatasetFormatError(f"{path}: no such result file or folder")
    results = {}
    for name, file in files.items():
        try:
            results[name] = read_mot_results(file, videos[name])
        except ValueError as err:
            raise DatasetFormatError(str(err)) from None
    return gt, results


def _score_motchallenge(
    datamodule: Any, split: str, path: Path, gt: VideoIndex, work_dir: Path, iou: float
) -> ProtocolResult:
    """The benchmark's own rules: the raw gt of the split, TrackEval's ``MotChallenge2DBox``."""
    scored, _ = read_mot_result_folder(path, gt)  # validates every row against the split's frames
    gt_dir = work_dir / "gt"
    datamodule.official_ground_truth(split, gt_dir)
    names = [v.name for v in scored.videos]
    folder = path if path.is_dir() else path.parent
    result = evaluate_mot_challenge(gt_dir, folder, names, datamodule.benchmark, iou)
    return ProtocolResult(result.metrics, result.table(), result)


def score_result_files(
    datamodule: Any,
    split: str,
    results: str | Path,
    *,
    work_dir: Path,
    iou_threshold: float = 0.5,
) -> tuple[str, ProtocolResult]:
    """Score the result files at ``results`` against the stage split ``split`` (``val`` /
    ``test``) of ``datamodule`` with its protocol; returns the protocol's name and its result.
    Intermediate files (official gt, rewritten predictions) go below ``work_dir``."""
    path = Path(results)
    gt = datamodule.eval_index(split)
    protocol = getattr(datamodule, "evaluation_protocol", "mot")
    work = work_dir / protocol
    if protocol == "mot" and hasattr(datamodule, "official_ground_truth"):
        name = f"motchallenge {datamodule.benchmark}"
        return name, _score_motchallenge(datamodule, split, path, gt, work, iou_threshold)
    if protocol == "mot":
        gt, rows = read_mot_result_folder(path, gt)
    elif protocol == "bdd100k":
        rows = read_scalabel_results(path, gt)
    elif protocol == "tao":
        rows = read_tao_results(path, gt)
    else:
        raise ValueError(f"no result-file reader for evaluation protocol {protocol!r}")
    return protocol, evaluate_protocol(protocol, gt, rows, iou_threshold, work_dir=work)
