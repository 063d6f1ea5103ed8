"""MOT17 as downloaded (``<root>/{train,test}/MOT17-02-FRCNN/...``) -> VideoIndex.

Three things set MOT17 apart from a plain MOTChallenge folder (reference spec 4.2, 4.6, P14):

- Each sequence ships three times (-DPM, -FRCNN, -SDP) with identical frames and gt. Upstream keeps
  all three, so every frame is seen 3x per epoch and evaluated 3x; here one ``detector`` copy is
  kept by default (``None`` keeps all three, as upstream).
- The paper's validation protocol splits each training sequence in time: with
  ``split_frame = N // 2 + 1`` the first ``split_frame`` frames are half-train and the rest
  half-val. Frame indices restart at 0 in each half; ``source_frame_id`` keeps the MOT number.
- Pedestrians (class 1) are targets; the distractor classes 2, 7, 8, 12 and conf-0 pedestrian rows
  are kept as ignore regions (the official evaluation's rules); other classes are dropped. This is
  :func:`qdtrack_pl.data.formats.mot.mot17_class_rule`.

For the official scoring (TrackEval's ``MotChallenge2DBox``, which tells distractors from conf-0
rows) :func:`write_official_gt` writes each sequence's raw gt rows of a split, like upstream's
``gt_half-val.txt``: original frame numbers and every class, next to the original ``seqinfo.ini``.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import NativeDataModule, merge_indices
from qdtrack_pl.data.datasets.crowdhuman import PEDESTRIAN, read_crowdhuman
from qdtrack_pl.data.errors import DatasetNotFoundError, require_path
from qdtrack_pl.data.formats.mot import (
    list_mot_sequences,
    mot17_class_rule,
    read_gt_rows,
    read_mot_sequence,
    read_seqinfo,
)
from qdtrack_pl.data.index import Video, VideoIndex

DOWNLOAD_URL = "https://motchallenge.net/data/MOT17/"
CLASS_NAMES: tuple[str, ...] = ("pedestrian",)
DETECTORS: tuple[str, ...] = ("FRCNN", "DPM", "SDP")
HALF_SPLITS: tuple[str, ...] = ("half-train", "half-val")
SPLITS: tuple[str, ...] = ("train", "test", *HALF_SPLITS)


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


def sequence_dirs(split_dir: Path, detector: str | None) -> list[Path]:
    """The sequence folders of one detector (``MOT17-XX-<detector>``), or all when ``None``."""
    if detector is not None and detector not in DETECTORS:
        raise ValueError(f"MOT17 detector must be one of {DETECTORS} or None, got {detector!r}")
    sequences = list_mot_sequences(split_dir)
    if detector is None:
        return sequences
    chosen = [s for s in sequences if s.name.endswith(f"-{detector}")]
    if not chosen:
        raise DatasetNotFoundError(
            f"MOT17: no sequence folder named MOT17-XX-{detector} in {split_dir}; expected the "
            f"folders of the official download ({DOWNLOAD_URL})"
        )
    return chosen


def read_mot17(root: Path, split: str, *, detector: str | None = "FRCNN") -> VideoIndex:
    """``train`` / ``test`` or the paper's ``half-train`` / ``half-val`` of the train folder."""
    if split not in SPLITS:
        raise ValueError(f"MOT17 split must be one of {SPLITS}, got {split!r}")
    folder = "test" if split == "test" else "train"
    split_dir = require_path(
        Path(root) / folder,
        dataset="MOT17",
        what=f"the {folder}/ folder of sequences",
        download_url=DOWNLOAD_URL,
    )
    rule = mot17_class_rule()
    videos = [
        read_mot_sequence(d, rule, require_gt=split != "test")
        for d in sequence_dirs(split_dir, detector)
    ]
    if split in HALF_SPLITS:
        videos = [half_split(v, split) for v in videos]
    return VideoIndex(
        videos=tuple(videos),
        class_names=CLASS_NAMES,
        name=f"mot17_{split}",
        metadata={"detector": detector},
    )


def write_official_gt(
    root: Path, split: str, out_dir: Path, *, detector: str | None = "FRCNN"
) -> list[str]:
    """``<out_dir>/<seq>/{seqinfo.ini, gt/gt.txt}`` holding the raw gt lines of ``split``'s frames
    (``train`` / ``half-train`` / ``half-val``), for ``evaluate_mot_challenge``; returns the
    sequence names. Results must then use the MOT frame numbers (``Frame.source_frame_id``)."""
    if split not in ("train", *HALF_SPLITS):
        raise ValueError(f"official gt exists for train, half-train, half-val; got {split!r}")
    split_dir = require_path(
        Path(root) / "train",
        dataset="MOT17",
        what="the train/ folder of sequences",
        download_url=DOWNLOAD_URL,
    )
    names = []
    for seq_dir in sequence_dirs(split_dir, detector):
        info = read_seqinfo(seq_dir / "seqinfo.ini")
        cut = split_frame(info.seq_length)
        first, last = {
            "train": (1, info.seq_length),
            "half-train": (1, cut),
            "half-val": (cut + 1, info.seq_length),
        }[split]
        gt_path = seq_dir / "gt" / "gt.txt"
        rows = read_gt_rows(gt_path)  # validates every line before copying
        keep = set(rows.line_numbers[(rows.values[:, 0] >= first) & (rows.values[:, 0] <= last)])
        lines = gt_path.read_text().splitlines()
        out = Path(out_dir) / seq_dir.name
        (out / "gt").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(seq_dir / "seqinfo.ini", out / "seqinfo.ini")
        (out / "gt" / "gt.txt").write_text("".join(f"{lines[n - 1]}\n" for n in sorted(keep)))
        names.append(seq_dir.name)
    return names


class MOT17DataModule(NativeDataModule):
    """MOT17 (+ optionally CrowdHuman train images for training, MMTracking's variant).

    Args:
        detector: which of the three identical sequence copies to read (None = all three).
        crowdhuman_root: also train on CrowdHuman's train split, read from this folder.
    """

    default_splits = {"train": "half-train", "val": "half-val", "test": "half-val"}

    def __init__(
        self,
        root: str | Path,
        *,
        detector: str | None = "FRCNN",
        crowdhuman_root: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.detector = detector
        self.crowdhuman_root = None if crowdhuman_root is None else Path(crowdhuman_root)
        super().__init__(root, **kwargs)

    @property
    def class_names(self) -> tuple[str, ...]:
        return PEDESTRIAN

    def build_index(self, split: str) -> VideoIndex:
        index = read_mot17(self.root, self.dataset_split(split), detector=self.detector)
        if split == "train" and self.crowdhuman_root is not None:
            crowd = read_crowdhuman(self.crowdhuman_root, "train")
            index = merge_indices([index, crowd], name="mot17_crowdhuman_train")
        return index
