"""Procedural multi-object videos in MOTChallenge layout: a tracking dataset that needs no download.

Each sequence has a static textured background with unannotated clutter, 4-8 moving objects of
several classes (distinct silhouettes and aspect ratios) and, sometimes, a static foreground
occluder. Every object has its own texture (stripes, checker, rings or blobs over a random palette);
some copy an earlier same-class object's look up to a little colour noise (near-duplicates), so
identity cannot rest on colour alone. Objects move with piecewise-constant velocities, pairs of them
are sent through one meeting point (crossings), and they cover each other by a fixed depth order.

Ground truth follows MOT17 conventions: ``visibility`` is the fraction of an object's pixels that
are inside the image and not covered by anything in front (measured on the rendered masks); boxes
are the object's full extent clipped to the image; objects with no pixel inside the image are not
annotated.
Rows with ``visibility < consider_visibility`` (fully or nearly hidden, or almost out of the image)
are written with conf 0, MOTChallenge's "not considered" flag, which
:func:`~qdtrack_pl.data.formats.mot.synth_class_rule` turns into ignore regions: they are neither
training targets nor counted by the evaluation.

Datasets are generated on first use into ``<root>/synth-<hash of the config>/`` (built in a
temporary folder and renamed, so an interrupted run leaves no half cache), with a ``meta.json``
describing every object, crossing and hiding event for tests and inspection.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import Progress

from qdtrack_pl.data.formats.mot import write_mot_sequence
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video
from qdtrack_pl.data.synth.config import (
    GENERATOR_VERSION,
    IMAGE_DIR,
    IMAGE_EXT,
    META_FILE,
    SHAPE_ASPECTS,
    SPLITS,
    SynthConfig,
)
from qdtrack_pl.data.synth.motion import (
    plan_motion,
)
from qdtrack_pl.data.synth.render import (
    MAX_UINT8,
    MIN_SPRITE_SIDE,
    OCCLUDER_SATURATION,
    Appearance,
    Layer,
    Sprite,
    background_image,
    compose_frame,
    random_appearance,
    render_sprite,
    textured_patch,
)


class SynthObject(NamedTuple):
    track_id: int  # 1-based MOT id
    class_id: int  # 0-based into SynthConfig.classes
    sprite: Sprite
    centres: np.ndarray  # (T, 2) float x, y per frame
    duplicate_of: int | None  # track id whose appearance this one copies


class Occluder(NamedTuple):
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 pixels
    rgb: np.ndarray  # (y2 - y1, x2 - x1, 3) uint8


def _object_size(cfg: SynthConfig, kind: str, rng: np.random.Generator) -> tuple[int, int]:
    long_side = rng.uniform(*cfg.size_range)
    aspect = rng.uniform(*SHAPE_ASPECTS[kind])  # height / width
    width, height = (
        (long_side / aspect, long_side) if aspect >= 1 else (long_side, long_side * aspect)
    )
    return max(MIN_SPRITE_SIDE, round(width)), max(MIN_SPRITE_SIDE, round(height))


def _copy_look(
    cfg: SynthConfig, rng: np.random.Generator, look: Appearance, size: tuple[int, int]
) -> tuple[Appearance, tuple[int, int]]:
    """A near-duplicate: the same pattern with a little palette noise and size jitter."""
    noise = rng.normal(0, cfg.duplicate_colour_noise, look.palette.shape)
    jitter = 1 + rng.uniform(-cfg.duplicate_size_jitter, cfg.duplicate_size_jitter)
    new_size = tuple(max(MIN_SPRITE_SIDE, round(side * jitter)) for side in size)
    return look._replace(palette=np.clip(look.palette + noise, 0, MAX_UINT8)), new_size


def _make_objects(
    cfg: SynthConfig, rng: np.random.Generator, length: int
) -> tuple[list[SynthObject], list[dict]]:
    """The objects of one sequence (with their trajectories) and the planned crossings."""
    num_objects = int(rng.integers(cfg.objects_range[0], cfg.objects_range[1] + 1))
    trajectories, crossings = plan_motion(cfg, rng, num_objects, length)
    looks: dict[int, tuple[int, Appearance, tuple[int, int]]] = {}  # track id -> class, look, size
    objects = []
    for track_id, centres in enumerate(trajectories, start=1):
        class_id = int(rng.integers(len(cfg.classes)))
        same_class = [i for i, (c, _, _) in looks.items() if c == class_id]
        duplicate_of = None
        if same_class and rng.random() < cfg.near_duplicate_prob:
            duplicate_of = same_class[int(rng.integers(len(same_class)))]
            look, size = _copy_look(cfg, rng, *looks[duplicate_of][1:])
        else:
            look = random_appearance(cfg, rng)
            size = _object_size(cfg, cfg.classes[class_id], rng)
        looks[track_id] = (class_id, look, size)
        sprite = render_sprite(cfg.classes[class_id], look, *size)
        objects.append(SynthObject(track_id, class_id, sprite, centres, duplicate_of))
    return objects, crossings


def _boxes(obj: SynthObject) -> np.ndarray:
    """(T, 4) integer full-extent boxes, the sprite's top-left rounded from the centre."""
    h, w = obj.sprite.mask.shape
    top_left = np.round(obj.centres - np.array([w, h]) / 2).astype(np.int64)
    return np.concatenate([top_left, top_left + np.array([w, h])], axis=1)


