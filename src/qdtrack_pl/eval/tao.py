"""TAO evaluation: a TAO result json scored by TrackEval's ``TAO`` dataset class with Track mAP.

TrackEval evaluates against the official annotation json itself, so TAO's own rules apply: only
classes with ground truth are scored; predictions of a class absent from a video count as false
positives only if the class is in the video's ``neg_category_ids``; unmatched predictions of
``not_exhaustive_category_ids`` classes are not penalised; ``merged`` categories are folded; at most
300 predictions per image. Track AP is class-averaged; ``TrackAP`` spans IoU 0.5:0.95 (TrackEval's
default) and ``TrackAP50_75`` is the mean over IoU 0.5 and 0.75, the "AP" of QDTrack's TAO tables
(docs/method.md §6.3, §8.16: always state which one is reported). TETA (SysCV/tet) has no package on
PyPI.

:func:`read_tao_results` reads a TAO result json (ours, or any tracker's in the challenge format)
back into :class:`TrackResults`, so ``qdtrack-eval results=...`` scores it without a checkpoint.
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

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.formats.json_fields import field, load_json, xywh_box
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.bdd100k import require_classes, results_from_rows
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import quiet_evaluator, trackeval_stdout_silenced

log = logging.getLogger(__name__)

TRACKER_NAME = "qdtrack"
DATA_SUB_FOLDER = "data"
PERCENT = 100.0
IOU_THRESHOLDS = np.arange(0.5, 0.96, 0.05)  # TrackMAP's default, named for the summary indices
AP50, AP75 = 0, 5  # positions of IoU 0.5 and 0.75 in IOU_THRESHOLDS


def result_records(gt: VideoIndex, results: Mapping[str, TrackResults]) -> list[dict[str, Any]]:
    """Tracks as TAO result dicts (``image_id, video_id, track_id, category_id, bbox xywh,
    score``), using the TAO ids the reader kept in ``gt.metadata``. Trackers number tracks per
    video while TAO track ids are unique over the json, so each video's ids are offset."""
    for key in ("image_ids", "video_ids", "category_ids"):
        if key not in gt.metadata:
            raise ValueError(f"index {gt.name!r} lacks metadata[{key!r}]: read it with read_tao")
    image_ids = gt.metadata["image_ids"]
    category_ids = gt.metadata["category_ids"]
    records, offset = [], 0
    for name, rows in results.items():
        if name not in image_ids:
            raise KeyError(f"results for video {name!r}, which is not in {gt.name!r}")
        require_classes(rows, name)
        video_id = gt.metadata["video_ids"][name]
        for frame, track_id, box, score, class_id in zip(
            rows.frame_indices, rows.track_ids, rows.boxes, rows.scores, rows.class_ids, strict=True
        ):
            x1, y1, x2, y2 = (float(v) for v in box)
            records.append(
                {
                    "image_id": image_ids[name][int(frame)],
                    "video_id": video_id,
                    "track_id": int(track_id) + offset,
                    "category_id": category_ids[int(class_id)],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "score": float(score),
                }
            )
        offset += int(np.max(rows.track_ids)) + 1 if len(rows.track_ids) else 0
    return records


def write_results(gt: VideoIndex, results: Mapping[str, TrackResults], path: Path) -> None:
    """The TAO result json (also what the TAO toolkit and the challenge server take)."""
    path.write_text(json.dumps(result_records(gt, results)))


def evaluate_tao(
    gt: VideoIndex, results: Mapping[str, TrackResults], work_dir: Path | None = None
) -> dict[str, float]:
    """Track mAP of ``results`` against the annotation json ``gt`` was read from, in percent:
    ``TrackAP``, ``TrackAP50``, ``TrackAP75``, ``TrackAP50_75``, ``TrackAR``."""
    annotation_file = Path(gt.metadata["annotation_file"])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(work_dir) if work_dir is not None else Path(tmp)
        gt_dir = root / "gt"
        data_dir = root / "trackers" / TRACKER_NAME / DATA_SUB_FOLDER
        gt_dir.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        link = gt_dir / annotation_file.name
        if not link.exists():
            link.symlink_to(annotation_file.resolve())
        write_results(gt, results, data_dir / "results.json")
        metric = trackeval.metrics.TrackMAP(
            {"IOU_THRESHOLDS": IOU_THRESHOLDS, "PRINT_CONFIG": False}
        )
        with trackeval_stdout_silenced():
            dataset = trackeval.datasets.TAO(
                {
                    "GT_FOLDER": str(gt_dir),
                    "TRACKERS_FOLDER": str(root / "trackers"),
                    "OUTPUT_FOLDER": str(root / "output"),
                    "TRACKERS_TO_EVAL": [TRACKER_NAME],
                    "TRACKER_SUB_FOLDER": DATA_SUB_FOLDER,
                    "PRINT_CONFIG": False,
                }
            )
            output, messages = quiet_evaluator().evaluate([dataset], [metric])
    if messages["TAO"][TRACKER_NAME] != "Success":
        raise RuntimeError(f"TrackEval TAO evaluation failed: {messages['TAO'][TRACKER_NAME]}")
    res = output["TAO"][TRACKER_NAME]["COMBINED_SEQ"]["cls_comb_cls_av"]["TrackMAP"]
    ap = np.asarray(res["AP_all"], np.float64)
    return {
        "TrackAP": float(ap.mean()) * PERCENT,
        "TrackAP50": float(ap[AP50]) * PERCENT,
        "TrackAP75": float(ap[AP75]) * PERCENT,
        "TrackAP50_75": float((ap[AP50] + ap[AP75]) / 2) * PERCENT,
        "TrackAR": float(np.mean(res["AR_all"])) * PERCENT,
    }


