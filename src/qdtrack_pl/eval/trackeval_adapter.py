"""Score tracking results with TrackEval's HOTA, CLEAR (MOTA) and Identity (IDF1) metrics.

The metrics are TrackEval's own classes; this module only builds the per-sequence, per-class data
they consume (``gt_ids``, ``tracker_ids``, IoU ``similarity_scores``, ``num_*`` counts) from a
:class:`VideoIndex` and :class:`TrackResults`, following TrackEval's MOTChallenge preprocessing:

* Ground-truth rows with ``ignore=True`` are **distractors**. In every frame the tracker boxes are
  matched to the ground truth (of the evaluated class, plus ignored rows of any class: ignore
  regions are class-agnostic) by the Hungarian algorithm on IoU >= 0.5, as TrackEval does; tracker
  boxes matched to a distractor are removed, then the distractors themselves are removed. A box on
  an ignored region is therefore neither a TP nor an FP.
* ``visibility`` is not used, exactly as in TrackEval's MOTChallenge evaluation: a zero-visibility
  row is ground truth like any other unless its reader marked it ``ignore`` (the MOT17 reader
  ignores the rows the benchmark does not consider, i.e. ``conf == 0`` and distractor classes).
* Only annotated frames are timesteps (``Frame.annotated``); results on other frames are dropped.
* Results with class -1 (unknown) count for the class-agnostic evaluation, and for the class when
  the index has a single one.

Each class is evaluated separately and combined over sequences (``combine_sequences``) and over
classes (``combine_classes_class_averaged``); a class-agnostic evaluation (every class pooled, ids
and boxes only) is reported too. The headline ``metrics`` are the class average when there are
several classes, else the single class; ``metrics["all/<name>"]`` are the class-agnostic values.
Percentages are in 0-100.

TrackEval 1.3 runs unmodified with numpy 2 (no removed ``np.float``-style aliases), so no
compatibility shim is needed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import trackeval
from scipy.optimize import linear_sum_assignment

from qdtrack_pl.data.index import FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import UNKNOWN_CLASS, TrackResults
from qdtrack_pl.ops.box_iou import box_iou
from qdtrack_pl.progress import progress_bar

PERCENT = 100.0
DISTRACTOR_IOU = 0.5  # TrackEval's fixed threshold for matching tracker boxes to distractors
EPS = float(np.finfo("float").eps)  # TrackEval's tolerance in every threshold comparison
ALL_CLASSES = "all"  # name of the class-agnostic evaluation
MOT_TRACKER_NAME = "results"

# TrackEval field -> our key, and whether it is a ratio (reported in percent)
HOTA_FIELDS = {
    "HOTA": "HOTA", "DetA": "DetA", "AssA": "AssA", "DetRe": "DetRe", "DetPr": "DetPr",
    "AssRe": "AssRe", "AssPr": "AssPr", "LocA": "LocA",
}  # fmt: skip
CLEAR_FIELDS = {
    "MOTA": ("MOTA", True), "MOTP": ("MOTP", True), "MODA": ("MODA", True),
    "sMOTA": ("sMOTA", True), "CLR_Re": ("Recall", True), "CLR_Pr": ("Precision", True),
    "CLR_TP": ("TP", False), "CLR_FP": ("FP", False), "CLR_FN": ("FN", False),
    "IDSW": ("IDSW", False), "MT": ("MT", False), "PT": ("PT", False), "ML": ("ML", False),
    "Frag": ("Frag", False),
}  # fmt: skip
IDENTITY_FIELDS = {
    "IDF1": ("IDF1", True), "IDR": ("IDR", True), "IDP": ("IDP", True),
    "IDTP": ("IDTP", False), "IDFP": ("IDFP", False), "IDFN": ("IDFN", False),
}  # fmt: skip
COUNT_FIELDS = ("GT_Dets", "GT_IDs", "Dets", "IDs")
AGNOSTIC_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")  # copied as "all/<key>"
COUNT_KEYS = frozenset(
    [key for key, is_ratio in (*CLEAR_FIELDS.values(), *IDENTITY_FIELDS.values()) if not is_ratio]
    + list(COUNT_FIELDS)
)
TABLE_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "FP", "FN", "MT", "ML")


@contextlib.contextmanager
def trackeval_stdout_silenced() -> Iterator[None]:
    """TrackEval prints its progress ("Evaluating 1 tracker(s) on ...") on stdout even with every
    print option off; run its dataset classes and ``Evaluator.evaluate`` inside this so that only
    our table reaches the user (every protocol: MOTChallenge, BDD100K, TAO)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def quiet_evaluator() -> trackeval.Evaluator:
    """A single-process TrackEval evaluator that prints, plots and writes nothing and raises on
    the first error (our callers turn it into a message naming the input)."""
    return trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "NUM_PARALLEL_CORES": 1,
            "BREAK_ON_ERROR": True,
            "RETURN_ON_ERROR": False,
            "LOG_ON_ERROR": None,
            "PRINT_RESULTS": False,
            "PRINT_ONLY_COMBINED": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "DISPLAY_LESS_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_EMPTY_CLASSES": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
        }
    )


