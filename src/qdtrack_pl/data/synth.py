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
:func:`~qdtrack_pl.data.mot.synth_class_rule` turns into ignore regions: they are neither training
targets nor counted by the evaluation.

Datasets are generated on first use into ``<root>/synth-<hash of the config>/`` (built in a
temporary folder and renamed, so an interrupted run leaves no half cache), with a ``meta.json``
describing every object, crossing and hiding event for tests and inspection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import Progress

from qdtrack_pl.data.mot import write_mot_sequence
from qdtrack_pl.data.video_index import Frame, FrameAnnotations, Video

GENERATOR_VERSION = 2  # part of the cache key: bump when the drawing code changes
SPLITS = ("train", "val")
IMAGE_DIR = "img1"
IMAGE_EXT = ".jpg"
META_FILE = "meta.json"
MAX_UINT8 = 255
MIN_SPRITE_SIDE = 3  # pixels; smaller sprites cannot show a silhouette
BACKGROUND_GRID = (6, 10)  # rows x cols of the random colour field upsampled into the background
CLUTTER_KINDS = ("triangle", "ring", "bar")
PATTERNS = ("stripes", "checker", "rings", "blobs")
PALETTE_SIZE = 3
BLOBS_PER_OBJECT = (2, 5)
OUTLINE_DARKEN = 0.5  # box edges and car wheels are this much darker than the palette
BLOB_CENTRE_RANGE = (0.2, 0.8)  # blob centres, as a fraction of the object's width / height
BLOB_RADIUS_RANGE = (0.1, 0.3)  # blob radii, as a fraction of the object's short side
# HSV ranges: objects are saturated, the background, clutter and occluders are muted so that the
# annotated objects stand out (but clutter still has to be learnt as background).
COLOUR_VALUE = (0.55, 1.0)
OBJECT_SATURATION = (0.5, 1.0)
CLUTTER_SATURATION = (0.2, 0.7)
BACKGROUND_SATURATION = (0.05, 0.35)
OCCLUDER_SATURATION = (0.0, 0.2)
GRAIN_STD = 6.0  # static fine texture on the background and occluders (0-255 units)


