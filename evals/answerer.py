"""The candidate's side of a judged run: load the program, then answer the judge's calls.

Runs as a script (`python -I -S -B answerer.py <config-json>`) inside the jail, never in the
grader. Nothing here is trusted: the program may rewrite any of
it, so the judge believes only what `evals.wire.decode` accepts. The protocol is described in
`evals.judge`. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

if __package__:
    from evals import wire
else:  # a script in the jail: the wire codec sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    wire = __import__("wire")


class Answerer:
    """Holds the program's namespace and the objects handed to the judge by reference."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.kept: list[Any] = []

    def keep(self, value: Any) -> Any:
        self.kept.append(value)
        return wire.Reference(len(self.kept) - 1)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, wire.Reference):
            return self.kept[value.index]
        if isinstance(value, wire.GlobalName):
            return self.namespace[value.name]
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(item) for item in value)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        return value

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        target = self.resolve(wire.decode(request["target"]))
        if request["op"] == "getattr":
            return {"value": wire.encode(getattr(target, request["name"]), self.keep)}
        if request["op"] == "setattr":
            setattr(target, request["name"], self.resolve(wire.decode(request["value"])))
            return {"value": None}
        raw_args = request["args"]
        args = [self.resolve(wire.decode(arg)) for arg in raw_args]
        kwargs = {name: self.resolve(wire.decode(arg)) for name, arg in request["kwargs"].items()}
        value = target(*args, **kwargs)
        after = [_state_if_changed(arg, raw) for arg, raw in zip(args, raw_args, strict=True)]
        return {"value": wire.encode(value, self.keep), "args": after}


def _state_if_changed(arg: Any, raw: Any) -> Any:
    if type(arg) not in (list, dict, set):
        return None
    try:
        state = wire.encode(arg)
    except wire.WireError:
        return None
    return state if state != raw else None


def _exception(error: BaseException) -> dict[str, str]:
    try:
        message = str(error)[:1000]
    except Exception:  # noqa: BLE001 - a hostile __str__ must not stop the answer
        message = "<unprintable>"
    return {"type": type(error).__name__, "message": message}


def _set_limits(limits: dict[str, int]) -> None:
    import resource

    for name, value in limits.items():
        limit = getattr(resource, name)
        hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU first, SIGKILL a second later
        resource.setrlimit(limit, (value, hard))


def main() -> None:
    config = json.loads(sys.argv[1])
    _set_limits(config["limits"])
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(quiet, fd)

    def send(message: dict[str, Any]) -> None:
        replies.write(wire.dump_line(message))
        replies.flush()

    program = wire.load_line(requests.readline(wire.MAX_LINE_BYTES))["program"]
    namespace: dict[str, Any] = {}
    try:
        exec(compile(program, "program.py", "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - every way the program can end is reported
        send({"load_error": _exception(error)})
        return
    callables = sorted(name for name, value in namespace.items() if callable(value) and not name.startswith("__"))
    answerer = Answerer(namespace)
    send({"ready": callables})
    for line in iter(lambda: requests.readline(wire.MAX_LINE_BYTES), b""):
        try:
            reply = answerer.answer(wire.load_line(line))
        except BaseException as error:  # noqa: BLE001 - the judge decides what a raise means
            reply = {"raised": _exception(error)}
        try:
            send(reply)
        except (wire.WireError, ValueError) as error:
            send({"raised": _exception(error)})


if __name__ == "__main__":
    main()