@dataclass(frozen=True)
class EvalResult:
    """Metric values by name. ``metrics``: headline (class-averaged if several classes) plus
    ``all/<key>`` class-agnostic values; ``per_class``: each class over all sequences;
    ``per_sequence``: class-agnostic, per sequence; ``class_agnostic``: every class pooled."""

    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    per_sequence: dict[str, dict[str, float]] = field(default_factory=dict)
    class_agnostic: dict[str, float] = field(default_factory=dict)
    headline: str = ""  # what ``metrics`` averages, in words

    def table(self) -> str:
        """A fixed-width text table: headline, then (with several classes) pooled and per-class
        rows, then one class-agnostic row per sequence."""
        rows: list[tuple[str, Mapping[str, float]]] = [(self.headline or "headline", self.metrics)]
        if len(self.per_class) > 1:
            rows.append(("all classes pooled", self.class_agnostic))
            rows += [(f"class {name}", values) for name, values in self.per_class.items()]
        rows += [(f"seq {name}", values) for name, values in self.per_sequence.items()]
        width = max(len(label) for label, _ in rows)
        lines = [" ".join([" " * width, *(f"{key:>8}" for key in TABLE_KEYS)])]
        for label, values in rows:
            cells = (_cell(key, values.get(key)) for key in TABLE_KEYS)
            lines.append(" ".join([label.ljust(width), *cells]))
        return "\n".join(lines)


def _cell(key: str, value: float | None) -> str:
    if value is None:
        return f"{'-':>8}"
    return f"{value:8.0f}" if key in COUNT_KEYS else f"{value:8.2f}"


def _metrics(iou_threshold: float) -> dict[str, Any]:
    config = {"THRESHOLD": iou_threshold, "PRINT_CONFIG": False}
    return {
        "HOTA": trackeval.metrics.HOTA(),
        "CLEAR": trackeval.metrics.CLEAR(dict(config)),
        "Identity": trackeval.metrics.Identity(dict(config)),
        "Count": trackeval.metrics.Count(),
    }


