"""How an engine runs on CPU: in which process the model runs, and in which number format.

The executor: vLLM's model runs in the engine-core process (the single-process executor, `uni`),
not in a worker process of its own. vLLM's CPU platform replaces `uni` with the multiprocess
executor unless `VLLM_ENABLE_V1_MULTIPROCESSING=0`: OpenMP's settings must be in place before
torch starts in the process that runs the model, which a model run in the caller's own process
could not promise. `AsyncLLM` always runs its engine core in a freshly spawned process, so that
promise holds there, and the worker process only costs: it imports vLLM once more and holds a
second copy of torch (about 2 GB resident). Measured on a 2-core machine: an engine started in
36.5 s instead of 51 s, at the same decode throughput. The variable is read only while the
engine's configuration is made, so it is set for the builds that ask for `uni` and given back
afterwards: the rest of the caller's process (another library's `vllm.LLM`, say) keeps its own.

The number format: bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX), else
float32. Without those instructions oneDNN has no bfloat16 matmul and torch falls back to a slow
one: on a 2-core AVX2 machine the embedded model decoded 32 requests at 14.5 tokens/s in
bfloat16 and 73 tokens/s in float32.
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


def cpu_dtype() -> str:
    """bfloat16 where this CPU computes it natively, else float32."""
    import torch

    native = [
        getattr(torch.cpu, name, lambda: False) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return "bfloat16" if any(supported() for supported in native) else "float32"


def with_cpu_choices(arguments: dict[str, Any], on_cpu: bool) -> dict[str, Any]:
    """`arguments` with the single-process executor and this CPU's number format, where the caller chose neither."""
    if not on_cpu:
        return arguments
    return {"distributed_executor_backend": SINGLE_PROCESS, "dtype": cpu_dtype()} | arguments


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
