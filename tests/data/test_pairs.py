"""Pair sampling (docs/method.md §4.3), whole-video evaluation loading and the collate functions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DistributedSampler

from fixtures.synth import GeneratedSynth
from qdtrack_pl.data.batch import FrameTargets
from qdtrack_pl.data.formats.mot import read_mot_split, synth_class_rule
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.data.loading.collate import collate_frames, collate_pairs
from qdtrack_pl.data.loading.pairs import PairDataset, repeat_factors
from qdtrack_pl.data.loading.sequence import SequenceDataset, VideoSequenceSampler
from qdtrack_pl.data.loading.transforms import AugmentParams, FrameTransform

SIZE = (32, 24)  # hand-made frames: width, height
CROP = 12  # object crops are compared at CROP x CROP pixels


def _synth_index(data: GeneratedSynth, split: str = "train") -> VideoIndex:
    classes = data.config.classes
    return read_mot_split(data.path / split, synth_class_rule(len(classes)), classes)


def _hand_made_video(
    tmp_path: Path, rows: list[list[tuple[int, bool]]], static: bool = False
) -> Video:
    """One frame per entry of ``rows``: (track id, ignore) per instance, boxes 10x10 apart."""
    frames = []
    for t, instances in enumerate(rows):
        path = tmp_path / f"{t:06d}.jpg"
        Image.new("RGB", SIZE, (40 * t % 255, 90, 160)).save(path)
        boxes = [[2 + 10 * j, 2, 10 + 10 * j, 12] for j in range(len(instances))]
        ids = [i for i, _ in instances]
        ignore = [ig for _, ig in instances]
        frames.append(
            Frame(
                t, path, FrameAnnotations.from_rows(boxes, ids, [0] * len(ids), None, ignore), t + 1
            )
        )
    return Video("hand", tuple(frames), *SIZE, is_static=static)


def _dataset(video: Video, scope: int = 1, skip_nomatch: bool = True) -> PairDataset:
    return PairDataset(
        VideoIndex((video,), ("thing",)), FrameTransform(image_size=SIZE), scope, skip_nomatch
    )


# ---------------------------------------------------------------- sampling rules


def test_refs_stay_in_scope_and_share_an_identity(small_synth: GeneratedSynth) -> None:
    index = _synth_index(small_synth)
    scope = 3
    dataset = PairDataset(index, FrameTransform(), scope=scope)
    rng = np.random.default_rng(0)
    for item in range(len(dataset)):
        for _ in range(3):
            v, key, ref = dataset.sample_ref(item, rng)
            frames = index.videos[v].frames
            assert 0 < abs(ref - key) <= scope
            key_ids = set(dataset.target_ids(v, key).tolist())
            assert key_ids & set(dataset.target_ids(v, ref).tolist())
            assert (~frames[key].annotations.ignore).any()


def test_refs_are_uniform_over_the_matching_frames(small_synth: GeneratedSynth) -> None:
    dataset = PairDataset(_synth_index(small_synth), FrameTransform(), scope=3)
    item = next(
        i for i, (v, t) in enumerate(dataset.keys) if len(dataset.ref_candidates(v, t)) == 6
    )
    rng = np.random.default_rng(1)
    counts = Counter(dataset.sample_ref(item, rng)[2] for _ in range(3000))
    video_idx, key = dataset.keys[item]
    assert sorted(counts) == dataset.ref_candidates(video_idx, key)
    assert all(abs(c - 500) < 100 for c in counts.values()), counts  # 6 frames, 3000 draws


def test_same_track_id_is_the_same_object_in_key_and_ref(small_synth: GeneratedSynth) -> None:
    """Generator ground truth: unclipped boxes of one id keep the object's exact size (objects
    without a scale change) and move no more than the top object speed plus the camera's (its
    top pan speed, and a shake's shift into and out of a frame) allow."""
    cfg = small_synth.config
    index = _synth_index(small_synth)
    meta = json.loads((small_synth.path / "meta.json").read_text())["train"]
    sizes = [
        {o["track_id"]: (o["width"], o["height"]) for o in m["objects"] if o["scale_factor"] == 1}
        for m in meta
    ]
    speed = cfg.speed_range[1] + cfg.pan_speed_range[1]
    shake = 2 * cfg.shake_amplitude_range[1]
    dataset = PairDataset(index, FrameTransform(), scope=3)
    rng = np.random.default_rng(2)
    checked = 0
    for item in range(len(dataset)):
        v, key, ref = dataset.sample_ref(item, rng)
        a, b = (index.videos[v].frames[t].annotations for t in (key, ref))
        for track_id in set(a.track_ids.tolist()) & set(b.track_ids.tolist()):
            box_a, box_b = a.boxes[a.track_ids == track_id][0], b.boxes[b.track_ids == track_id][0]
            unclipped = all(_unclipped(box, cfg.width, cfg.height) for box in (box_a, box_b))
            if not unclipped or track_id not in sizes[v]:
                continue
            assert (
                tuple(box_a[2:] - box_a[:2]) == tuple(box_b[2:] - box_b[:2]) == sizes[v][track_id]
            )
            assert np.abs(box_a[:2] - box_b[:2]).max() <= speed * abs(ref - key) + shake + 1
            checked += 1
    assert checked > 100


