"""Online inference throughput (frames per second, one frame at a time) and where the time goes.

A frame passes three stages, each under its own timer: detection (backbone + FPN, RPN, RoI head,
NMS), embedding (the embedding head on the final boxes) and tracking (``QDTracker.update``). The
first two are the steps of ``QDTrackModel.predict``, called one by one; the first frame checks that
together they still give exactly what ``predict`` gives. The models are randomly initialised, so
detection counts follow the configs' caps (``box_detections_per_img``): a worst case for tracking.

On CPU the speed switches of issue 17 (``benchmarks.switches``) run one variant per fresh process
(``python -m benchmarks.inference``), the variants taking turns round by round: ``off`` (the code
before the issue), ``on`` (the defaults) and, in the full run, ``on`` without each switch; every
variant builds the same weights. The headline figures are ``on``'s.

    python -m benchmarks.inference <workload> <variant> [--quick] [--threads N]

prints that variant's per-frame timings as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any, NamedTuple

import torch
from torch import Tensor

from benchmarks import switches
from benchmarks.common import SKIPPED_NO_CUDA, Stopwatch, cuda_available, run_child
from benchmarks.workloads import (
    SEED,
    WORKLOADS,
    Workload,
    build_model,
    load_config,
    synth_datamodule,
    workload_named,
)
from qdtrack_pl import runtime
from qdtrack_pl.models.qdtrack import Detections, QDTrackModel
from qdtrack_pl.tracking import QDTracker

STAGES = ("detection", "embedding", "tracking")


class Params(NamedTuple):
    warmup: int  # untimed frames (also the consistency check against ``predict``)
    frames: int
    rounds: int = 1  # CPU: fresh processes per switch variant, taking turns


PARAMS = {  # keyed by (workload, device type, quick)
    ("small@320x192", "cpu", True): Params(1, 10),
    ("small@320x192", "cpu", False): Params(5, 60, rounds=2),
    ("r50@1088x608", "cpu", True): Params(0, 1),
    ("r50@1088x608", "cpu", False): Params(2, 3),
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
    """Frames per second over ``params.frames`` frames after the warm-up, with stage shares and
    the seconds and minor page faults of every timed frame."""
    tracker = QDTracker()
    warmup, watch = Stopwatch(device), Stopwatch(device)
    detections, seconds, faults = [], [], []
    model.to(device).eval()
    with torch.inference_mode():
        for frame_id, images in enumerate(frames):
            images = images.to(device)
            timing = warmup if frame_id < params.warmup else watch
            before, start = switches.minor_faults(), time.perf_counter()
            staged = detect_and_embed(model, images, timing)
            det = staged[0]
            with timing.stage("tracking"):
                tracker.update(det.boxes, det.scores, det.class_ids, det.embeddings, frame_id)
            if timing is watch:
                seconds.append(time.perf_counter() - start)
                faults.append(switches.minor_faults() - before)
                detections.append(len(det.boxes))
            if frame_id == 0:  # after the timer: the check runs the network once more
                _check_against_predict(model, images, staged)
    total = sum(watch.seconds.values())
    return {
        "image_size": list(frames[0].shape[-2:][::-1]),  # width, height
        "frames": params.frames,
        "fps": params.frames / total,
        "ms_per_frame": 1e3 * total / params.frames,
        "stage_ms_per_frame": {s: 1e3 * watch.seconds[s] / params.frames for s in STAGES},
        "stage_share": {s: watch.seconds[s] / total for s in STAGES},
        "mean_detections": sum(detections) / len(detections),
        "seconds": seconds,
        "faults": faults,
    }


def measure_cpu_variant(workload: Workload, variant_name: str, quick: bool) -> dict[str, Any]:
    """One switch variant in this process: its model (which applies its allocator setting), the
    workload's frames, ``measure``'s figures."""
    params = PARAMS[(workload.name, "cpu", quick)]
    cfg = switches.configure(load_config(workload), switches.variant_named(variant_name))
    model = build_model(cfg)
    frames = frames_of(workload, params.warmup + params.frames)
    return measure(model, frames, params, torch.device("cpu")) | {
        "variant": variant_name,
        "allocator_tuned": runtime.is_tuned(),
    }


def _measure_cpu(workload: Workload, quick: bool) -> dict[str, Any]:
    """Every switch variant in fresh processes, taking turns; per variant the median frame over
    all its runs (stage figures averaged over runs), and the ratios (``switches``)."""
    params = PARAMS[(workload.name, "cpu", quick)]
    arguments = ["--threads", str(torch.get_num_threads())] + (["--quick"] if quick else [])
    runs = switches.alternating(
        lambda v: run_child(
            "benchmarks.inference", [workload.name, v.name, *arguments], workload.name
        ),
        switches.variants(ablation=not quick),
        params.rounds,
    )
    per_variant = {}
    for name, variant_runs in runs.items():
        pool = switches.pooled(variant_runs)
        median_ms = pool["timing"]["median_ms"]
        stage_ms = {
            s: statistics.fmean(r["stage_ms_per_frame"][s] for r in variant_runs) for s in STAGES
        }
        per_variant[name] = {
            "image_size": variant_runs[0]["image_size"],
            "frames": params.frames,
            "processes": len(variant_runs),
            "allocator_tuned": all(r["allocator_tuned"] for r in variant_runs),
            "frame": pool["timing"],
            "ms_per_frame": median_ms,  # median frame
            "fps": 1e3 / median_ms,
            "stage_ms_per_frame": stage_ms,
            "stage_share": {s: v / sum(stage_ms.values()) for s, v in stage_ms.items()},
            "minor_faults_per_frame": pool["minor_faults_per_call"],
            "mean_detections": statistics.fmean(r["mean_detections"] for r in variant_runs),
        }
    ms = {n: r["ms_per_frame"] for n, r in per_variant.items()}
    return per_variant["on"] | {"variants": per_variant} | switches.ratio_block(ms)


def _measure_gpu(workload: Workload, model: QDTrackModel, quick: bool) -> dict[str, Any]:
    params = PARAMS[(workload.name, "cuda", quick)]
    frames = frames_of(workload, params.warmup + params.frames)
    return measure(model, frames, params, torch.device("cuda"))


def run(quick: bool) -> dict[str, Any]:
    """Both workloads on CPU (all threads; every switch variant in fresh processes, taking
    turns) and, when present, on the GPU (default configuration)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Time one switch variant's inference on CPU")
    parser.add_argument("workload", choices=[w.name for w in WORKLOADS])
    parser.add_argument("variant")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    workload = workload_named(args.workload)
    print(json.dumps(measure_cpu_variant(workload, args.variant, args.quick)))


if __name__ == "__main__":
    main()
