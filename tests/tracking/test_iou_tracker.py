"""IoUTracker: greedy box-overlap association, the appearance-free ablation."""

from __future__ import annotations

import pytest
import torch

from fixtures.scripted_tracks import box, frame, ids_by_appearance
from qdtrack_pl.tracking import IoUTracker, QDTracker


def run(tracker, dets: list, frame_id: int) -> dict[int, int]:
    out = tracker.update(*frame(dets), frame_id=frame_id)
    return ids_by_appearance(out.track_ids, out.det_indices, [d[3] for d in dets])


def test_follows_boxes_where_qdtrack_follows_appearance() -> None:
    left, right = box(0, 0), box(200, 0)
    swapped = [(right, 0.9, 0, 0), (left, 0.85, 0, 1)]
    iou, qd = IoUTracker(), QDTracker()
    for tracker in (iou, qd):
        assert run(tracker, [(left, 0.9, 0, 0), (right, 0.85, 0, 1)], 0) == {0: 0, 1: 1}
    assert run(iou, swapped, 1) == {0: 1, 1: 0}
    assert run(qd, swapped, 1) == {0: 0, 1: 1}


def test_small_motion_keeps_the_id_and_a_jump_starts_a_new_one() -> None:
    tracker = IoUTracker(match_iou_thr=0.5)
    assert run(tracker, [(box(0, 0), 0.9, 0, 0)], 0) == {0: 0}
    assert run(tracker, [(box(2, 0), 0.9, 0, 0)], 1) == {0: 0}  # IoU 8/12 > 0.5
    assert run(tracker, [(box(8, 0), 0.9, 0, 0)], 2) == {0: 1}  # IoU 4/16 < 0.5


def test_class_gate_low_scores_and_memory_length() -> None:
    tracker = IoUTracker(memo_tracklet_frames=2)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(0, 0), 0.4, 0, 0)], 1) == {}  # below obj_score_thr: no match/birth
    assert run(tracker, [(box(0, 0), 0.9, 1, 0)], 2) == {0: 1}  # other class: a new track
    assert IoUTracker(with_cats=False).update(*frame([]), frame_id=0).track_ids.numel() == 0
    run(tracker, [], 3)
    run(tracker, [], 4)
    assert tracker.memory.num_tracks == 0


def test_embeddings_are_ignored_and_inputs_validated() -> None:
    tracker = IoUTracker()
    boxes, scores, classes, _ = frame([(box(0, 0), 0.9, 0, 0)])
    tracker.update(boxes, scores, classes, torch.zeros(1, 3), frame_id=0)
    out = tracker.update(boxes, scores, classes, torch.zeros(1, 7), frame_id=1)
    assert out.track_ids.tolist() == [0]
    with pytest.raises(ValueError, match="class_ids"):
        tracker.update(boxes, scores, classes.float(), torch.zeros(1, 7), frame_id=2)
