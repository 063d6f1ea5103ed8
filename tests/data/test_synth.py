"""Synthetic dataset: drawing, determinism, the cache, and the default split's content."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures.synth import SMALL_SYNTH, GeneratedSynth
from qdtrack_pl.data.formats.mot import read_mot_split, synth_class_rule
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.data.synth import events
from qdtrack_pl.data.synth import generate as synth
from qdtrack_pl.data.synth.config import SHAPE_ASPECTS, SynthConfig
from qdtrack_pl.data.synth.generate import ensure_synth_dataset
from qdtrack_pl.data.synth.render import Layer, compose_frame, shape_mask

TINY = SynthConfig(
    num_train_sequences=1, num_val_sequences=1, num_test_sequences=1, frames_range=(6, 8), seed=5
)
CROP_SIZE = (16, 16)  # crops are compared at this size


def _index(data: GeneratedSynth, split: str) -> VideoIndex:
    classes = data.config.classes
    return read_mot_split(data.path / split, synth_class_rule(len(classes)), classes)


def _meta(data: GeneratedSynth) -> dict:
    return json.loads((data.path / synth.META_FILE).read_text())


def _tracks(video: Video) -> dict[int, dict[int, tuple[np.ndarray, float]]]:
    """track id -> frame index -> (box, visibility)."""
    tracks: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
    for frame in video.frames:
        ann = frame.annotations
        for box, track_id, vis in zip(ann.boxes, ann.track_ids, ann.visibility, strict=True):
            tracks.setdefault(int(track_id), {})[frame.index] = (box, float(vis))
    return tracks


def _digest(folder: Path) -> str:
    sha = hashlib.sha1()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _unclipped(box: np.ndarray, cfg: SynthConfig) -> bool:
    return bool(box[0] > 0 and box[1] > 0 and box[2] < cfg.width and box[3] < cfg.height)


# ---------------------------------------------------------------- drawing primitives


def test_compose_frame_measures_visibility_from_pixel_coverage() -> None:
    background = np.zeros((10, 10, 3), np.uint8)
    square = np.ones((4, 4), bool)
    red = np.full((4, 4, 3), (255, 0, 0), np.uint8)
    blue = np.full((4, 4, 3), (0, 0, 255), np.uint8)
    layers = [
        Layer(red, square, 1, 1, owner=0),  # back
        Layer(blue, square, 3, 1, owner=1),  # front, covers 2 of red's 4 columns
        Layer(red, square, 8, 8, owner=2),  # 2x2 of it inside the image
        Layer(blue, np.ones((2, 2), bool), 8, 8, owner=-1),  # unannotated occluder over it all
    ]
    image, visible, inside = compose_frame(background, layers, num_objects=3)
    assert visible.tolist() == [8, 16, 0]
    assert inside.tolist() == [16, 16, 4]
    assert (image[1:5, 1:3] == (255, 0, 0)).all() and (image[1:5, 3:7] == (0, 0, 255)).all()
    assert (background == 0).all()  # drawn on a copy


@pytest.mark.parametrize("kind", sorted(SHAPE_ASPECTS))
def test_class_silhouettes_fill_distinct_fractions_of_their_box(kind: str) -> None:
    mask, dark = shape_mask(kind, 30, 30)
    fill = mask.mean()
    expected = {"box": (0.99, 1.0), "car": (0.7, 0.9), "person": (0.5, 0.75)}[kind]
    assert expected[0] <= fill <= expected[1], fill
    assert not (dark & ~mask).any()  # wheels and rims are part of the object


# ---------------------------------------------------------------- determinism and cache


def test_generation_is_deterministic_and_splits_differ(tmp_path: Path) -> None:
    first = ensure_synth_dataset(tmp_path / "a", TINY, show_progress=False)
    second = ensure_synth_dataset(tmp_path / "b", TINY, show_progress=False)
    assert first.name == second.name == TINY.cache_key()
    assert _digest(first) == _digest(second)
    train = (first / "train" / "synth-train-00" / "img1" / "000001.jpg").read_bytes()
    val = (first / "val" / "synth-val-00" / "img1" / "000001.jpg").read_bytes()
    assert train != val
    reseeded = ensure_synth_dataset(
        tmp_path / "a", SynthConfig(**{**TINY.__dict__, "seed": 6}), False
    )
    assert reseeded != first and _digest(reseeded / "train") != _digest(first / "train")


def test_cached_dataset_is_reused_without_generating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = ensure_synth_dataset(tmp_path, TINY, show_progress=False)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(synth, "generate_synth_dataset", fail)
    assert ensure_synth_dataset(tmp_path, TINY, show_progress=False) == path


def test_interrupted_generation_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = synth.render_sequence
    calls = []

    def crash_on_second(*args: object) -> tuple[Video, dict]:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synth, "render_sequence", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ensure_synth_dataset(tmp_path, TINY, show_progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synth, "render_sequence", real)
    path = ensure_synth_dataset(tmp_path, TINY, show_progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_losing_a_generation_race_keeps_the_winner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = synth.generate_synth_dataset

    def racing(cfg: SynthConfig, out_dir: Path, show_progress: bool) -> None:
        real(cfg, tmp_path / cfg.cache_key(), show_progress)  # another rank finishes first
        real(cfg, out_dir, show_progress)

    monkeypatch.setattr(synth, "generate_synth_dataset", racing)
    path = ensure_synth_dataset(tmp_path, TINY, show_progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert (path / synth.META_FILE).is_file()


def test_config_from_hydra_lists_hashes_like_tuples() -> None:
    from_lists = SynthConfig.from_mapping(
        {"frames_range": [60, 90], "classes": ["person", "car", "box"]}
    )
    assert from_lists == SynthConfig() and from_lists.cache_key() == SynthConfig().cache_key()
    assert SynthConfig(seed=1).cache_key() != SynthConfig().cache_key()
    with pytest.raises(ValueError, match="unknown synth classes"):
        SynthConfig(classes=("person", "dragon"))
    with pytest.raises(ValueError, match="frames_range"):
        SynthConfig(frames_range=(10, 5))


# ---------------------------------------------------------------- ground-truth rules (small split)


def test_small_split_annotations_follow_the_documented_rules(small_synth: GeneratedSynth) -> None:
    cfg = small_synth.config
    for split in ("train", "val"):
        for video in _index(small_synth, split).videos:
            for frame in video.frames:
                ann = frame.annotations
                boxes = ann.boxes
                assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= cfg.width).all()
                assert (boxes[:, 3] <= cfg.height).all()
                assert (boxes[:, 2:] - boxes[:, :2] >= 1).all()  # a pixel inside at least
                np.testing.assert_array_equal(ann.ignore, ann.visibility < cfg.consider_visibility)
                assert ((ann.visibility >= 0) & (ann.visibility <= 1)).all()


def test_track_boxes_keep_the_sprite_size_while_unclipped(small_synth: GeneratedSynth) -> None:
    """Objects without a scale change keep their sprite's size in every unclipped box."""
    cfg = small_synth.config
    for video, meta in zip(
        _index(small_synth, "train").videos, _meta(small_synth)["train"], strict=True
    ):
        sizes = {
            o["track_id"]: (o["width"], o["height"])
            for o in meta["objects"]
            if o["scale_factor"] == 1.0
        }
        for track_id, frames in _tracks(video).items():
            for box, _ in frames.values():
                if track_id in sizes and _unclipped(box, cfg):
                    assert tuple(box[2:] - box[:2]) == sizes[track_id]


