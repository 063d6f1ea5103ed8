"""RoIAlign alone, threaded against torchvision's one-thread kernel, on each workload's own calls.

Each workload's model (switches on, random init) runs one frame; its box head pools the RPN's
test-time proposals and its embedding head the final detections, on the FPN maps as the network
leaves them (NHWC on CPU). Both calls are timed with ``threaded`` forced on and off, alternating
in one process, so the threshold in :func:`qdtrack_pl.ops.roi_pooling.ThreadedMultiScaleRoIAlign.
threads_for` can be checked against what threads actually buy at each call's size.

    python -m benchmarks.roi_align [--quick]

prints one JSON object: per workload and call, the RoIs, channels, the threads the rule picks,
and both timings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from benchmarks.common import print_json_run, summarize, time_repeats
from benchmarks.inference import frames_of
from benchmarks.workloads import WORKLOADS, Workload, build_model, load_config
from qdtrack_pl.ops.roi_pooling import ThreadedMultiScaleRoIAlign

REPEATS = {"small@320x192": 40, "r50@1088x608": 8}  # per variant and round, full run; quick: 2


def _time_both(
    pool: ThreadedMultiScaleRoIAlign, call: Callable[[], Tensor], repeats: int
) -> dict[str, Any]:
    """Median (and the rest of ``summarize``) of ``call`` with the pool threaded and not, rounds
    alternating so that machine load hits both alike."""
    seconds: dict[bool, list[float]] = {True: [], False: []}
    configured = pool.threaded
    try:
        for _ in range(2):
            for threaded in (True, False):
                pool.threaded = threaded
                seconds[threaded] += time_repeats(call, 1, repeats, torch.device("cpu"))
    finally:
        pool.threaded = configured
    threaded_ms, plain_ms = summarize(seconds[True]), summarize(seconds[False])
    return {
        "threaded": threaded_ms,
        "one_thread": plain_ms,
        "speedup": plain_ms["median_ms"] / threaded_ms["median_ms"],
    }


def measure(workload: Workload, quick: bool) -> dict[str, Any]:
    """Both RoIAlign calls of one inference frame of ``workload``."""
    repeats = 2 if quick else REPEATS[workload.name]
    model = build_model(load_config(workload)).eval()
    detector = model.detector
    (frame,) = frames_of(workload, 1)
    with torch.inference_mode():
        image_list, features = detector.extract_features(frame)
        proposals = detector.inference_proposals(image_list, features)
        boxes = [d.boxes for d in detector.detect(image_list, features)]
        sizes = image_list.image_sizes
        box_pool = detector.roi_heads.box_roi_pool
        embed_pool = model.embed_head.roi_extractor
        calls = {
            "box_head": (box_pool, proposals, lambda: box_pool(features, proposals, sizes)),
            "embedding_head": (embed_pool, boxes, lambda: embed_pool(features, boxes, sizes)),
        }
        maps = [features[name] for name in box_pool.featmap_names]
        result = {}
        for name, (pool, rois, call) in calls.items():
            num_rois = sum(len(r) for r in rois)
            result[name] = {
                "rois": num_rois,
                "channels": maps[0].shape[1],
                "threads_chosen": pool.threads_for(maps, num_rois),
            } | _time_both(pool, call, repeats)
    return result


def run(quick: bool) -> dict[str, Any]:
    return {
        "cpu_threads": torch.get_num_threads(),
        "workloads": {w.name: measure(w, quick) for w in WORKLOADS},
    }


if __name__ == "__main__":
    print_json_run(__doc__, run, "two repeats per variant")
