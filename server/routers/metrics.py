"""`GET /metrics`: Prometheus text, the engine's `vllm:*` metrics and the server's own."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.state import StateDep

router = APIRouter()


@router.get("/metrics")
async def metrics(state: StateDep) -> Response:
    return Response(state.metrics.page(), media_type=CONTENT_TYPE_LATEST)
