"""MOT17 as downloaded (``<root>/{train,test}/MOT17-02-FRCNN/...``) -> VideoIndex.

Three things set MOT17 apart from a plain MOTChallenge folder (docs/method.md §4.2, §4.6, §8.14):

- Each sequence ships three times (-DPM, -FRCNN, -SDP) with identical frames and gt. Upstream keeps
  all three, so every frame is seen 3x per epoch and evaluated 3x; here one ``detector`` copy is
  kept by default (``None`` keeps all three, as upstream).
- The paper's validation protocol splits each training sequence in time: with
  ``split_frame = N // 2 + 1`` the first ``split_frame`` frames are half-train and the rest
  half-val. Frame indices restart at 0 in each half; ``source_frame_id`` keeps the MOT number.
- Pedestrians (class 1) are targets; the distractor classes 2, 7, 8, 12 and conf-0 pedestrian rows
  are kept as ignore regions (the official evaluation's rules); other classes are dropped. This is
  :func:`qdtrack_pl.data.formats.mot.mot17_class_rule`.

The reading itself is the shared MOTChallenge reader (``data/datasets/motchallenge.py``) with
``benchmark="MOT17"``; this module keeps MOT17's defaults (the FRCNN copy) and names.

For the official scoring (TrackEval's ``MotChallenge2DBox``, which tells distractors from conf-0
rows) :func:`write_official_gt` writes each sequence's raw gt rows of a split, like upstream's
``gt_half-val.txt``: original frame numbers and every class, next to the original ``seqinfo.ini``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qdtrack_pl.data.datasets.motchallenge import (
    MOT17_DETECTORS,
    MOTChallengeDataModule,
    download_url,
    read_motchallenge,
    split_frame,
)
from qdtrack_pl.data.datasets.motchallenge import write_official_gt as write_benchmark_gt
from qdtrack_pl.data.index import VideoIndex

DOWNLOAD_URL = download_url("MOT17")
CLASS_NAMES: tuple[str, ...] = ("pedestrian",)
DETECTORS: tuple[str, ...] = MOT17_DETECTORS
__all__ = ["MOT17DataModule", "read_mot17", "split_frame", "write_official_gt"]


def read_mot17(root: Path, split: str, *, detector: str | None = "FRCNN") -> VideoIndex:
    """``train`` / ``test`` or the paper's ``half-train`` / ``half-val`` of the train folder."""
    return read_motchallenge(root, split, benchmark="MOT17", detector=detector)


def write_official_gt(
    root: Path, split: str, out_dir: Path, *, detector: str | None = "FRCNN"
) -> list[str]:
    """``<out_dir>/<seq>/{seqinfo.ini, gt/gt.txt}`` holding the raw gt lines of ``split``'s frames
    (``train`` / ``half-train`` / ``half-val``), for ``evaluate_mot_challenge``; returns the
    sequence names. Results must then use the MOT frame numbers (``Frame.source_frame_id``)."""
    return write_benchmark_gt(root, split, out_dir, benchmark="MOT17", detector=detector)


class MOT17DataModule(MOTChallengeDataModule):
    """MOT17 (+ optionally CrowdHuman train images for training, MMTracking's variant).

    Args:
        detector: which of the three identical sequence copies to read (None = all three).
        crowdhuman_root: also train on CrowdHuman's train split, read from this folder.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        detector: str | None = "FRCNN",
        crowdhuman_root: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            root, benchmark="MOT17", detector=detector, crowdhuman_root=crowdhuman_root, **kwargs
        )