def _unclipped(box: np.ndarray, width: int, height: int) -> bool:
    return bool(box[0] > 0 and box[1] > 0 and box[2] < width and box[3] < height)


def test_pair_targets_crop_the_same_pixels_under_one_augmentation(
    small_synth: GeneratedSynth,
) -> None:
    """After a shared flip + rescale, a fully visible id crops (nearly) the same pixels in key and
    ref, while different ids crop different ones."""
    index = _synth_index(small_synth)
    dataset = PairDataset(index, FrameTransform(scale_range=(1.1, 1.1)), scope=3)
    rng = np.random.default_rng(3)
    same, different = [], []
    for item in range(0, len(dataset), 3):
        v, key, ref = dataset.sample_ref(item, rng)
        pair = dataset.load_pair(v, key, ref, AugmentParams(scale_ratio=1.1, flip=True))
        assert pair.key_image.shape == pair.ref_image.shape == (3, 211, 352)
        visible = {
            t: set(ann.track_ids[ann.visibility == 1].tolist())
            for t, ann in ((t, index.videos[v].frames[t].annotations) for t in (key, ref))
        }
        crops = [_crops(pair.key_image, pair.key_targets), _crops(pair.ref_image, pair.ref_targets)]
        for id_a, crop_a in crops[0].items():
            for id_b, crop_b in crops[1].items():
                if id_a in visible[key] and id_b in visible[ref]:
                    diff = float((crop_a - crop_b).abs().mean())
                    (same if id_a == id_b else different).append(diff)
    assert len(same) > 20 and len(different) > 20
    assert np.median(same) < 0.04 and np.median(same) * 4 < np.median(different)


def _crops(image: torch.Tensor, targets: FrameTargets) -> dict[int, torch.Tensor]:
    out = {}
    for box, track_id in zip(
        targets.boxes.round().int().tolist(), targets.track_ids.tolist(), strict=True
    ):
        x1, y1, x2, y2 = box
        if x2 - x1 >= 4 and y2 - y1 >= 4:
            out[track_id] = F.interpolate(
                image[None, :, y1:y2, x1:x2], size=(CROP, CROP), mode="area"
            )[0]
    return out


def test_key_without_a_match_in_scope_pairs_with_itself(tmp_path: Path) -> None:
    video = _hand_made_video(tmp_path, [[(1, False)], [(2, False)], [(3, False), (1, False)]])
    dataset = _dataset(video, scope=1)
    rng = np.random.default_rng(0)
    assert dataset.ref_candidates(0, 1) == []  # id 2 is in neither neighbour
    assert {dataset.sample_ref(1, rng)[2] for _ in range(20)} == {1}
    pair = dataset[1]
    assert pair.ref_image is pair.key_image and pair.ref_targets.track_ids.tolist() == [2]
    assert dataset.ref_candidates(0, 2) == []  # frame 2 holds id 1, its neighbour frame 1 does not
    assert _dataset(video, scope=2).ref_candidates(0, 2) == [0]


