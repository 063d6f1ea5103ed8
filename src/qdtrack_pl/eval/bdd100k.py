"""BDD100K MOT evaluation: scalabel result files scored by TrackEval's ``BDD100K`` dataset class.

Why this path (spec 6, P16): the headline numbers are mMOTA / mIDF1 (and mHOTA), unweighted means
over the 8 classes, with crowd and ``other person/vehicle``/``trailer`` boxes as ignore regions.
TrackEval's ``BDD100K`` class reads scalabel jsons, evaluates each class at IoU 0.5, drops
unmatched predictions that lie more than 50% inside any ignore region, and groups the classes into
HUMAN / VEHICLE / BIKE. It reads the older scalabel keys (``index``, ``attributes.Crowd``), so the
files written here carry both the old and the current (``frameIndex``, ``crowd``) keys and are also
accepted by the official ``bdd100k``/``scalabel`` toolkit.

Class means follow the official toolkit: they average the classes that have ground truth in the
evaluated videos (TrackEval's own class average would count an absent class as 0).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import trackeval

from qdtrack_pl.data.index import FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import UNKNOWN_CLASS, TrackResults
from qdtrack_pl.eval.trackeval_adapter import quiet_evaluator

TRACKER_NAME = "qdtrack"
DATA_SUB_FOLDER = "data"
PERCENT = 100.0


def _box(box: np.ndarray) -> dict[str, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def _frame_record(video: Video, index: int, labels: list[dict]) -> dict:
    frame = video.frames[index]
    return {
        "name": frame.image_path.name,
        "videoName": video.name,
        "frameIndex": frame.source_frame_id,
        "index": frame.index,  # the key TrackEval sorts and counts frames by
        "labels": labels,
    }


def gt_labels(annotations: FrameAnnotations, class_names: tuple[str, ...]) -> list[dict]:
    """Ground-truth rows as scalabel labels; ignore rows become crowd regions of their class."""
    return [
        {
            "id": str(int(track_id)),
            "category": class_names[int(class_id)],
            "attributes": {"crowd": bool(ignore), "Crowd": bool(ignore)},
            "box2d": _box(box),
        }
        for box, track_id, class_id, ignore in zip(
            annotations.boxes,
            annotations.track_ids,
            annotations.class_ids,
            annotations.ignore,
            strict=True,
        )
    ]


def write_gt(video: Video, class_names: tuple[str, ...], path: Path) -> None:
    """One video's ground truth as the scalabel json TrackEval's ``BDD100K`` class reads."""
    frames = [
        _frame_record(video, f.index, gt_labels(f.annotations, class_names)) for f in video.frames
    ]
    path.write_text(json.dumps(frames))


def write_results(
    video: Video, results: TrackResults | None, class_names: tuple[str, ...], path: Path
) -> None:
    """One video's tracks as a scalabel prediction json (every frame listed, even empty ones)."""
    labels: list[list[dict]] = [[] for _ in video.frames]
    if results is not None:
        require_classes(results, video.name)
        for frame, track_id, box, score, class_id in zip(
            results.frame_indices,
            results.track_ids,
            results.boxes,
            results.scores,
            results.class_ids,
            strict=True,
        ):
            labels[int(frame)].append(
                {
                    "id": str(int(track_id)),
                    "category": class_names[int(class_id)],
                    "score": float(score),
                    "box2d": _box(box),
                }
            )
    frames = [_frame_record(video, i, rows) for i, rows in enumerate(labels)]
    path.write_text(json.dumps(frames))


def require_classes(results: TrackResults, video: str) -> None:
    """Class-wise protocols need a class per row; trackers may leave it unknown (-1)."""
    if len(results.class_ids) and (results.class_ids == UNKNOWN_CLASS).any():
        raise ValueError(f"results of video {video!r}: rows without a class id cannot be scored")


def _run_trackeval(gt_dir: Path, tracker_dir: Path, class_names: tuple[str, ...]) -> dict:
    dataset = trackeval.datasets.BDD100K(
        {
            "GT_FOLDER": str(gt_dir),
            "TRACKERS_FOLDER": str(tracker_dir),
            "OUTPUT_FOLDER": str(tracker_dir / "output"),
            "TRACKERS_TO_EVAL": [TRACKER_NAME],
            "CLASSES_TO_EVAL": list(class_names),
            "TRACKER_SUB_FOLDER": DATA_SUB_FOLDER,
            "PRINT_CONFIG": False,
        }
    )
    evaluator = quiet_evaluator()
    metrics = [
        trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    output, messages = evaluator.evaluate([dataset], metrics)
    message = messages["BDD100K"][TRACKER_NAME]
    if message != "Success":
        raise RuntimeError(f"TrackEval BDD100K evaluation failed: {message}")
    return output["BDD100K"][TRACKER_NAME]["COMBINED_SEQ"]


def _headline(res: Mapping[str, Any]) -> dict[str, float]:
    return {
        "HOTA": float(np.mean(res["HOTA"]["HOTA"])) * PERCENT,
        "MOTA": float(res["CLEAR"]["MOTA"]) * PERCENT,
        "IDF1": float(res["Identity"]["IDF1"]) * PERCENT,
        "IDSW": float(res["CLEAR"]["IDSW"]),
    }


def summarize(combined: Mapping[str, Any], class_names: tuple[str, ...]) -> dict[str, float]:
    """mHOTA / mMOTA / mIDF1 over classes with ground truth, overall (detection-averaged) numbers,
    and per class ``MOTA/<class>`` etc., in percent."""
    present = [c for c in class_names if combined[c]["Count"]["GT_Dets"] > 0]
    if not present:
        raise ValueError("the evaluated videos hold no ground-truth boxes of any BDD100K class")
    averaged = {
        name: metric.combine_classes_class_averaged({c: combined[c][name] for c in present})
        for name, metric in (
            ("HOTA", trackeval.metrics.HOTA({"PRINT_CONFIG": False})),
            ("CLEAR", trackeval.metrics.CLEAR({"PRINT_CONFIG": False})),
            ("Identity", trackeval.metrics.Identity({"PRINT_CONFIG": False})),
        )
    }
    mean = _headline(averaged)
    out = {"mHOTA": mean["HOTA"], "mMOTA": mean["MOTA"], "mIDF1": mean["IDF1"]}
    out.update(_headline(combined["cls_comb_det_av"]))
    for c in present:
        out.update({f"{k}/{c}": v for k, v in _headline(combined[c]).items() if k != "IDSW"})
    return out


def evaluate_bdd100k(
    gt: VideoIndex, results: Mapping[str, TrackResults], work_dir: Path | None = None
) -> dict[str, float]:
    """Score per-video tracks against ``gt`` (a BDD100K index); keys as in :func:`summarize`.

    Files go to ``work_dir`` (kept, e.g. for the official toolkit or a server submission) or to a
    temporary folder.
    """
    unknown = set(results) - {v.name for v in gt.videos}
    if unknown:
        raise KeyError(f"results for videos not in the ground truth: {sorted(unknown)[:5]}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        gt_dir = root / "gt"
        tracker_dir = root / "trackers"
        data_dir = tracker_dir / TRACKER_NAME / DATA_SUB_FOLDER
        gt_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        for video in gt.videos:
            write_gt(video, gt.class_names, gt_dir / f"{video.name}.json")
            write_results(
                video, results.get(video.name), gt.class_names, data_dir / f"{video.name}.json"
            )
        combined = _run_trackeval(gt_dir, tracker_dir, gt.class_names)
    return summarize(combined, gt.class_names)
