"""Drawing: class silhouettes, object textures, backgrounds, clutter, and frame composition with
per-object visibility measured on the pasted masks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from PIL import Image

from qdtrack_pl.data.synth.config import (
    SHAPE_ASPECTS,
    SynthConfig,
)

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


class Appearance(NamedTuple):
    """An object's look, independent of its size, so a look-alike can share its palette."""

    pattern: str
    palette: np.ndarray  # (PALETTE_SIZE, 3) float, 0-255
    period: float  # pixels
    angle: float  # radians, for stripes
    blobs: np.ndarray  # (K, 3) blob centre u, v and radius, relative to the object size


class Sprite(NamedTuple):
    rgb: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool, touching all four sides


class Layer(NamedTuple):
    """Something pasted at integer top-left ``(x, y)``; ``owner`` -1 = not an annotated object."""

    rgb: np.ndarray
    mask: np.ndarray
    x: int
    y: int
    owner: int


def pixel_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each (height, width)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    return xs, ys


def ellipse_mask(
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
    xs, ys = pixel_grid(width, height)
    w, h = float(width), float(height)
    dark = np.zeros((height, width), bool)
    if kind == "person":
        head = ellipse_mask(xs, ys, w / 2, 0.13 * h, 0.3 * w, 0.13 * h)
        mask = head | ellipse_mask(xs, ys, w / 2, 0.6 * h, w / 2, 0.4 * h)
    elif kind == "car":
        body = _rounded_rect(xs, ys, (0, 0.35 * h, w, 0.82 * h), 0.15 * h)
        cabin = _rounded_rect(xs, ys, (0.2 * w, 0, 0.72 * w, 0.45 * h), 0.15 * h)
        dark = ellipse_mask(xs, ys, 0.22 * w, 0.8 * h, 0.2 * h, 0.2 * h)
        dark |= ellipse_mask(xs, ys, 0.78 * w, 0.8 * h, 0.2 * h, 0.2 * h)
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
    xs, ys = pixel_grid(width, height)
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
        index[ellipse_mask(xs, ys, u * width, v * height, rr, rr)] = 1 + j % (PALETTE_SIZE - 1)
    return index


def render_sprite(kind: str, look: Appearance, width: int, height: int) -> Sprite:
    """Texture the class silhouette and crop it to its mask's bounding box."""
    mask, dark = shape_mask(kind, width, height)
    rgb = look.palette[pattern_index(look, width, height)]
    rgb[dark] *= OUTLINE_DARKEN
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return Sprite(np.clip(rgb[crop], 0, MAX_UINT8).astype(np.uint8), mask[crop])


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
    height, width = background.shape[:2]
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


def random_colour(rng: np.random.Generator, saturation: tuple[float, float]) -> np.ndarray:
    """An RGB colour (0-255): random hue, saturation in ``saturation``, value in COLOUR_VALUE."""
    hue = rng.random()
    sat, val = rng.uniform(*saturation), rng.uniform(*COLOUR_VALUE)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return MAX_UINT8 * val * (1 - sat * np.clip(np.minimum(k, 4 - k), 0, 1))


def random_appearance(cfg: SynthConfig, rng: np.random.Generator) -> Appearance:
    palette = np.stack([random_colour(rng, OBJECT_SATURATION) for _ in range(PALETTE_SIZE)])
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


def textured_patch(
    rng: np.random.Generator, height: int, width: int, saturation: tuple[float, float]
) -> np.ndarray:
    """A smooth random colour field (upsampled coarse grid) with fine grain, uint8 HWC."""
    rows, cols = BACKGROUND_GRID
    grid = np.stack([random_colour(rng, saturation) for _ in range(rows * cols)]).reshape(
        rows, cols, 3
    )
    field = Image.fromarray(grid.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, GRAIN_STD, (height, width, 1))
    return np.clip(np.asarray(field, np.float32) + grain, 0, MAX_UINT8).astype(np.uint8)


def _clutter_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    xs, ys = pixel_grid(size, size)
    if kind == "triangle":
        return ys >= np.abs(xs - size / 2) * 2
    if kind == "ring":
        radius = np.hypot(xs - size / 2, ys - size / 2)
        return (radius <= size / 2) & (radius >= size / 3)
    bar = np.zeros((size, size), bool)
    thickness = max(1, size // 8)
    bar[:, size // 2 - thickness // 2 : size // 2 + thickness] = True
    return np.rot90(bar, int(rng.integers(2)))


def background_image(
    cfg: SynthConfig, rng: np.random.Generator, width: int, height: int
) -> np.ndarray:
    """Muted textured field plus static unannotated shapes (triangles, rings, bars), with
    ``clutter_range`` shapes per view-sized area."""
    image = textured_patch(rng, height, width, BACKGROUND_SATURATION)
    layers = []
    per_view = rng.integers(cfg.clutter_range[0], cfg.clutter_range[1] + 1)
    for _ in range(round(per_view * width * height / (cfg.width * cfg.height))):
        size = int(rng.integers(cfg.clutter_size_range[0], cfg.clutter_size_range[1] + 1))
        mask = _clutter_mask(str(rng.choice(CLUTTER_KINDS)), size, rng)
        rgb = np.broadcast_to(
            random_colour(rng, CLUTTER_SATURATION).astype(np.uint8), (*mask.shape, 3)
        )
        x, y = int(rng.integers(-size // 2, width)), int(rng.integers(-size // 2, height))
        layers.append(Layer(rgb, mask, x, y, -1))
    return compose_frame(image, layers, 0)[0]
