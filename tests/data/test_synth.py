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
from qdtrack_pl.data.index import Video, VideoIndex
from qdtrack_pl.data.synth import generate as synth
from qdtrack_pl.data.synth.config import SHAPE_ASPECTS, SynthConfig
from qdtrack_pl.data.synth.generate import ensure_synth_dataset
from qdtrack_pl.data.synth.render import Layer, compose_frame, shape_mask

TINY = SynthConfig(num_train_sequences=1, num_val_sequences=1, frames_range=(6, 8), seed=5)
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
    real = synth.generate_sequence
    calls = []

    def crash_on_second(*args: object) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(synth, "generate_sequence", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ensure_synth_dataset(tmp_path, TINY, show_progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(synth, "generate_sequence", real)
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
        {"frames_range": [40, 80], "classes": ["person", "car", "box"]}
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
    cfg = small_synth.config
    for video, meta in zip(
        _index(small_synth, "train").videos, _meta(small_synth)["train"], strict=True
    ):
        sizes = {o["track_id"]: (o["width"], o["height"]) for o in meta["objects"]}
        for track_id, frames in _tracks(video).items():
            for box, _ in frames.values():
                if _unclipped(box, cfg):
                    assert tuple(box[2:] - box[:2]) == sizes[track_id]


# ---------------------------------------------------------------- the default split


def test_default_split_sizes_and_generation_time(default_synth: GeneratedSynth) -> None:
    cfg = default_synth.config
    meta = _meta(default_synth)
    assert default_synth.seconds < 45.0  # a few seconds on an idle core
    for split, count in (("train", 7), ("val", 3)):
        index = _index(default_synth, split)
        assert len(index) == count == len(meta[split])
        assert all(40 <= len(v) <= 80 for v in index.videos)
        assert all(4 <= len(m["objects"]) <= 8 for m in meta[split])
        long_sides = [max(o["width"], o["height"]) for m in meta[split] for o in m["objects"]]
        assert 17 <= min(long_sides) and max(long_sides) <= 74  # 18-70 plus duplicate jitter
        assert all((~f.annotations.ignore).any() for v in index.videos for f in v.frames[:1])
        with Image.open(index.videos[0].frames[0].image_path) as image:
            assert image.size == (cfg.width, cfg.height) and image.mode == "RGB"


def test_default_classes_have_their_aspect_ratios(default_synth: GeneratedSynth) -> None:
    objects = [
        o for split in ("train", "val") for m in _meta(default_synth)[split] for o in m["objects"]
    ]
    aspect = {
        c: [o["height"] / o["width"] for o in objects if o["class"] == c] for c in SHAPE_ASPECTS
    }
    assert all(len(v) >= 3 for v in aspect.values()), {c: len(v) for c, v in aspect.items()}
    assert min(aspect["person"]) > 1.6
    assert max(aspect["car"]) < 0.75
    assert 0.7 < min(aspect["box"]) and max(aspect["box"]) < 1.35


def test_default_split_has_crossings(default_synth: GeneratedSynth) -> None:
    """Each planned crossing: the two centres meet (within rounding) and swap sides around it."""
    crossed = 0
    for split in ("train", "val"):
        for video, meta in zip(
            _index(default_synth, split).videos, _meta(default_synth)[split], strict=True
        ):
            tracks = _tracks(video)
            for crossing in meta["crossings"]:
                a, b = (tracks[i] for i in crossing["track_ids"])
                t, k = crossing["frame"], 5
                if not all(f in a and f in b for f in (t - k, t, t + k)):
                    continue
                centre = {
                    f: [(x[f][0][:2] + x[f][0][2:]) / 2 for x in (a, b)] for f in (t - k, t, t + k)
                }
                assert np.abs(centre[t][0] - centre[t][1]).max() <= 3.0
                before, after = (centre[f][0] - centre[f][1] for f in (t - k, t + k))
                crossed += float(before @ after) < 0
    assert crossed >= 6


def test_default_split_has_occlusions_caused_by_objects_in_front(
    default_synth: GeneratedSynth,
) -> None:
    """Unclipped rows with 0 < visibility < 1 exist, and each overlaps another object or the
    sequence's occluder: the visibility comes from coverage, not from the image border."""
    cfg = default_synth.config
    occluded = 0
    for video, meta in zip(
        _index(default_synth, "train").videos, _meta(default_synth)["train"], strict=True
    ):
        occluder = meta["hiding"]["box"] if meta["hiding"] else None
        for frame in video.frames:
            boxes, vis = frame.annotations.boxes, frame.annotations.visibility
            for i in np.flatnonzero((vis < 1) & (vis > 0)):
                if not _unclipped(boxes[i], cfg):
                    continue
                others = [*np.delete(boxes, i, axis=0), *([occluder] if occluder else [])]
                assert any(_overlap(boxes[i], o) for o in others), (video.name, frame.index)
                occluded += 1
    assert occluded >= 50


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]))


