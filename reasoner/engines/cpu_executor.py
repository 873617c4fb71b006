"""On CPU, vLLM's model runs in the engine-core process (the single-process executor), not in a worker of its own.

vLLM's CPU platform replaces the single-process executor (`uni`) with the multiprocess one (`mp`)
unless `VLLM_ENABLE_V1_MULTIPROCESSING=0`: OpenMP's settings must be in place before torch starts
in the process that runs the model, which a model run in the caller's own process could not
promise. `AsyncLLM` always runs its engine core in a freshly spawned process, so that promise holds
there, and the worker process only costs: it imports vLLM once more (about 15 s of CPU on a 2-core
machine, of the 22 s an engine took to start) and holds a second copy of torch (about 2 GB resident).

The variable is read only while the engine's configuration is made, so it is set for the builds
that ask for `uni` and given back afterwards: the rest of the caller's process (another library's
`vllm.LLM`, say) sees its own setting.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

SINGLE_PROCESS = "uni"
_VARIABLE = "VLLM_ENABLE_V1_MULTIPROCESSING"
_lock = threading.Lock()
_builds = 0
_saved: str | None = None


def with_cpu_executor(arguments: dict[str, Any], on_cpu: bool) -> dict[str, Any]:
    """`arguments` with the single-process executor on CPU, unless the caller chose an executor."""
    if not on_cpu or "distributed_executor_backend" in arguments:
        return arguments
    return arguments | {"distributed_executor_backend": SINGLE_PROCESS}


@contextlib.contextmanager
def executor_kept(arguments: dict[str, Any]) -> Iterator[None]:
    """While an engine whose arguments ask for `uni` is configured, keep vLLM's CPU platform from swapping it.

    Builds may overlap (engines started from several threads): the first in sets the variable, the
    last out restores what was there.
    """
    if arguments.get("distributed_executor_backend") != SINGLE_PROCESS:
        yield
        return
    global _builds, _saved
    with _lock:
        if _builds == 0:
            _saved = os.environ.get(_VARIABLE)
            os.environ[_VARIABLE] = "0"
        _builds += 1
    try:
        yield
    finally:
        with _lock:
            _builds -= 1
            if _builds == 0:
                if _saved is None:
                    os.environ.pop(_VARIABLE, None)
                else:
                    os.environ[_VARIABLE] = _saved


def server_variables(server_args: Sequence[str]) -> dict[str, str]:
    """The environment a `vllm serve` child needs to keep the `uni` executor its arguments ask for (its own
    process, all of it vLLM's, so the variable is set for its whole life)."""
    args = list(server_args)
    pairs = zip(args, [*args[1:], ""], strict=True)
    asked = any(
        (flag == "--distributed-executor-backend" and value == SINGLE_PROCESS)
        or flag == f"--distributed-executor-backend={SINGLE_PROCESS}"
        for flag, value in pairs
    )
    return {_VARIABLE: "0"} if asked else {}
