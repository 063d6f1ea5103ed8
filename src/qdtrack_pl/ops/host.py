"""Moving the trackers' per-frame work between torch and numpy.

A tracker update handles a few hundred numbers and one small matrix per frame; on CPU one torch
operator costs 5-25 µs of dispatch (more with cold caches) where numpy costs about 1 µs and a
compiled loop nothing. The trackers therefore run on the host: one copy of the frame's detections
(a view on CPU), numpy arrays for their state (embeddings included), compiled loops (numba) for the
sequential decisions (duplicate removal, greedy matching, births), and torch only for a large
affinity (a matrix product and softmaxes, on views of the host arrays; ``ops.affinity``). The
outputs go back to the detections' device.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

F = TypeVar("F", bound=Callable[..., Any])


def to_host(values: Tensor) -> np.ndarray:
    """``values`` as a numpy array: a view on CPU, a copy from other devices; half precision (which
    numpy lacks or the compiled loops do not support) as float32."""
    if values.dtype in (torch.bfloat16, torch.float16):
        values = values.float()
    return values.numpy(force=True)


def to_device(values: np.ndarray, device: torch.device, dtype: torch.dtype | None = None) -> Tensor:
    """``values`` as a tensor on ``device`` (shares memory on CPU), cast to ``dtype`` if given."""
    tensor = torch.from_numpy(values)
    if device.type == "cpu" and dtype in (None, tensor.dtype):
        return tensor  # ``Tensor.to`` would cost more than the rest of the conversion
    return tensor.to(device=device, dtype=dtype)


def accepts_tensors(fn: F) -> F:
    """Let a numpy op take tensors too: when its first argument is a tensor, every tensor argument
    goes to the host and every array it returns (also inside a tuple) comes back as a tensor on the
    first argument's device."""

    def back(out: Any, device: torch.device) -> Any:
        if isinstance(out, np.ndarray):
            return to_device(out, device)
        if isinstance(out, tuple):
            return type(out)(*(back(part, device) for part in out))
        return out

    @functools.wraps(fn)
    def wrapper(first: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(first, Tensor):
            return fn(first, *args, **kwargs)
        host = [to_host(a) if isinstance(a, Tensor) else a for a in (first, *args)]
        host_kwargs = {k: to_host(v) if isinstance(v, Tensor) else v for k, v in kwargs.items()}
        return back(fn(*host, **host_kwargs), first.device)

    return wrapper  # type: ignore[return-value]
