"""TrackEval adapter on tiny scripted results with hand-computed scores.

Scene: 4 frames, two pedestrians far apart (gt ids 1 and 2) -> GT = 8 boxes. MOTA and IDF1 by
hand: MOTA = 1 - (FN + FP + IDSW) / GT, IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures.mot17 import NUM_FRAMES, gt_rows, make_mot17
from qdtrack_pl.data.formats.mot import mot17_class_rule, read_mot_split
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.eval.mot_results import TrackResults, write_mot_results
from qdtrack_pl.eval.trackeval_adapter import EvalResult, evaluate_mot_challenge, evaluate_tracking

NUM = 4
A = [0.0, 0.0, 10.0, 20.0]
B = [50.0, 0.0, 60.0, 20.0]
CROWD = [100.0, 0.0, 120.0, 20.0]
FAR = [200.0, 200.0, 210.0, 220.0]


def make_index(
    rows_per_frame: list[list[tuple]], class_names: tuple[str, ...] = ("pedestrian",)
) -> VideoIndex:
    """rows: (box, gt id, class, ignore) per frame."""
    frames = []
    for i, rows in enumerate(rows_per_frame):
        ann = (
            FrameAnnotations.from_rows(
                [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                ignore=[r[3] for r in rows],
            )
            if rows
            else FrameAnnotations.empty()
        )  # fmt: skip
        frames.append(Frame(i, Path(f"{i}.jpg"), ann, i + 1))
    return VideoIndex((Video("seq", tuple(frames), 640, 480),), class_names)


def two_pedestrians(extra: list[tuple] = ()) -> VideoIndex:
    return make_index([[(A, 1, 0, False), (B, 2, 0, False), *extra] for _ in range(NUM)])


def tracks(rows: list[tuple]) -> dict[str, TrackResults]:
    """rows: (frame, tracker id, box[, class])."""
    return {
        "seq": TrackResults(
            frame_indices=np.array([r[0] for r in rows], np.int64),
            track_ids=np.array([r[1] for r in rows], np.int64),
            boxes=np.array([r[2] for r in rows], np.float32).reshape(-1, 4),
            scores=np.ones(len(rows), np.float32),
            class_ids=np.array([r[3] if len(r) > 3 else 0 for r in rows], np.int64),
        )
    }


def perfect_rows() -> list[tuple]:
    return [row for t in range(NUM) for row in ((t, 10, A), (t, 20, B))]


def test_perfect_tracking_scores_100() -> None:
    res = evaluate_tracking(two_pedestrians(), tracks(perfect_rows()))
    for key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "all/HOTA", "all/MOTA", "all/IDF1"):
        assert res.metrics[key] == pytest.approx(100.0), key
    assert res.metrics["FP"] == res.metrics["FN"] == res.metrics["IDSW"] == 0
    assert res.metrics["GT_Dets"] == 8 and res.metrics["MT"] == 2


def test_one_missed_box() -> None:
    rows = [r for r in perfect_rows() if r[:2] != (3, 20)]
    m = evaluate_tracking(two_pedestrians(), tracks(rows)).metrics
    assert m["FN"] == 1 and m["FP"] == 0 and m["IDSW"] == 0
    assert m["MOTA"] == pytest.approx(100 * (1 - 1 / 8))  # 87.5
    # IDTP 7, IDFP 0, IDFN 1: 14 / 15
    assert m["IDF1"] == pytest.approx(100 * 14 / 15)


def test_one_false_positive() -> None:
    m = evaluate_tracking(two_pedestrians(), tracks([*perfect_rows(), (2, 99, FAR)])).metrics
    assert m["FP"] == 1 and m["FN"] == 0
    assert m["MOTA"] == pytest.approx(100 * (1 - 1 / 8))  # 87.5
    # IDTP 8, IDFP 1, IDFN 0: 16 / 17
    assert m["IDF1"] == pytest.approx(100 * 16 / 17)


def test_one_id_switch() -> None:
    # B's tracker id changes from 20 to 21 at frame 2
    rows = [(t, 10, A) for t in range(NUM)] + [(t, 20 if t < 2 else 21, B) for t in range(NUM)]
    m = evaluate_tracking(two_pedestrians(), tracks(rows)).metrics
    assert m["IDSW"] == 1 and m["FP"] == 0 and m["FN"] == 0
    assert m["MOTA"] == pytest.approx(100 * (1 - 1 / 8))  # 87.5
    # gt 2 keeps one of its two tracker ids for 2 frames: IDTP 4 + 2 = 6, IDFP 2, IDFN 2: 12 / 16
    assert m["IDF1"] == pytest.approx(75.0)
    assert m["HOTA"] < 100.0 and m["DetA"] == pytest.approx(100.0)


def test_box_on_an_ignored_region_is_not_a_false_positive() -> None:
    gt = two_pedestrians(extra=[(CROWD, 3, 0, True)])
    on_crowd = [*perfect_rows(), *((t, 30, CROWD) for t in range(NUM))]
    m = evaluate_tracking(gt, tracks(on_crowd)).metrics
    assert m["FP"] == 0 and m["FN"] == 0 and m["MOTA"] == pytest.approx(100.0)
    assert m["GT_Dets"] == 8  # the ignored rows are not ground truth either
    # the same box without the ignore region is a false positive in every frame
    m = evaluate_tracking(two_pedestrians(), tracks(on_crowd)).metrics
    assert m["FP"] == NUM


def multi_class_index() -> VideoIndex:
    # class 0: two tracks; class 1: one track; class 2 ("empty") never appears
    rows = [[(A, 1, 0, False), (B, 2, 0, False), (FAR, 3, 1, False)] for _ in range(NUM)]
    return make_index(rows, class_names=("person", "car", "empty"))


def test_multi_class_headline_is_the_class_average() -> None:
    rows = [r + (0,) for r in perfect_rows()] + [(t, 30, FAR, 1) for t in range(1, NUM)]
    res = evaluate_tracking(multi_class_index(), tracks(rows))
    assert res.per_class["person"]["MOTA"] == pytest.approx(100.0)
    assert res.per_class["car"]["MOTA"] == pytest.approx(75.0)  # 1 FN of 4
    assert res.metrics["MOTA"] == pytest.approx(87.5)  # mean of the two non-empty classes
    assert res.metrics["all/MOTA"] == pytest.approx(100 * (1 - 1 / 12))  # pooled: 1 FN of 12
    assert res.class_agnostic["MOTA"] == res.metrics["all/MOTA"]
    assert set(res.per_class) == {"person", "car", "empty"}
    assert "class average" in res.headline
    assert isinstance(res.table(), str) and "HOTA" in res.table()


def test_classes_do_not_match_across_classes() -> None:
    rows = [r + (1,) for r in perfect_rows()]  # the pedestrians reported as cars
    res = evaluate_tracking(multi_class_index(), tracks(rows))
    assert res.per_class["person"]["FN"] == 8 and res.per_class["car"]["FP"] == 8
    assert res.class_agnostic["FP"] == 0  # pooled, only boxes and ids count
    only_person = evaluate_tracking(multi_class_index(), tracks(rows), class_names=["person"])
    assert set(only_person.per_class) == {"person"}


def test_unknown_class_counts_for_a_single_class_index() -> None:
    rows = [r + (-1,) for r in perfect_rows()]
    assert evaluate_tracking(two_pedestrians(), tracks(rows)).metrics["MOTA"] == pytest.approx(100)


def test_unannotated_frames_are_not_scored() -> None:
    gt = two_pedestrians()
    frames = list(gt.videos[0].frames)
    frames[3] = Frame(3, frames[3].image_path, FrameAnnotations.empty(), 4, annotated=False)
    video = Video("seq", tuple(frames), 640, 480)
    gt = VideoIndex((video,), gt.class_names)
    m = evaluate_tracking(gt, tracks(perfect_rows())).metrics
    assert m["FP"] == 0 and m["GT_Dets"] == 6 and m["MOTA"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({}, "missing"),
        ({"seq": tracks(perfect_rows())["seq"], "other": TrackResults.empty()}, "unknown"),
        (tracks([(NUM, 1, A)]), "beyond"),
        (tracks([(0, 1, A, 5)]), "class id 5"),
        (tracks([(0, 1, A), (0, 1, B)]), "repeat within the frame"),
    ],
)
def test_bad_results_raise(results: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_tracking(two_pedestrians(), results)


def mot17_results(gt_folder: Path, extra: list[tuple] = ()) -> dict[str, TrackResults]:
    """The considered pedestrians (class 1, conf 1) of the fixture, plus extra rows."""
    rows = [(f - 1, i, [x, y, x + w, y + h]) for f, i, x, y, w, h, conf, cls, _ in gt_rows()
            if cls == 1 and conf == 1]  # fmt: skip
    return tracks([*rows, *extra])


def write_results(folder: Path, results: dict[str, TrackResults], seq: str) -> Path:
    write_mot_results(folder / f"{seq}.txt", results["seq"])
    return folder


def test_mot_challenge_gt_against_itself_scores_100(tmp_path: Path) -> None:
    root = make_mot17(tmp_path / "MOT17")
    seq = "MOT17-02-FRCNN"
    results = mot17_results(root / "train")
    folder = write_results(tmp_path / "tracker", results, seq)
    res = evaluate_mot_challenge(root / "train", folder, [seq])
    assert isinstance(res, EvalResult)
    for key in ("HOTA", "MOTA", "IDF1"):
        assert res.metrics[key] == pytest.approx(100.0)
    assert set(res.per_sequence) == {seq}
    seqmap = tmp_path / "seqmap.txt"
    seqmap.write_text(f"name\n{seq}\n")
    assert evaluate_mot_challenge(root / "train", folder, seqmap).metrics["MOTA"] == 100.0


def test_mot_challenge_matches_our_adapter_on_the_same_data(tmp_path: Path) -> None:
    root = make_mot17(tmp_path / "MOT17")
    seq = "MOT17-02-FRCNN"
    # a box on the static person (distractor, removed), one on the car (a false positive), and
    # pedestrian 1 missed in the last frame
    static_person, car = [30, 20, 38, 36], [40, 30, 56, 38]
    results = mot17_results(root / "train", [(2, 7, static_person), (0, 8, car)])
    keep = ~((results["seq"].frame_indices == NUM_FRAMES - 1) & (results["seq"].track_ids == 1))
    results = {"seq": TrackResults(*(field[keep] for field in results["seq"]))}
    official = evaluate_mot_challenge(
        root / "train", write_results(tmp_path / "tracker", results, seq), [seq]
    ).metrics
    assert official["FP"] == 1 and official["FN"] == 1
    index = read_mot_split(root / "train", mot17_class_rule(), ("pedestrian",), sequences=[seq])
    ours = evaluate_tracking(index, {seq: results["seq"]}).metrics
    for key in ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "FP", "FN", "IDSW"):
        assert ours[key] == pytest.approx(official[key]), key


def test_the_one_box_iou_gives_trackevals_values_bit_for_bit() -> None:
    """The adapter scores with ops.box_iou (the package's one IoU); on float32 boxes, degenerate
    (zero-width, zero-height, identical) ones included, it equals TrackEval's own IoU exactly."""
    from trackeval.datasets._base_dataset import _BaseDataset

    from qdtrack_pl.eval.trackeval_adapter import _box_ious

    rng = np.random.default_rng(0)
    for _ in range(100):
        a, b = (rng.uniform(0, 60, (int(rng.integers(0, 7)), 4)) for _ in range(2))
        for boxes in (a, b):
            boxes[:, 2:] = boxes[:, :2] + rng.choice([0.0, 0.5, 3.0, 25.0], (len(boxes), 2))
        if len(a) and len(b):
            b[0] = a[0]
        a32, b32 = a.astype(np.float32), b.astype(np.float32)
        expected = _BaseDataset._calculate_box_ious(
            a32.astype(np.float64), b32.astype(np.float64), box_format="x0y0x1y1"
        )
        assert np.array_equal(_box_ious(a32, b32), expected)
