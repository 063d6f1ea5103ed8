"""Config validation at the start of a run: wrong keys and wrong types fail in a second, naming
the key, instead of minutes later deep inside Lightning or a DataLoader.

The composed config is checked as a schema derived from the code itself:

- every node with a ``_target_`` (data module, model, optimizer, trainer, callbacks, loggers,
  tracker, ...) against the signature of its target: a key the target does not accept is an error
  (unless it takes ``**kwargs`` all the way up its base classes), and a value whose type clearly
  contradicts the parameter's annotation (``trainer.max_epochs=abc``, ``data.batch_size=two``) is
  an error; mappings given for a dataclass parameter (``data.synth``) are checked field by field;
- the top-level options (``seed``, ``train``, ``eval_split``, ...) against :data:`TOP_LEVEL`.

Unknown keys on the command line are already refused by Hydra (struct mode: "Key 'foo' is not in
struct"); this catches them when they come from a config file or a ``+key=`` override.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
import types
import typing
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from pathlib import Path
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ValidationError

HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
MISSING = "???"
_NO_HINT = object()

#: Types of the top-level options of the train / eval / track configs (checked when present).
TOP_LEVEL: dict[str, Any] = {
    "task_name": str,
    "tags": Union[list[str], None],  # noqa: UP007
    "train": bool,
    "evaluate": bool,
    "eval_split": Literal["val", "test"],
    "ckpt_path": Union[str, None],  # noqa: UP007
    "results": Union[str, None],  # noqa: UP007
    "init_from": Union[str, None],  # noqa: UP007
    "seed": Union[int, None],  # noqa: UP007
    "optimized_metric": Union[str, None],  # noqa: UP007
    "input": str,
    "output_dir": str,
    "input_size": Union[tuple[int, int], None],  # noqa: UP007
    "device": str,
    "fps": Union[float, None],  # noqa: UP007
    "write_video": bool,
}
#: Config groups that hold ``_target_`` nodes.
GROUPS = ("data", "model", "tracker", "trainer", "callbacks", "logger")


class ConfigValidationError(ValidationError):
    """The composed config does not fit the code: the message lists every offending key."""


def validate_config(cfg: DictConfig, groups: Sequence[str] = GROUPS) -> None:
    """Raise :class:`ConfigValidationError` listing every wrong key or value of ``cfg`` (its
    top-level options and the ``_target_`` nodes below ``groups``)."""
    errors: list[str] = []
    keys = set(cfg.keys())  # ``in cfg`` is False for a missing (``???``) value
    for key, hint in TOP_LEVEL.items():
        if key in keys:
            _check_value(_value(cfg, key), hint, key, errors, default=_NO_HINT)
    for group in groups:
        if group in keys and not OmegaConf.is_missing(cfg, group) and cfg[group] is not None:
            _walk(cfg[group], group, errors)
    if errors:
        raise ConfigValidationError(
            "invalid config (fix the key on the command line or in its yaml file):\n  "
            + "\n  ".join(errors)
        )


def _value(node: DictConfig, key: str) -> Any:
    """A resolved plain value (containers converted), ``"???"`` for a missing mandatory one."""
    if OmegaConf.is_missing(node, key):
        return MISSING
    value = node[key]
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _walk(node: Any, path: str, errors: list[str]) -> None:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            _check_target(node, path, errors)
        for key in node:
            if key not in HYDRA_KEYS and not OmegaConf.is_missing(node, key):
                child = node._get_node(key)
                if isinstance(child, DictConfig | ListConfig) and not child._is_none():
                    _walk(child, f"{path}.{key!s}", errors)
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            _walk(child, f"{path}[{i}]", errors)


def _check_target(node: DictConfig, path: str, errors: list[str]) -> None:
    target = node._target_
    try:
        obj = get_object(target)
    except Exception as err:  # ImportError, AttributeError, ... from an arbitrary import
        errors.append(f"{path}._target_: cannot import {target!r} ({type(err).__name__}: {err})")
        return
    params = _parameters(obj)
    if params is None:
        return
    known, open_kwargs = params
    for key in node:
        if key in HYDRA_KEYS:
            continue
        full = f"{path}.{key!s}"
        if key not in known:
            if not open_kwargs:
                names = ", ".join(sorted(known))
                errors.append(f"{full}: unknown key; {target} accepts: {names}")
            continue
        hint, default = known[key]
        if hint is not _NO_HINT:
            _check_value(_value(node, key), hint, full, errors, default)


def _parameters(obj: Any) -> tuple[dict[str, tuple[Any, Any]], bool] | None:
    """``name -> (type hint, default)`` of what ``obj`` accepts, and whether it also takes any
    other keyword (``**kwargs`` not resolved by a base class). Classes forwarding ``**kwargs`` to
    their base (``SynthDataModule`` -> ``VideoDataModule``) get the base's parameters too."""
    functions = []
    if inspect.isclass(obj):
        for cls in obj.__mro__:
            if "__init__" in vars(cls) and cls is not object:
                functions.append(inspect.unwrap(vars(cls)["__init__"]))
    elif callable(obj):
        functions.append(inspect.unwrap(obj))
    if not functions:
        return None
    known: dict[str, tuple[Any, Any]] = {}
    for fn in functions:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        hints = _type_hints(fn)
        for name, param in signature.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name == "self":
                continue
            known.setdefault(name, (hints.get(name, _NO_HINT), param.default))
        if not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
            return known, False
    return known, True