# ---------------------------------------------------------------- event statistics (hand-made)


def _scripted_video(rows: list[tuple[int, list[float], float]], length: int) -> Video:
    """One track (id 1) with (frame, box, visibility) rows; ignore below 0.1."""
    by_frame = {t: (box, vis) for t, box, vis in rows}
    frames = []
    for t in range(length):
        box, vis = by_frame.get(t, (None, None))
        boxes = np.array([box] if box else np.zeros((0, 4)), np.float32).reshape(-1, 4)
        visibility = np.array([vis] if box else [], np.float32)
        frames.append(
            Frame(
                t,
                Path(f"{t}.jpg"),
                FrameAnnotations(
                    boxes=boxes,
                    track_ids=np.ones(len(boxes), np.int64),
                    class_ids=np.zeros(len(boxes), np.int64),
                    visibility=visibility,
                    ignore=visibility < 0.1,
                ),
                t + 1,
            )
        )
    return Video("scripted", tuple(frames), 100, 100, 30.0)


def test_occlusion_gaps_and_motion_failures_on_a_scripted_track() -> None:
    near, far = [0, 0, 10, 10], [50, 50, 60, 60]
    video = _scripted_video(
        [
            (0, near, 1.0),
            (1, [1, 0, 11, 10], 1.0),
            (2, near, 0.0),
            (3, near, 0.05),
            (4, near, 0.0),
            (5, far, 1.0),
            (6, [55, 50, 65, 60], 1.0),
            (8, far, 1.0),
        ],
        length=9,
    )
    # frames 2-4 are inside the image but not scored, then the box is elsewhere: one gap of 3,
    # IoU 0; frame 7 has no row (out of view), so 6 -> 8 is no occlusion gap
    assert events.occlusion_gaps(video) == [(3, 0.0)]
    # stride 1 steps between scored rows: 0->1 (IoU 9/11), 5->6 (IoU 50/150): one below 0.5
    assert events.motion_failures(video, 1) == (1, 2)
    # stride 4: 1->5 (IoU 0); stride 8: 0->8 (IoU 0)
    assert events.motion_failures(video, 4) == (1, 1)
    assert events.motion_failures(video, 8) == (1, 1)


