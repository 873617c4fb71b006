"""A fake vLLM OpenAI server behind `httpx.MockTransport`, for unit tests of the remote backend.

It speaks just enough of the completions API (streamed token ids, usage, the two refusals
discovery reads) to test routing, retries and accounting without a model. Real servers are
exercised in tests/integration/test_remote.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from reasoner.engines.remote import RemoteBackend
from reasoner.engines.scripted import ScriptedTokenizer

MODEL = "fake/SmolLM2"
WORDS = [" The", " sum", " is", " 5.", "\n\nFinal", " answer:", " 5"]


@dataclass
class FakeServer:
    """One fake replica. Flip `down`, `status`, `break_after` to make it misbehave."""

    host: str
    models: tuple[str, ...] = (MODEL,)
    prompt_embeds: bool = True
    down: bool = False
    status: int = 200
    retry_after: str | None = None
    break_after: int | None = None
    delay_s: float = 0.0
    malformed: bool = False
    api_key: str | None = None
    generated_tokens: int = 0
    completions: list[dict[str, Any]] = field(default_factory=list)
    closed_early: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"error": {"message": "Unauthorized"}})
        path = request.url.path
        if path == "/health":
            return httpx.Response(200)
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": name, "max_model_len": 2048} for name in self.models]})
        if path == "/metrics":
            return httpx.Response(200, text=f'vllm:generation_tokens_total{{engine="0"}} {self.generated_tokens}.0\n')
        body = json.loads(request.content)
        if body.get("logprobs") == 1_000_000:
            return _refuse("Requested sample logprobs of 1000000, which is greater than max allowed: 20")
        if body.get("prompt_embeds") == "!":
            return _refuse("Non-base64 digit found" if self.prompt_embeds else "You must set `--enable-prompt-embeds`")
        if self.status != 200:
            headers = {"retry-after": self.retry_after} if self.retry_after else {}
            return httpx.Response(self.status, headers=headers, json={"error": {"message": "busy"}})
        self.completions.append(body)
        return httpx.Response(200, stream=_Stream(self, body), headers={"content-type": "text/event-stream"})


class _Stream(httpx.AsyncByteStream):
    def __init__(self, server: FakeServer, body: dict[str, Any]):
        self.server = server
        self.body = body
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        server, body = self.server, self.body
        prompt = body.get("prompt") or []
        count = min(body["max_tokens"], len(WORDS))
        for index in range(count):
            await asyncio.sleep(server.delay_s)
            if server.break_after is not None and index >= server.break_after:
                raise httpx.ReadError("connection reset by peer")
            server.generated_tokens += 1
            last = index == count - 1
            reason = ("length" if count == body["max_tokens"] else "stop") if last else None
            token: object = "not-a-token-id" if server.malformed else 100 + index
            choice = {"index": 0, "text": WORDS[index], "token_ids": [token], "finish_reason": reason}
            yield _event({"choices": [choice]})
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": count,
            "prompt_tokens_details": {"cached_tokens": 1},
        }
        yield _event({"choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"
        self.finished = True

    async def aclose(self) -> None:
        if not self.finished:
            self.server.closed_early += 1


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _refuse(message: str) -> httpx.Response:
    return httpx.Response(400, json={"error": {"message": message, "code": 400}})


class FakeFleet:
    """Fake replicas at http://a.test, http://b.test, ...; `backend()` builds a RemoteBackend on them."""

    def __init__(self, count: int = 1, **server_options: Any):
        self.servers = [FakeServer(f"{chr(ord('a') + index)}.test", **server_options) for index in range(count)]
        self.transport = httpx.MockTransport(self._route)

    @property
    def urls(self) -> list[str]:
        return [f"http://{server.host}/v1" for server in self.servers]

    def _route(self, request: httpx.Request) -> httpx.Response:
        for server in self.servers:
            if request.url.host == server.host:
                return server.handle(request)
        raise httpx.ConnectError("unknown host", request=request)

    def backend(self, **options: Any) -> RemoteBackend:
        options.setdefault("model", MODEL)
        options.setdefault("tokenizer", ScriptedTokenizer())
        return RemoteBackend(self.urls, transport=self.transport, **options)