def _summarise(res: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """TrackEval's nested results of one (class, sequence set) -> flat {key: value}."""
    out: dict[str, float] = {}
    for name, key in HOTA_FIELDS.items():
        out[key] = float(np.mean(res["HOTA"][name])) * PERCENT
    for fields_map, metric in ((CLEAR_FIELDS, "CLEAR"), (IDENTITY_FIELDS, "Identity")):
        for name, (key, is_ratio) in fields_map.items():
            out[key] = float(res[metric][name]) * (PERCENT if is_ratio else 1.0)
    for name in COUNT_FIELDS:
        out[name] = float(res["Count"][name])
    return out


def _box_ious(gt_boxes: np.ndarray, tracker_boxes: np.ndarray) -> np.ndarray:
    """IoU of xyxy boxes as TrackEval computes it (``_BaseDataset._calculate_box_ious``): the
    same float64 operations as :func:`~qdtrack_pl.ops.box_iou.box_iou` with the union floored at
    TrackEval's tolerance, so the values agree bit for bit (boxes of area below 2e-16 px² aside,
    which TrackEval sets to 0 and no dataset holds)."""
    return box_iou(gt_boxes.astype(np.float64), tracker_boxes.astype(np.float64), eps=EPS)


def _remove_distractor_matches(
    candidate_boxes: np.ndarray, candidate_ignored: np.ndarray, tracker_boxes: np.ndarray
) -> np.ndarray:
    """Boolean mask of the tracker boxes to keep: drop those Hungarian-matched to a distractor."""
    keep = np.ones(len(tracker_boxes), bool)
    if not (len(candidate_boxes) and len(tracker_boxes) and candidate_ignored.any()):
        return keep
    scores = _box_ious(candidate_boxes, tracker_boxes)
    scores[scores < DISTRACTOR_IOU - EPS] = 0
    rows, cols = linear_sum_assignment(-scores)
    matched = scores[rows, cols] > EPS
    keep[cols[matched & candidate_ignored[rows]]] = False
    return keep


def _relabel(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Ids -> contiguous 0..K-1 over the sequence (TrackEval's metrics index arrays by id)."""
    unique = np.unique(np.concatenate(ids_per_frame)) if ids_per_frame else np.zeros(0, np.int64)
    return [np.searchsorted(unique, ids) for ids in ids_per_frame], len(unique)


class Timestep(NamedTuple):
    """One annotated frame as TrackEval's metrics see it, with the original ids."""

    frame_index: int  # 0-based Frame.index
    gt_ids: np.ndarray  # (G,) ground-truth ids, distractors removed
    tracker_ids: np.ndarray  # (T,) track ids, boxes matched to a distractor removed
    similarity: np.ndarray  # (G, T) IoU


def timesteps(
    video: Video,
    results: TrackResults,
    class_id: int | None = None,
    unknown_is_class: bool = False,
) -> Iterator[Timestep]:
    """TrackEval's MOTChallenge preprocessing of one sequence, frame by frame: annotated frames
    only; for one class (``None``: class-agnostic) its ground truth and tracks; tracker boxes
    matched to a distractor (``ignore`` rows) removed, then the distractors."""
    frames = [f for f in video.frames if f.annotated]
    order = np.argsort(results.frame_indices, kind="stable")
    bounds = np.searchsorted(results.frame_indices[order], [[f.index, f.index + 1] for f in frames])
    for frame, (start, stop) in zip(frames, bounds, strict=True):
        ann: FrameAnnotations = frame.annotations
        rows = order[start:stop]
        tr_boxes, tr_ids, tr_classes = (
            results.boxes[rows],
            results.track_ids[rows],
            results.class_ids[rows],
        )
        if class_id is None:
            gt_mask, candidates, tr_mask = (
                ~ann.ignore,
                np.ones(len(ann), bool),
                np.ones(len(rows), bool),
            )
        else:
            of_class = ann.class_ids == class_id
            gt_mask, candidates = of_class & ~ann.ignore, of_class | ann.ignore
            tr_mask = (tr_classes == class_id) | (unknown_is_class & (tr_classes == UNKNOWN_CLASS))
        tr_boxes, tr_ids = tr_boxes[tr_mask], tr_ids[tr_mask]
        keep = _remove_distractor_matches(ann.boxes[candidates], ann.ignore[candidates], tr_boxes)
        tr_boxes, tr_ids = tr_boxes[keep], tr_ids[keep]
        gt_ids = ann.track_ids[gt_mask]
        _check_unique(video.name, frame.index, "ground-truth", gt_ids)
        _check_unique(video.name, frame.index, "tracker", tr_ids)
        yield Timestep(frame.index, gt_ids, tr_ids, _box_ious(ann.boxes[gt_mask], tr_boxes))


def _sequence_data(
    video: Video, results: TrackResults, class_id: int | None, unknown_is_class: bool
) -> dict[str, Any]:
    """TrackEval's preprocessed data for one sequence and one class (``None``: class-agnostic)."""
    steps = list(timesteps(video, results, class_id, unknown_is_class))
    gt_ids, num_gt_ids = _relabel([step.gt_ids for step in steps])
    tracker_ids, num_tracker_ids = _relabel([step.tracker_ids for step in steps])
    return {
        "num_timesteps": len(steps),
        "num_gt_ids": num_gt_ids,
        "num_tracker_ids": num_tracker_ids,
        "num_gt_dets": int(sum(len(ids) for ids in gt_ids)),
        "num_tracker_dets": int(sum(len(ids) for ids in tracker_ids)),
        "gt_ids": gt_ids,
        "tracker_ids": tracker_ids,
        "similarity_scores": [step.similarity for step in steps],
        "seq": video.name,
    }


def _check_unique(video: str, frame: int, what: str, ids: np.ndarray) -> None:
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"video {video!r} frame {frame}: {what} track ids repeat within the frame")


def _checked_results(gt: VideoIndex, results: Mapping[str, Any]) -> dict[str, TrackResults]:
    names = [v.name for v in gt.videos]
    missing, extra = set(names) - set(results), set(results) - set(names)
    if missing or extra:
        raise ValueError(
            f"results must cover exactly the videos of {gt.name or 'the ground truth'!r}: "
            f"missing {sorted(missing)[:5]}, unknown {sorted(extra)[:5]}"
        )
    checked = {}
    for video in gt.videos:
        rows = TrackResults.coerce(results[video.name], name=f"results[{video.name!r}]")
        if len(rows.frame_indices) and rows.frame_indices.max() >= len(video):
            raise ValueError(
                f"results[{video.name!r}]: frame index {rows.frame_indices.max()} is beyond the "
                f"video's {len(video)} frames"
            )
        if len(rows.class_ids) and rows.class_ids.max() >= len(gt.class_names):
            raise ValueError(
                f"results[{video.name!r}]: class id {rows.class_ids.max()} is not one of the "
                f"{len(gt.class_names)} classes {gt.class_names}"
            )
        checked[video.name] = rows
    return checked


def evaluate_tracking(
    gt: VideoIndex,
    results: Mapping[str, Any],
    iou_threshold: float = 0.5,
    class_names: Sequence[str] | None = None,
    ignore_empty_classes: bool = True,
    show_progress: bool = False,
) -> EvalResult:
    """Score ``results`` (video name -> :class:`TrackResults` or anything with its fields) against
    ``gt``, with CLEAR/Identity matching at ``iou_threshold`` (HOTA sweeps its own thresholds).

    ``class_names`` selects the classes scored per class (default: all of ``gt.class_names``).
    With ``ignore_empty_classes`` a class with neither ground truth nor results in the evaluated
    videos is left out of the class average (TrackEval's option; otherwise it would count as 0).
    ``show_progress`` draws a progress bar over the (class, sequence) evaluations.
    """
    if not gt.videos:
        raise ValueError("the ground truth holds no videos")
    names = tuple(class_names) if class_names is not None else gt.class_names
    unknown = [n for n in names if n not in gt.class_names]
    if unknown or not names:
        raise ValueError(
            f"class_names {unknown or list(names)} must be a non-empty subset of {gt.class_names}"
        )
    checked = _checked_results(gt, results)
    metrics = _metrics(iou_threshold)
    unknown_is_class = len(gt.class_names) == 1

    def run(class_id: int | None) -> dict[str, dict[str, Any]]:
        per_seq = {}
        for video in gt.videos:
            data = _sequence_data(video, checked[video.name], class_id, unknown_is_class)
            per_seq[video.name] = {name: m.eval_sequence(data) for name, m in metrics.items()}
            advance(1)
        return per_seq

    def combine(per_seq: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return {
            name: m.combine_sequences({s: r[name] for s, r in per_seq.items()})
            for name, m in metrics.items()
        }

    total = (len(names) + 1) * len(gt.videos)
    with progress_bar(total, "scoring tracks (TrackEval)", enabled=show_progress) as advance:
        per_class_raw = {name: combine(run(gt.class_names.index(name))) for name in names}
        agnostic_per_seq = run(None)
    agnostic = _summarise(combine(agnostic_per_seq))
    per_class = {name: _summarise(raw) for name, raw in per_class_raw.items()}
    if len(names) > 1:
        averaged = {
            name: metric.combine_classes_class_averaged(
                {c: raw[name] for c, raw in per_class_raw.items()}, ignore_empty_classes
            )
            for name, metric in metrics.items()
        }
        headline, described = _summarise(averaged), f"class average of {len(names)} classes"
    else:
        headline, described = dict(per_class[names[0]]), f"class {names[0]}"
    headline.update({f"{ALL_CLASSES}/{key}": agnostic[key] for key in AGNOSTIC_KEYS})
    return EvalResult(
        metrics=headline,
        per_class=per_class,
        per_sequence={seq: _summarise(res) for seq, res in agnostic_per_seq.items()},
        class_agnostic=agnostic,
        headline=described,
    )


def evaluate_mot_challenge(
    gt_folder: str | Path,
    results_folder: str | Path,
    seqmap: str | Path | Sequence[str],
    benchmark: str = "MOT17",
    iou_threshold: float = 0.5,
) -> EvalResult:
    """Official MOTChallenge scoring: TrackEval's ``MotChallenge2DBox`` on text files.

    ``gt_folder`` holds ``<seq>/gt/gt.txt`` and ``<seq>/seqinfo.ini``; ``results_folder`` holds
    ``<seq>.txt``; ``seqmap`` is a seqmap file (header line, then one name per line) or the
    sequence names. Every folder is passed explicitly (TrackEval's defaults point into its install),
    nothing is written, no plots, no multiprocessing. Pedestrians only, as the benchmark.
    """
    gt_folder, results_folder = Path(gt_folder), Path(results_folder)
    for folder, what in ((gt_folder, "gt_folder"), (results_folder, "results_folder")):
        if not folder.is_dir():
            raise ValueError(f"{what} {folder} is not a directory")
    dataset_config: dict[str, Any] = {
        "GT_FOLDER": str(gt_folder),
        "TRACKERS_FOLDER": str(results_folder.parent),
        "OUTPUT_FOLDER": str(results_folder.parent),
        "TRACKERS_TO_EVAL": [results_folder.name],
        "TRACKER_DISPLAY_NAMES": None,
        "CLASSES_TO_EVAL": ["pedestrian"],
        "BENCHMARK": benchmark,
        "SPLIT_TO_EVAL": "train",
        "INPUT_AS_ZIP": False,
        "PRINT_CONFIG": False,
        "DO_PREPROC": True,
        "TRACKER_SUB_FOLDER": "",
        "OUTPUT_SUB_FOLDER": "",
        "SEQMAP_FOLDER": None,
        "SEQMAP_FILE": None,
        "SEQ_INFO": None,
        "GT_LOC_FORMAT": "{gt_folder}/{seq}/gt/gt.txt",
        "SKIP_SPLIT_FOL": True,
    }
    if isinstance(seqmap, (str, Path)):
        if not Path(seqmap).is_file():
            raise ValueError(f"seqmap {seqmap} is not a file")
        dataset_config["SEQMAP_FILE"] = str(seqmap)
    else:
        dataset_config["SEQ_INFO"] = {name: None for name in seqmap}  # lengths from seqinfo.ini
    evaluator = quiet_evaluator()
    metrics = _metrics(iou_threshold)
    with trackeval_stdout_silenced():
        dataset = trackeval.datasets.MotChallenge2DBox(dataset_config)
        output, _ = evaluator.evaluate([dataset], [m for n, m in metrics.items() if n != "Count"])
    res = output[dataset.get_name()][results_folder.name]
    combined = _summarise(res["COMBINED_SEQ"]["pedestrian"])
    per_sequence = {
        seq: _summarise(r["pedestrian"]) for seq, r in res.items() if seq != "COMBINED_SEQ"
    }
    headline = dict(combined)
    headline.update({f"{ALL_CLASSES}/{key}": combined[key] for key in AGNOSTIC_KEYS})
    return EvalResult(
        metrics=headline,
        per_class={"pedestrian": combined},
        per_sequence=per_sequence,
        class_agnostic=combined,
        headline=f"{benchmark} pedestrian (MotChallenge2DBox)",
    )
