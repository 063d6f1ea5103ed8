"""The replica/rank resolution both samplers share (EpochSampler, VideoSequenceSampler)."""

from __future__ import annotations

import pytest

from qdtrack_pl.data.loading.samplers import EpochSampler, replicas_and_rank
from qdtrack_pl.data.loading.sequence import VideoSequenceSampler


def test_given_values_else_one_process() -> None:
    assert replicas_and_rank(None, None) == (1, 0)  # no process group here
    assert replicas_and_rank(4, 3) == (4, 3)
    with pytest.raises(ValueError, match="outside 0..3"):
        replicas_and_rank(4, 4)


def test_both_samplers_resolve_alike() -> None:
    epoch, video = EpochSampler(10, num_replicas=3, rank=2), VideoSequenceSampler([4, 5, 6], 3, 2)
    assert (epoch.num_replicas, epoch.rank) == (video.num_replicas, video.rank) == (3, 2)
    for make in (
        lambda: EpochSampler(10, num_replicas=2, rank=2),
        lambda: VideoSequenceSampler([4], 2, 2),
    ):
        with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
            make()