# ---------------------------------------------------------------- the default benchmark


@pytest.fixture(scope="module")
def default_meta(default_synth: GeneratedSynth) -> dict:
    return _meta(default_synth)


def test_default_benchmark_sizes_and_generation_time(
    default_synth: GeneratedSynth, default_meta: dict
) -> None:
    """val and test are large enough that one ID switch moves IDF1 by well under a point."""
    assert default_synth.seconds < 60.0  # about 7 s on an idle core
    stats = default_meta["statistics"]
    assert stats["train"]["sequences"] == 6
    for split in ("val", "test"):
        assert stats[split]["sequences"] >= 12
        assert stats[split]["identities"] >= 150
        assert stats[split]["boxes"] >= 8000


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_meta_statistics_match_the_written_ground_truth(
    default_synth: GeneratedSynth, default_meta: dict, split: str
) -> None:
    index = _index(default_synth, split)
    stats = default_meta["statistics"][split]
    scored = [
        f.annotations.track_ids[~f.annotations.ignore] for v in index.videos for f in v.frames
    ]
    identities = sum(
        len({int(i) for f in v.frames for i in f.annotations.track_ids[~f.annotations.ignore]})
        for v in index.videos
    )
    assert stats["frames"] == sum(len(v) for v in index.videos)
    assert stats["boxes"] == sum(len(ids) for ids in scored)
    assert stats["identities"] == identities
    assert stats == events.split_statistics(index.videos, default_meta[split])


def test_default_benchmark_has_every_event_type(default_meta: dict) -> None:
    for split in ("val", "test"):
        stats = default_meta["statistics"][split]
        assert stats["long_occlusions"] >= 10, stats  # 10-40 frames fully unscored
        assert stats["long_occlusions_displaced"] >= 8, stats  # ...and out elsewhere
        assert stats["crossings"] >= 8 and stats["close_passes"] >= 8, stats
        assert stats["shakes"]["count"] >= 14 and stats["shakes"]["min"] >= 8.0, stats
        assert stats["pans"] >= 5 and stats["abrupt_turns"] >= 200, stats
        assert stats["entering"] >= 20 and stats["leaving"] >= 20, stats
        assert stats["scale_changes"]["count"] >= 15, stats
        failures = stats["motion_only_failures"]
        assert failures["1"] < failures["4"] < failures["8"], failures
        assert failures["8"] > 0.5, failures  # at stride 8 box overlap carries few tracks


def test_planned_long_occlusions_cover_the_object_fully(
    default_synth: GeneratedSynth, default_meta: dict
) -> None:
    """During a planned hide the object is fully covered (visibility 0) in every frame it is in
    the image, and where it is seen on both sides, it comes out at a box disjoint from the one it
    went in at."""
    displaced = 0
    for video, meta in zip(_index(default_synth, "test").videos, default_meta["test"], strict=True):
        tracks = _tracks(video)
        for hide in meta["hides"]:
            assert 10 <= hide["frames"] <= 40
            track = tracks[hide["track_id"]]
            covered = range(hide["start"], hide["start"] + hide["frames"])
            assert all(track[t][1] == 0.0 for t in covered if t in track)
            before, after = hide["start"] - 1, hide["start"] + hide["frames"]
            if before in track and after in track:
                a, b = track[before][0], track[after][0]
                displaced += not _overlap(a, b)
    assert displaced >= 8


