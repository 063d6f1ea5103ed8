"""Process-level runtime settings: glibc's malloc thresholds for large tensors (issue 17).

glibc serves every allocation above its mmap threshold with a fresh ``mmap`` and returns it to the
kernel on ``free``. The threshold adapts upwards only to 32 MiB, so the activations of a
full-resolution training step (the R50 C2 map at 1088x608 alone is 42 MiB) are mapped, touched page
by page (one minor page fault per 4 KiB) and unmapped again in every step: 0.8-1.9 M faults per step
and a third of a CPU step spent in the kernel zeroing pages. :func:`tune_allocator` turns mmap off
for the heap (``M_MMAP_MAX = 0``) and raises the trim threshold (``M_TRIM_THRESHOLD``), so freed
activations stay in the heap and the next step reuses them.

The cost: the process keeps its heap at its high-water mark (memory freed after a peak is reused
by the process, not returned to the system), and fragmentation can add a little to the peak.

``QDTrackModel(tune_allocator=...)`` (config ``model.model.tune_allocator``) calls
:func:`tune_allocator` when the model is built, i.e. before the first step of every training,
tracking or evaluation run. It does nothing (and says why in its return value) when

* the C library is not glibc (musl, macOS, Windows): nothing to tune there;
* ``QDTRACK_MALLOC_TUNING=0`` is set in the environment (off for the whole process);
* the user already tunes malloc through the environment (``MALLOC_MMAP_MAX_``,
  ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or ``glibc.malloc``
  in ``GLIBC_TUNABLES``): theirs win.

Settings are process-wide and inherited by forked data-loader workers. See docs/performance.md.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from functools import cache
from typing import NamedTuple

log = logging.getLogger(__name__)

ENV_SWITCH = "QDTRACK_MALLOC_TUNING"  # "0" / "false" / "off": never tune
USER_MALLOC_ENV = (
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
)

# mallopt(3) parameter numbers (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4

TUNED_MMAP_MAX = 0  # never mmap: large blocks come from the heap and are reused
TUNED_TRIM_THRESHOLD = 2**31 - 1  # (mallopt takes an int) keep up to 2 GiB free at the heap top


class AllocatorStatus(NamedTuple):
    """What :func:`tune_allocator` did."""

    tuned: bool  # the tuned settings are in effect now
    reason: str  # why (or why not)


@cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (``gnu_get_libc_version`` exists), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def glibc_version() -> str | None:
    libc = _glibc()
    return None if libc is None else libc.gnu_get_libc_version().decode()


def disabled_by_env() -> str | None:
    """Why the environment rules tuning out, or None."""
    switch = os.environ.get(ENV_SWITCH, "").strip().lower()
    if switch in {"0", "false", "off", "no"}:
        return f"{ENV_SWITCH}={os.environ[ENV_SWITCH]}"
    user = [name for name in USER_MALLOC_ENV if name in os.environ]
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        user.append("GLIBC_TUNABLES")
    if user:
        return f"malloc already tuned through the environment ({', '.join(user)})"
    return None


def _mallopt(libc: ctypes.CDLL, settings: dict[int, int]) -> None:
    for param, value in settings.items():
        if libc.mallopt(param, value) != 1:
            raise OSError(f"mallopt({param}, {value}) failed")


_state: dict[str, bool] = {"tuned": False}


def tune_allocator(enabled: bool = True) -> AllocatorStatus:
    """Apply (``enabled``) the tuned malloc settings to this process; idempotent.

    ``enabled=False`` changes nothing: an untouched process stays untouched and a process tuned
    earlier (by another model, a benchmark) stays tuned (a tuned heap cannot be handed back).
    """
    if not enabled:  # leaves the process as it is (a model built later must not undo it)
        if _state["tuned"]:
            return AllocatorStatus(True, "not requested here; tuned earlier in this process")
        return AllocatorStatus(False, "tuning switched off (tune_allocator=false)")
    libc = _glibc()
    if libc is None:
        return AllocatorStatus(False, "not glibc: nothing to tune")
    why_not = disabled_by_env()
    if why_not is not None:
        return AllocatorStatus(False, why_not)
    if not _state["tuned"]:
        _mallopt(libc, {M_MMAP_MAX: TUNED_MMAP_MAX, M_TRIM_THRESHOLD: TUNED_TRIM_THRESHOLD})
        _state["tuned"] = True
        log.info(
            "glibc %s malloc tuned for large tensors: M_MMAP_MAX=0, M_TRIM_THRESHOLD=%d "
            "(%s=0, or tune_allocator=false in every model built, keeps a process untuned)",
            glibc_version(),
            TUNED_TRIM_THRESHOLD,
            ENV_SWITCH,
        )
    return AllocatorStatus(True, "M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB")


def is_tuned() -> bool:
    return _state["tuned"]
