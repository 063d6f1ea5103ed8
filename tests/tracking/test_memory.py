"""TrackMemory.commit on hand-made frames: matches, births, expiry, backdrop bank."""

from __future__ import annotations

import numpy as np
import pytest

from qdtrack_pl.tracking.memory import TrackMemory

NO_CLAIM = -1


def detections(count: int, first_value: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` detections: boxes, 2-d embeddings and labels, values counting from
    ``first_value``."""
    values = first_value + np.arange(count, dtype=np.float32)
    boxes = np.stack([values, values, values + 10, values + 10], axis=1)
    embeds = np.stack([values, -values], axis=1)
    return boxes, embeds, np.arange(count, dtype=np.int64)


def commit(
    memory: TrackMemory,
    claimed: list[int],
    born: list[bool],
    ids: list[int],
    frame: int,
    first_value: float,
    max_age: int = 10,
    backdrop: list | None = None,
) -> int:
    boxes, embeds, labels = detections(len(claimed), first_value)
    return memory.commit(
        np.array(claimed, dtype=np.int64),
        np.array(born),
        np.array(ids, dtype=np.int64),
        boxes,
        embeds,
        labels,
        frame,
        momentum=0.75,
        max_age=max_age,
        backdrop=None if backdrop is None else np.array(backdrop, dtype=bool),
    )


def test_births_then_a_match_blends_the_embedding_and_keeps_id_order() -> None:
    memory = TrackMemory()
    assert commit(memory, [NO_CLAIM, NO_CLAIM], [True, True], [0, 1], frame=0, first_value=1) == 2
    assert memory.ids.tolist() == [0, 1] and memory.last_frame.tolist() == [0, 0]
    # frame 1: detection 0 claims row 1 (track 1), detection 1 is born as track 2
    assert commit(memory, [1, NO_CLAIM], [False, True], [1, 2], frame=1, first_value=5) == 1
    assert memory.ids.tolist() == [0, 1, 2]
    assert memory.last_frame.tolist() == [0, 1, 1]
    # track 1 had embedding (2, -2); the new one is (5, -5): 0.25 * old + 0.75 * new
    np.testing.assert_array_equal(memory.embeds, [[1, -1], [4.25, -4.25], [6, -6]])
    np.testing.assert_array_equal(memory.boxes[1], [5, 5, 15, 15])  # the box is replaced
    assert memory.labels.tolist() == [0, 0, 1]


@pytest.mark.parametrize(("gap", "alive"), [(1, [0, 1]), (2, [1])])
def test_tracks_expire_when_unseen_for_max_age_frames(gap: int, alive: list[int]) -> None:
    memory = TrackMemory()
    commit(memory, [NO_CLAIM, NO_CLAIM], [True, True], [0, 1], frame=0, first_value=1, max_age=2)
    commit(memory, [1], [False], [1], frame=gap, first_value=3, max_age=2)
    assert memory.ids.tolist() == alive


def test_zero_max_age_counts_births_but_keeps_nothing() -> None:
    memory = TrackMemory()
    assert commit(memory, [NO_CLAIM], [True], [0], frame=0, first_value=1, max_age=0) == 1
    assert memory.is_empty


def test_bank_holds_tracks_then_the_backdrop_ring_newest_first() -> None:
    memory = TrackMemory(backdrop_frames=2)
    # frame 0: detection 0 is born, detection 1 becomes a backdrop
    commit(memory, [NO_CLAIM, NO_CLAIM], [True, False], [0, -1], 0, 1, backdrop=[False, True])
    # frame 1: detection 0 matches track 0, detections 1 and 2 become backdrops
    commit(memory, [0, NO_CLAIM, NO_CLAIM], [False] * 3, [0, -1, -1], 1, 10, backdrop=[0, 1, 1])
    assert memory.num_tracks == 1 and memory.num_backdrops == 3
    # first values: track 0 blended 0.25 * 1 + 0.75 * 10, then frame 1's (11, 12), frame 0's (2)
    np.testing.assert_array_equal(memory.bank.embeds[:, 0], [7.75, 11, 12, 2])
    assert memory.bank.labels.tolist() == [0, 1, 2, 1]
    # frame 2: one new backdrop; frame 0's entry falls out of the two-frame ring
    commit(memory, [NO_CLAIM], [False], [-1], 2, 20, backdrop=[True])
    np.testing.assert_array_equal(memory.bank.embeds[:, 0], [7.75, 20, 11, 12])
    assert list(memory.backdrop_sizes) == [1, 2]


def test_without_a_ring_backdrops_are_not_kept() -> None:
    memory = TrackMemory(backdrop_frames=0)
    commit(memory, [NO_CLAIM], [False], [-1], 0, 1, backdrop=[True])
    assert memory.num_backdrops == 0 and len(memory.backdrop_sizes) == 0


def test_embedding_dtype_must_not_change_within_a_video() -> None:
    memory = TrackMemory()
    commit(memory, [NO_CLAIM], [True], [0], frame=0, first_value=1)
    with pytest.raises(ValueError, match="embeddings must be float32 like the tracker memory"):
        memory.check_compatible(np.zeros((1, 2), dtype=np.float64))


def test_commit_refuses_mismatched_or_out_of_range_rows() -> None:
    memory = TrackMemory()
    commit(memory, [NO_CLAIM], [True], [0], frame=0, first_value=1)
    with pytest.raises(ValueError, match="a claimed row is not a track"):
        commit(memory, [1], [False], [0], frame=1, first_value=1)
    boxes, embeds, labels = detections(2, first_value=1)
    with pytest.raises(ValueError, match="born has 1 rows, claimed has 2"):
        memory.commit(
            np.array([0, -1]),
            np.array([False]),
            np.array([0, 1]),
            boxes,
            embeds,
            labels,
            1,
            momentum=0.8,
            max_age=10,
        )
