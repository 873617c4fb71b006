"""Starting and stopping a real `reasoner serve` subprocess (the embedded model on vLLM) for tests.

The command is the CLI's own `serve`, with every engine request run to its length
(`tests.server.forced_serve`): a test sizes a solve by its budget, never by what the model
chooses to write.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVE_API_KEY = "engine-test-key"
MAX_CONCURRENCY = 32
MAX_QUEUE = 16
# Long enough for the SIGTERM test's solve in flight (64 forced tokens) on a loaded 2-core machine; a server with
# nothing in flight stops at once.
SHUTDOWN_TIMEOUT_S = 120
START_TIMEOUT_S = 240


@dataclass
class RunningServer:
    """A `reasoner serve` process and where it listens."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1"

    def metric(self, name: str) -> float:
        """The sum of a Prometheus metric's samples on /metrics (0 when absent)."""
        page = httpx.get(self.base_url + "/metrics", timeout=10).text
        total = 0.0
        for line in page.splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(log_path: Path) -> RunningServer:
    port = _free_port()
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_LOGGING_LEVEL": "ERROR",
    }
    command = [
        sys.executable, "-m", "tests.server.forced_serve", "serve",
        "--port", str(port),
        "--api-key", SERVE_API_KEY,
        "--max-concurrency", str(MAX_CONCURRENCY),
        "--max-queue", str(MAX_QUEUE),
        "--shutdown-timeout", str(SHUTDOWN_TIMEOUT_S),
        "-e", "max_model_len=2048",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"reasoner serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"reasoner serve did not become healthy in {START_TIMEOUT_S}s:\n{server.log()}")


def stop_server(server: RunningServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=SHUTDOWN_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
