"""The embedded benchmark: procedural multi-object videos in MOTChallenge layout, no download.

Each sequence is a window onto a static textured world with unannotated clutter and static
occluders, in which 11-14 objects of several classes (distinct silhouettes and aspect ratios, each
with its own texture: stripes, checker, rings or blobs over a random palette) move with abrupt
turns, enter and leave, and some grow or shrink. It is built around the events where motion-only
association fails and appearance has to carry the track (docs/benchmark.md):

- long occlusions: an object goes fully behind an occluder for 10-40 frames and comes out displaced
  (its reappearance box does not overlap the box it went in at) on a new heading;
- look-alike encounters: pairs of one class, one palette and one size but distinct textures cross
  or pass close to each other;
- camera pans and shakes: the whole image shifts, by up to 16 px in a single frame;
- abrupt speed and heading changes, objects entering and leaving, scale changes.

Ground truth follows MOT17 conventions: ``visibility`` is the fraction of an object's pixels that
are inside the image and not covered by anything in front (measured on the rendered masks); boxes
are the object's full extent clipped to the image; objects with no pixel inside the image are not
annotated. Rows with ``visibility < consider_visibility`` are written with conf 0, MOTChallenge's
"not considered" flag, which :func:`~qdtrack_pl.data.formats.mot.synth_class_rule` turns into
ignore regions: neither training targets nor counted by the evaluation.

Datasets are generated on first use into ``<root>/synth-<hash of the config>/`` (built in a
temporary folder and renamed, so an interrupted run leaves no half cache), with a ``meta.json``
holding every planned event per sequence and the event statistics measured on each split's ground
truth (:mod:`qdtrack_pl.data.synth.events`).
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
from qdtrack_pl.data.synth.events import split_statistics
from qdtrack_pl.data.synth.motion import (
    CameraPath,
    Track,
    camera_path,
    encounter,
    hidden_track,
    plan_hide,
    scale_profile,
    trajectory,
    view_point,
)
from qdtrack_pl.data.synth.render import (
    MAX_UINT8,
    MIN_SPRITE_SIDE,
    OCCLUDER_SATURATION,
    PATTERNS,
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
    look: Appearance
    size: tuple[int, int]  # width, height at scale 1
    centres: np.ndarray  # (T, 2) float world centres
    scales: np.ndarray  # (T,) size factor per frame
    turns: int  # abrupt heading and speed changes of the trajectory
    lookalike_of: int | None  # track id whose class, palette and size this one shares


class Occluder(NamedTuple):
    box: tuple[int, int, int, int]  # world x1, y1, x2, y2 pixels
    rgb: np.ndarray  # (y2 - y1, x2 - x1, 3) uint8


class Scene(NamedTuple):
    """Everything one sequence shows, planned before any pixel is drawn."""

    camera: CameraPath
    objects: list[SynthObject]
    occluders: list[Occluder]
    events: dict  # planned encounters, hides and turns, for meta.json


def _object_size(cfg: SynthConfig, kind: str, rng: np.random.Generator) -> tuple[int, int]:
    long_side = rng.uniform(*cfg.size_range)
    aspect = rng.uniform(*SHAPE_ASPECTS[kind])  # height / width
    width, height = (
        (long_side / aspect, long_side) if aspect >= 1 else (long_side, long_side * aspect)
    )
    return max(MIN_SPRITE_SIDE, round(width)), max(MIN_SPRITE_SIDE, round(height))


def _lookalike(cfg: SynthConfig, look: Appearance, rng: np.random.Generator) -> Appearance:
    """The same palette under a different texture: alike in colour, class and size, told apart
    only by the pattern."""
    fresh = random_appearance(cfg, rng)
    others = [p for p in PATTERNS if p != look.pattern]
    return fresh._replace(palette=look.palette, pattern=str(rng.choice(others)))


def _plan_scene(cfg: SynthConfig, rng: np.random.Generator, length: int) -> Scene:
    """Camera, then look-alike encounter pairs, then long occlusions, then free objects."""
    camera = camera_path(cfg, rng, length)
    num_objects = int(rng.integers(cfg.objects_range[0], cfg.objects_range[1] + 1))
    objects: list[SynthObject] = []
    encounters, hides, occluders = [], [], []
    still = np.ones(length)

    def add(
        class_id: int,
        look: Appearance,
        size: tuple[int, int],
        track: Track,
        scales: np.ndarray,
        lookalike_of: int | None = None,
    ) -> int:
        """Append the next object (track ids count from 1); returns its track id."""
        track_id = len(objects) + 1
        objects.append(
            SynthObject(
                track_id, class_id, look, size, track.centres, scales, track.turns, lookalike_of
            )
        )
        return track_id

    for _ in range(min(cfg.encounter_pairs, num_objects // 2)):
        class_id = int(rng.integers(len(cfg.classes)))
        size = _object_size(cfg, cfg.classes[class_id], rng)
        look = random_appearance(cfg, rng)
        first, second, event = encounter(cfg, rng, camera, length, max(size))
        a = add(class_id, look, size, first, still)
        b = add(class_id, _lookalike(cfg, look, rng), size, second, still, lookalike_of=a)
        encounters.append({"track_ids": [a, b], **event})

    for _ in range(int(rng.integers(cfg.hides_range[0], cfg.hides_range[1] + 1))):
        if len(objects) >= num_objects:
            break
        class_id = int(rng.integers(len(cfg.classes)))
        size = _object_size(cfg, cfg.classes[class_id], rng)
        scale = cfg.hidden_max_side / max(size)
        if scale < 1:  # only objects small enough for a modest occluder hide
            size = (
                max(MIN_SPRITE_SIDE, int(size[0] * scale)),
                max(MIN_SPRITE_SIDE, int(size[1] * scale)),
            )
        plan = plan_hide(cfg, rng, camera, length, size)
        if plan is None:
            continue
        track_id = add(
            class_id, random_appearance(cfg, rng), size, hidden_track(cfg, rng, length, plan), still
        )
        x1, y1, x2, y2 = plan.occluder
        occluders.append(
            Occluder(plan.occluder, textured_patch(rng, y2 - y1, x2 - x1, OCCLUDER_SATURATION))
        )
        hides.append(
            {
                "track_id": track_id,
                "start": plan.start,
                "frames": plan.frames,
                "occluder": list(plan.occluder),
            }
        )

    while len(objects) < num_objects:
        class_id = int(rng.integers(len(cfg.classes)))
        size = _object_size(cfg, cfg.classes[class_id], rng)
        anchor_frame = int(rng.integers(length))
        anchor = view_point(cfg, rng, camera, anchor_frame, cfg.size_range[0] / 2)
        track = trajectory(cfg, rng, length, (anchor_frame, anchor), rng.uniform(0, 2 * np.pi))
        scales = scale_profile(cfg, rng, length)
        add(class_id, random_appearance(cfg, rng), size, track, scales)

    events = {
        "encounters": encounters,
        "hides": hides,
        "turns": sum(obj.turns for obj in objects),
        "pans": camera.pans,
        "shakes": camera.shakes,
    }
    return Scene(camera, objects, occluders, events)


class _Sprites:
    """Each object's sprite at each integer size it takes, rendered once."""

    def __init__(self, cfg: SynthConfig) -> None:
        self.cfg = cfg
        self.cache: dict[tuple[int, int, int], Sprite] = {}

    def __call__(self, obj: SynthObject, t: int) -> Sprite:
        width, height = (max(MIN_SPRITE_SIDE, round(s * obj.scales[t])) for s in obj.size)
        key = (obj.track_id, width, height)
        if key not in self.cache:
            kind = self.cfg.classes[obj.class_id]
            self.cache[key] = render_sprite(kind, obj.look, width, height)
        return self.cache[key]


