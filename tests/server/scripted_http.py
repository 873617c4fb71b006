"""A `reasoner serve` app on the scripted backend behind real uvicorn on a loopback port.

For what only real HTTP shows (chunked bodies, raw bytes, uvicorn's own refusals, a stalled
event loop) without the cost of an engine start. The server runs in a thread of the test
process, so a test can read the scripted backend's log and wrap its tokenizer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from reasoner.testing import ScriptedBackend
from tests.server.scripted_app import API_KEY, scripted_server

START_TIMEOUT_S = 30


@dataclass
class HTTPScriptedServer:
    """Where the server listens, its backend, and the thread whose event loop serves it."""

    base_url: str
    backend: ScriptedBackend
    thread: threading.Thread

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.base_url.removeprefix("http://").split(":")
        return host, int(port)

    def client(self, timeout_s: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=timeout_s)


@contextmanager
def http_scripted_server(backend: ScriptedBackend | None = None, **config: object) -> Iterator[HTTPScriptedServer]:
    """Serve a scripted app on 127.0.0.1 until the block ends."""
    scripted = scripted_server(backend, **config)
    server = uvicorn.Server(uvicorn.Config(scripted.app, log_level="critical", access_log=False))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the scripted server did not start"
        time.sleep(0.01)
    try:
        yield HTTPScriptedServer(f"http://127.0.0.1:{sock.getsockname()[1]}", scripted.backend, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
        sock.close()
