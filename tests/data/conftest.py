"""Synthetic datasets shared by the data tests, generated once per session."""

from __future__ import annotations

import pytest

from fixtures.synth import SMALL_SYNTH, GeneratedSynth, generate_synth
from qdtrack_pl.data.synth.config import SynthConfig


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSynth:
    return generate_synth(tmp_path_factory.mktemp("synth-small"), SMALL_SYNTH)


@pytest.fixture(scope="session")
def default_synth(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSynth:
    return generate_synth(tmp_path_factory.mktemp("synth-default"), SynthConfig())
