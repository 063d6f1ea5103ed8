"""Tracker inputs: every tracker checks shapes, dtypes and devices of a frame's detections at its
boundary and says which argument is wrong and what it expected."""

from __future__ import annotations

import pytest
import torch

from qdtrack_pl.tracking.registry import TRACKERS

N, D = 2, 8


def detections(**replace: object) -> dict[str, object]:
    values: dict[str, object] = {
        "boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]),
        "scores": torch.tensor([0.95, 0.9]),
        "class_ids": torch.zeros(N, dtype=torch.long),
        "embeddings": torch.ones(N, D),
        "frame_id": 0,
    }
    values.update(replace)
    return values


BAD_INPUTS = [
    ({"boxes": torch.zeros(N, 5)}, r"boxes must have shape \(N, 4\) xyxy, got \(2, 5\)"),
    ({"boxes": [[0, 0, 1, 1]] * N}, r"boxes must be a torch.Tensor, got list"),
    ({"scores": torch.zeros(N, 1)}, r"scores must have shape \(2,\), got \(2, 1\)"),
    ({"class_ids": torch.zeros(N)}, r"class_ids must be int64, got torch.float32"),
    ({"class_ids": torch.zeros(N + 1, dtype=torch.long)}, r"class_ids must have shape \(2,\)"),
    ({"embeddings": torch.ones(N + 1, D)}, r"embeddings must have shape \(2, D\), got \(3, 8\)"),
    ({"boxes": torch.zeros(N, 4, dtype=torch.long)}, r"boxes must be a floating-point tensor"),
    ({"scores": torch.zeros(N, device="meta")}, r"scores is on meta but boxes are on cpu"),
    ({"embeddings": torch.ones(N, D, device="meta")}, r"embeddings is on meta but boxes are on"),
    ({"frame_id": -1}, r"frame_id must be >= 0"),
    ({"frame_id": 1.5}, r"frame_id must be an int, got float"),
    ({"frame_id": True}, r"frame_id must be an int, got True"),
]


@pytest.mark.parametrize("name", sorted(TRACKERS))
@pytest.mark.parametrize(("replace", "message"), BAD_INPUTS)
def test_bad_detections_are_rejected_naming_the_argument(name: str, replace, message: str):
    tracker = TRACKERS[name]()
    with pytest.raises(ValueError, match=message):
        tracker.update(**detections(**replace))
    out = tracker.update(**detections())  # a rejected frame leaves the tracker usable
    assert out.track_ids.tolist() == [0, 1]


@pytest.mark.parametrize("name", ["qdtrack", "tao"])
def test_an_embedding_width_change_within_a_video_is_rejected(name: str) -> None:
    tracker = TRACKERS[name]()
    tracker.update(**detections())
    with pytest.raises(ValueError, match=r"embedding"):
        tracker.update(**detections(embeddings=torch.ones(N, D + 1), frame_id=1))