def _inside_image(boxes: np.ndarray, cfg: SynthConfig) -> np.ndarray:
    """Which (N, 4) boxes lie entirely inside the image."""
    return (boxes[:, :2] >= 0).all(1) & (boxes[:, 2] <= cfg.width) & (boxes[:, 3] <= cfg.height)


def _disjoint(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """Which (N, 4) boxes do not overlap ``rect``."""
    return (
        (boxes[:, 2] <= rect[0])
        | (boxes[:, 0] >= rect[2])
        | (boxes[:, 3] <= rect[1])
        | (boxes[:, 1] >= rect[3])
    )


def _occluder_rect(path: np.ndarray, cfg: SynthConfig) -> np.ndarray | None:
    """The union of ``path``'s boxes grown by the margin, or None when it exceeds the size cap."""
    margin = cfg.occluder_margin
    rect = np.concatenate([path[:, :2].min(0) - margin, path[:, 2:].max(0) + margin])
    rect = np.clip(rect, 0, [cfg.width, cfg.height, cfg.width, cfg.height])
    area = (rect[2] - rect[0]) * (rect[3] - rect[1])
    return None if area > cfg.max_occluder_area * cfg.width * cfg.height else rect


def _plan_hiding(
    cfg: SynthConfig, rng: np.random.Generator, objects: list[SynthObject]
) -> tuple[Occluder | None, dict | None]:
    """A static occluder over one of the smaller objects' path while it is inside the image, placed
    so the object is fully in the image and clear of the occluder at some frame before and some
    frame after (it re-appears)."""
    if rng.random() >= cfg.hide_prob:
        return None, None
    by_area = sorted(objects, key=lambda o: o.sprite.mask.size)
    candidates = by_area[: max(1, len(by_area) // 2)]
    for obj in (candidates[i] for i in rng.permutation(len(candidates))):
        boxes = _boxes(obj)
        inside = _inside_image(boxes, cfg)
        frames = int(rng.integers(cfg.hide_frames_range[0], cfg.hide_frames_range[1] + 1))
        for start in rng.permutation(np.arange(1, len(boxes) - frames)):
            window = slice(start, start + frames)
            rect = _occluder_rect(boxes[window], cfg) if inside[window].all() else None
            if rect is None:
                continue
            clear = inside & _disjoint(boxes, rect)
            if clear[:start].any() and clear[start + frames :].any():
                x1, y1, x2, y2 = (int(v) for v in rect)
                patch = textured_patch(rng, y2 - y1, x2 - x1, OCCLUDER_SATURATION)
                event = {"track_id": obj.track_id, "start": int(start), "frames": frames}
                return Occluder((x1, y1, x2, y2), patch), {**event, "box": [x1, y1, x2, y2]}
    return None, None


def _annotations(
    objects: Sequence[SynthObject],
    boxes: Sequence[np.ndarray],
    visible: np.ndarray,
    inside: np.ndarray,
    cfg: SynthConfig,
) -> FrameAnnotations:
    """Rows for the objects with a pixel in the image; ``boxes`` are this frame's full extents."""
    rows = np.flatnonzero(inside > 0)
    areas = np.array([objects[i].sprite.mask.sum() for i in rows], np.float64)
    visibility = (visible[rows] / areas).astype(np.float32)
    limits = np.array([cfg.width, cfg.height] * 2)
    return FrameAnnotations(
        boxes=np.clip(np.stack([boxes[i] for i in rows]).reshape(-1, 4), 0, limits).astype(
            np.float32
        ),
        track_ids=np.array([objects[i].track_id for i in rows], np.int64),
        class_ids=np.array([objects[i].class_id for i in rows], np.int64),
        visibility=visibility,
        ignore=visibility < cfg.consider_visibility,
    )


def _save_jpeg(image: np.ndarray, rng: np.random.Generator, cfg: SynthConfig, path: Path) -> None:
    noise = rng.integers(-cfg.pixel_noise, cfg.pixel_noise + 1, image.shape, dtype=np.int16)
    noisy = np.clip(image + noise, 0, MAX_UINT8).astype(np.uint8)
    Image.fromarray(noisy).save(path, quality=cfg.jpeg_quality)


def generate_sequence(cfg: SynthConfig, rng: np.random.Generator, name: str, seq_dir: Path) -> dict:
    """Render one sequence into ``seq_dir`` (MOTChallenge layout); returns its meta.json entry."""
    length = int(rng.integers(cfg.frames_range[0], cfg.frames_range[1] + 1))
    background = background_image(cfg, rng)
    objects, crossings = _make_objects(cfg, rng, length)
    occluder, hiding = _plan_hiding(cfg, rng, objects)
    draw_order = rng.permutation(len(objects))  # back to front
    boxes = [_boxes(obj) for obj in objects]
    image_dir = seq_dir / IMAGE_DIR
    image_dir.mkdir(parents=True)
    frames = []
    for t in range(length):
        layers = [
            Layer(objects[i].sprite.rgb, objects[i].sprite.mask, *boxes[i][t, :2], owner=int(i))
            for i in draw_order
        ]
        if occluder is not None:
            x1, y1, _, _ = occluder.box
            layers.append(Layer(occluder.rgb, np.ones(occluder.rgb.shape[:2], bool), x1, y1, -1))
        image, visible, inside = compose_frame(background, layers, len(objects))
        path = image_dir / f"{t + 1:06d}{IMAGE_EXT}"
        _save_jpeg(image, rng, cfg, path)
        annotations = _annotations(objects, [b[t] for b in boxes], visible, inside, cfg)
        frames.append(Frame(t, path, annotations, t + 1))
    video = Video(name, tuple(frames), cfg.width, cfg.height, cfg.frame_rate)
    write_mot_sequence(video, seq_dir, im_dir=IMAGE_DIR)
    return {
        "name": name,
        "num_frames": length,
        "objects": [
            _object_meta(obj, cfg, int(np.flatnonzero(draw_order == i)[0]))
            for i, obj in enumerate(objects)
        ],
        "crossings": crossings,
        "hiding": hiding,
    }


def _object_meta(obj: SynthObject, cfg: SynthConfig, depth: int) -> dict:
    height, width = obj.sprite.mask.shape
    return {
        "track_id": obj.track_id,
        "class": cfg.classes[obj.class_id],
        "width": width,
        "height": height,
        "depth": depth,  # drawing rank: higher is in front
        "duplicate_of": obj.duplicate_of,
    }


def generate_synth_dataset(cfg: SynthConfig, out_dir: Path, show_progress: bool = True) -> None:
    """Write every split of ``cfg`` below ``out_dir`` plus ``meta.json``; deterministic in cfg."""
    meta: dict[str, Any] = {"config": dataclasses.asdict(cfg), "version": GENERATOR_VERSION}
    total = sum(cfg.num_sequences(split) for split in SPLITS)
    console = Console(stderr=True)
    with Progress(console=console, disable=not show_progress) as progress:
        task = progress.add_task("generating synth dataset", total=total)
        for split_code, split in enumerate(SPLITS):
            meta[split] = []
            for i in range(cfg.num_sequences(split)):
                rng = np.random.default_rng([cfg.seed, split_code, i])
                name = f"synth-{split}-{i:02d}"
                meta[split].append(generate_sequence(cfg, rng, name, out_dir / split / name))
                progress.advance(task)
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=1))


def ensure_synth_dataset(root: str | Path, cfg: SynthConfig, show_progress: bool = True) -> Path:
    """The dataset folder for ``cfg`` below ``root``, generated first if it is not cached.

    Generation writes into a unique temporary sibling that is renamed into place at the end, so a
    crash never leaves a partial cache and concurrent generators (DDP ranks) do not collide: the
    first rename wins and the others discard their copy.
    """
    final = Path(root) / cfg.cache_key()
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    try:
        generate_synth_dataset(cfg, tmp, show_progress)
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
