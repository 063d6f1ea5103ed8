"""QDTracker on scripted scenes with known identities (docs/method.md §3.2, §8.2, §8.8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures.scripted_tracks import EMBED_DIM, appearance, box, frame, ids_by_appearance
from qdtrack_pl.tracking import QDTracker, TrackerOutput


def run(tracker: QDTracker, dets: list, frame_id: int) -> dict[int, int]:
    out = tracker.update(*frame(dets), frame_id=frame_id)
    return ids_by_appearance(out.track_ids, out.det_indices, [d[3] for d in dets])


def test_two_objects_crossing_keep_their_ids() -> None:
    tracker = QDTracker()
    # A moves right, B moves left; at frame 3 they pass each other (offset vertically so their IoU
    # stays below the duplicate threshold) and afterwards their boxes have swapped sides.
    for t in range(7):
        a = box(10 + 15 * t, 0, h=40)
        b = box(100 - 15 * t, 20, h=40)
        assert run(tracker, [(a, 0.9, 0, 0), (b, 0.95, 0, 1)], t) == {1: 0, 0: 1}


def test_positions_swapped_abruptly_follow_appearance() -> None:
    tracker = QDTracker()
    left, right = box(0, 0), box(200, 0)
    assert run(tracker, [(left, 0.9, 0, 0), (right, 0.85, 0, 1)], 0) == {0: 0, 1: 1}
    assert run(tracker, [(right, 0.9, 0, 0), (left, 0.85, 0, 1)], 1) == {0: 0, 1: 1}


def test_occluded_object_comes_back_with_its_id_and_is_not_output_while_hidden() -> None:
    tracker = QDTracker()
    others = [(box(200, 0), 0.9, 0, 2), (box(300, 0), 0.9, 0, 3)]  # keep the softmaxes informative
    assert run(tracker, [(box(0, 0), 0.9, 0, 0), *others], 0) == {0: 0, 2: 1, 3: 2}
    for t in range(1, 6):  # A hidden: not output; a newcomer B gets the next id
        assert run(tracker, [(box(100, 0), 0.9, 0, 1), *others], t) == {1: 3, 2: 1, 3: 2}
    back = [(box(5, 0), 0.9, 0, 0), (box(100, 0), 0.9, 0, 1), *others]
    assert run(tracker, back, 6) == {0: 0, 1: 3, 2: 1, 3: 2}


def test_single_track_single_detection_always_matches() -> None:
    # bi-softmax over one row and one column is 1 whatever the embeddings (faithful to QDTrack)
    tracker = QDTracker()
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(100, 0), 0.9, 0, 1)], 1) == {1: 0}


@pytest.mark.parametrize(("gap", "same_id"), [(10, True), (11, False)])
def test_track_dies_after_exactly_memo_tracklet_frames(gap: int, same_id: bool) -> None:
    tracker = QDTracker(memo_tracklet_frames=10)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    for t in range(1, gap):
        run(tracker, [], t)
    # matchable while t - last_frame < 10 at the end of the previous frame: back at frame 10 it
    # matches; at frame 11 it was deleted at the end of frame 10 and is born again
    assert tracker.memory.num_tracks == (1 if gap == 10 else 0)
    assert run(tracker, [(box(0, 0), 0.9, 0, 0)], gap) == {0: 0 if same_id else 1}


def test_unmatched_low_score_duplicate_becomes_a_backdrop() -> None:
    tracker = QDTracker()
    a, b = (box(0, 0), 0.9, 0, 0), (box(100, 0), 0.9, 0, 1)
    run(tracker, [a, b], 0)
    # a low-score box partly over A (IoU 60/340 < 0.3: not a duplicate) with a new appearance:
    # matches nothing, is not suppressed, and is not crowded -> this frame's backdrop
    assert run(tracker, [a, b, (box(7, 0), 0.4, 0, 3)], 1) == {0: 0, 1: 1}
    memory = tracker.memory
    assert memory.num_tracks == 2 and memory.num_backdrops == 1  # stored after the tracks
    np.testing.assert_array_equal(memory.bank.embeds[2:], [appearance(3)])


def test_low_score_detection_of_a_live_track_is_suppressed_not_a_backdrop() -> None:
    tracker = QDTracker()
    run(tracker, [(box(0, 0), 0.9, 0, 0), (box(100, 0), 0.9, 0, 1)], 0)
    # B is only seen with a low score: it matches B's track strongly -> -2: no output, no
    # backdrop, and B's track is not updated
    out = run(tracker, [(box(0, 0), 0.9, 0, 0), (box(100, 0), 0.3, 0, 1)], 1)
    assert out == {0: 0}
    assert tracker.memory.num_backdrops == 0
    assert tracker.memory.last_frame.tolist() == [1, 0]


def test_mid_score_unmatched_detection_overlapping_a_kept_one_is_no_backdrop() -> None:
    tracker = QDTracker()
    # 0.6: not a duplicate (IoU 0.5 <= 0.7), not born (<= 0.8), but crowded for backdrops (> 0.3)
    out = run(tracker, [(box(0, 0, w=30), 0.9, 0, 0), (box(10, 0, w=30), 0.6, 0, 1)], 0)
    assert out == {0: 0}
    assert tracker.memory.num_backdrops == 0


def test_duplicate_removal_is_class_agnostic_and_counts_dropped_boxes() -> None:
    tracker = QDTracker(init_score_thr=0.5)
    # 0.85 overlaps 0.9 by 0.8 -> dropped despite another class; 0.7 overlaps only the dropped
    # one (IoU 0.8) -> dropped too; the far box survives
    dets = [
        (box(0, 0, w=50), 0.9, 0, 0),
        (box(5, 0, w=50), 0.85, 1, 1),
        (box(10, 0, w=50), 0.7, 0, 2),
        (box(300, 0), 0.6, 0, 3),
    ]
    iou_0_2 = 40 / 60
    assert iou_0_2 < 0.7  # the third box would survive if dropped boxes did not count
    assert run(tracker, dets, 0) == {0: 0, 3: 1}


@pytest.mark.parametrize(("with_cats", "second_id"), [(True, 1), (False, 0)])
def test_class_switch(with_cats: bool, second_id: int) -> None:
    tracker = QDTracker(with_cats=with_cats)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    assert run(tracker, [(box(0, 0), 0.9, 2, 0)], 1) == {0: second_id}


def test_embedding_update_weights_the_new_frame_by_momentum() -> None:
    tracker = QDTracker(memo_momentum=0.8)
    old = torch.tensor([appearance(0)])
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    new = old.clone()
    new[0, 1] = 1.0
    boxes, scores, classes, _ = frame([(box(0, 0), 0.9, 0, 0)])
    out = tracker.update(boxes, scores, classes, new, frame_id=1)
    assert out.track_ids.tolist() == [0]
    np.testing.assert_array_equal(tracker.memory.embeds, (0.2 * old + 0.8 * new).numpy())


def test_reset_at_frame_zero_restarts_ids_and_memory() -> None:
    tracker = QDTracker()
    run(tracker, [(box(0, 0), 0.9, 0, 0), (box(100, 0), 0.9, 0, 1)], 0)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 1)
    # next video: the same appearance gets id 0 again, nothing carried over
    assert run(tracker, [(box(50, 0), 0.9, 0, 1)], 0) == {1: 0}
    assert tracker.memory.num_tracks == 1


def test_births_need_init_score_and_ids_are_consecutive_in_score_order() -> None:
    tracker = QDTracker()
    dets = [(box(0, 0), 0.85, 0, 0), (box(100, 0), 0.95, 0, 1), (box(200, 0), 0.7, 0, 2)]
    out = tracker.update(*frame(dets), frame_id=0)
    assert out.track_ids.tolist() == [0, 1]
    assert out.det_indices.tolist() == [1, 0]  # processing order: descending score
    torch.testing.assert_close(out.scores, torch.tensor([0.95, 0.85]))


def test_empty_frames_and_empty_memory() -> None:
    tracker = QDTracker()
    out = tracker.update(*frame([]), frame_id=0)
    assert isinstance(out, TrackerOutput)
    assert out.track_ids.shape == (0,) and out.det_indices.dtype == torch.int64
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 1)
    assert tracker.update(*frame([]), frame_id=2).track_ids.numel() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("boxes", torch.zeros(2, 5), r"boxes must have shape \(N, 4\)"),
        ("scores", torch.zeros(3), r"scores must have shape \(2,\)"),
        ("class_ids", torch.zeros(2), "class_ids must be int64"),
        ("embeddings", torch.zeros(2), r"embeddings must have shape \(2, D\)"),
        (
            "embeddings",
            torch.zeros(2, EMBED_DIM, dtype=torch.long),
            "embeddings must be a floating",
        ),
    ],
)
def test_inputs_are_validated(field: str, value: torch.Tensor, message: str) -> None:
    boxes, scores, classes, embeds = frame([(box(0, 0), 0.9, 0, 0), (box(50, 0), 0.9, 0, 1)])
    args = {"boxes": boxes, "scores": scores, "class_ids": classes, "embeddings": embeds}
    args[field] = value
    with pytest.raises(ValueError, match=message):
        QDTracker().update(**args, frame_id=0)


def test_frame_id_and_embedding_width_are_validated() -> None:
    tracker = QDTracker()
    with pytest.raises(ValueError, match="frame_id"):
        tracker.update(*frame([]), frame_id=-1)
    run(tracker, [(box(0, 0), 0.9, 0, 0)], 0)
    boxes, scores, classes, embeds = frame([(box(0, 0), 0.9, 0, 0)])
    with pytest.raises(ValueError, match=r"embeddings must have shape \(N, 8\)"):
        tracker.update(boxes, scores, classes, embeds[:, :4], frame_id=1)


def test_constructor_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="match_metric"):
        QDTracker(match_metric="l2")
    with pytest.raises(ValueError, match="memo_momentum"):
        QDTracker(memo_momentum=1.5)
