"""Online inference throughput (frames per second, one frame at a time) and where the time goes.

A frame passes three stages, each under its own timer: detection (backbone + FPN, RPN, RoI head,
NMS), embedding (the embedding head on the final boxes) and tracking (``QDTracker.update``). The
first two are the steps of ``QDTrackModel.predict``, called one by one; the first frame checks that
together they still give exactly what ``predict`` gives. The models are randomly initialised, so
detection counts follow the configs' caps (``box_detections_per_img``): a worst case for tracking.

On CPU the speed switches of issue 17 (``benchmarks.switches``) run interleaved frame by frame:
``off`` (the code before the issue), ``on`` (the defaults) and, in the full run, ``on`` without
each switch; each variant has its own model (same weights) and tracker. The headline figures are
``on``'s.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from benchmarks import switches
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
    ("small@320x192", "cpu", False): Params(2, 40),
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
    return measure_interleaved({"on": model}, frames, params, device)["on"]


def _stage_block(watch: Stopwatch, frames: int, detections: list[int]) -> dict[str, Any]:
    total = sum(watch.seconds.values())
    return {
        "frames": frames,
        "fps": frames / total,
        "ms_per_frame": 1e3 * total / frames,
        "stage_ms_per_frame": {s: 1e3 * watch.seconds[s] / frames for s in STAGES},
        "stage_share": {s: watch.seconds[s] / total for s in STAGES},
        "mean_detections": sum(detections) / len(detections),
    }


def measure_interleaved(
    models: dict[str, QDTrackModel],
    frames: list[Tensor],
    params: Params,
    device: torch.device,
    by_name: dict[str, switches.Variant] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every model on every frame, frame by frame (the order of the models rotates per frame;
    with ``by_name`` each call runs under its variant's allocator setting), one tracker each."""
    names = list(models)
    trackers = {n: QDTracker() for n in names}
    warmup = {n: Stopwatch(device) for n in names}
    watch = {n: Stopwatch(device) for n in names}
    detections_per_frame: dict[str, list[int]] = {n: [] for n in names}
    for model in models.values():
        model.to(device).eval()
    with torch.inference_mode():
        for frame_id, images in enumerate(frames):
            images = images.to(device)
            shift = frame_id % len(names)
            for name in names[shift:] + names[:shift]:
                if by_name is not None:
                    switches.activate(by_name[name])
                timing = warmup[name] if frame_id < params.warmup else watch[name]
                detections = detect_and_embed(models[name], images, timing)
                if frame_id == 0:
                    _check_against_predict(models[name], images, detections)
                det = detections[0]
                with timing.stage("tracking"):
                    trackers[name].update(
                        det.boxes, det.scores, det.class_ids, det.embeddings, frame_id
                    )
                if timing is watch[name]:
                    detections_per_frame[name].append(len(det.boxes))
    size = list(frames[0].shape[-2:][::-1])  # width, height
    return {
        n: {"image_size": size} | _stage_block(watch[n], params.frames, detections_per_frame[n])
        for n in names
    }


def _measure_cpu(workload: Workload, quick: bool) -> dict[str, Any]:
    """The switch variants interleaved frame by frame, with their ratios (``switches``)."""
    params = PARAMS[(workload.name, "cpu", quick)]
    frames = frames_of(workload, params.warmup + params.frames)
    cfg = load_config(workload)
    variants = switches.variants(ablation=not quick)
    models = {v.name: build_model(switches.configure(cfg, v)) for v in variants}
    by_name = {v.name: v for v in variants}
    per_variant = measure_interleaved(models, frames, params, torch.device("cpu"), by_name)
    ms = {n: r["ms_per_frame"] for n, r in per_variant.items()}
    return per_variant["on"] | {"variants": per_variant} | switches.ratio_block(ms)


def _measure_gpu(workload: Workload, model: QDTrackModel, quick: bool) -> dict[str, Any]:
    params = PARAMS[(workload.name, "cuda", quick)]
    frames = frames_of(workload, params.warmup + params.frames)
    return measure(model, frames, params, torch.device("cuda"))


def run(quick: bool) -> dict[str, Any]:
    """Both workloads on CPU (all threads; switches off / on, interleaved) and, when present, on
    the GPU (default configuration)."""
    result: dict[str, Any] = {
        "batch_size": 1,
        "precision": "fp32",
        "cpu_threads": torch.get_num_threads(),
        "workloads": {},
    }
    for workload in WORKLOADS:
        result["workloads"][workload.name] = {
            "config": " ".join(workload.overrides),
            "cpu": _measure_cpu(workload, quick),
            "gpu": _measure_gpu(workload, build_model(load_config(workload)), quick)
            if cuda_available()
            else SKIPPED_NO_CUDA,
        }
    return result
