"""Thresholds per association method from one small grid on val, then the score on test.

Every method gets the same treatment: the same shared tracker values, its own grid over its
matching threshold and memory length, the grid point with the best ``tune_metric`` on val at that
stride, and that point scored once on test. Nothing is chosen on test.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from qdtrack_pl.ablation.cache import DetectionCache
from qdtrack_pl.ablation.strided import score_strided
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.tracking.base import Tracker

REPORTED = ("HOTA", "DetA", "AssA", "IDF1", "IDSW", "MOTA")  # what results.json keeps per split


def grid_points(grid: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in a stable order ({} for an empty grid)."""
    keys = sorted(grid)
    return [
        dict(zip(keys, values, strict=True))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def tracker_factory(tracker: DictConfig | Mapping[str, Any], **params: Any) -> Any:
    """A zero-argument builder of fresh trackers from a ``_target_`` config plus ``params``."""
    base = (
        OmegaConf.to_container(tracker, resolve=True)
        if isinstance(tracker, DictConfig)
        else tracker
    )
    if not isinstance(base, Mapping):
        raise TypeError(f"a tracker config must be a mapping, got {type(base).__name__}")
    config = {**base, **params}

    def make() -> Tracker:
        return instantiate(config)

    return make


def method_params(method: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """A grid point in the method's own keys: ``threshold`` becomes its ``threshold_key``."""
    params = dict(point)
    if "threshold" in params:
        params[method["threshold_key"]] = params.pop("threshold")
    return params


def tune_and_test(
    method: Mapping[str, Any],
    sweep: Mapping[str, list[Any]],
    shared: Mapping[str, Any],
    stride: int,
    val: tuple[VideoIndex, DetectionCache],
    test: tuple[VideoIndex, DetectionCache],
    tune_metric: str,
    protocol: str = "mot",
) -> dict[str, Any]:
    """The best grid point on val for one method at one stride, and its scores on val and test."""
    best: tuple[float, dict[str, Any], dict[str, float]] | None = None
    tried = []
    for point in grid_points(sweep):
        point = method_params(method, point)
        make = tracker_factory(method["tracker"], **shared, **point)
        metrics = score_strided(*val, make, stride, protocol).metrics
        tried.append({"params": point, tune_metric: round(metrics[tune_metric], 3)})
        if best is None or metrics[tune_metric] > best[0]:
            best = (metrics[tune_metric], point, metrics)
    if best is None:
        raise ValueError("a method's sweep must contain at least one grid point")
    _, params, val_metrics = best
    test_metrics = score_strided(
        *test, tracker_factory(method["tracker"], **shared, **params), stride, protocol
    ).metrics
    return {
        "params": params,
        "val": {k: round(float(val_metrics[k]), 3) for k in REPORTED},
        "test": {k: round(float(test_metrics[k]), 3) for k in REPORTED},
        "sweep": tried,
    }
