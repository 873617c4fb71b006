"""What the routers share: the reasoner, the settings, the solve service and the metrics."""

from __future__ import annotations

import asyncio
import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from reasoner import Reasoner, Solution
from server.config import ServerConfig
from server.errors import APIError
from server.metrics import ServerMetrics
from server.service import SolveService

DISCONNECT_POLL_S = 0.25


@dataclass
class ServerState:
    """One per app, kept on `app.state.server`."""

    reasoner: Reasoner
    config: ServerConfig
    service: SolveService
    metrics: ServerMetrics


def server_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's `ServerState`."""
    state: ServerState = request.app.state.server
    return state


StateDep = Annotated[ServerState, Depends(server_state)]


def check_api_key(request: Request) -> None:
    """FastAPI dependency: 401 unless the `Authorization: Bearer <key>` matches (when a key is set)."""
    expected = server_state(request).config.api_key
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise APIError(
            401,
            "missing or wrong API key; send it as 'Authorization: Bearer <key>'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )


def new_response_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def solutions_unless_disconnected(request: Request, tasks: list[asyncio.Task[Solution]]) -> list[Solution]:
    """Wait for the solves of a request; cancel them all (aborting their engine requests) if the client leaves."""
    try:
        while True:
            _, pending = await asyncio.wait(tasks, timeout=DISCONNECT_POLL_S, return_when=asyncio.FIRST_EXCEPTION)
            failed = [task for task in tasks if task.done() and not task.cancelled() and task.exception() is not None]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            if not pending:
                if any(task.cancelled() for task in tasks):
                    raise APIError(503, "the server shut down before the solve finished", type_="server_error")
                return [task.result() for task in tasks]
            if await request.is_disconnected():
                raise APIError(499, "the client closed the request; its solves were aborted", code="client_closed")
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
