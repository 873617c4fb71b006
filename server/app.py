"""The FastAPI app: routers, errors, request metrics, and a lifespan that drains on shutdown."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reasoner import Reasoner
from server.config import ServerConfig
from server.errors import APIError, error_body, install_error_handlers
from server.metrics import ServerMetrics
from server.routers import chat, completions, metrics, models, not_vllm
from server.service import SolveService
from server.state import ServerState

MAX_BODY_BYTES = 8 << 20
KNOWN_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"})


class RequestMetrics:
    """ASGI middleware: count every HTTP request by endpoint and status, and time it to its last byte."""

    def __init__(self, app: ASGIApp, server_metrics: ServerMetrics):
        self.app = app
        self.server_metrics = server_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        started = time.monotonic()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.server_metrics.requests.labels(endpoint, str(status)).inc()
            self.server_metrics.latency.labels(endpoint).observe(time.monotonic() - started)


class BodyLimit:
    """ASGI middleware: read the whole request body first; over `max_bytes` is a 413, not UTF-8 a 400.

    The body is refused before anything parses it, whether its length is declared or it comes
    chunked. JSON exchanged between systems is UTF-8 (RFC 8259), and a body in another encoding
    (UTF-16, Latin-1) is refused rather than guessed at. The app then reads the body as sent.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or len(declared) > 12 or int(declared) > self.max_bytes:
            await _refuse(send, APIError(413, f"the request body is over {self.max_bytes} bytes"))
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            if received > self.max_bytes:
                await _refuse(send, APIError(413, f"the request body is over {self.max_bytes} bytes"))
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _refuse(send, APIError(400, f"the request body is not UTF-8 (byte {exc.start}); send UTF-8 JSON"))
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over `body` once, then waits on the client as the original does."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send: Send, error: APIError) -> None:
    await JSONResponse(error_body(error), status_code=error.status)({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(reasoner: Reasoner, config: ServerConfig, *, close_reasoner: bool = False) -> FastAPI:
    """An OpenAI-compatible app over `reasoner`; on shutdown it drains its solves (and closes the engine if asked)."""
    server_metrics = ServerMetrics()
    service = SolveService(reasoner, config, server_metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await reasoner.astart()
        yield
        await service.drain(config.shutdown_timeout_s)
        if close_reasoner:
            await reasoner.aclose()

    app = FastAPI(title="reasoner", summary="Reasoning strategies behind an OpenAI-compatible API", lifespan=lifespan)
    app.state.server = ServerState(reasoner=reasoner, config=config, service=service, metrics=server_metrics)
    for router in (chat.router, completions.router, models.router, metrics.router, not_vllm.router):
        app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestMetrics, server_metrics=server_metrics)
    return app
