"""One vLLM OpenAI-compatible server: its HTTP calls, its health and the work it has in flight.

httpx's exceptions stop here. A failure before the server accepted a request (refused
connection, connect timeout, 5xx, 429) is a `ReplicaUnavailable`: nothing was generated, so
the request may go to another replica. A 4xx is the request's own fault (`PromptError`,
or `InputError` for a refused API key). A failure once the stream runs is `StreamBroken`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from reasoner.errors import EngineError, InputError, PromptError

DOWN_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
PROBE_TIMEOUT_S = 5.0
ERROR_TEXT_LIMIT = 300


class ReplicaUnavailable(EngineError):
    """The replica did not take the request (down, overloaded, restarting); nothing was generated."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StreamBroken(EngineError):
    """The connection failed while the request's output was streaming."""


@dataclass(frozen=True)
class ServedModel:
    """A model a server lists under `/v1/models`."""

    id: str
    max_model_len: int | None


def normalize_endpoint(url: str) -> str:
    """The server root of an endpoint given as `http://host:port` or `http://host:port/v1`."""
    cleaned = url.strip().rstrip("/")
    try:
        parsed = httpx.URL(cleaned) if cleaned else None
    except httpx.InvalidURL as exc:
        raise InputError(f"endpoint {url!r} is not a valid URL ({exc}); pass e.g. http://127.0.0.1:8000/v1") from None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(f"endpoint {url!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1")
    return cleaned.removesuffix("/v1")


class Replica:
    """One server, as the fleet sees it: up or down, and how much work it has in flight.

    `outstanding_tokens` is the prompt plus `max_tokens` of every request this client has in
    flight on it; routing sends new solves where it is least. A replica that fails is down
    until its back-off passes (1 s, doubling to 30 s), then probed before it gets work again.
    """

    def __init__(self, root_url: str, client: httpx.AsyncClient):
        self.root_url = root_url
        self._client = client
        self.outstanding_tokens = 0
        self.in_flight = 0
        self.requests_sent = 0
        self.failures = 0
        self.down_until: float | None = None
        self.last_error = ""

    def __repr__(self) -> str:
        state = "up" if self.down_until is None else "down"
        return f"Replica({self.root_url}, {state}, outstanding={self.outstanding_tokens})"

    @property
    def is_up(self) -> bool:
        return self.down_until is None

    def due_for_probe(self, now: float) -> bool:
        return self.down_until is not None and now >= self.down_until

    def mark_down(self, reason: str, retry_after_s: float | None = None) -> None:
        """Take the replica out of rotation for its back-off (or the server's `Retry-After`)."""
        backoff = DOWN_BACKOFF_S[min(self.failures, len(DOWN_BACKOFF_S) - 1)]
        wait = retry_after_s if retry_after_s is not None else backoff * (0.75 + random.random() / 2)
        self.failures += 1
        self.down_until = time.monotonic() + wait
        self.last_error = reason

    def mark_up(self) -> None:
        self.failures = 0
        self.down_until = None

    def begin(self, tokens: int) -> None:
        self.outstanding_tokens += tokens
        self.in_flight += 1
        self.requests_sent += 1

    def end(self, tokens: int) -> None:
        self.outstanding_tokens -= tokens
        self.in_flight -= 1

    async def probe(self) -> bool:
        """Ask the server whether it is healthy; mark the replica up or down accordingly."""
        try:
            response = await self._client.get(f"{self.root_url}/health", timeout=PROBE_TIMEOUT_S)
        except httpx.HTTPError as exc:
            self.mark_down(f"health probe failed: {type(exc).__name__}")
            return False
        if response.status_code != 200:
            self.mark_down(f"health probe answered HTTP {response.status_code}")
            return False
        self.mark_up()
        return True

    async def models(self) -> list[ServedModel]:
        """The models the server serves, with their context lengths."""
        body = await self.get_json("/v1/models")
        entries = body.get("data") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise EngineError(f"{self.root_url}/v1/models did not answer a model list")
        served = []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                length = entry.get("max_model_len")
                served.append(ServedModel(entry["id"], int(length) if isinstance(length, int) else None))
        return served

    async def get_json(self, path: str) -> Any:
        return await self._call("GET", path, None)

    async def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        return await self._call("POST", path, payload)

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        try:
            response = await self._client.request(method, f"{self.root_url}{path}", json=payload)
        except httpx.HTTPError as exc:
            raise ReplicaUnavailable(f"{self.root_url} is unreachable ({type(exc).__name__}: {exc})") from None
        _raise_for_status(self.root_url, response.status_code, response.headers, response.text)
        try:
            return response.json()
        except ValueError:
            raise EngineError(f"{self.root_url}{path} answered something that is not JSON") from None

    async def metrics_text(self) -> str:
        """The server's Prometheus `/metrics` page."""
        try:
            response = await self._client.get(f"{self.root_url}/metrics")
        except httpx.HTTPError as exc:
            raise ReplicaUnavailable(f"{self.root_url} is unreachable ({type(exc).__name__})") from None
        _raise_for_status(self.root_url, response.status_code, response.headers, response.text)
        return response.text

    @asynccontextmanager
    async def completion_stream(self, payload: dict[str, Any]) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Open a streaming `/v1/completions` request; yields its server-sent events as dicts.

        Leaving the block closes the connection, which makes vLLM abort the request.
        """
        request = self._client.build_request("POST", f"{self.root_url}/v1/completions", json=payload)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise ReplicaUnavailable(f"{self.root_url} did not take the request ({reason})") from None
        try:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace")
                _raise_for_status(self.root_url, response.status_code, response.headers, text)
            yield self._events(response)
        finally:
            await response.aclose()

    async def _events(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    event = json.loads(data)
                except ValueError:
                    raise StreamBroken(f"{self.root_url} sent an event that is not JSON") from None
                if isinstance(event, dict) and "error" in event:
                    raise StreamBroken(f"{self.root_url} failed the request: {_error_message(event)}")
                if isinstance(event, dict):
                    yield event
        except httpx.HTTPError as exc:
            raise StreamBroken(f"the stream from {self.root_url} broke ({type(exc).__name__}: {exc})") from None


def _raise_for_status(root_url: str, status: int, headers: httpx.Headers, text: str) -> None:
    if status < 400:
        return
    message = _error_text(text)
    if status in (401, 403):
        raise InputError(
            f"{root_url} refused the API key (HTTP {status}: {message}); pass api_key= or set REASONER_API_KEY"
        )
    if status == 429 or status >= 500:
        raise ReplicaUnavailable(f"{root_url} answered HTTP {status}: {message}", _retry_after(headers))
    if status == 404:
        raise EngineError(f"{root_url} has no such endpoint (HTTP 404: {message}); is it a vLLM server?")
    raise PromptError(f"{root_url} refused the request (HTTP {status}): {message}")


def _error_text(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:ERROR_TEXT_LIMIT]
    return _error_message(body) if isinstance(body, dict) else text.strip()[:ERROR_TEXT_LIMIT]


def _error_message(body: dict[str, Any]) -> str:
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:ERROR_TEXT_LIMIT]


def _retry_after(headers: httpx.Headers) -> float | None:
    """The server's `Retry-After` in seconds (only the delta-seconds form), capped at a minute."""
    value = headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or seconds < 0 else min(seconds, 60.0)