def test_encounters_are_look_alikes_that_meet(
    default_synth: GeneratedSynth, default_meta: dict
) -> None:
    """Each encounter pair shares class and size but not the texture; at the planned frame a
    crossing's centres coincide and a close pass's are 0.5-1 long sides apart."""
    cfg = default_synth.config
    checked = 0
    for video, meta in zip(_index(default_synth, "val").videos, default_meta["val"], strict=True):
        objects = {o["track_id"]: o for o in meta["objects"]}
        tracks = _tracks(video)
        for event in meta["encounters"]:
            a, b = (objects[i] for i in event["track_ids"])
            assert b["lookalike_of"] == a["track_id"]
            assert (a["class"], a["width"], a["height"]) == (b["class"], b["width"], b["height"])
            assert a["pattern"] != b["pattern"]
            t = event["frame"]
            rows = [tracks.get(i, {}).get(t) for i in event["track_ids"]]
            if not all(r is not None and _unclipped(r[0], cfg) for r in rows):
                continue
            centres = [(r[0][:2] + r[0][2:]) / 2 for r in rows]  # type: ignore[index]
            distance = float(np.linalg.norm(centres[0] - centres[1]))
            long_side = max(a["width"], a["height"])
            if event["kind"] == "crossing":
                assert distance <= 1.5
            else:
                assert 0.5 * long_side - 1.5 <= distance <= long_side + 1.5
            checked += 1
    assert checked >= 10


def _best_shift(before: np.ndarray, after: np.ndarray, reach: int = 20) -> tuple[int, int]:
    """The integer (dx, dy) that best maps ``before`` onto ``after`` (least mean abs difference)."""
    best, shift = np.inf, (0, 0)
    height, width = before.shape[:2]
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            a = before[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)]
            b = after[max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
            error = float(np.abs(a - b).mean())
            if error < best:
                best, shift = error, (dx, dy)
    return shift


def test_a_camera_shake_shifts_the_whole_image(
    default_synth: GeneratedSynth, default_meta: dict
) -> None:
    video, meta = _index(default_synth, "val").videos[0], default_meta["val"][0]
    shake = max(meta["shakes"], key=lambda s: s["amplitude"])
    t = shake["start"]
    frames = []
    for index in (t - 1, t):
        with Image.open(video.frames[index].image_path) as image:
            frames.append(np.asarray(image.convert("L"), np.float32))
    dx, dy = _best_shift(*frames)
    assert np.hypot(dx, dy) >= 6.0, (dx, dy, shake)


def test_scale_changes_show_in_the_boxes(default_synth: GeneratedSynth, default_meta: dict) -> None:
    """An object's box height follows its planned scale factor (first vs last unclipped frame)."""
    cfg = default_synth.config
    compared = 0
    for video, meta in zip(_index(default_synth, "val").videos, default_meta["val"], strict=True):
        tracks = _tracks(video)
        for obj in meta["objects"]:
            factor = obj["scale_factor"]
            frames = tracks.get(obj["track_id"], {})
            unclipped = sorted(t for t, (box, _) in frames.items() if _unclipped(box, cfg))
            if factor == 1.0 or len(unclipped) < 2 or unclipped[-1] - unclipped[0] < 30:
                continue
            first, last = (frames[t][0] for t in (unclipped[0], unclipped[-1]))
            measured = float((last[3] - last[1]) / (first[3] - first[1]))
            expected = factor ** ((unclipped[-1] - unclipped[0]) / (len(video) - 1))
            assert measured == pytest.approx(expected, rel=0.15, abs=2 / float(first[3] - first[1]))
            compared += 1
    assert compared >= 3


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]))


def test_small_fixture_matches_its_config(small_synth: GeneratedSynth) -> None:
    assert small_synth.path.name == SMALL_SYNTH.cache_key()
    assert len(_index(small_synth, "train")) == 2 and len(_index(small_synth, "val")) == 1
    assert len(_index(small_synth, "test")) == 1
