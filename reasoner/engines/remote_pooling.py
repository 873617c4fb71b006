"""A vLLM pooling server over HTTP (`vllm serve MODEL --runner pooling`): per-token class scores.

The PRM scorer uses it instead of its own engine when given an endpoint: one `/pooling`
request with `task="token_classify"` per scored response returns one row of class
probabilities per prompt token. Errors leave as the toolkit's (see `replica`).
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from reasoner.engines.remote_discovery import pick_served_model
from reasoner.engines.replica import Replica, ServedModel, normalize_endpoint
from reasoner.errors import EngineError

DEFAULT_TIMEOUT_S = 120.0


class PoolingEndpoint:
    """One pooling server (or a router in front of several), asked per request.

    `model` names the served model when the server lists several (one listed is used whatever
    its name); `api_key` defaults to
    `REASONER_API_KEY`. A fresh connection pool per call keeps it usable from any event loop.
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.root_url = normalize_endpoint(url)
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("REASONER_API_KEY")
        self.timeout_s = timeout_s
        self.transport = transport
        self._served: ServedModel | None = None

    def _client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.AsyncClient(timeout=self.timeout_s, headers=headers, transport=self.transport)

    async def served_model(self) -> ServedModel:
        """The model the server pools with, and its context length."""
        if self._served is None:
            async with self._client() as client:
                listing = await Replica(self.root_url, client).models()
            only = len({model.id for model in listing}) == 1
            self._served = pick_served_model(None if only else self.model, [listing])
        return self._served

    async def token_probabilities(self, token_ids: list[int]) -> list[list[float]]:
        """One row of class probabilities per token of `token_ids` (or one per step, as the model returns)."""
        served = await self.served_model()
        payload = {"model": served.id, "input": token_ids, "task": "token_classify", "add_special_tokens": False}
        async with self._client() as client:
            body = await Replica(self.root_url, client).post_json("/pooling", payload)
        return _rows(body, self.root_url)


def _rows(body: Any, root_url: str) -> list[list[float]]:
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise EngineError(f"{root_url}/pooling answered no data")
    data = entries[0].get("data")
    if not isinstance(data, list):
        raise EngineError(f"{root_url}/pooling answered data that is not a list of rows")
    try:
        return [[float(value) for value in row] if isinstance(row, list) else [float(row)] for row in data]
    except (TypeError, ValueError):
        raise EngineError(f"{root_url}/pooling answered rows that are not numbers") from None