def test_default_split_hides_objects_fully_then_they_reappear(
    default_synth: GeneratedSynth,
) -> None:
    events = 0
    for split in ("train", "val"):
        for video, meta in zip(
            _index(default_synth, split).videos, _meta(default_synth)[split], strict=True
        ):
            if not meta["hiding"]:
                continue
            hiding = meta["hiding"]
            track = _tracks(video)[hiding["track_id"]]
            start, stop = hiding["start"], hiding["start"] + hiding["frames"]
            assert hiding["frames"] >= 4
            assert [track[t][1] for t in range(start, stop)] == [0.0] * hiding["frames"]
            assert max(track[t][1] for t in track if t < start) >= 0.5
            assert max(track[t][1] for t in track if t >= stop) >= 0.5
            events += 1
    assert events >= 4


def _crop(video: Video, track_id: int, cfg: SynthConfig) -> np.ndarray | None:
    """The object's pixels at the first frame where it is fully visible and unclipped."""
    for frame in video.frames:
        ann = frame.annotations
        rows = np.flatnonzero((ann.track_ids == track_id) & (ann.visibility == 1))
        if len(rows) and _unclipped(ann.boxes[rows[0]], cfg):
            with Image.open(frame.image_path) as image:
                crop = image.crop(tuple(int(v) for v in ann.boxes[rows[0]])).resize(CROP_SIZE)
            return np.asarray(crop, np.float32)
    return None


def test_default_split_has_near_duplicate_looks(default_synth: GeneratedSynth) -> None:
    """Near-duplicates look far more alike (mean absolute pixel difference) than two independent
    objects of the same class."""
    cfg = default_synth.config
    duplicate_diffs, other_diffs = [], []
    for video, meta in zip(
        _index(default_synth, "train").videos, _meta(default_synth)["train"], strict=True
    ):
        objects = meta["objects"]
        crops = {o["track_id"]: _crop(video, o["track_id"], cfg) for o in objects}
        for a in objects:
            for b in objects:
                ca, cb = crops[a["track_id"]], crops[b["track_id"]]
                if (
                    a["track_id"] >= b["track_id"]
                    or a["class"] != b["class"]
                    or ca is None
                    or cb is None
                ):
                    continue
                twins = b["duplicate_of"] == a["track_id"] or a["duplicate_of"] == b["track_id"]
                (duplicate_diffs if twins else other_diffs).append(float(np.abs(ca - cb).mean()))
    assert len(duplicate_diffs) >= 3 and len(other_diffs) >= 3
    assert np.median(duplicate_diffs) < 0.5 * np.median(other_diffs), (duplicate_diffs, other_diffs)


def test_default_split_objects_enter_and_leave_the_image(default_synth: GeneratedSynth) -> None:
    cfg = default_synth.config
    entering = leaving = 0
    for video in _index(default_synth, "train").videos:
        for frames in _tracks(video).values():
            first, last = min(frames), max(frames)
            entering += first > 0 and not _unclipped(frames[first][0], cfg)
            leaving += last < len(video) - 1 and not _unclipped(frames[last][0], cfg)
    assert entering >= 4 and leaving >= 4


def test_small_fixture_matches_its_config(small_synth: GeneratedSynth) -> None:
    assert small_synth.path.name == SMALL_SYNTH.cache_key()
    assert len(_index(small_synth, "train")) == 2 and len(_index(small_synth, "val")) == 1
