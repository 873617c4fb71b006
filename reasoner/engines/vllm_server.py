"""Start and stop a vLLM OpenAI-compatible server on this machine, as a child process.

For tests, benchmarks and one-box fleets: `with VLLMServer(model) as server:` gives
`server.url` (`http://127.0.0.1:PORT/v1`) once `/health` answers, and kills the server's
whole process group (API server and engine core) on exit or at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import httpx

from reasoner.engines.cpu_engine import SINGLE_PROCESS, cpu_dtype, server_variables
from reasoner.engines.vllm_local import TAIL_KV_CONNECTOR
from reasoner.errors import EngineError

START_TIMEOUT_S = 240.0
# For a CPU server that takes latent steps (prompt embeddings): the tail KV connector, so each step
# computes one row (`reasoner.engines.tail_kv`; `reasoner` must be importable in the server's Python).
TAIL_KV_SERVER_ARGS = ("--kv-transfer-config", json.dumps(TAIL_KV_CONNECTOR))
_live_servers: weakref.WeakSet[VLLMServer] = weakref.WeakSet()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_server_args() -> tuple[str, ...]:
    """`vllm serve` flags for a CPU server: eager, 32-token blocks, this CPU's number format, and the model run in
    the engine-core process (`reasoner.engines.cpu_engine`)."""
    return (
        "--enforce-eager",
        "--block-size",
        "32",
        "--dtype",
        cpu_dtype(),
        "--distributed-executor-backend",
        SINGLE_PROCESS,
    )


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` for `model` on 127.0.0.1.

    `extra_args` are vLLM server flags (`--max-model-len 2048`, `--enable-prompt-embeds`, ...);
    `env` adds environment variables (e.g. `VLLM_CPU_KVCACHE_SPACE`). The server's output goes
    to `log_path` (a temporary file unless given).
    """

    def __init__(
        self,
        model: str,
        extra_args: Sequence[str] = (),
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ):
        self.model = model
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL to hand to `Reasoner(endpoint=...)`."""
        return f"{self.root_url}/v1"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> VLLMServer:
        """Launch the server and wait until `/health` answers; `EngineError` with the log tail if it does not."""
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model]
        command += ["--host", "127.0.0.1", "--port", str(self.port), *self.extra_args]
        environment = os.environ | server_variables(self.extra_args) | self.env
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
            )
        _live_servers.add(self)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"the vLLM server exited with code {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.root_url}/health", timeout=2.0).status_code == 200:
                    return self
            time.sleep(1.0)
        self.stop()
        raise EngineError(f"the vLLM server did not become healthy in {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """Kill the server at once (SIGKILL to its process group), as a crash would."""
        self._signal(signal.SIGKILL)

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after `grace_s`."""
        process = self.process
        if process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            process.wait(timeout=grace_s)
        self.process = None
        _live_servers.discard(self)

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@atexit.register
def _stop_live_servers() -> None:
    for server in list(_live_servers):
        server.stop(grace_s=5.0)
