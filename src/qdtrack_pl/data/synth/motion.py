"""Where things are at every frame, in world pixels: the camera's pans and shakes, object
trajectories with abrupt turns, look-alike encounters (crossings and close passes), long
occlusions behind a static occluder with a displaced reappearance, and scale profiles.

The world is the view grown by ``camera_margin`` on every side; the view's top-left moves over it
(``CameraPath``), so a pan or a shake moves everything in the image at once, as a moving camera
does. Objects move in world coordinates and are anchored inside the view at some frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qdtrack_pl.data.synth.config import SynthConfig

CALM_FRAMES = 10  # no abrupt turn this close to a planned encounter, so that it happens
HIDE_SHIFT = (1.1, 1.5)  # reappearance shift, in units of "just clear of the entry box"
EDGE_FRAMES = 5  # a long occlusion starts and ends at least this far from the sequence ends


class CameraPath(NamedTuple):
    offsets: np.ndarray  # (T, 2) float: the view's top-left in world pixels
    pans: list[dict]  # {"start", "frames", "speed"} per pan
    shakes: list[dict]  # {"start", "frames", "amplitude"} per shake (largest shift of its frames)


class Track(NamedTuple):
    centres: np.ndarray  # (T, 2) float world centres
    turns: int  # abrupt heading and speed changes


class HidePlan(NamedTuple):
    """A long occlusion: the object is fully behind ``occluder`` for ``frames`` frames from
    ``start`` and comes out at a box that does not overlap the one it went in at."""

    start: int
    frames: int
    entry: np.ndarray  # (2,) world centre when it is first fully covered
    exit: np.ndarray  # (2,) world centre when it is last fully covered
    occluder: tuple[int, int, int, int]  # world x1, y1, x2, y2


def _count(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


def camera_path(cfg: SynthConfig, rng: np.random.Generator, length: int) -> CameraPath:
    """Pans (constant velocity for a while) on a base path kept inside the world, plus shakes (a
    new random shift every frame of the shake, then back)."""
    margin, largest_shake = float(cfg.camera_margin), cfg.shake_amplitude_range[1]
    velocity = np.zeros((length, 2))
    pans = []
    for _ in range(_count(rng, cfg.pans_range)):
        frames = min(_count(rng, cfg.pan_frames_range), length - 1)
        start = int(rng.integers(1, length - frames + 1))
        speed, angle = rng.uniform(*cfg.pan_speed_range), rng.uniform(0, 2 * np.pi)
        velocity[start : start + frames] += speed * np.array([np.cos(angle), np.sin(angle)])
        pans.append({"start": start, "frames": frames, "speed": round(float(speed), 3)})
    base = margin + np.cumsum(velocity, axis=0)
    base = np.clip(base, largest_shake, 2 * margin - largest_shake)
    shake = np.zeros((length, 2))
    shakes = []
    for _ in range(_count(rng, cfg.shakes_range)):
        frames = min(_count(rng, cfg.shake_frames_range), length - 2)
        start = int(rng.integers(1, length - frames))
        amplitudes = rng.uniform(*cfg.shake_amplitude_range, frames)
        angles = rng.uniform(0, 2 * np.pi, frames)
        shake[start : start + frames] = amplitudes[:, None] * np.column_stack(
            [np.cos(angles), np.sin(angles)]
        )
        shakes.append(
            {"start": start, "frames": frames, "amplitude": round(float(amplitudes.max()), 2)}
        )
    return CameraPath(base + shake, pans, shakes)


def trajectory(
    cfg: SynthConfig,
    rng: np.random.Generator,
    length: int,
    anchor: tuple[int, np.ndarray],
    heading: float,
    calm: tuple[int, int] | None = None,
) -> Track:
    """Centres passing through ``anchor = (frame, xy)`` with piecewise-constant velocity: at each
    frame, with ``turn_prob``, the heading turns by up to ``max_turn_deg`` and the speed is redrawn
    (abrupt changes). No turn happens inside the ``calm`` frame window."""
    turns = rng.random(length) < cfg.turn_prob
    turns[0] = False
    if calm is not None:
        turns[max(calm[0], 0) : calm[1]] = False
    max_turn = np.deg2rad(cfg.max_turn_deg)
    headings = heading + np.cumsum(turns * rng.uniform(-max_turn, max_turn, length))
    speeds = rng.uniform(*cfg.speed_range, length + 1)[np.cumsum(turns)]
    velocity = np.column_stack([np.cos(headings), np.sin(headings)]) * speeds[:, None]
    travelled = np.concatenate([np.zeros((1, 2)), np.cumsum(velocity, 0)])[:length]
    frame, point = anchor
    return Track(point + travelled - travelled[frame], int(turns.sum()))


def view_point(
    cfg: SynthConfig, rng: np.random.Generator, camera: CameraPath, frame: int, inset: float
) -> np.ndarray:
    """A random world point that the view shows at ``frame``, at least ``inset`` from its edges."""
    inset = min(inset, cfg.width / 2 - 1, cfg.height / 2 - 1)
    local = [rng.uniform(inset, cfg.width - inset), rng.uniform(inset, cfg.height - inset)]
    return camera.offsets[frame] + np.array(local)


def encounter(
    cfg: SynthConfig,
    rng: np.random.Generator,
    camera: CameraPath,
    length: int,
    long_side: float,
) -> tuple[Track, Track, dict]:
    """Two trajectories that meet at one frame: at one point (a crossing) or at a closest distance
    of ``close_pass_gap`` times ``long_side`` (a close pass), at headings ``min_crossing_deg`` or
    more apart, with no turn for ``CALM_FRAMES`` around the meeting."""
    frame = int(rng.integers(length // 4, 3 * length // 4 + 1))
    point = view_point(cfg, rng, camera, frame, long_side)
    heading = rng.uniform(0, 2 * np.pi)
    spread = np.deg2rad(cfg.min_crossing_deg)
    other = heading + rng.uniform(spread, 2 * np.pi - spread)
    calm = (frame - CALM_FRAMES, frame + CALM_FRAMES + 1)
    first = trajectory(cfg, rng, length, (frame, point), heading, calm)
    second = trajectory(cfg, rng, length, (frame, point), other, calm)
    kind = "close_pass" if rng.random() < cfg.close_pass_prob else "crossing"
    if kind == "close_pass":
        # closest approach at `frame` when the offset is perpendicular to the relative velocity
        relative = np.diff(second.centres[frame : frame + 2], axis=0)[0]
        relative -= np.diff(first.centres[frame : frame + 2], axis=0)[0]
        normal = np.array([-relative[1], relative[0]]) / max(np.linalg.norm(relative), 1e-6)
        gap = rng.uniform(*cfg.close_pass_gap) * long_side
        second = second._replace(centres=second.centres + gap * normal)
    return first, second, {"frame": frame, "kind": kind}


def _hide_shift(width: int, height: int, angle: float) -> np.ndarray:
    """A shift along ``angle`` just large enough (times HIDE_SHIFT) that a ``width`` x ``height``
    box no longer overlaps itself: the reappearance box has IoU 0 with the entry box."""
    direction = np.array([np.cos(angle), np.sin(angle)])
    clear = 1.0 / max(abs(direction[0]) / width, abs(direction[1]) / height)
    return direction * clear


def plan_hide(
    cfg: SynthConfig,
    rng: np.random.Generator,
    camera: CameraPath,
    length: int,
    size: tuple[int, int],
) -> HidePlan | None:
    """A long occlusion for a ``size`` object, or None when the sequence is too short for it."""
    frames = _count(rng, cfg.hide_frames_range)
    if length - frames - 2 * EDGE_FRAMES < 1:
        return None
    start = int(rng.integers(EDGE_FRAMES, length - frames - EDGE_FRAMES + 1))
    width, height = size
    shift = _hide_shift(width, height, rng.uniform(0, 2 * np.pi)) * rng.uniform(*HIDE_SHIFT)
    inset = max(width, height) + np.abs(shift).max() + cfg.occluder_margin
    entry = view_point(cfg, rng, camera, start, inset)
    exit_ = entry + shift
    half = np.array([width, height]) / 2 + cfg.occluder_margin
    low, high = np.minimum(entry, exit_) - half, np.maximum(entry, exit_) + half
    x1, y1 = (int(v) for v in np.floor(low))
    x2, y2 = (int(v) for v in np.ceil(high))
    return HidePlan(start, frames, entry, exit_, (x1, y1, x2, y2))


def hidden_track(cfg: SynthConfig, rng: np.random.Generator, length: int, plan: HidePlan) -> Track:
    """Walk in to ``plan.entry``, move unseen behind the occluder to ``plan.exit``, walk out on a
    new heading (so neither the position nor the motion continue across the gap)."""
    stop = plan.start + plan.frames - 1  # the last fully covered frame
    inward = trajectory(cfg, rng, length, (plan.start, plan.entry), rng.uniform(0, 2 * np.pi))
    outward = trajectory(cfg, rng, length, (stop, plan.exit), rng.uniform(0, 2 * np.pi))
    behind = np.linspace(plan.entry, plan.exit, plan.frames)
    centres = np.concatenate(
        [inward.centres[: plan.start], behind, outward.centres[stop + 1 :]], axis=0
    )
    return Track(centres, inward.turns + outward.turns)


def scale_profile(cfg: SynthConfig, rng: np.random.Generator, length: int) -> np.ndarray:
    """Per-frame size factors: 1 throughout, or (with ``scale_change_prob``) a steady geometric
    ramp from 1 to a final factor drawn from ``scale_factor_range`` (approaching or receding)."""
    if rng.random() >= cfg.scale_change_prob:
        return np.ones(length)
    final = float(np.exp(rng.uniform(*np.log(cfg.scale_factor_range))))
    return final ** (np.arange(length) / max(length - 1, 1))
