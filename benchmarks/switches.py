"""The speed switches of issue 17 and the interleaved off/on timing the model benchmarks share.

Every switch is a config key (on by default, except ``tune_allocator``, which the configs leave
off); a *variant* sets each switch on or off:

* ``off``: every switch off, i.e. the code as it was before issue 17 (``baseline``);
* ``on``: every switch on (the defaults plus the allocator);
* ``no_<switch>``: every switch on except that one (what that switch alone is worth on top of
  the others; measured with ``ablation=True``).

Variants run interleaved in one process, one step (or frame) of each in turn, so that machine load
hits them alike; their ratios come from the same run. The allocator switch is process-wide: before
each call the harness applies the tuned settings (``qdtrack_pl.runtime.tune_allocator``) or, for
variants without it, glibc's own steady-state settings (``runtime.set_glibc_defaults``: mmap
threshold 32 MiB, trim threshold 64 MiB, where glibc's dynamic rule ends up once a 32 MiB block has
been freed; mallopt cannot switch the dynamic rule back on). The models are built with the
allocator key off so that building them does not tune the process; the first steps of ``off``
therefore run under glibc's real defaults; later ones reuse free heap chunks that tuned calls left
(a tuned heap cannot be fully handed back in-process), which flatters ``off``: the ratios are
understated rather than inflated.
"""

from __future__ import annotations

import copy
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

from qdtrack_pl import runtime


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
        "CPU network on NHWC feature maps",
    ),
)
SWITCH_NAMES = tuple(s.name for s in SWITCHES)


class Variant(NamedTuple):
    name: str
    settings: dict[str, bool]  # switch name -> on

    @property
    def allocator(self) -> bool:
        return self.settings["allocator"]


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


def configure(cfg: DictConfig, variant: Variant) -> DictConfig:
    """A copy of ``cfg`` with ``variant``'s model switches; the allocator key stays off (the
    harness sets the process's allocator per call, see the module doc)."""
    cfg = copy.deepcopy(cfg)
    for switch in SWITCHES:
        value = variant.settings[switch.name] and switch.name != "allocator"
        for key in switch.keys:
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def activate(variant: Variant) -> None:
    """The process allocator as ``variant`` has it."""
    if variant.allocator:
        status = runtime.tune_allocator(True)
        if not status.tuned:
            raise RuntimeError(f"cannot tune the allocator for the benchmark: {status.reason}")
    else:
        runtime.set_glibc_defaults()


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(
    calls: dict[str, Callable[[int], Any]],
    by_name: dict[str, Variant],
    rounds: int,
    sync: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, list[float]]]:
    """``rounds`` rounds; each calls every variant once (``call(round)``), in an order that rotates
    by one per round. Returns per variant the seconds and minor page faults of every call."""
    names = list(calls)
    out: dict[str, dict[str, list[float]]] = {n: {"seconds": [], "faults": []} for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            activate(by_name[name])
            sync()
            faults, start = minor_faults(), time.perf_counter()
            calls[name](r)
            sync()
            out[name]["seconds"].append(time.perf_counter() - start)
            out[name]["faults"].append(float(minor_faults() - faults))
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


def median_ms(seconds: Sequence[float]) -> float:
    return 1e3 * statistics.median(seconds)
