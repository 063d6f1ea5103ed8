"""Where the time goes: torch.profiler tables for the tracker update, the training step and
inference.

Run before optimising (``python -m benchmarks.profiling tracker``, ``training`` or ``inference``,
with ``--workload small | r50``); the benchmarks
say how fast, this says why. Operators are sorted by self CPU time (by CUDA time on a GPU).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.common import cuda_available, num_threads
from benchmarks.inference import frames_of
from benchmarks.tracker_latency import make_scene
from benchmarks.training import TrainStep
from benchmarks.workloads import (
    build_model,
    build_optimizer,
    load_config,
    training_batches,
    workload_named,
)
from qdtrack_pl.tracking import QDTracker

WARMUP_FRAMES = 20
PROFILED_FRAMES = 50


def profile_tracker(num_dets: int, rows: int) -> str:
    """One thread, ``PROFILED_FRAMES`` updates after a warm-up that fills the memory."""
    scene = make_scene(num_dets, WARMUP_FRAMES + PROFILED_FRAMES, seed=0)
    tracker = QDTracker()
    with num_threads(1):
        for frame_id, frame in enumerate(scene[:WARMUP_FRAMES]):
            tracker.update(*frame, frame_id=frame_id)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for frame_id, frame in enumerate(scene[WARMUP_FRAMES:], start=WARMUP_FRAMES):
                tracker.update(*frame, frame_id=frame_id)
    # every top-level operator pays the dispatcher's fixed cost: their count sets the latency floor
    top_level = sum(event.cpu_parent is None for event in prof.events())
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
    return f"{table}\ntop-level operators per update: {top_level / PROFILED_FRAMES:.0f}"


def profile_training(workload_name: str, steps: int, rows: int) -> str:
    """``steps`` optimiser steps after one warm-up step, on the GPU when there is one."""
    workload = workload_named(workload_name)
    device = torch.device("cuda" if cuda_available() else "cpu")
    cfg = load_config(workload)
    model = build_model(cfg).to(device)
    batches = training_batches(cfg, workload, device, steps + 1)
    step = TrainStep(model, build_optimizer(cfg, model, len(batches[0])), device)
    step(batches[0])
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for batch in batches[1:]:
            step(batch)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort, row_limit=rows)


def profile_inference(workload_name: str, frames: int, rows: int) -> str:
    """``QDTrackModel.predict`` on ``frames`` frames after two warm-up frames, on the CPU (the
    switches as configured, i.e. on)."""
    workload = workload_named(workload_name)
    model = build_model(load_config(workload)).eval()
    images = frames_of(workload, frames + 2)
    with torch.inference_mode():
        for frame in images[:2]:
            model.predict(frame)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for frame in images[2:]:
                model.predict(frame)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=["tracker", "training", "inference"])
    parser.add_argument("--detections", type=int, default=100, help="tracker: detections per frame")
    parser.add_argument("--workload", default="small", help="training, inference: small | r50")
    parser.add_argument("--steps", type=int, default=3, help="training: profiled steps")
    parser.add_argument("--frames", type=int, default=3, help="inference: profiled frames")
    parser.add_argument("--rows", type=int, default=25, help="operators to list")
    args = parser.parse_args()
    if args.target == "tracker":
        print(profile_tracker(args.detections, args.rows))
    elif args.target == "training":
        print(profile_training(args.workload, args.steps, args.rows))
    else:
        print(profile_inference(args.workload, args.frames, args.rows))


if __name__ == "__main__":
    main()
