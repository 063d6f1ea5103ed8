"""MOTChallenge benchmarks as downloaded (MOT15 / 2D MOT 2015, MOT16, MOT17, MOT20) -> VideoIndex.

One reader for the four pedestrian benchmarks; they differ only in the gt layout and in which
classes are distractors (TrackEval's ``MotChallenge2DBox`` applies the same table when scoring):

| benchmark | gt columns | targets | ignore regions (distractors) |
|---|---|---|---|
| MOT15 | 10: ``conf`` then world x, y, z (never a class) | every row | conf-0 rows |
| MOT16, MOT17 | 9 | class 1 | classes 2, 7, 8, 12 and conf-0 pedestrians |
| MOT20 | 9 | class 1 | classes 2, 6, 7, 8, 12 and conf-0 pedestrians |

Other classes (vehicles, occluders, ...) are dropped; each sequence logs how many rows its rule
kept, ignored and dropped. The paper's half split (``split_frame = N // 2 + 1``: half-train is the
first ``split_frame`` frames, half-val the rest, indices restarting at 0 and ``source_frame_id``
keeping the MOT number) applies to any of them. MOT17 ships every sequence three times
(``-DPM / -FRCNN / -SDP``); ``detector`` keeps one copy (``data/datasets/mot17.py``).

For scoring by the benchmark's own rules (TrackEval's ``MotChallenge2DBox``, which tells
distractors from conf-0 rows and skips the distractor step for MOT15) :func:`write_official_gt`
writes each sequence's raw gt rows of a split next to its ``seqinfo.ini``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import NativeDataModule, merge_indices
from qdtrack_pl.data.datasets.crowdhuman import PEDESTRIAN, read_crowdhuman
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError, require_path
from qdtrack_pl.data.formats.mot import (
    MOT17_DISTRACTORS,
    MOT17_PEDESTRIAN,
    GtLayout,
    MappingClassRule,
    list_mot_sequences,
    read_gt_rows,
    read_mot_sequence,
    read_seqinfo,
)
from qdtrack_pl.data.index import Video, VideoIndex

BENCHMARKS: tuple[str, ...] = ("MOT15", "MOT16", "MOT17", "MOT20")
DISTRACTORS: dict[str, tuple[int, ...]] = {
    "MOT15": (),  # no classes in 2D MOT 2015
    "MOT16": MOT17_DISTRACTORS,
    "MOT17": MOT17_DISTRACTORS,
    "MOT20": (2, 6, 7, 8, 12),  # MOT17's and 6, non-MOT vehicle
}
MOT17_DETECTORS: tuple[str, ...] = ("FRCNN", "DPM", "SDP")
HALF_SPLITS: tuple[str, ...] = ("half-train", "half-val")
SPLITS: tuple[str, ...] = ("train", "test", *HALF_SPLITS)


def download_url(benchmark: str) -> str:
    """The benchmark's download page (motchallenge.net)."""
    return f"https://motchallenge.net/data/{check_benchmark(benchmark)}/"


def check_benchmark(benchmark: str) -> str:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"MOTChallenge benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    return benchmark


def gt_layout(benchmark: str) -> GtLayout:
    """MOT15 gt rows have ten columns (world coordinates), the later benchmarks nine."""
    return "mot15" if check_benchmark(benchmark) == "MOT15" else "mot16"


def benchmark_class_rule(benchmark: str) -> MappingClassRule:
    """Pedestrians are targets, the benchmark's distractor classes and conf-0 rows are ignore
    regions, every other class is dropped. MOT15 rows all read as pedestrians (no class column)."""
    distractors = DISTRACTORS[check_benchmark(benchmark)]
    return MappingClassRule(targets={MOT17_PEDESTRIAN: 0}, ignored={c: 0 for c in distractors})


def split_frame(num_frames: int) -> int:
    """Number of frames in half-train: ``N // 2 + 1`` (upstream ``mot2coco --split-train``)."""
    return num_frames // 2 + 1


def half_split(video: Video, half: str) -> Video:
    """The ``half-train`` or ``half-val`` part of a sequence, re-indexed from 0."""
    if half not in HALF_SPLITS:
        raise ValueError(f"half must be one of {HALF_SPLITS}, got {half!r}")
    cut = split_frame(len(video))
    part = video.frames[:cut] if half == "half-train" else video.frames[cut:]
    return replace(video, frames=tuple(replace(f, index=i) for i, f in enumerate(part)))


def sequence_dirs(split_dir: Path, benchmark: str, detector: str | None) -> list[Path]:
    """The sequence folders of a split; for MOT17 with ``detector`` only ``MOT17-XX-<detector>``."""
    if detector is not None:
        if benchmark != "MOT17":
            raise ValueError(
                f"detector={detector!r}: only MOT17 ships detector copies; use null for {benchmark}"
            )
        if detector not in MOT17_DETECTORS:
            raise ValueError(
                f"MOT17 detector must be one of {MOT17_DETECTORS} or None, got {detector!r}"
            )
    sequences = list_mot_sequences(split_dir)
    if detector is None:
        return sequences
    chosen = [s for s in sequences if s.name.endswith(f"-{detector}")]
    if not chosen:
        raise DatasetNotFoundError(
            f"MOT17: no sequence folder named MOT17-XX-{detector} in {split_dir}; expected the "
            f"folders of the official download ({download_url('MOT17')})"
        )
    return chosen


