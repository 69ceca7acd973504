"""Typed, frozen configuration loaded from YAML.

Configs are frozen dataclasses. `load_dataclass(cls, mapping)` builds one from plain data (as read by
`safe_load_yaml`) and rejects what does not fit, naming the key with its dotted path:

- an unknown key is an error listing the allowed keys of that section;
- a value of the wrong type is an error naming the expected type;
- range checks live in each dataclass's `__post_init__` and raise `ConfigError` whose message starts
  with the field name; the loader prefixes the section path (`stairs.riser_m must be ...`).

`apply_overrides(raw, ["stairs.riser_m=0.12"])` edits the raw mapping with dotted keys before loading,
so overrides are validated exactly like the file. Configs are never mutated after load: derived values
are properties on the dataclasses.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from stairbot.errors import ConfigError

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as the number it is.

    PyYAML follows YAML 1.1, whose floats need a dot: `1e-4` was the string '1e-4' and
    `learning_rate: 1e-4` an error. This adds YAML 1.2's float form (the dot optional before an
    exponent); everything else reads as `yaml.safe_load` reads it.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load_yaml(text: str) -> Any:
    """`yaml.safe_load` (no unsafe tags), with `1e-4` a float as in YAML 1.2."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no unsafe tags


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with `safe_load_yaml` (never the unsafe loaders); an empty file is `{}`."""
    path = Path(path)
    try:
        data = safe_load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b.c=value` into the dotted key and a YAML-parsed value (`0.1`, `true`, `[1, 2]`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override '{text}' must look like key.path=value")
    try:
        parsed = safe_load_yaml(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override '{text}': value is not valid YAML: {exc}") from exc
    return key.strip(), parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    """Return a deep copy of `raw` with dotted-key overrides applied.

    `overrides` is a mapping `{"stairs.riser_m": 0.12}` or strings `["stairs.riser_m=0.12"]`. A key
    whose parent is not a mapping is an error; keys the schema does not know are caught at load time.
    """
    result = _deep_copy(raw)
    items = overrides.items() if isinstance(overrides, Mapping) else map(parse_override, overrides)
    for dotted, value in items:
        *parents, leaf = dotted.split(".")
        node = result
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(parents[: i + 1])
                raise ConfigError(f"override '{dotted}': '{where}' is a value, not a section")
            node = child
        node[leaf] = _deep_copy(value)
    return result


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `base` with `update` merged in: nested mappings merge, other values replace."""
    result = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = _deep_copy(value)
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


def load_dataclass(cls: type[T], data: Mapping[str, Any] | None, path: str = "") -> T:
    """Build the frozen dataclass `cls` from plain data, validating keys, types and ranges."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    data = {} if data is None else data
    where = path.rstrip(".") or "the top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {[path + k for k in unknown]} in {where}; allowed keys: {sorted(fields)}"
        )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{path}{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{path}{name}' in {where}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{path}{exc}") from None


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Convert YAML data `value` to the annotated type `tp`, or raise naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(" / ".join(errors))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return load_dataclass(tp, value, f"{key}.")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        allowed = [m.value for m in tp]
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(f"{key} must be one of {allowed}, got {value!r}") from None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (Mapping, dict, typing.Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        key_tp, val_tp = args or (Any, Any)
        return types.MappingProxyType(
            {_coerce(key_tp, k, f"{key} key"): _coerce(val_tp, v, f"{key}.{k}") for k, v in value.items()}
        )
    raise TypeError(f"config field {key} has an unsupported annotation {tp!r}")


def to_plain(value: Any) -> Any:
    """Convert a config (dataclasses, enums, tuples, mapping proxies) to YAML-safe plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def dump_yaml(config: Any, path: str | Path) -> None:
    """Write a config as YAML that `load_dataclass` reads back to an equal object."""
    Path(path).write_text(yaml.safe_dump(to_plain(config), sort_keys=False))


# ---- range checks used by the dataclasses' __post_init__ -------------------------------------------


def check_range(
    key: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    unit: str = "",
    error: type[ConfigError] = ConfigError,
) -> None:
    """Raise `error('<key> must be in [low, high] <unit>, got v')` when `value` is outside.

    NaN and infinities are always rejected (range comparisons alone would let NaN through).
    """
    if not math.isfinite(value):
        raise error(f"{key} must be a finite number, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}]"
        suffix = f" {unit}" if unit else ""
        raise error(f"{key} must be in {lo}, {hi}{suffix}, got {value!r}")
