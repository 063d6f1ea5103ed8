"""TaoTracker (docs/method.md §3.3): same-class distractor NMS, input order, score smoothing."""

from __future__ import annotations

import pytest
import torch

from fixtures.scripted_tracks import box, frame, ids_by_appearance
from qdtrack_pl.tracking import TaoTracker


def run(tracker: TaoTracker, dets: list, frame_id: int) -> dict[int, int]:
    out = tracker.update(*frame(dets), frame_id=frame_id)
    return ids_by_appearance(out.track_ids, out.det_indices, [d[3] for d in dets])


def test_every_unmatched_detection_above_init_score_starts_a_track() -> None:
    tracker = TaoTracker()
    dets = [(box(0, 0), 0.9, 0, 0), (box(100, 0), 0.01, 1, 1)]
    assert run(tracker, dets, 0) == {0: 0, 1: 1}
    assert run(tracker, dets, 1) == {0: 0, 1: 1}


def test_distractor_nms_is_same_class_and_only_for_low_scores() -> None:
    tracker = TaoTracker()
    dets = [
        (box(0, 0, w=30), 0.9, 0, 0),
        (box(5, 0, w=30), 0.4, 0, 1),  # low score, same class, IoU 25/35 > 0.3: dropped
        (box(5, 0, w=30), 0.4, 1, 2),  # same box, other class: kept
        (box(5, 0, w=30), 0.6, 0, 3),  # same box, not low score: kept
    ]
    assert set(run(tracker, dets, 0)) == {0, 2, 3}


def test_detections_are_matched_in_input_order_not_score_order() -> None:
    tracker = TaoTracker()
    run(tracker, [(box(0, 0), 0.9, 0, 0), (box(100, 0), 0.9, 0, 1)], 0)
    # two detections look like track 0; the first one given wins although it scores lower
    boxes, scores, classes, embeds = frame([(box(0, 0), 0.3, 0, 0), (box(0, 40), 0.9, 0, 0)])
    out = tracker.update(boxes, scores, classes, embeds, frame_id=1)
    assert out.det_indices.tolist() == [0, 1]
    assert out.track_ids.tolist() == [0, 2]


def test_matched_score_is_smoothed_with_the_track() -> None:
    tracker = TaoTracker(momentum_obj_score=0.5)
    run(tracker, [(box(0, 0), 0.8, 0, 0), (box(100, 0), 0.6, 0, 1)], 0)
    out = tracker.update(*frame([(box(0, 0), 0.4, 0, 0), (box(100, 0), 0.6, 0, 1)]), frame_id=1)
    torch.testing.assert_close(out.scores, torch.tensor([0.6, 0.6]))  # 0.5·0.4 + 0.5·0.8
    assert tracker.memory.boxes[:, 4].tolist() == pytest.approx([0.6, 0.6])


def test_score_difference_gate() -> None:
    tracker = TaoTracker(obj_score_diff_thr=0.3)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(0, 0), 0.5, 0, 0)], 1) == {0: 1}  # |0.5 - 0.9| >= 0.3: new track


def test_class_mask_and_memory_length() -> None:
    tracker = TaoTracker(memo_frames=2)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(0, 0), 0.9, 1, 0)], 1) == {0: 1}  # other class: no match
    run(tracker, [], 2)
    run(tracker, [], 3)
    assert tracker.memory.num_tracks == 0


@pytest.mark.parametrize(("metric", "with_cosine"), [("bisoftmax", False), ("cosine", True)])
def test_metric_variants_track_a_steady_object(metric: str, with_cosine: bool) -> None:
    tracker = TaoTracker(match_metric=metric, match_with_cosine=with_cosine)
    for t in range(3):
        assert run(tracker, [(box(t, 0), 0.9, 0, 0), (box(100, 0), 0.8, 0, 1)], t) == {0: 0, 1: 1}


def test_reset_and_validation() -> None:
    tracker = TaoTracker()
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(0, 0), 0.9, 0, 1)], 0) == {1: 0}
    with pytest.raises(ValueError, match="match_metric"):
        TaoTracker(match_metric="softmax")
    with pytest.raises(ValueError, match=r"boxes must have shape"):
        tracker.update(
            torch.zeros(1, 3),
            torch.zeros(1),
            torch.zeros(1, dtype=torch.long),
            torch.zeros(1, 8),
            frame_id=1,
        )
    assert tracker.update(*frame([]), frame_id=1).track_ids.numel() == 0
