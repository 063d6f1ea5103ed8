"""The speed switches of issue 17 and the alternating off/on runs the model benchmarks share.

Every switch is a config key, on by default; a *variant* sets each switch on or off:

* ``off``: every switch off, i.e. the code as it was before issue 17 (``baseline``);
* ``on``: every switch on (the defaults);
* ``no_<switch>``: every switch on except that one (what that switch alone is worth on top of
  the others; measured with ``ablation=True``).

Each variant runs in a fresh process (:func:`alternating`), because the allocator switch is
process-wide and a heap, once tuned, cannot be handed back: in one process an untuned variant
would reuse the tuned variant's free chunks and the tuned one would refault what the untuned one
trimmed. A fresh process per run gives each variant exactly what a user's run gets (``off``:
glibc's own defaults). Variants take turns, in an order that rotates per round, so that machine
load hits them alike; their ratios come from the same ``make bench`` run.
"""

from __future__ import annotations

import copy
import resource
import statistics
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

from benchmarks.common import summarize


class Switch(NamedTuple):
    name: str
    keys: tuple[str, ...]  # config keys (of the training config) that carry it
    what: str


SWITCHES = (
    Switch(
        "allocator",
        ("model.model.tune_allocator",),
        "glibc malloc: M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB (qdtrack_pl.runtime)",
    ),
    Switch(
        "fold_bn",
        ("model.model.detector.fold_bn",),
        "frozen / eval-mode BatchNorm folded into the preceding conv's weights",
    ),
    Switch(
        "channels_last",
        ("model.model.detector.channels_last",),
        "CPU network on NHWC weights and feature maps",
    ),
    Switch(
        "threaded_roi_align",
        ("model.model.detector.threaded_roi_align",),  # the embedding head follows it
        "RoIAlign without gradient on all torch threads (torchvision's CPU kernel uses one)",
    ),
)
SWITCH_NAMES = tuple(s.name for s in SWITCHES)


class Variant(NamedTuple):
    name: str
    settings: dict[str, bool]  # switch name -> on


def variants(ablation: bool) -> list[Variant]:
    """``off``, ``on`` and, with ``ablation``, ``no_<switch>`` for every switch."""
    result = [
        Variant("off", dict.fromkeys(SWITCH_NAMES, False)),
        Variant("on", dict.fromkeys(SWITCH_NAMES, True)),
    ]
    if ablation:
        for name in SWITCH_NAMES:
            result.append(Variant(f"no_{name}", {s: s != name for s in SWITCH_NAMES}))
    return result


def variant_named(name: str) -> Variant:
    """The variant called ``name`` (``off``, ``on`` or ``no_<switch>``)."""
    for variant in variants(ablation=True):
        if variant.name == name:
            return variant
    raise ValueError(f"unknown switch variant {name!r}")


def configure(cfg: DictConfig, variant: Variant) -> DictConfig:
    """A copy of ``cfg`` with ``variant``'s switches (the allocator one included: the model applies
    it to the process when it is built, as in a training run)."""
    cfg = copy.deepcopy(cfg)
    for switch in SWITCHES:
        for key in switch.keys:
            OmegaConf.update(cfg, key, variant.settings[switch.name], merge=False)
    return cfg


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def alternating(
    run: Callable[[Variant], dict[str, Any]], chosen: Sequence[Variant], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` rounds; each runs every variant once (``run(variant)``, a fresh process), in an
    order that rotates by one per round. Returns per variant the results of its runs."""
    out: dict[str, list[dict[str, Any]]] = {v.name: [] for v in chosen}
    for r in range(rounds):
        shift = r % len(chosen)
        for variant in [*chosen[shift:], *chosen[:shift]]:
            out[variant.name].append(run(variant))
    return out


def ratio_block(medians_ms: dict[str, float]) -> dict[str, Any]:
    """Speed-up of ``on`` over ``off`` and, per switch measured, of ``on`` over ``no_<switch>``."""
    on = medians_ms["on"]
    block: dict[str, Any] = {
        "speedup_on_vs_off": medians_ms["off"] / on,
        "off_ms": medians_ms["off"],
        "on_ms": on,
    }
    per_switch = {}
    for switch in SWITCHES:
        without = medians_ms.get(f"no_{switch.name}")
        if without is not None:
            per_switch[switch.name] = {
                "what": switch.what,
                "off_ms": without,  # every other switch on
                "on_ms": on,
                "speedup": without / on,
            }
    if per_switch:
        block["per_switch"] = per_switch
    return block


def pooled(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One variant's runs pooled: the timing of all its timed calls (``summarize``) and the median
    minor page faults per call. Each run holds ``seconds`` and ``faults`` per timed call."""
    seconds = [s for run in runs for s in run["seconds"]]
    faults = [f for run in runs for f in run["faults"]]
    return {"timing": summarize(seconds), "minor_faults_per_call": statistics.median(faults)}