def _type_hints(fn: Any) -> dict[str, Any]:
    """Evaluated annotations; ones that cannot be evaluated (TYPE_CHECKING imports) are left out."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # NameError and friends from a single unresolvable annotation
        pass
    hints = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if not isinstance(annotation, str):
            hints[name] = annotation
            continue
        try:
            hints[name] = eval(annotation, namespace)  # noqa: S307 - the package's own annotations
        except Exception:
            continue
    return hints


def _check_value(value: Any, hint: Any, key: str, errors: list[str], default: Any) -> None:
    if value == MISSING and isinstance(value, str):
        errors.append(f"{key}: a value is required (pass {key}=...)")
        return
    if value is None and default is None:
        return
    dataclass = _dataclass_member(hint)
    if dataclass is not None and isinstance(value, dict) and "_target_" not in value:
        _check_dataclass(value, dataclass, key, errors)
        return
    if not _accepts(hint, value):
        errors.append(f"{key}: expected {_describe(hint)}, got {value!r} ({type(value).__name__})")


def _dataclass_member(hint: Any) -> type | None:
    members = typing.get_args(hint) if _is_union(hint) else (hint,)
    for member in members:
        if inspect.isclass(member) and dataclasses.is_dataclass(member):
            return member
    return None


def _check_dataclass(value: dict, cls: type, key: str, errors: list[str]) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _type_hints(cls)
    for name, item in value.items():
        if name not in fields:
            errors.append(f"{key}.{name}: unknown key; {cls.__name__} has: {', '.join(fields)}")
        elif name in hints:
            field = fields[name]
            default = field.default if field.default is not dataclasses.MISSING else _NO_HINT
            _check_value(item, hints[name], f"{key}.{name}", errors, default)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


_SEQUENCE_ORIGINS = (list, tuple, set, frozenset, Sequence, MutableSequence, Iterable)
_MAPPING_ORIGINS = (dict, Mapping)


def _accepts(hint: Any, value: Any) -> bool:
    """Whether a plain config value can stand for ``hint``. Lenient where a config value cannot
    be judged (classes other than the builtins, callables, ``Any``): only clear mismatches fail."""
    if isinstance(value, dict) and "_target_" in value:
        return True  # Hydra builds an object here
    if hint is Any or isinstance(hint, typing.TypeVar | str):
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        return any(_accepts(arg, value) for arg in args)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin is typing.Annotated:
        return _accepts(args[0], value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if inspect.isclass(hint) and issubclass(hint, os.PathLike | Path):
        return isinstance(value, str | os.PathLike)
    container = origin or hint
    if container in _SEQUENCE_ORIGINS:
        if not isinstance(value, list | tuple):
            return False
        if container is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(_accepts(args[0], v) for v in value)
            return len(args) == len(value) and all(map(_accepts, args, value))
        return not args or all(_accepts(args[0], v) for v in value)
    if container in _MAPPING_ORIGINS:
        return isinstance(value, dict)
    if value is None:
        return False  # a None for a class-typed parameter without a None default
    if inspect.isclass(hint) and isinstance(value, str | int | float | bool):
        # a plain value can only stand for a class that is (or parses from) one: str/Enum kinds
        return isinstance(value, hint) or issubclass(hint, enum.Enum)
    return True  # containers for other classes (dataclass mappings, ...) and callables: not judged


def _describe(hint: Any) -> str:
    if _is_union(hint):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if inspect.isclass(hint) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")