def _result_file(path: Path) -> Path:
    """The result json: ``path`` itself, or the one ``*.json`` in the folder ``path``."""
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if len(files) != 1:
            raise DatasetFormatError(
                f"{path}: expected exactly one TAO result *.json in the folder, found "
                f"{[f.name for f in files]}; pass the file itself"
            )
        return files[0]
    if not path.is_file():
        raise DatasetFormatError(f"{path}: no such result file or folder")
    return path


def read_tao_results(path: str | Path, gt: VideoIndex) -> dict[str, TrackResults]:
    """A TAO result json (a list of ``{image_id, track_id, category_id, bbox [x, y, w, h], score}``,
    ``video_id`` optional) -> per-video :class:`TrackResults` of ``gt`` (read with ``read_tao``).

    Categories merged into another are folded as in the ground truth. A prediction of a category
    outside the index's vocabulary cannot be given a class id: it is left out with a warning and
    a count. An image not in the annotation json, a ``video_id`` that contradicts the image's, a
    category id the json does not know, or a track twice on one image is a
    :class:`DatasetFormatError` naming the file, the record and the field."""
    file = _result_file(Path(path))
    for key in ("image_ids", "video_ids", "category_ids", "all_category_ids"):
        if key not in gt.metadata:
            raise ValueError(f"index {gt.name!r} lacks metadata[{key!r}]: read it with read_tao")
    frame_of_image = {
        image_id: (video, frame)
        for video, ids in gt.metadata["image_ids"].items()
        for frame, image_id in enumerate(ids)
    }
    class_of_category = {cid: k for k, cid in enumerate(gt.metadata["category_ids"])}
    merged = gt.metadata.get("merged_category_ids", {})
    known = set(gt.metadata["all_category_ids"])
    records = load_json(file)
    if not isinstance(records, list):
        raise DatasetFormatError(f"{file}: expected a json list of result records")
    rows: dict[str, list[tuple[int, int, list[float], float, int]]] = defaultdict(list)
    seen: dict[tuple[int, int], int] = {}
    outside: Counter[int] = Counter()
    for i, record in enumerate(records):
        at = f"{file}: record {i}"
        image_id = field(record, "image_id", int, at)
        if image_id not in frame_of_image:
            raise DatasetFormatError(
                f"{at}: field 'image_id': {image_id} is not an image of "
                f"{gt.metadata.get('annotation_file', gt.name)}"
            )
        video, frame = frame_of_image[image_id]
        if (
            "video_id" in record
            and field(record, "video_id", int, at) != (gt.metadata["video_ids"][video])
        ):
            raise DatasetFormatError(
                f"{at}: field 'video_id': {record['video_id']}, but image {image_id} belongs to "
                f"video {gt.metadata['video_ids'][video]}"
            )
        category_id = field(record, "category_id", int, at)
        if category_id not in known:
            raise DatasetFormatError(
                f"{at}: field 'category_id': {category_id} is not a category of the annotation json"
            )
        category_id = merged.get(category_id, category_id)
        track_id = field(record, "track_id", int, at)
        first = seen.setdefault((image_id, track_id), i)
        if first != i:
            raise DatasetFormatError(
                f"{at}: field 'track_id': track {track_id} is on image {image_id} twice (first in "
                f"record {first})"
            )
        box = xywh_box(record, "bbox", at)
        score = field(record, "score", (int, float), at)
        if not math.isfinite(score):
            raise DatasetFormatError(f"{at}: field 'score': expected a finite number, got {score}")
        if category_id not in class_of_category:
            outside[category_id] += 1
            continue
        rows[video].append((frame, track_id, box, float(score), class_of_category[category_id]))
    if outside:
        log.warning(
            "%s: left out %d predictions of %d categories outside the vocabulary of %r (no class "
            "id to score them under): %s",
            file,
            outside.total(),
            len(outside),
            gt.name,
            dict(outside),
        )
    return {name: results_from_rows(rows.get(name, [])) for name in gt.metadata["image_ids"]}