def test_instances_without_identity_never_match(tmp_path: Path) -> None:
    video = _hand_made_video(tmp_path, [[(-1, False)], [(-1, False), (4, False)], [(4, False)]])
    dataset = _dataset(video, scope=1)
    assert dataset.ref_candidates(0, 0) == [] and dataset.ref_candidates(0, 1) == [2]


def test_without_skip_nomatch_every_frame_in_scope_is_a_candidate(tmp_path: Path) -> None:
    video = _hand_made_video(tmp_path, [[(1, False)], [(2, False)], [(3, False)]])
    assert _dataset(video, scope=1, skip_nomatch=False).ref_candidates(0, 1) == [0, 2]


def test_ignored_instances_are_removed_and_never_make_a_key(tmp_path: Path) -> None:
    video = _hand_made_video(
        tmp_path, [[(1, True), (2, True)], [(1, False), (2, True)], [(1, False), (2, False)]]
    )
    dataset = _dataset(video, scope=1)
    assert dataset.keys == [(0, 1), (0, 2)]  # frame 0 holds only ignore regions
    assert dataset.ref_candidates(0, 1) == [2]  # frame 0 has no target with id 1
    pair = dataset.load_pair(0, 1, 2, AugmentParams())
    assert pair.key_targets.track_ids.tolist() == [1]
    assert pair.key_targets.boxes.tolist() == [[2.0, 2.0, 10.0, 12.0]]
    assert pair.ref_targets.track_ids.tolist() == [1, 2]


def test_repeat_factors_by_hand() -> None:
    # 5 images; class 0 in 3 (f = 0.6), classes 1 and 2 in one each (f = 0.2); threshold 0.8:
    # class factors sqrt(0.8 / 0.6) = 1.1547, sqrt(0.8 / 0.2) = 2, 2; no class -> 1
    classes = [np.array([0]), np.array([0, 1]), np.array([0]), np.array([2]), np.array([], int)]
    factors = repeat_factors(classes, oversample_thr=0.8)
    assert factors == pytest.approx([(0.8 / 0.6) ** 0.5, 2.0, (0.8 / 0.6) ** 0.5, 2.0, 1.0])
    assert repeat_factors(classes, oversample_thr=1e-3) == pytest.approx([1.0] * 5)  # all common
    with pytest.raises(ValueError, match="oversample_thr"):
        repeat_factors(classes, oversample_thr=0.0)


def test_class_balanced_keys_repeat_frames_of_rare_classes(tmp_path: Path) -> None:
    # class 1 is on one frame of three (f = 1/3): factor sqrt(1 / (1/3)) = 1.73 -> 2 copies
    frames = []
    for t, classes in enumerate([[0], [0], [0, 1]]):
        path = tmp_path / f"{t:06d}.jpg"
        Image.new("RGB", SIZE, (90, 90, 160)).save(path)
        boxes = [[2 + 10 * j, 2, 10 + 10 * j, 12] for j in range(len(classes))]
        annotations = FrameAnnotations.from_rows(boxes, list(range(len(classes))), classes)
        frames.append(Frame(t, path, annotations, t + 1))
    index = VideoIndex((Video("rare", tuple(frames), *SIZE),), ("common", "rare"))
    transform = FrameTransform(image_size=SIZE)
    balanced = PairDataset(index, transform, scope=1, oversample_thr=1.0)
    assert balanced.keys == [(0, 0), (0, 1), (0, 2), (0, 2)]
    assert PairDataset(index, transform, scope=1).keys == [(0, 0), (0, 1), (0, 2)]


def test_static_images_pair_with_themselves_and_get_identities(tmp_path: Path) -> None:
    video = _hand_made_video(tmp_path, [[(-1, False), (-1, False), (-1, True)]], static=True)
    dataset = _dataset(video, scope=1)
    torch.manual_seed(0)
    pair = dataset[0]
    assert pair.ref_image is pair.key_image
    assert pair.key_targets.track_ids.tolist() == pair.ref_targets.track_ids.tolist() == [0, 1]


