"""Online inference throughput (frames per second, one frame at a time) and where the time goes.

A frame passes three stages, each under its own timer: detection (backbone + FPN, RPN, RoI head,
NMS), embedding (the embedding head on the final boxes) and tracking (``QDTracker.update``). The
first two are the steps of ``QDTrackModel.predict``, called one by one; the first frame checks that
together they still give exactly what ``predict`` gives. The models are randomly initialised, so
detection counts follow the configs' caps (``box_detections_per_img``): a worst case for tracking.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from benchmarks.common import SKIPPED_NO_CUDA, Stopwatch, cuda_available
from benchmarks.workloads import (
    SEED,
    WORKLOADS,
    Workload,
    build_model,
    load_config,
    synth_datamodule,
)
from qdtrack_pl.models.qdtrack import Detections, QDTrackModel
from qdtrack_pl.tracking import QDTracker

STAGES = ("detection", "embedding", "tracking")


class Params(NamedTuple):
    warmup: int  # untimed frames (also the consistency check against ``predict``)
    frames: int


PARAMS = {  # keyed by (workload, device type, quick)
    ("small@320x192", "cpu", True): Params(1, 10),
    ("small@320x192", "cpu", False): Params(2, 60),
    ("r50@1088x608", "cpu", True): Params(0, 1),
    ("r50@1088x608", "cpu", False): Params(1, 2),
    ("small@320x192", "cuda", True): Params(3, 20),
    ("small@320x192", "cuda", False): Params(5, 100),
    ("r50@1088x608", "cuda", True): Params(3, 20),
    ("r50@1088x608", "cuda", False): Params(5, 100),
}


def frames_of(workload: Workload, count: int) -> list[Tensor]:
    """(1, 3, H, W) frames in video order: synth val frames, or random MOT17-sized images."""
    if workload.synth_pairs:
        datamodule = synth_datamodule(load_config(workload), eval_batch_size=1, num_workers=0)
        loader = datamodule.val_dataloader()
        return [batch.images for _, batch in zip(range(count), loader, strict=False)]
    gen = torch.Generator().manual_seed(SEED)
    return [torch.rand(1, 3, workload.height, workload.width, generator=gen) for _ in range(count)]


def detect_and_embed(model: QDTrackModel, images: Tensor, watch: Stopwatch) -> list[Detections]:
    """``QDTrackModel.predict`` split into its timed stages."""
    with watch.stage("detection"):
        image_list, features = model.detector.extract_features(images)
        detections = model.detector.detect(image_list, features)
    with watch.stage("embedding"):
        boxes = [d.boxes for d in detections]
        embeddings = model.embed_head(features, boxes, image_list.image_sizes)
    per_image = embeddings.split([len(b) for b in boxes])
    return [
        Detections(d.boxes, d.scores, d.class_ids, e)
        for d, e in zip(detections, per_image, strict=True)
    ]


def _check_against_predict(model: QDTrackModel, images: Tensor, staged: list[Detections]) -> None:
    """Same detections as ``predict`` (up to GPU kernels' run-to-run rounding)."""
    expected = model.predict(images)
    for got, want in zip(staged, expected, strict=True):
        for a, b in zip(got, want, strict=True):
            if a.shape != b.shape or not torch.allclose(a.float(), b.float(), atol=1e-4):
                raise AssertionError("the staged inference no longer matches QDTrackModel.predict")


def measure(
    model: QDTrackModel, frames: list[Tensor], params: Params, device: torch.device
) -> dict[str, Any]:
    """Frames per second over ``params.frames`` frames after the warm-up, with stage shares."""
    model = model.to(device).eval()
    tracker = QDTracker()
    warmup = Stopwatch(device)
    watch = Stopwatch(device)
    detections_per_frame = []
    with torch.inference_mode():
        for frame_id, images in enumerate(frames):
            images = images.to(device)
            timing = warmup if frame_id < params.warmup else watch
            detections = detect_and_embed(model, images, timing)
            if frame_id == 0:
                _check_against_predict(model, images, detections)
            det = detections[0]
            with timing.stage("tracking"):
                tracker.update(det.boxes, det.scores, det.class_ids, det.embeddings, frame_id)
            if timing is watch:
                detections_per_frame.append(len(det.boxes))
    total = sum(watch.seconds.values())
    return {
        "frames": params.frames,
        "image_size": list(frames[0].shape[-2:][::-1]),  # width, height
        "fps": params.frames / total,
        "ms_per_frame": 1e3 * total / params.frames,
        "stage_ms_per_frame": {s: 1e3 * watch.seconds[s] / params.frames for s in STAGES},
        "stage_share": {s: watch.seconds[s] / total for s in STAGES},
        "mean_detections": sum(detections_per_frame) / len(detections_per_frame),
    }


def _measure_on(
    workload: Workload, model: QDTrackModel, device_type: str, quick: bool
) -> dict[str, Any]:
    params = PARAMS[(workload.name, device_type, quick)]
    frames = frames_of(workload, params.warmup + params.frames)
    return measure(model, frames, params, torch.device(device_type))


def run(quick: bool) -> dict[str, Any]:
    """Both workloads on CPU (all threads) and, when present, on the GPU."""
    result: dict[str, Any] = {
        "batch_size": 1,
        "precision": "fp32",
        "cpu_threads": torch.get_num_threads(),
        "workloads": {},
    }
    for workload in WORKLOADS:
        model = build_model(load_config(workload))
        result["workloads"][workload.name] = {
            "config": " ".join(workload.overrides),
            "cpu": _measure_on(workload, model, "cpu", quick),
            "gpu": _measure_on(workload, model, "cuda", quick)
            if cuda_available()
            else SKIPPED_NO_CUDA,
        }
    return result