def _split_dir(root: Path, folder: str, benchmark: str) -> Path:
    return require_path(
        Path(root) / folder,
        dataset=benchmark,
        what=f"the {folder}/ folder of sequences",
        download_url=download_url(benchmark),
    )


def read_motchallenge(
    root: Path, split: str, *, benchmark: str, detector: str | None = None
) -> VideoIndex:
    """``train`` / ``test`` or the half splits ``half-train`` / ``half-val`` of the train folder,
    with the benchmark's gt layout and class rule."""
    check_benchmark(benchmark)
    if split not in SPLITS:
        raise ValueError(f"{benchmark} split must be one of {SPLITS}, got {split!r}")
    folder = "test" if split == "test" else "train"
    split_dir = _split_dir(root, folder, benchmark)
    rule, layout = benchmark_class_rule(benchmark), gt_layout(benchmark)
    videos = [
        read_mot_sequence(d, rule, require_gt=split != "test", layout=layout)
        for d in sequence_dirs(split_dir, benchmark, detector)
    ]
    if split in HALF_SPLITS:
        videos = [half_split(v, split) for v in videos]
    return VideoIndex(
        videos=tuple(videos),
        class_names=PEDESTRIAN,
        name=f"{benchmark.lower()}_{split}",
        metadata={"benchmark": benchmark, "detector": detector},
    )


def write_official_gt(
    root: Path, split: str, out_dir: Path, *, benchmark: str, detector: str | None = None
) -> list[str]:
    """``<out_dir>/<seq>/{seqinfo.ini, gt/gt.txt}`` holding the raw gt lines of ``split``'s frames
    (``train`` / ``half-train`` / ``half-val``), for ``evaluate_mot_challenge``; returns the
    sequence names. Results must then use the MOT frame numbers (``Frame.source_frame_id``)."""
    if split not in ("train", *HALF_SPLITS):
        raise ValueError(f"official gt exists for train, half-train, half-val; got {split!r}")
    split_dir = _split_dir(root, "train", benchmark)
    names = []
    for seq_dir in sequence_dirs(split_dir, benchmark, detector):
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        cut = split_frame(info.seq_length)
        first, last = {
            "train": (1, info.seq_length),
            "half-train": (1, cut),
            "half-val": (cut + 1, info.seq_length),
        }[split]
        gt_path = seq_dir / "gt" / "gt.txt"
        rows = read_gt_rows(gt_path, gt_layout(benchmark))  # validates every line before copying
        keep = set(rows.line_numbers[(rows.values[:, 0] >= first) & (rows.values[:, 0] <= last)])
        lines = gt_path.read_text().splitlines()
        out = Path(out_dir) / seq_dir.name
        (out / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seq_dir / "seqinfo.ini", out / "seqinfo.ini")
        (out / "gt" / "gt.txt").write_text("".join(f"{lines[n - 1]}\n" for n in sorted(keep)))
        names.append(seq_dir.name)
    return names


class MOTChallengeDataModule(NativeDataModule):
    """A MOTChallenge benchmark folder (``<root>/{train,test}/<sequence>/...``).

    Args:
        benchmark: ``MOT15`` | ``MOT16`` | ``MOT17`` | ``MOT20``: gt layout, class rule and the
            rules ``qdtrack-eval results=...`` scores result files with.
        detector: MOT17 only: which of the three identical sequence copies to read (None = all).
        crowdhuman_root: also train on CrowdHuman's train split, read from this folder.
    """

    default_splits = {"train": "half-train", "val": "half-val", "test": "half-val"}

    def __init__(
        self,
        root: str | Path,
        *,
        benchmark: str = "MOT17",
        detector: str | None = None,
        crowdhuman_root: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.benchmark = check_benchmark(benchmark)
        if detector is not None and benchmark != "MOT17":
            raise ValueError(
                f"detector={detector!r}: only MOT17 ships detector copies; use null for {benchmark}"
            )
        self.detector = detector
        self.crowdhuman_root = None if crowdhuman_root is None else Path(crowdhuman_root)
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return PEDESTRIAN

    def build_index(self, split: str) -> VideoIndex:
        index = read_motchallenge(
            self.root, self.dataset_split(split), benchmark=self.benchmark, detector=self.detector
        )
        if split == "train" and self.crowdhuman_root is not None:
            crowd = read_crowdhuman(self.crowdhuman_root, "train")
            index = merge_indices([index, crowd], name=f"{index.name}+crowdhuman_train")
        return index

    def official_ground_truth(self, split: str, out_dir: Path) -> list[str]:
        """The raw gt of stage split ``split`` under ``out_dir`` (see :func:`write_official_gt`)
        for TrackEval's ``MotChallenge2DBox``; returns the sequence names."""
        name = self.dataset_split(split)
        if name == "test":
            raise DatasetFormatError(
                f"{self.benchmark} test: the test split has no public ground truth; score "
                "results on train, half-train or half-val (data.splits.val=...)"
            )
        return write_official_gt(
            self.root, name, out_dir, benchmark=self.benchmark, detector=self.detector
        )
