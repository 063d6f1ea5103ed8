"""The synthetic benchmark's generator settings: every knob, hashed into the cache folder's name."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GENERATOR_VERSION = 3  # part of the cache key: bump when the drawing or planning code changes
SPLITS = ("train", "val", "test")  # val tunes, test reports (never tuned on)
IMAGE_DIR = "img1"
IMAGE_EXT = ".jpg"
META_FILE = "meta.json"

POSITIVE_RANGES = (
    "frames_range",
    "objects_range",
    "size_range",
    "speed_range",
    "hide_frames_range",
    "pan_speed_range",
    "pan_frames_range",
    "shake_amplitude_range",
    "shake_frames_range",
    "scale_factor_range",
    "close_pass_gap",
)
COUNT_RANGES = ("hides_range", "pans_range", "shakes_range", "clutter_range")

# Silhouettes: the height / width range of each known class (tall person, wide car, square box).
SHAPE_ASPECTS: dict[str, tuple[float, float]] = {
    "person": (2.0, 2.6),
    "car": (0.45, 0.6),
    "box": (0.85, 1.15),
}


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; the config's hash names the cache folder.

    The defaults are the embedded benchmark (docs/benchmark.md): 6 train, 14 val and 14 test
    sequences at 320x192, built around the events where motion-only association fails: long
    occlusions with a displaced reappearance, crossings and close passes of same-class look-alikes,
    abrupt turns, camera pans and shakes, objects entering and leaving, and scale changes.
    """

    width: int = 320  # image width in pixels
    height: int = 192  # image height in pixels
    num_train_sequences: int = 6
    num_val_sequences: int = 14
    num_test_sequences: int = 14
    frames_range: tuple[int, int] = (60, 90)  # frames per sequence, inclusive range
    objects_range: tuple[int, int] = (11, 14)  # identities per sequence, inclusive range
    classes: tuple[str, ...] = ("person", "car", "box")  # names from SHAPE_ASPECTS
    size_range: tuple[int, int] = (18, 60)  # long side of an object, pixels
    speed_range: tuple[float, float] = (1.0, 4.0)  # pixels per frame, in the world
    turn_prob: float = 0.04  # per object and frame: an abrupt new heading and speed
    max_turn_deg: float = 150.0  # largest heading change of one turn
    # look-alike encounters: a pair of one class, one palette and one size, with distinct textures,
    # sent through one meeting point at one frame (a crossing) or past each other (a close pass)
    encounter_pairs: int = 2  # look-alike pairs per sequence
    close_pass_prob: float = 0.5  # an encounter is a close pass rather than a crossing
    close_pass_gap: tuple[float, float] = (0.5, 1.0)  # closest centre distance, x the long side
    min_crossing_deg: float = 60.0  # smallest angle between the headings of an encounter pair
    stripe_period_range: tuple[float, float] = (4.0, 10.0)  # texture period, pixels
    # long occlusions: an object walks behind a static occluder, stays fully covered for a while,
    # and comes out elsewhere behind it (displaced by at least its own size)
    hides_range: tuple[int, int] = (1, 2)  # long occlusions per sequence, inclusive range
    hide_frames_range: tuple[int, int] = (10, 40)  # frames the object is fully covered
    hidden_max_side: int = 40  # only objects with a long side up to this hide (occluder size cap)
    occluder_margin: int = 3  # occluder extends this far beyond the hidden object's boxes, pixels
    # camera: the view is a window onto a larger static world that pans and shakes
    camera_margin: int = 48  # the world is this much larger than the view on every side, pixels
    pans_range: tuple[int, int] = (0, 2)  # camera pans per sequence, inclusive range
    pan_speed_range: tuple[float, float] = (1.0, 2.5)  # pixels per frame
    pan_frames_range: tuple[int, int] = (10, 30)  # frames of one pan
    shakes_range: tuple[int, int] = (1, 3)  # camera shakes per sequence, inclusive range
    shake_amplitude_range: tuple[float, float] = (8.0, 16.0)  # global image shift, pixels
    shake_frames_range: tuple[int, int] = (1, 3)  # frames of one shake (a new shift each frame)
    # scale changes: an object approaching or receding grows or shrinks steadily
    scale_change_prob: float = 0.3  # chance an object changes scale over its trajectory
    scale_factor_range: tuple[float, float] = (0.55, 1.8)  # final size / first size
    clutter_range: tuple[int, int] = (6, 12)  # unannotated static background shapes per sequence
    clutter_size_range: tuple[int, int] = (8, 40)  # clutter shape size, pixels
    consider_visibility: float = 0.1  # rows below this visibility get conf 0 (ignore regions)
    pixel_noise: int = 5  # per-frame sensor noise: uniform integers in [-n, n] (0-255 units)
    jpeg_quality: int = 90
    frame_rate: float = 30.0
    seed: int = 0  # train, val and test sequences use disjoint streams derived from it

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # Hydra hands over lists: freeze them for hashing
            value = getattr(self, f.name)
            if isinstance(value, Sequence) and not isinstance(value, str):
                object.__setattr__(self, f.name, tuple(value))
        unknown = [c for c in self.classes if c not in SHAPE_ASPECTS]
        if unknown or not self.classes:
            raise ValueError(f"unknown synth classes {unknown}; known: {sorted(SHAPE_ASPECTS)}")
        for name in POSITIVE_RANGES:
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(lo, hi)}")
        for name in COUNT_RANGES:
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(lo, hi)}")
        if self.shake_amplitude_range[1] > self.camera_margin:
            raise ValueError(
                f"shake_amplitude_range {self.shake_amplitude_range} exceeds camera_margin "
                f"{self.camera_margin}: a shaken view would leave the world"
            )

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
        return {
            "train": self.num_train_sequences,
            "val": self.num_val_sequences,
            "test": self.num_test_sequences,
        }[split]
