"""The synthetic benchmark's generator settings: every knob, hashed into the cache folder's name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENERATOR_VERSION = 2  # part of the cache key: bump when the drawing code changes


SPLITS = ("train", "val")


IMAGE_DIR = "img1"


IMAGE_EXT = ".jpg"


META_FILE = "meta.json"


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
