"""Plain data on the wire between the judge and the jailed candidate: one JSON line per message.

A value crosses as JSON with small tags for what JSON lacks, so types survive the trip:
`{"$t": [...]}` tuple, `{"$s": [...]}` set, `{"$fs": [...]}` frozenset, `{"$d": [[k, v], ...]}`
dict (any plain keys, insertion order kept), `{"$f": "nan" | "inf" | "-inf"}` non-finite float,
`{"$c": [re, im]}` complex, `{"$b": "<hex>"}` bytes, `{"$r": n}` a reference to an object that
stays in the jail (see `evals.judge`), `{"$g": name}` one of the candidate's module-level names.
Everything else (`None`, bools, ints, finite floats, strings, lists) is itself.

`decode` is the trusted half: whatever bytes arrive, it returns only these types (exact
types: no subclass, so no foreign `__eq__`), or raises `WireError`. This module imports only the
standard library: the jail and the judge load it by file path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 100
MAX_LINE_BYTES = 64 << 20
_CONVERTIBLE: tuple[type[Any], ...] = (int, float, str, bytes, list, tuple, dict, set, frozenset, complex)


class WireError(ValueError):
    """A message that is not well-formed plain data."""


class Reference:
    """A value the judge cannot hold as plain data: it stays in the jail, named by `index`."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class GlobalName:
    """One of the candidate's module-level names (a function or class), called by name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def encode(value: Any, opaque: Callable[[Any], Any] | None = None, depth: int = 0) -> Any:
    """`value` as JSON-ready data; a subclass of a plain type crosses as its base type.

    `opaque(value)` (a `Reference` or `GlobalName`) stands in for anything else; without it, `WireError`.
    """
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$f": repr(value)}
    if kind is list:
        return [encode(item, opaque, depth + 1) for item in value]
    if kind is tuple:
        return {"$t": [encode(item, opaque, depth + 1) for item in value]}
    if kind is set or kind is frozenset:
        tag = "$s" if kind is set else "$fs"
        return {tag: [encode(item, opaque, depth + 1) for item in value]}
    if kind is dict:
        return {
            "$d": [[encode(key, opaque, depth + 1), encode(item, opaque, depth + 1)] for key, item in value.items()]
        }
    if kind is complex:
        return {"$c": [encode(value.real), encode(value.imag)]}
    if kind is bytes:
        return {"$b": value.hex()}
    if kind is Reference:
        return {"$r": value.index}
    if kind is GlobalName:
        return {"$g": value.name}
    for base in _CONVERTIBLE:
        if isinstance(value, base):  # a subclass (Counter, OrderedDict, namedtuple): its plain data
            return encode(base(value), opaque, depth + 1)
    if opaque is None:
        raise WireError(f"{kind.__name__} is not plain data")
    return encode(opaque(value), None, depth + 1)


def decode(data: Any, depth: int = 0) -> Any:
    """The plain value `data` (parsed JSON) stands for; `WireError` for anything else."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH} levels")
    kind = type(data)
    if data is None or kind in (bool, int, float, str):
        return data
    if kind is list:
        return [decode(item, depth + 1) for item in data]
    if kind is not dict or len(data) != 1:
        raise WireError("malformed value")
    tag, body = next(iter(data.items()))
    if tag in ("$t", "$s", "$fs") and type(body) is list:
        items = [decode(item, depth + 1) for item in body]
        try:
            return tuple(items) if tag == "$t" else set(items) if tag == "$s" else frozenset(items)
        except TypeError:
            raise WireError("unhashable set member") from None
    if tag == "$d" and type(body) is list:
        return _decode_dict(body, depth)
    if tag == "$f" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag == "$c" and type(body) is list and len(body) == 2:
        real, imag = (decode(part, depth + 1) for part in body)
        if type(real) is float and type(imag) is float:
            return complex(real, imag)
    if tag == "$b" and type(body) is str:
        try:
            return bytes.fromhex(body)
        except ValueError:
            raise WireError("malformed bytes") from None
    if tag == "$r" and type(body) is int:
        return Reference(body)
    if tag == "$g" and type(body) is str:
        return GlobalName(body)
    raise WireError(f"unknown tag {str(tag)[:20]!r}")


def _decode_dict(pairs: list[Any], depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2:
            raise WireError("malformed dict item")
        try:
            result[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
        except TypeError:
            raise WireError("unhashable dict key") from None
    return result


def dump_line(message: dict[str, Any]) -> bytes:
    """One message as a JSON line."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def load_line(line: bytes) -> dict[str, Any]:
    """The message in one line; `WireError` when it is not a JSON object."""
    if not line.endswith(b"\n"):
        raise WireError("message cut off or too long")
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        raise WireError("message is not JSON") from None
    if type(message) is not dict:
        raise WireError("message is not an object")
    return message