def test_getitem_is_reproducible_under_a_torch_seed(small_synth: GeneratedSynth) -> None:
    dataset = PairDataset(
        _synth_index(small_synth), FrameTransform(scale_range=(0.8, 1.2), flip_prob=0.5), 3
    )
    draws = []
    for _ in range(2):
        torch.manual_seed(123)
        draws.append([dataset[i] for i in (0, 5, 9)])
    for a, b in zip(*draws, strict=True):
        torch.testing.assert_close(a.ref_image, b.ref_image)
        torch.testing.assert_close(a.ref_targets.boxes, b.ref_targets.boxes)


# ---------------------------------------------------------------- collation and evaluation order


def test_collate_pairs_pads_to_a_common_multiple_of_the_divisor(
    small_synth: GeneratedSynth,
) -> None:
    dataset = PairDataset(_synth_index(small_synth), FrameTransform(), scope=3)
    items = [
        dataset.load_pair(0, 0, 1, AugmentParams(scale_ratio=0.9)),
        dataset.load_pair(0, 3, 2, AugmentParams(scale_ratio=1.05)),
    ]
    assert items[0].key_image.shape[1:] == (173, 288) and items[1].key_image.shape[1:] == (202, 336)
    batch = collate_pairs(items, pad_divisor=32)
    assert batch.key_images.shape == batch.ref_images.shape == (2, 3, 224, 352)
    assert (
        batch.key_images[0, :, 173:].abs().sum() == 0
        and batch.key_images[0, :, :, 288:].abs().sum() == 0
    )
    torch.testing.assert_close(batch.key_images[1, :, :202, :336], items[1].key_image)
    torch.testing.assert_close(batch.ref_images[0, :, :173, :288], items[0].ref_image)
    assert batch.key_targets[1] is items[1].key_targets and len(batch) == 2


def test_sequence_dataset_yields_every_frame_in_video_order(small_synth: GeneratedSynth) -> None:
    index = _synth_index(small_synth)
    dataset = SequenceDataset(index, FrameTransform(image_size=(160, 96)))
    order = [(dataset.frames[i][0].name, dataset.frames[i][1].index) for i in range(len(dataset))]
    assert order == [(v.name, f.index) for v in index.videos for f in v.frames]
    batch = collate_frames([dataset[0], dataset[1], dataset[len(dataset) - 1]], pad_divisor=32)
    assert batch.images.shape == (3, 3, 96, 160)
    assert batch.video_names == ["synth-train-00", "synth-train-00", "synth-train-01"]
    assert batch.frame_indices == [0, 1, len(index.videos[1]) - 1]
    assert batch.scale_factors.tolist() == [0.5, 0.5, 0.5]


def test_video_sampler_keeps_videos_whole_and_balances_ranks() -> None:
    lengths = [5, 3, 8, 2]
    ranks = [list(VideoSequenceSampler(lengths, num_replicas=2, rank=r)) for r in range(2)]
    assert ranks[0] == list(range(8, 18))  # videos 2 and 3: 10 frames
    assert ranks[1] == list(range(0, 8))  # videos 0 and 1: 8 frames
    assert list(VideoSequenceSampler(lengths)) == list(range(18))  # not distributed: in order
    assert len(VideoSequenceSampler(lengths, num_replicas=2, rank=0)) == 10
    assert isinstance(VideoSequenceSampler(lengths), DistributedSampler)  # Lightning keeps it
    with pytest.raises(ValueError, match="rank 2 is outside 0..1"):
        VideoSequenceSampler(lengths, num_replicas=2, rank=2)


@pytest.mark.parametrize("replicas", [3, 4])
def test_video_sampler_partitions_all_frames(replicas: int) -> None:
    lengths = [7, 1, 4, 4, 9, 2, 6]
    offsets = np.cumsum([0, *lengths])
    seen = []
    for rank in range(replicas):
        indices = list(VideoSequenceSampler(lengths, num_replicas=replicas, rank=rank))
        assert indices == sorted(indices)
        starts = {int(np.searchsorted(offsets, i, side="right")) - 1 for i in indices}
        assert sum(lengths[v] for v in starts) == len(indices)  # only whole videos
        seen += indices
    assert sorted(seen) == list(range(sum(lengths)))