# Silhouettes: the height / width range of each known class (tall person, wide car, square box).
SHAPE_ASPECTS: dict[str, tuple[float, float]] = {
    "person": (2.0, 2.6),
    "car": (0.45, 0.6),
    "box": (0.85, 1.15),
}


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator. The defaults give ~7 train / 3 val short sequences at 320x192
    that a small CPU detector learns in minutes; the config's hash names the cache folder."""

    width: int = 320  # image width in pixels
    height: int = 192  # image height in pixels
    num_train_sequences: int = 7
    num_val_sequences: int = 3
    frames_range: tuple[int, int] = (40, 80)  # frames per sequence, inclusive range
    objects_range: tuple[int, int] = (4, 8)  # objects per sequence, inclusive range
    classes: tuple[str, ...] = ("person", "car", "box")  # names from SHAPE_ASPECTS
    size_range: tuple[int, int] = (18, 70)  # long side of an object, pixels
    speed_range: tuple[float, float] = (1.5, 5.0)  # pixels per frame
    turn_prob: float = 0.04  # per object and frame: draw a new speed and heading
    max_turn_deg: float = 100.0  # largest heading change of one turn
    crossing_pairs: int = 1  # object pairs per sequence sent through one point at one frame
    min_crossing_deg: float = 60.0  # smallest angle between the headings of a crossing pair
    near_duplicate_prob: float = 0.35  # chance an object copies an earlier same-class look
    duplicate_colour_noise: float = 6.0  # std of a near-duplicate's palette change (0-255 units)
    duplicate_size_jitter: float = 0.05  # a near-duplicate's size differs by at most this fraction
    stripe_period_range: tuple[float, float] = (4.0, 10.0)  # texture period, pixels
    hide_prob: float = 0.7  # chance a sequence has an object hiding behind a static occluder
    hide_frames_range: tuple[int, int] = (4, 8)  # frames the hiding object is fully covered
    occluder_margin: int = 3  # occluder extends this far beyond the hidden object's path, pixels
    max_occluder_area: float = 0.15  # largest occluder, as a fraction of the image area
    clutter_range: tuple[int, int] = (6, 12)  # unannotated static background shapes per sequence
    clutter_size_range: tuple[int, int] = (8, 40)  # clutter shape size, pixels
    consider_visibility: float = 0.1  # rows below this visibility get conf 0 (ignore regions)
    pixel_noise: int = 5  # per-frame sensor noise: uniform integers in [-n, n] (0-255 units)
    jpeg_quality: int = 90
    frame_rate: float = 30.0
    seed: int = 0  # train and val sequences use disjoint streams derived from it

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # Hydra hands over lists: freeze them for hashing
            value = getattr(self, f.name)
            if isinstance(value, Sequence) and not isinstance(value, str):
                object.__setattr__(self, f.name, tuple(value))
        unknown = [c for c in self.classes if c not in SHAPE_ASPECTS]
        if unknown or not self.classes:
            raise ValueError(f"unknown synth classes {unknown}; known: {sorted(SHAPE_ASPECTS)}")
        for name in ("frames_range", "objects_range", "size_range", "speed_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | SynthConfig | None) -> SynthConfig:
        if isinstance(values, SynthConfig):
            return values
        return cls(**dict(values or {}))

    def cache_key(self) -> str:
        text = json.dumps(
            {"version": GENERATOR_VERSION, **dataclasses.asdict(self)}, sort_keys=True
        )
        return "synth-" + hashlib.sha1(text.encode()).hexdigest()[:12]

    def num_sequences(self, split: str) -> int:
        return {"train": self.num_train_sequences, "val": self.num_val_sequences}[split]


class Appearance(NamedTuple):
    """An object's look, independent of its size, so a near-duplicate can share it."""

    pattern: str
    palette: np.ndarray  # (PALETTE_SIZE, 3) float, 0-255
    period: float  # pixels
    angle: float  # radians, for stripes
    blobs: np.ndarray  # (K, 3) blob centre u, v and radius, relative to the object size


class Sprite(NamedTuple):
    rgb: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool, touching all four sides


class SynthObject(NamedTuple):
    track_id: int  # 1-based MOT id
    class_id: int  # 0-based into SynthConfig.classes
    sprite: Sprite
    centres: np.ndarray  # (T, 2) float x, y per frame
    duplicate_of: int | None  # track id whose appearance this one copies


class Occluder(NamedTuple):
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 pixels
    rgb: np.ndarray  # (y2 - y1, x2 - x1, 3) uint8


# ---------------------------------------------------------------- drawing


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each (height, width)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    return xs, ys


def _ellipse(
    xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, rx: float, ry: float
) -> np.ndarray:
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def _rounded_rect(
    xs: np.ndarray, ys: np.ndarray, box: tuple[float, float, float, float], radius: float
) -> np.ndarray:
    x1, y1, x2, y2 = box
    dx = np.maximum(np.maximum(x1 + radius - xs, xs - (x2 - radius)), 0.0)
    dy = np.maximum(np.maximum(y1 + radius - ys, ys - (y2 - radius)), 0.0)
    inside = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
    return inside & (dx**2 + dy**2 <= radius**2)


def shape_mask(kind: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Silhouette of a class at ``width`` x ``height`` and the pixels drawn dark (wheels, edges).

    person: a tall body ellipse under a head; car: a wide body with a cabin and two wheels; box: a
    square with a dark rim.
    """
    xs, ys = _grid(width, height)
    w, h = float(width), float(height)
    dark = np.zeros((height, width), bool)
    if kind == "person":
        head = _ellipse(xs, ys, w / 2, 0.13 * h, 0.3 * w, 0.13 * h)
        mask = head | _ellipse(xs, ys, w / 2, 0.6 * h, w / 2, 0.4 * h)
    elif kind == "car":
        body = _rounded_rect(xs, ys, (0, 0.35 * h, w, 0.82 * h), 0.15 * h)
        cabin = _rounded_rect(xs, ys, (0.2 * w, 0, 0.72 * w, 0.45 * h), 0.15 * h)
        dark = _ellipse(xs, ys, 0.22 * w, 0.8 * h, 0.2 * h, 0.2 * h)
        dark |= _ellipse(xs, ys, 0.78 * w, 0.8 * h, 0.2 * h, 0.2 * h)
        mask = body | cabin | dark
    elif kind == "box":
        mask = np.ones((height, width), bool)
        rim = max(1, round(0.08 * min(w, h)))
        dark[:rim], dark[-rim:], dark[:, :rim], dark[:, -rim:] = True, True, True, True
    else:
        raise ValueError(f"no silhouette for class {kind!r}; known: {sorted(SHAPE_ASPECTS)}")
    return mask, dark


def pattern_index(look: Appearance, width: int, height: int) -> np.ndarray:
    """Palette index (0..PALETTE_SIZE-1) of every pixel of a ``width`` x ``height`` texture."""
    xs, ys = _grid(width, height)
    if look.pattern == "stripes":
        phase = (xs * np.cos(look.angle) + ys * np.sin(look.angle)) / look.period
        return np.floor(phase).astype(np.int64) % PALETTE_SIZE
    if look.pattern == "checker":
        return (np.floor(xs / look.period) + np.floor(ys / look.period)).astype(np.int64) % 2
    if look.pattern == "rings":
        radius = np.hypot(xs - width / 2, ys - height / 2) / look.period
        return np.floor(radius).astype(np.int64) % PALETTE_SIZE
    index = np.zeros((height, width), np.int64)
    for j, (u, v, r) in enumerate(look.blobs):
        rr = r * min(width, height)
        index[_ellipse(xs, ys, u * width, v * height, rr, rr)] = 1 + j % (PALETTE_SIZE - 1)
    return index


def render_sprite(kind: str, look: Appearance, width: int, height: int) -> Sprite:
    """Texture the class silhouette and crop it to its mask's bounding box."""
    mask, dark = shape_mask(kind, width, height)
    rgb = look.palette[pattern_index(look, width, height)]
    rgb[dark] *= OUTLINE_DARKEN
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Sprite(np.clip(rgb[crop], 0, MAX_UINT8).astype(np.uint8), mask[crop])


class Layer(NamedTuple):
    """Something pasted at integer top-left ``(x, y)``; ``owner`` -1 = not an annotated object."""

    rgb: np.ndarray
    mask: np.ndarray
    x: int
    y: int
    owner: int


def compose_frame(
    background: np.ndarray, layers: Sequence[Layer], num_objects: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paste ``layers`` back to front onto a copy of ``background``.

    Returns the image, the number of visible pixels per object owner and the number of each
    object's pixels inside the image, both measured on the pasted masks.
    """
    image = background.copy()
    owners = np.full(background.shape[:2], -1, np.int64)
    inside = np.zeros(num_objects, np.int64)
    height, width = owners.shape
    for layer in layers:
        h, w = layer.mask.shape
        x1, y1 = max(layer.x, 0), max(layer.y, 0)
        x2, y2 = min(layer.x + w, width), min(layer.y + h, height)
        if x2 <= x1 or y2 <= y1:
            continue
        src = np.s_[y1 - layer.y : y2 - layer.y, x1 - layer.x : x2 - layer.x]
        mask = layer.mask[src]
        image[y1:y2, x1:x2][mask] = layer.rgb[src][mask]
        owners[y1:y2, x1:x2][mask] = layer.owner
        if layer.owner >= 0:
            inside[layer.owner] = mask.sum()
    visible = np.bincount(owners[owners >= 0], minlength=num_objects)
    return image, visible, inside


# ---------------------------------------------------------------- scene sampling


def _random_colour(rng: np.random.Generator, saturation: tuple[float, float]) -> np.ndarray:
    """An RGB colour (0-255): random hue, saturation in ``saturation``, value in COLOUR_VALUE."""
    hue = rng.random()
    sat, val = rng.uniform(*saturation), rng.uniform(*COLOUR_VALUE)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return MAX_UINT8 * val * (1 - sat * np.clip(np.minimum(k, 4 - k), 0, 1))


def _appearance(cfg: SynthConfig, rng: np.random.Generator) -> Appearance:
    palette = np.stack([_random_colour(rng, OBJECT_SATURATION) for _ in range(PALETTE_SIZE)])
    num_blobs = rng.integers(BLOBS_PER_OBJECT[0], BLOBS_PER_OBJECT[1] + 1)
    centres = rng.uniform(*BLOB_CENTRE_RANGE, (num_blobs, 2))
    blobs = np.column_stack([centres, rng.uniform(*BLOB_RADIUS_RANGE, num_blobs)])
    return Appearance(
        pattern=str(rng.choice(PATTERNS)),
        palette=palette,
        period=float(rng.uniform(*cfg.stripe_period_range)),
        angle=float(rng.uniform(0, np.pi)),
        blobs=blobs,
    )


def _object_size(cfg: SynthConfig, kind: str, rng: np.random.Generator) -> tuple[int, int]:
    long_side = rng.uniform(*cfg.size_range)
    aspect = rng.uniform(*SHAPE_ASPECTS[kind])  # height / width
    width, height = (
        (long_side / aspect, long_side) if aspect >= 1 else (long_side, long_side * aspect)
    )
    return max(MIN_SPRITE_SIDE, round(width)), max(MIN_SPRITE_SIDE, round(height))


def _trajectory(
    cfg: SynthConfig,
    rng: np.random.Generator,
    length: int,
    anchor: tuple[int, np.ndarray],
    heading: float,
) -> np.ndarray:
    """(length, 2) centres passing through ``anchor = (frame, xy)`` with piecewise-constant
    velocity: at each frame, with ``turn_prob``, the heading turns and the speed is redrawn."""
    turns = rng.random(length) < cfg.turn_prob
    max_turn = np.deg2rad(cfg.max_turn_deg)
    headings = heading + np.cumsum(turns * rng.uniform(-max_turn, max_turn, length))
    speeds = rng.uniform(*cfg.speed_range, length + 1)[np.cumsum(turns)]
    velocity = np.column_stack([np.cos(headings), np.sin(headings)]) * speeds[:, None]
    travelled = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity, 0)])[:length]
    frame, point = anchor
    return point + travelled - travelled[frame]


def _anchor_point(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    margin = cfg.size_range[0] / 2
    return np.array(
        [rng.uniform(margin, cfg.width - margin), rng.uniform(margin, cfg.height - margin)]
    )


def _plan_motion(
    cfg: SynthConfig, rng: np.random.Generator, num_objects: int, length: int
) -> tuple[list[np.ndarray], list[dict]]:
    """Trajectories for all objects; the first ``2 * crossing_pairs`` meet pairwise at one point."""
    trajectories: list[np.ndarray] = []
    crossings: list[dict] = []
    num_crossing = min(2 * cfg.crossing_pairs, num_objects - num_objects % 2)
    for i in range(0, num_crossing, 2):
        frame = int(rng.integers(length // 4, 3 * length // 4 + 1))
        point, heading = _anchor_point(cfg, rng), rng.uniform(0, 2 * np.pi)
        spread = np.deg2rad(cfg.min_crossing_deg)
        other = heading + rng.uniform(spread, 2 * np.pi - spread)
        trajectories += [_trajectory(cfg, rng, length, (frame, point), h) for h in (heading, other)]
        crossings.append({"track_ids": [i + 1, i + 2], "frame": frame})
    for _ in range(num_crossing, num_objects):
        anchor = (int(rng.integers(length)), _anchor_point(cfg, rng))
        trajectories.append(_trajectory(cfg, rng, length, anchor, rng.uniform(0, 2 * np.pi)))
    return trajectories, crossings


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
    trajectories, crossings = _plan_motion(cfg, rng, num_objects, length)
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
            look = _appearance(cfg, rng)
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


def _textured_patch(
    rng: np.random.Generator, height: int, width: int, saturation: tuple[float, float]
) -> np.ndarray:
    """A smooth random colour field (upsampled coarse grid) with fine grain, uint8 HWC."""
    rows, cols = BACKGROUND_GRID
    grid = np.stack([_random_colour(rng, saturation) for _ in range(rows * cols)]).reshape(
        rows, cols, 3
    )
    field = Image.fromarray(grid.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, GRAIN_STD, (height, width, 1))
    return np.clip(np.asarray(field, np.float32) + grain, 0, MAX_UINT8).astype(np.uint8)


def _clutter_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    xs, ys = _grid(size, size)
    if kind == "triangle":
        return ys >= np.abs(xs - size / 2) * 2
    if kind == "ring":
        radius = np.hypot(xs - size / 2, ys - size / 2)
        return (radius <= size / 2) & (radius >= size / 3)
    bar = np.zeros((size, size), bool)
    thickness = max(1, size // 8)
    bar[:, size // 2 - thickness // 2 : size // 2 + thickness] = True
    return np.rot90(bar, int(rng.integers(2)))


def _background(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Muted textured field plus static unannotated shapes (triangles, rings, bars)."""
    image = _textured_patch(rng, cfg.height, cfg.width, BACKGROUND_SATURATION)
    layers = []
    for _ in range(int(rng.integers(cfg.clutter_range[0], cfg.clutter_range[1] + 1))):
        size = int(rng.integers(cfg.clutter_size_range[0], cfg.clutter_size_range[1] + 1))
        mask = _clutter_mask(str(rng.choice(CLUTTER_KINDS)), size, rng)
        rgb = np.broadcast_to(
            _random_colour(rng, CLUTTER_SATURATION).astype(np.uint8), (*mask.shape, 3)
        )
        x, y = int(rng.integers(-size // 2, cfg.width)), int(rng.integers(-size // 2, cfg.height))
        layers.append(Layer(rgb, mask, x, y, -1))
    return compose_frame(image, layers, 0)[0]


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
                patch = _textured_patch(rng, y2 - y1, x2 - x1, OCCLUDER_SATURATION)
                event = {"track_id": obj.track_id, "start": int(start), "frames": frames}
                return Occluder((x1, y1, x2, y2), patch), {**event, "box": [x1, y1, x2, y2]}
    return None, None


# ---------------------------------------------------------------- sequences and the cache


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
    background = _background(cfg, rng)
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
