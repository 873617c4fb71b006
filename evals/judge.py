"""The trusted judge: it runs a problem's tests, and only it decides the verdict.

The protocol. The grader starts two processes. The *candidate* (`evals.answerer`, inside the
jail) runs `prompt + completion` (the official harness's program, less the tests) and answers
calls; the *judge* (this script, outside the jail) runs the tests and talks to it over two pipes,
one JSON line per message (values in `evals.wire`'s plain-data encoding):

1. The candidate loads the program and says `{"ready": [names]}` (its module-level functions
   and classes) or `{"load_error": {"type", "message"}}` (a syntax error, a raise at import).
2. The judge builds the test's namespace as the harness would have it: the prompt's own code
   but the entry point's stub (trusted helpers such as HumanEval's `poly`, `encode_cyclic`,
   constants, imports) runs here; the entry point becomes a proxy, and so does each other name
   the candidate defined that the test (or a helper) reads, unless it is a built-in, a helper's
   or a name the test binds itself: a candidate's `abs`, `sum` or `range` never replaces the
   one the tests call (the official harness lets it). Then the test runs here (MBPP's setup
   code is in it), and last `check(<entry_point>)`, exactly as the harness writes it.
3. A proxy call sends `{"op": "call", "target", "args", "kwargs"}`; the answer is
   `{"value", "args"}` or `{"raised": {"type", "message"}}`. `args` carries the new state of
   each list, dict or set argument the call mutated; the judge writes it back into its own
   objects in place, so tests that check mutated arguments keep working. A proxy (`candidate`
   passed around) may itself be an argument. A raise comes back as the same built-in
   exception type with the same message (`CandidateError` for other types), so a test's
   `try/except ValueError` behaves as under the harness.
4. A value that is not plain data stays in the jail as a reference (MBPP builds trees of the
   candidate's `Node` objects this way): its attributes can be read and set through
   `getattr`/`setattr` requests, it can be passed back, and nothing else: comparing it,
   hashing it or asking its truth raises `NotPlainData`. So a returned object whose `__eq__`
   is always true cannot pass a test.
5. The judge writes `{"status", "detail"}` to its verdict pipe, which the candidate cannot
   reach: `passed` when `check` returns, `failed` on an AssertionError, `error` on any other
   exception, `crashed` when the candidate's process ends or breaks the protocol mid-test.

Runs as a script (`python -I -S -B judge.py`, its configuration on stdin). Standard library only.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import sys
from typing import Any

if __package__:
    from evals import wire
else:  # a script: the wire codec sits next to this file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    wire = __import__("wire")

_MUTABLE = (list, dict, set)


class CandidateGone(BaseException):
    """The candidate's process ended, or answered outside the protocol (not catchable as Exception)."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a built-in type."""


class CandidateExit(BaseException):
    """The candidate raised SystemExit, KeyboardInterrupt or another non-Exception."""


class NotPlainData(TypeError):
    """A value that stayed in the jail was compared, hashed or tested for truth."""


class Channel:
    """The judge's end of the two pipes."""

    def __init__(self, requests_fd: int, replies_fd: int) -> None:
        self.requests = os.fdopen(requests_fd, "wb")
        self.replies = os.fdopen(replies_fd, "rb")

    def receive(self) -> dict[str, Any]:
        line = self.replies.readline(wire.MAX_LINE_BYTES)
        if not line:
            raise CandidateGone("the candidate's process ended")
        try:
            return dict(wire.load_line(line))
        except wire.WireError as error:
            raise CandidateGone(f"the candidate broke the protocol: {error}") from None

    def ask(self, request: dict[str, Any]) -> Any:
        try:
            self.requests.write(wire.dump_line(request))
            self.requests.flush()
        except OSError:
            raise CandidateGone("the candidate's process ended") from None
        reply = self.receive()
        if "raised" in reply:
            raise _as_exception(reply["raised"])
        try:
            return reply, _remote(self, wire.decode(reply.get("value")))
        except wire.WireError as error:
            raise CandidateGone(f"the candidate broke the protocol: {error}") from None


