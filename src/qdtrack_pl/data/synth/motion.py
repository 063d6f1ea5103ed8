"""Object trajectories: piecewise-constant velocities and planned crossings."""

from __future__ import annotations

import numpy as np

from qdtrack_pl.data.synth.config import (
    SynthConfig,
)


def trajectory(
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


def anchor_point(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    margin = cfg.size_range[0] / 2
    return np.array(
        [rng.uniform(margin, cfg.width - margin), rng.uniform(margin, cfg.height - margin)]
    )


def plan_motion(
    cfg: SynthConfig, rng: np.random.Generator, num_objects: int, length: int
) -> tuple[list[np.ndarray], list[dict]]:
    """Trajectories for all objects; the first ``2 * crossing_pairs`` meet pairwise at one point."""
    trajectories: list[np.ndarray] = []
    crossings: list[dict] = []
    num_crossing = min(2 * cfg.crossing_pairs, num_objects - num_objects % 2)
    for i in range(0, num_crossing, 2):
        frame = int(rng.integers(length // 4, 3 * length // 4 + 1))
        point, heading = anchor_point(cfg, rng), rng.uniform(0, 2 * np.pi)
        spread = np.deg2rad(cfg.min_crossing_deg)
        other = heading + rng.uniform(spread, 2 * np.pi - spread)
        trajectories += [trajectory(cfg, rng, length, (frame, point), h) for h in (heading, other)]
        crossings.append({"track_ids": [i + 1, i + 2], "frame": frame})
    for _ in range(num_crossing, num_objects):
        anchor = (int(rng.integers(length)), anchor_point(cfg, rng))
        trajectories.append(trajectory(cfg, rng, length, anchor, rng.uniform(0, 2 * np.pi)))
    return trajectories, crossings
