"""Whole-video frame loading for evaluation and tracking: frames in video order, kept whole per
rank by :class:`VideoSequenceSampler` so the tracker sees every video from its first frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from qdtrack_pl.data.errors import ImageReadError
from qdtrack_pl.data.index import Frame, Video, VideoIndex
from qdtrack_pl.data.loading.samplers import replicas_and_rank
from qdtrack_pl.data.loading.transforms import FrameTransform, load_image


class FrameItem(NamedTuple):
    image: Tensor  # (3, H, W) float32 in [0, 1]
    video_name: str
    frame_index: int
    scale_factor: float


class SequenceDataset(Dataset[FrameItem]):
    """Every frame of every video, video after video, frames in order (evaluation and tracking)."""

    def __init__(self, index: VideoIndex, transform: FrameTransform) -> None:
        self.index = index
        self.transform = transform
        self.frames: list[tuple[Video, Frame]] = [(v, f) for v in index.videos for f in v.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def video_lengths(self) -> list[int]:
        return [len(v) for v in self.index.videos]

    def __getitem__(self, item: int) -> FrameItem:
        video, frame = self.frames[item]
        try:
            image = load_image(frame.image_path)
        except ImageReadError as err:
            raise ImageReadError(
                f"{err} (video {video.name!r}, frame {frame.index}): tracking evaluation needs "
                "every frame of a video; restore the file or remove the video from the split",
                err.path,
            ) from None
        image, scale = self.transform.inference(image)
        return FrameItem(image, video.name, frame.index, scale)


class VideoSequenceSampler(DistributedSampler):
    """Whole videos per rank, frames in order (docs/method.md §6.5).

    Videos go to ranks greedily by frame count (longest first to the least loaded rank), and each
    rank visits its videos in index order. Without ``torch.distributed`` it is a plain in-order
    sampler. It subclasses ``DistributedSampler`` only so Lightning keeps it as it is instead of
    wrapping it in a sampler that would cut videos across ranks.
    """

    def __init__(
        self,
        video_lengths: Sequence[int],
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        self.num_replicas, self.rank = replicas_and_rank(num_replicas, rank)
        self.epoch, self.seed, self.shuffle, self.drop_last = 0, 0, False, False
        offsets = np.concatenate([[0], np.cumsum(video_lengths)]).astype(int)
        videos = _assign_videos(video_lengths, self.num_replicas)[self.rank]
        self.indices = [i for v in videos for i in range(offsets[v], offsets[v + 1])]
        self.num_samples = self.total_size = len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _assign_videos(video_lengths: Sequence[int], num_replicas: int) -> list[list[int]]:
    loads = [0] * num_replicas
    assigned: list[list[int]] = [[] for _ in range(num_replicas)]
    for v in sorted(range(len(video_lengths)), key=lambda i: -video_lengths[i]):
        rank = loads.index(min(loads))
        assigned[rank].append(v)
        loads[rank] += video_lengths[v]
    return [sorted(videos) for videos in assigned]
