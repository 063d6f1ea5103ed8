"""The two configurations every model benchmark runs: the CPU default on synth, and the paper's
R50-FPN at MOT17 resolution. Configs are composed from ``conf/train.yaml`` exactly as a training
run composes them (the CPU default is ``experiment=synth`` itself), so the benchmarks measure what
``make train`` would run.
"""

from __future__ import annotations

import tempfile
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.optim import Optimizer

from qdtrack_pl.api import compose
from qdtrack_pl.data.batch import FrameTargets, PairBatch
from qdtrack_pl.lit.lr_scaling import scale_lr
from qdtrack_pl.models.qdtrack import QDTrackModel

SEED = 0
HYDRA_RUN_DIR = Path(tempfile.gettempdir()) / "qdtrack-bench"  # composing needs a run folder


class Workload(NamedTuple):
    """A training configuration at one input size."""

    name: str
    overrides: tuple[str, ...]  # of conf/train.yaml, as on the qdtrack-train command line
    synth_pairs: bool  # train on the synth datamodule's pairs, else on generated MOT17-sized ones
    width: int
    height: int
    cpu_batch_size: int | None  # None: the datamodule's configured batch size
    gpu_batch_size: int | None
    objects_per_frame: int  # generated ground truth (workloads without synth pairs)


# The CPU default exactly as `make train` runs it.
SMALL = Workload("small@320x192", ("experiment=synth",), True, 320, 192, None, None, 0)
# MOT17 frames resized to 1088x608 hold ~30 annotated pedestrians; the paper trains 2 per GPU, and
# a CPU takes one pair per step for a few steps.
R50 = Workload("r50@1088x608", ("model=qdtrack_r50", "data=mot17"), False, 1088, 608, 1, 2, 30)
WORKLOADS = (SMALL, R50)


def workload_named(name: str) -> Workload:
    """The workload called ``name``, in full (``small@320x192``) or by its model (``small``)."""
    for workload in WORKLOADS:
        if name in (workload.name, workload.name.split("@")[0]):
            return workload
    raise ValueError(f"unknown workload {name!r}: one of {[w.name for w in WORKLOADS]}")


def load_config(workload: Workload) -> DictConfig:
    """The training config of ``workload`` (data from ``$QDTRACK_DATA`` or ``<repo>/data``)."""
    cfg = compose("train", [*workload.overrides, f"seed={SEED}"], output_dir=HYDRA_RUN_DIR)
    if "show_progress" in cfg.data:
        cfg.data.show_progress = False  # a progress bar would garble the benchmark table
    return cfg


def build_model(cfg: DictConfig) -> QDTrackModel:
    """The configured model, seeded so every benchmark starts from the same random weights."""
    torch.manual_seed(SEED)
    return instantiate(cfg.model.model)


def build_optimizer(cfg: DictConfig, model: QDTrackModel, total_batch: int) -> Optimizer:
    """The config's optimiser over the trainable parameters, its lr scaled to ``total_batch``
    pairs per step as ``QDTrackModule.configure_optimizers`` scales it (``auto_scale_lr``)."""
    factory = instantiate(cfg.model.optimizer)
    optimizer = factory([p for p in model.parameters() if p.requires_grad])
    base = cfg.model.get("base_batch_size")
    if cfg.model.get("auto_scale_lr", False) and base is not None:
        scale_lr(optimizer, total_batch, int(base))
    return optimizer


def synth_datamodule(cfg: DictConfig, **overrides: Any) -> Any:
    """The configured ``SynthDataModule`` (generating the dataset on first use), set up for fit."""
    datamodule = instantiate(cfg.data, **overrides)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def batch_size(cfg: DictConfig, workload: Workload, device: torch.device) -> int:
    """The workload's batch size on this device; synth's comes from its data config."""
    size = workload.gpu_batch_size if device.type == "cuda" else workload.cpu_batch_size
    return int(cfg.data.batch_size) if size is None else size


def generated_pair_batch(
    workload: Workload, size: int, num_classes: int, gen: torch.Generator
) -> PairBatch:
    """Random images with pedestrian-shaped boxes; the reference frame moves every box a little."""
    n, w, h = workload.objects_per_frame, workload.width, workload.height
    key_targets, ref_targets = [], []
    for _ in range(size):
        box_w = 15 + 60 * torch.rand(n, generator=gen)
        box_h = box_w * (2 + torch.rand(n, generator=gen))
        x1 = torch.rand(n, generator=gen) * (w - box_w)
        y1 = torch.rand(n, generator=gen) * (h - box_h).clamp(min=0)
        boxes = torch.stack([x1, y1, x1 + box_w, (y1 + box_h).clamp(max=h)], dim=1)
        classes = torch.randint(num_classes, (n,), generator=gen)
        ids = torch.arange(n)
        shift = (3 * torch.randn(n, 2, generator=gen)).repeat(1, 2)
        moved = (boxes + shift).clamp(min=0).minimum(torch.tensor([w, h, w, h]))
        key_targets.append(FrameTargets(boxes, classes, ids))
        ref_targets.append(FrameTargets(moved, classes, ids))
    images = torch.rand(2, size, 3, h, w, generator=gen)
    return PairBatch(images[0], images[1], key_targets, ref_targets)


def training_batches(
    cfg: DictConfig, workload: Workload, device: torch.device, count: int
) -> list[PairBatch]:
    """``count`` batches on ``device``: real synth pairs or generated MOT17-sized pairs."""
    size = batch_size(cfg, workload, device)
    if workload.synth_pairs:
        loader = synth_datamodule(cfg, batch_size=size, num_workers=0).train_dataloader()
        batches = list(islice(loader, count))
    else:
        gen = torch.Generator().manual_seed(SEED)
        num_classes = int(cfg.model.model.detector.num_classes)
        batches = [generated_pair_batch(workload, size, num_classes, gen) for _ in range(count)]
    return [b.to(device) for b in batches]