def _annotations(
    objects: Sequence[SynthObject],
    sprites: Sequence[Sprite],
    boxes: np.ndarray,
    visible: np.ndarray,
    inside: np.ndarray,
    cfg: SynthConfig,
) -> FrameAnnotations:
    """Rows for the objects with a pixel in the image; ``boxes`` (N, 4) are full extents."""
    rows = [int(i) for i in np.flatnonzero(inside > 0)]
    areas = np.array([sprites[i].mask.sum() for i in rows], np.float64)
    visibility = (visible[rows] / areas).astype(np.float32)
    limits = np.array([cfg.width, cfg.height] * 2)
    return FrameAnnotations(
        boxes=np.clip(boxes[rows].reshape(-1, 4), 0, limits).astype(np.float32),
        track_ids=np.array([objects[i].track_id for i in rows], np.int64),
        class_ids=np.array([objects[i].class_id for i in rows], np.int64),
        visibility=visibility,
        ignore=visibility < cfg.consider_visibility,
    )


def _save_jpeg(image: np.ndarray, rng: np.random.Generator, cfg: SynthConfig, path: Path) -> None:
    noise = rng.integers(-cfg.pixel_noise, cfg.pixel_noise + 1, image.shape, dtype=np.int16)
    noisy = np.clip(image + noise, 0, MAX_UINT8).astype(np.uint8)
    Image.fromarray(noisy).save(path, quality=cfg.jpeg_quality)


