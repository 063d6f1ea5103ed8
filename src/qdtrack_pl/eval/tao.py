"""TAO evaluation: a TAO result json scored by TrackEval's ``TAO`` dataset class with Track mAP.

TrackEval evaluates against the official annotation json itself, so TAO's own rules apply: only
classes with ground truth are scored; predictions of a class absent from a video count as false
positives only if the class is in the video's ``neg_category_ids``; unmatched predictions of
``not_exhaustive_category_ids`` classes are not penalised; ``merged`` categories are folded; at most
300 predictions per image. Track AP is class-averaged; ``TrackAP`` spans IoU 0.5:0.95 (TrackEval's
default) and ``TrackAP50_75`` is the mean over IoU 0.5 and 0.75, the "AP" of QDTrack's TAO tables
(spec 6, P16: always state which one is reported). TETA (SysCV/tet) has no package on PyPI.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import trackeval

from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.eval.bdd100k import require_classes
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import quiet_evaluator

TRACKER_NAME = "qdtrack"
DATA_SUB_FOLDER = "data"
PERCENT = 100.0
IOU_THRESHOLDS = np.arange(0.5, 0.96, 0.05)  # TrackMAP's default, named for the summary indices
AP50, AP75 = 0, 5  # positions of IoU 0.5 and 0.75 in IOU_THRESHOLDS


def result_records(gt: VideoIndex, results: Mapping[str, TrackResults]) -> list[dict]:
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
        evaluator = quiet_evaluator()
        metric = trackeval.metrics.TrackMAP(
            {"IOU_THRESHOLDS": IOU_THRESHOLDS, "PRINT_CONFIG": False}
        )
        output, messages = evaluator.evaluate([dataset], [metric])
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