def _as_exception(raised: Any) -> BaseException:
    name = str(raised.get("type", "")) if isinstance(raised, dict) else ""
    message = str(raised.get("message", "")) if isinstance(raised, dict) else ""
    kind = getattr(builtins, name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # noqa: BLE001 - a built-in whose constructor wants more arguments
            return CandidateError(f"{name}: {message}")
    if isinstance(kind, type) and issubclass(kind, BaseException):
        return CandidateExit(f"{name}: {message}")
    return CandidateError(f"{name}: {message}" if message else name)


def _remote(channel: Channel, value: Any) -> Any:
    """A decoded value with references turned into `RemoteObject`s."""
    if isinstance(value, wire.Reference):
        return RemoteObject(channel, value)
    if isinstance(value, list):
        return [_remote(channel, item) for item in value]
    if isinstance(value, tuple):
        return tuple(_remote(channel, item) for item in value)
    if isinstance(value, dict):
        return {key: _remote(channel, item) for key, item in value.items()}
    return value


def _outgoing(value: Any) -> Any:
    """A judge-side value as it crosses to the candidate."""
    if isinstance(value, RemoteObject):
        return object.__getattribute__(value, "_reference")
    if isinstance(value, RemoteFunction):
        return wire.GlobalName(value.name)
    raise wire.WireError(f"{type(value).__name__} is not plain data")


class RemoteFunction:
    """A function or class of the candidate: calling it asks the jail."""

    def __init__(self, channel: Channel, name: str) -> None:
        self.channel = channel
        self.name = name
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            request = {
                "op": "call",
                "target": wire.encode(wire.GlobalName(self.name)),
                "args": [wire.encode(arg, _outgoing) for arg in args],
                "kwargs": {str(name): wire.encode(arg, _outgoing) for name, arg in kwargs.items()},
            }
        except wire.WireError as error:
            raise TypeError(f"cannot pass to the candidate: {error}") from None
        reply, value = self.channel.ask(request)
        for arg, state in zip(args, reply.get("args") or [], strict=False):
            if state is not None and isinstance(arg, _MUTABLE):
                _write_back(arg, wire.decode(state))
        return value

    def __repr__(self) -> str:
        return f"<candidate {self.name}>"


def _write_back(original: Any, state: Any) -> None:
    if type(original) is not type(state):
        return
    if isinstance(original, list):
        original[:] = state
    else:
        original.clear()
        original.update(state)


class RemoteObject:
    """A value that stayed in the jail: attributes can be read, set and passed back; nothing else."""

    def __init__(self, channel: Channel, reference: Any) -> None:
        object.__setattr__(self, "_channel", channel)
        object.__setattr__(self, "_reference", reference)

    def _ask(self, op: str, name: str, **extra: Any) -> Any:
        channel = object.__getattribute__(self, "_channel")
        target = wire.encode(object.__getattribute__(self, "_reference"))
        return channel.ask({"op": op, "target": target, "name": name, **extra})[1]

    def __getattr__(self, name: str) -> Any:
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            encoded = wire.encode(value, _outgoing)
        except wire.WireError as error:
            raise TypeError(f"cannot pass to the candidate: {error}") from None
        self._ask("setattr", name, value=encoded)

    def _refuse(self, *args: Any) -> Any:
        raise NotPlainData("the candidate returned an object that is not plain data")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = _refuse
    __contains__ = __add__ = __radd__ = __sub__ = __mul__ = __float__ = __int__ = __index__ = _refuse
    __hash__ = _refuse

    def __repr__(self) -> str:
        return "<object kept in the jail>"


def helpers_of(prompt: str, entry_point: str) -> str:
    """The prompt's code less the entry point's stub: trusted helpers the tests may call."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return ""
    kept = [node for node in tree.body if not (isinstance(node, ast.FunctionDef) and node.name == entry_point)]
    return ast.unparse(ast.Module(body=kept, type_ignores=[]))


def exposed_names(candidate: list[str], test: ast.Module, helpers: ast.Module, trusted: dict[str, Any]) -> list[str]:
    """The candidate's names the test namespace gets (besides the entry point).

    Only names the test or a helper reads, and never one that is a built-in, already `trusted`
    (the helpers' names) or bound anywhere in the test (its functions, imports, assignments,
    parameters): those keep meaning what the test's author meant.
    """
    read: set[str] = set()
    bound: set[str] = set()
    for tree in (test, helpers):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
                bound.add(node.name)
            elif isinstance(node, ast.Global | ast.Nonlocal):
                bound.update(node.names)
    refused = bound | set(vars(builtins)) | set(trusted)
    return sorted(name for name in set(candidate) & read if name not in refused)


def judge(config: dict[str, Any], channel: Channel) -> dict[str, Any]:
    """Run the tests against the candidate; the verdict as `{"status", "detail"}`."""
    first = channel.receive()
    if "load_error" in first:
        raised = _as_exception(first["load_error"])
        return _verdict("failed" if isinstance(raised, AssertionError) else "error", raised)
    names = first.get("ready")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise CandidateGone("the candidate broke the protocol: no list of names")
    namespace: dict[str, Any] = {}
    helpers = helpers_of(config["prompt"], config["entry_point"])
    exec(compile(helpers, "prompt.py", "exec"), namespace)
    try:
        test = ast.parse(config["test"], "test.py")
        for name in exposed_names(names, test, ast.parse(helpers), namespace):
            namespace[name] = RemoteFunction(channel, name)
        namespace[config["entry_point"]] = RemoteFunction(channel, config["entry_point"])
        exec(compile(test, "test.py", "exec"), namespace)
        exec(compile(f"check({config['entry_point']})", "test.py", "exec"), namespace)
    except CandidateGone:
        raise
    except AssertionError as error:
        return _verdict("failed", error)
    except BaseException as error:  # noqa: BLE001 - any other way the test ends is an error
        return _verdict("error", error)
    return {"status": "passed", "detail": ""}


def _verdict(status: str, error: BaseException) -> dict[str, str]:
    name = type(error).__name__ if not isinstance(error, CandidateError | CandidateExit) else ""
    message = str(error)
    detail = f"{name}: {message}" if name and message else name or message
    return {"status": status, "detail": " ".join(detail.split())[:500]}


def main() -> None:
    import resource

    config = json.loads(sys.stdin.buffer.read())
    memory = config["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    verdict_fd = config["verdict_fd"]
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    try:
        verdict = judge(config, Channel(config["requests_fd"], config["replies_fd"]))
    except CandidateGone as gone:
        verdict = {"status": "crashed", "detail": str(gone)}
    data = json.dumps(verdict).encode()
    while data:  # a detail of 500 characters escapes to up to 6 KB: more than one pipe write may take
        data = data[os.write(verdict_fd, data) :]


if __name__ == "__main__":
    main()