def render_sequence(
    cfg: SynthConfig, rng: np.random.Generator, name: str, seq_dir: Path
) -> tuple[Video, dict]:
    """Plan and render one sequence into ``seq_dir`` (MOTChallenge layout); returns the video and
    its meta.json entry."""
    length = int(rng.integers(cfg.frames_range[0], cfg.frames_range[1] + 1))
    margin = cfg.camera_margin
    world = background_image(cfg, rng, cfg.width + 2 * margin, cfg.height + 2 * margin)
    scene = _plan_scene(cfg, rng, length)
    draw_order = rng.permutation(len(scene.objects))  # back to front; occluders in front of all
    sprites = _Sprites(cfg)
    image_dir = seq_dir / IMAGE_DIR
    image_dir.mkdir(parents=True)
    frames = []
    for t in range(length):
        view = np.round(scene.camera.offsets[t]).astype(np.int64)
        background = world[view[1] : view[1] + cfg.height, view[0] : view[0] + cfg.width]
        frame_sprites = [sprites(obj, t) for obj in scene.objects]
        sizes = np.array([s.mask.shape[::-1] for s in frame_sprites], np.int64).reshape(-1, 2)
        centres = np.array([obj.centres[t] for obj in scene.objects]).reshape(-1, 2)
        top_left = np.round(centres - sizes / 2).astype(np.int64) - view
        boxes = np.concatenate([top_left, top_left + sizes], axis=1)
        layers = [
            Layer(
                frame_sprites[i].rgb,
                frame_sprites[i].mask,
                int(top_left[i, 0]),
                int(top_left[i, 1]),
                owner=int(i),
            )
            for i in draw_order
        ]
        for occluder in scene.occluders:
            x1, y1 = np.array(occluder.box[:2]) - view
            mask = np.ones(occluder.rgb.shape[:2], bool)
            layers.append(Layer(occluder.rgb, mask, int(x1), int(y1), -1))
        image, visible, inside = compose_frame(background, layers, len(scene.objects))
        path = image_dir / f"{t + 1:06d}{IMAGE_EXT}"
        _save_jpeg(image, rng, cfg, path)
        annotations = _annotations(scene.objects, frame_sprites, boxes, visible, inside, cfg)
        frames.append(Frame(t, path, annotations, t + 1))
    video = Video(name, tuple(frames), cfg.width, cfg.height, cfg.frame_rate)
    write_mot_sequence(video, seq_dir, im_dir=IMAGE_DIR)
    meta = {
        "name": name,
        "num_frames": length,
        "objects": [
            _object_meta(obj, cfg, int(np.flatnonzero(draw_order == i)[0]))
            for i, obj in enumerate(scene.objects)
        ],
        **scene.events,
    }
    return video, meta


def _object_meta(obj: SynthObject, cfg: SynthConfig, depth: int) -> dict:
    return {
        "track_id": obj.track_id,
        "class": cfg.classes[obj.class_id],
        "width": obj.size[0],  # at scale 1 (the first frame)
        "height": obj.size[1],
        "scale_factor": round(float(obj.scales[-1]), 3),  # last frame's size / first frame's
        "pattern": obj.look.pattern,
        "depth": depth,  # drawing rank: higher is in front
        "lookalike_of": obj.lookalike_of,
    }


def generate_synth_dataset(cfg: SynthConfig, out_dir: Path, show_progress: bool = True) -> None:
    """Write every split of ``cfg`` below ``out_dir`` plus ``meta.json``; deterministic in cfg."""
    meta: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "version": GENERATOR_VERSION,
        "statistics": {},
    }
    total = sum(cfg.num_sequences(split) for split in SPLITS)
    console = Console(stderr=True)
    with Progress(console=console, disable=not show_progress) as progress:
        task = progress.add_task("generating synth dataset", total=total)
        for split_code, split in enumerate(SPLITS):
            videos, sequences = [], []
            for i in range(cfg.num_sequences(split)):
                rng = np.random.default_rng([cfg.seed, split_code, i])
                name = f"synth-{split}-{i:02d}"
                video, sequence = render_sequence(cfg, rng, name, out_dir / split / name)
                videos.append(video)
                sequences.append(sequence)
                progress.advance(task)
            meta[split] = sequences
            meta["statistics"][split] = split_statistics(videos, sequences)
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
