"""``data=synth``: the embedded benchmark (train / val to tune / test to report), generated on
first use, behind the CPU defaults, tests and tutorials."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qdtrack_pl.data.datamodule import VideoDataModule
from qdtrack_pl.data.formats.mot import read_mot_split, synth_class_rule
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.data.synth.config import SPLITS, SynthConfig
from qdtrack_pl.data.synth.generate import ensure_synth_dataset


class SynthDataModule(VideoDataModule):
    """Generates the synthetic dataset below ``root`` on first use and reads it as MOTChallenge.

    Args:
        root: cache folder; each generator config gets its own ``synth-<hash>`` subfolder.
        synth: :class:`SynthConfig` or its fields as a mapping (None = defaults).
        show_progress: draw a progress bar while generating.
        num_classes, class_names: config values the model interpolates; checked against
            ``synth.classes`` when given.
        **kwargs: loader and augmentation arguments of :class:`VideoDataModule`.
    """

    def __init__(
        self,
        root: str | Path,
        synth: SynthConfig | Mapping[str, Any] | None = None,
        show_progress: bool = True,
        num_classes: int | None = None,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.synth = SynthConfig.from_mapping(synth)
        self.show_progress = show_progress
        self.check_vocabulary(num_classes, class_names)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.synth.classes

    def dataset_dir(self) -> Path:
        """The generated dataset's folder (generating it if it is not cached yet)."""
        return ensure_synth_dataset(self.root, self.synth, self.show_progress)

    def prepare_data(self) -> None:
        self.dataset_dir()

    def build_index(self, split: str) -> VideoIndex:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
        return read_mot_split(
            self.dataset_dir() / split,
            synth_class_rule(len(self.class_names)),
            self.class_names,
            name=f"synth_{split}",
        )
