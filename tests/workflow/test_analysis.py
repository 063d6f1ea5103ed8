"""Notebook helpers: identity switches, track timelines, embedding similarity and retrieval."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from qdtrack_pl.analysis import (
    IdSwitch,
    embed_boxes,
    frame_matches,
    gt_timelines,
    id_switches,
    identity_margin,
    nearest_neighbours,
    segments,
    similarity,
    track_timelines,
)
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.eval.trackeval_adapter import evaluate_tracking


def _video(num_frames: int = 5) -> Video:
    """Two objects moving right, 40 px apart; gt ids 1 and 2."""
    frames = []
    for t in range(num_frames):
        boxes = [[10 + t, 10, 30 + t, 30], [60 + t, 10, 80 + t, 30]]
        ann = FrameAnnotations.from_rows(boxes, [1, 2], [0, 0])
        frames.append(Frame(t, Path(f"{t:06d}.jpg"), ann, t + 1))
    return Video("v", tuple(frames), 100, 50)


def _results(ids_per_frame: list[list[int]], video: Video) -> TrackResults:
    rows = [
        (f.index, tid, box)
        for f, ids in zip(video.frames, ids_per_frame, strict=True)
        for tid, box in zip(ids, f.annotations.boxes, strict=True)
        if tid >= 0
    ]
    return TrackResults(
        frame_indices=np.array([r[0] for r in rows]),
        track_ids=np.array([r[1] for r in rows]),
        boxes=np.array([r[2] for r in rows], np.float32),
        scores=np.ones(len(rows), np.float32),
        class_ids=np.zeros(len(rows), np.int64),
    )


def test_id_switches_are_found_where_a_ground_truth_changes_track() -> None:
    video = _video()
    # object 1: track 10, then track 30 from frame 3; object 2: track 20, missed on frame 2
    results = _results([[10, 20], [10, 20], [10, -1], [30, 20], [30, 20]], video)
    assert id_switches(video, results) == [IdSwitch(3, 1, 10, 30)]
    assert id_switches(video, _results([[10, 20]] * 5, video)) == []


def _noisy_scene(seed: int) -> tuple[Video, TrackResults]:
    """Random ground truth (some rows ignore regions, some frames unannotated or empty) and
    noisy tracks that swap, drop and duplicate identities."""
    rng = np.random.default_rng(seed)
    frames, rows = [], []
    for t in range(30):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(10, 40, (n, 2))], axis=1)
        ids = rng.choice(8, size=n, replace=False)
        ignore = rng.random(n) < 0.2
        ann = FrameAnnotations.from_rows(boxes, ids, np.zeros(n, np.int64), ignore=ignore)
        frames.append(Frame(t, Path(f"{t:06d}.jpg"), ann, t + 1, annotated=rng.random() > 0.1))
        for box, gt_id in zip(boxes, ids, strict=True):
            if rng.random() < 0.15:
                continue  # missed
            track = int(gt_id) + 10 * int(rng.random() < 0.2)  # now and then another track
            rows.append((t, track, box + rng.normal(0, 3, 4)))
        if rng.random() < 0.3:  # a false positive
            rows.append((t, 99, np.array([300.0, 300, 320, 330])))
    unique = {}
    for t, track, box in rows:
        unique[(t, track)] = box  # one row per (frame, track)
    keys = sorted(unique)
    results = TrackResults(
        frame_indices=np.array([k[0] for k in keys]),
        track_ids=np.array([k[1] for k in keys]),
        boxes=np.array([unique[k] for k in keys], np.float32),
        scores=np.ones(len(keys), np.float32),
        class_ids=np.zeros(len(keys), np.int64),
    )
    return Video("noisy", tuple(frames), 400, 400), results


@pytest.mark.parametrize("seed", range(6))
def test_id_switches_are_trackevals_idsw(seed: int) -> None:
    """Same matching as TrackEval's CLEAR on the data it scores (distractors removed, annotated
    frames only, the bonus only for the previous timestep), so the counts agree exactly."""
    video, results = _noisy_scene(seed)
    scores = evaluate_tracking(VideoIndex((video,), ("object",)), {"noisy": results})
    per_sequence = scores.per_sequence["noisy"]
    matches = frame_matches(video, results)
    assert len(id_switches(video, results)) == per_sequence["IDSW"]
    assert sum(len(m) for m in matches) == per_sequence["TP"]
    unannotated = [f.index for f in video.frames if not f.annotated]
    assert all(matches[i] == {} for i in unannotated)


def test_tracks_on_ignore_regions_are_not_matched() -> None:
    boxes = [[10, 10, 30, 30], [60, 10, 80, 30]]
    ann = FrameAnnotations.from_rows(boxes, [1, 2], [0, 0], ignore=[False, True])
    video = Video("v", (Frame(0, Path("0.jpg"), ann, 1),), 100, 50)
    results = TrackResults(
        np.array([0, 0]), np.array([5, 6]), np.array(boxes, np.float32), np.ones(2), np.zeros(2)
    )
    assert frame_matches(video, results) == [{1: 5}]


def test_timelines_and_segments() -> None:
    video = _video()
    results = _results([[10, 20], [10, 20], [10, -1], [30, 20], [30, 20]], video)
    timelines = track_timelines(results)
    assert list(timelines) == [10, 20, 30]  # by first appearance
    assert segments(timelines[20]) == [(0, 2), (3, 2)]  # a gap on frame 2
    assert {k: len(v) for k, v in gt_timelines(video).items()} == {1: 5, 2: 5}


def test_nearest_neighbour_retrieval_and_similarities() -> None:
    key = torch.tensor([[4.0, 0.0], [0.0, 4.0], [3.0, 3.0]])
    ref = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    for metric in ("dot", "bisoftmax", "softmax", "cosine"):
        assert similarity(key, ref, metric).shape == (3, 2)
    retrieval = nearest_neighbours(similarity(key, ref, "cosine"), [1, 2, 3], [2, 1])
    assert retrieval.nearest[:2].tolist() == [1, 0]
    assert retrieval.correct[:2].all() and retrieval.accuracy == 1.0  # id 3 is not in ref
    with pytest.raises(ValueError, match="unknown metric"):
        similarity(key, ref, "l2")


def test_identity_margin_on_hand_computed_frames() -> None:
    # frame 0: ids 1, 2 along the axes; frame 1: id 1 at 60 degrees from x, id 2 along y;
    # frame 2: id 2 only. Cosines 0->1: same (1,1)=0.5, (2,2)=1; different (1,2)=0, (2,1)=sqrt(3)/2.
    # 1->2: same (2,2)=1; different (1,2)=sqrt(3)/2.
    root3 = 3**0.5
    frames = [
        (torch.tensor([[2.0, 0.0], [0.0, 3.0]]), [1, 2]),
        (torch.tensor([[1.0, root3], [0.0, 0.5]]), np.array([1, 2])),
        (torch.tensor([[0.0, 7.0]]), [2]),
    ]
    margin = identity_margin(frames, gap=1)
    assert (margin.same_pairs, margin.different_pairs) == (3, 3)
    assert margin.same == pytest.approx((0.5 + 1 + 1) / 3)
    assert margin.different == pytest.approx((0 + root3 / 2 + root3 / 2) / 3)
    assert margin.margin == pytest.approx(margin.same - margin.different)
    two_apart = identity_margin(frames, gap=2)  # frame 0 vs frame 2 only
    assert (two_apart.same, two_apart.different) == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError, match="same and of different"):
        identity_margin(frames[2:] * 2, gap=1)  # one instance: no different pair
    with pytest.raises(ValueError, match="gap"):
        identity_margin(frames, gap=0)


def test_embed_boxes_with_a_qdtrack_model(compose_config) -> None:
    cfg = compose_config("train", ["experiment=synth_tiny"])
    model = instantiate(cfg.model).model.eval()
    images = torch.rand(2, 3, 96, 160)
    boxes = [torch.tensor([[10.0, 10, 40, 50]]), torch.tensor([[5.0, 5, 30, 30], [50, 20, 90, 60]])]
    embeds = embed_boxes(model, images, boxes)
    dim = cfg.model.model.embed_head.embed_channels
    assert [tuple(e.shape) for e in embeds] == [(1, dim), (2, dim)]


def test_timeline_plot_marks_identity_switches() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from qdtrack_pl.analysis.plots import plot_similarity, plot_timelines

    video = _video()
    results = _results([[10, 20], [10, 20], [10, -1], [30, 20], [30, 20]], video)
    fig, (left, right) = plt.subplots(1, 2)
    plot_timelines(left, track_timelines(results), id_switches(video, results))
    assert [t.get_text() for t in left.get_yticklabels()] == ["10", "20", "30"]
    assert left.get_legend() is not None  # "id switch" markers present
    plot_similarity(right, torch.eye(3), [1, 2, 3], [1, 2, 3], highlight=[(0, 0)])
    plt.close(fig)
