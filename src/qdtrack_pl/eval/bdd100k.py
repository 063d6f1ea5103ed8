"""BDD100K MOT evaluation: scalabel result files scored by TrackEval's ``BDD100K`` dataset class.

Why this path (docs/method.md §6.2, §8.16): the headline numbers are mMOTA / mIDF1 (and mHOTA),
unweighted means over the 8 classes, with crowd and ``other person/vehicle``/``trailer`` boxes as
ignore regions. TrackEval's ``BDD100K`` class reads scalabel jsons, evaluates each class at IoU 0.5,
drops unmatched predictions that lie more than 50% inside any ignore region, and groups the classes
into HUMAN / VEHICLE / BIKE. It reads the older scalabel keys (``index``, ``attributes.Crowd``), so
the files written here carry both the old and the current (``frameIndex``, ``crowd``) keys and are
also accepted by the official ``bdd100k``/``scalabel`` toolkit.

Class means follow the official toolkit (scalabel ``eval/mot.py``, ``render_results``): every one
of the 8 classes counts, a class without ground truth in the evaluated videos (the toolkit's NaN)
as 0, and the mean divides by 8. TrackEval's ``BDD100K`` class average divides by every class too.
So one frame holding one car, tracked exactly, scores mMOTA = 100 / 8 = 12.5; ``MOTA`` (all
classes pooled) is 100. The super-categories HUMAN (pedestrian, rider), VEHICLE (car, truck, bus,
train) and BIKE (motorcycle, bicycle) are TrackEval's, their classes pooled.

:func:`read_scalabel_results` reads scalabel prediction files (one json list of frames for all
videos, the official submission format, or a folder of one json per video) back into
:class:`TrackResults`, so ``qdtrack-eval results=...`` scores them without a checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import trackeval

from qdtrack_pl.data.datasets.bdd100k import BOX_KEYS, KNOWN_CATEGORIES, resolve_category
from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.formats.json_fields import field, load_json, number_box
from qdtrack_pl.data.index import FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import UNKNOWN_CLASS, TrackResults
from qdtrack_pl.eval.trackeval_adapter import quiet_evaluator, trackeval_stdout_silenced

log = logging.getLogger(__name__)

TRACKER_NAME = "qdtrack"
DATA_SUB_FOLDER = "data"
PERCENT = 100.0
SUPER_CATEGORIES: tuple[str, ...] = ("HUMAN", "VEHICLE", "BIKE")  # TrackEval BDD100K's groups


def _box(box: np.ndarray) -> dict[str, float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def _frame_record(video: Video, index: int, labels: list[dict[str, Any]]) -> dict[str, Any]:
    frame = video.frames[index]
    return {
        "name": frame.image_path.name,
        "videoName": video.name,
        "frameIndex": frame.source_frame_id,
        "index": frame.index,  # the key TrackEval sorts and counts frames by
        "labels": labels,
    }


def gt_labels(annotations: FrameAnnotations, class_names: tuple[str, ...]) -> list[dict[str, Any]]:
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
    labels: list[list[dict[str, Any]]] = [[] for _ in video.frames]
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


def _run_trackeval(gt_dir: Path, tracker_dir: Path, class_names: tuple[str, ...]) -> dict[str, Any]:
    metrics = [
        trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"PRINT_CONFIG": False}),
    ]
    with trackeval_stdout_silenced():
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
        output, messages = quiet_evaluator().evaluate([dataset], metrics)
    message = messages["BDD100K"][TRACKER_NAME]
    if message != "Success":
        raise RuntimeError(f"TrackEval BDD100K evaluation failed: {message}")
    combined: dict[str, Any] = output["BDD100K"][TRACKER_NAME]["COMBINED_SEQ"]
    return combined


def _headline(res: Mapping[str, Any]) -> dict[str, float]:
    return {
        "HOTA": float(np.mean(res["HOTA"]["HOTA"])) * PERCENT,
        "MOTA": float(res["CLEAR"]["MOTA"]) * PERCENT,
        "IDF1": float(res["Identity"]["IDF1"]) * PERCENT,
        "IDSW": float(res["CLEAR"]["IDSW"]),
    }


def summarize(combined: Mapping[str, Any], class_names: tuple[str, ...]) -> dict[str, float]:
    """The official BDD100K numbers, in percent, from TrackEval's combined results.

    ``mHOTA`` / ``mMOTA`` / ``mIDF1``: the mean over **all** ``class_names`` of each class's value,
    a class without ground truth counting 0 (scalabel ``render_results``: ``nan_to_num(nan=0)``,
    then ``mean`` over the leaf classes). ``HOTA`` / ``MOTA`` / ``IDF1`` / ``IDSW``: every class
    pooled (detection-averaged). ``MOTA/<name>`` etc. for each class and super-category with
    ground truth.
    """

    def has_gt(name: str) -> bool:
        return bool(combined[name]["Count"]["GT_Dets"] > 0)

    if not any(has_gt(c) for c in class_names):
        raise ValueError("the evaluated videos hold no ground-truth boxes of any BDD100K class")
    per_class = {c: _headline(combined[c]) for c in class_names if has_gt(c)}
    out: dict[str, float] = {}
    for key in ("HOTA", "MOTA", "IDF1"):
        values = [per_class[c][key] if c in per_class else 0.0 for c in class_names]
        out[f"m{key}"] = float(np.mean(values))
    out.update(_headline(combined["cls_comb_det_av"]))
    groups = [g for g in SUPER_CATEGORIES if g in combined and has_gt(g)]
    for name in [*per_class, *groups]:
        headline = per_class.get(name) or _headline(combined[name])
        out.update({f"{k}/{name}": v for k, v in headline.items() if k != "IDSW"})
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


def _prediction_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise DatasetFormatError(f"{path}: no *.json scalabel prediction files in the folder")
        return files
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such prediction file or folder")
    return [path]


def read_scalabel_results(path: str | Path, gt: VideoIndex) -> dict[str, TrackResults]:
    """Scalabel predictions -> per-video :class:`TrackResults` indexed like ``gt``.

    ``path`` is one json list of frames (any number of videos: the official submission format) or
    a folder of such files (one per video, as :func:`write_results` writes them). Each frame needs
    ``videoName`` and ``frameIndex`` (a video and frame of ``gt``) and ``labels`` with ``id``
    (string or integer), ``category``, ``box2d`` and an optional ``score`` (default 1). Categories
    follow the box_track config like the ground truth (``person`` -> ``pedestrian`` ...);
    predictions of ignore-region or dropped categories (``other vehicle``, ``traffic light`` ...)
    are not scored by the toolkit either: they are left out with a warning and a count. Anything
    else that does not fit is a :class:`DatasetFormatError` naming the file, frame and label.
    Videos of ``gt`` without any prediction get empty results.
    """
    frame_of = {v.name: {f.source_frame_id: f.index for f in v.frames} for v in gt.videos}
    rows: dict[str, list[tuple[int, int, list[float], float, int]]] = defaultdict(list)
    dense_ids: dict[str, dict[str, int]] = defaultdict(dict)
    seen_frames: dict[tuple[str, int], str] = {}
    skipped: Counter[str] = Counter()
    for file in _prediction_files(Path(path)):
        records = load_json(file)
        if not isinstance(records, list):
            raise DatasetFormatError(f"{file}: expected a json list of frames")
        for i, record in enumerate(records):
            where = f"{file}: frame {i}"
            video = field(record, "videoName", str, where)
            if video not in frame_of:
                raise DatasetFormatError(
                    f"{where}: field 'videoName': {video!r} is not a video of {gt.name!r} "
                    f"({len(frame_of)} videos, e.g. {sorted(frame_of)[:3]})"
                )
            number = field(record, "frameIndex", int, where)
            if number not in frame_of[video]:
                raise DatasetFormatError(
                    f"{where}: field 'frameIndex': video {video!r} has no frame {number}"
                )
            first = seen_frames.setdefault((video, number), where)
            if first != where:
                raise DatasetFormatError(
                    f"{where}: frame {number} of video {video!r} was already given at {first}"
                )
            labels = record.get("labels") or []
            if not isinstance(labels, list):
                raise DatasetFormatError(f"{where}: field 'labels': expected a list")
            in_frame: set[str] = set()
            for j, label in enumerate(labels):
                at = f"{where}: labels[{j}]"
                category = field(label, "category", str, at)
                try:
                    name, is_ignore_region = resolve_category(category)
                except KeyError:
                    raise DatasetFormatError(
                        f"{at}: field 'category': unknown class {category!r}; expected one of "
                        f"{KNOWN_CATEGORIES}"
                    ) from None
                if name is None or is_ignore_region:
                    skipped[category] += 1
                    continue
                box = number_box(field(label, "box2d", dict, at), BOX_KEYS, f"{at}: box2d")
                key = str(field(label, "id", (str, int), at))
                if key in in_frame:
                    raise DatasetFormatError(
                        f"{at}: field 'id': track {key!r} appears twice in the frame"
                    )
                in_frame.add(key)
                score = field(label, "score", (int, float), at) if "score" in label else 1.0
                if not math.isfinite(score):
                    raise DatasetFormatError(f"{at}: field 'score': expected a finite number")
                track = dense_ids[video].setdefault(key, len(dense_ids[video]))
                frame = frame_of[video][number]
                rows[video].append((frame, track, box, float(score), gt.class_names.index(name)))
    if skipped:
        log.warning(
            "%s: left out %d predictions of categories the BDD100K evaluation does not score "
            "(ignore regions, traffic lights/signs): %s",
            path,
            skipped.total(),
            dict(skipped),
        )
    return {video.name: results_from_rows(rows.get(video.name, [])) for video in gt.videos}


def results_from_rows(rows: list[tuple[int, int, list[float], float, int]]) -> TrackResults:
    """``(frame index, track id, xyxy box, score, class id)`` rows as :class:`TrackResults`."""
    if not rows:
        return TrackResults.empty()
    frames, tracks, boxes, scores, classes = zip(*rows, strict=True)
    return TrackResults(
        frame_indices=np.asarray(frames, np.int64),
        track_ids=np.asarray(tracks, np.int64),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        scores=np.asarray(scores, np.float32),
        class_ids=np.asarray(classes, np.int64),
    )
