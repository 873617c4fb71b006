"""The remote backend: vLLM OpenAI-compatible servers (one, or a fleet of replicas) over HTTP.

Each request is one streaming `/v1/completions` call with token-id prompts (or base64
`prompt_embeds`), returned token ids, top logprobs as token ids, stop strings and usage;
closing the stream aborts the request inside vLLM. Requests of one solve stay on one
replica (`routing.PrefixAffinity`); a request that fails before its first token is re-sent
to another replica, one that fails after is charged what it streamed and raises
`EngineError`.

What is counted: the prompt's length, every token id the server streamed, and, with the stream's
last event (its usage), the prompt's prefix-cache hits. A request that finishes is counted
exactly: its tokens and cache hits are what the server's own `vllm:generation_tokens_total` and
`vllm:prefix_cache_hits_total` grew by. An aborted request (`abort` closes its stream at its next
event; vLLM aborts the request when it sees the connection close) is counted up to the last event
read. Not counted: the tokens the server made after that (sent but not yet read, or generated
before it saw the close; at most the request's `max_tokens`, whose unused part the ledger gives
back), so the servers' counter may exceed the ledger's total, and a budget by the servers' count
(17 tokens past a 96-token budget in a CPU-server test of `entropy_switch`); and the request's
cache hits, which only the last event carries, so its cost prices its prompt uncached (an upper
bound on its prefill). vLLM's per-chunk usage (`stream_options.continuous_usage_stats`) would not
recover either: in vLLM 0.32 a chunk's usage has the prompt and completion tokens streamed so far,
never `prompt_tokens_details`, so it is not asked for.

Capabilities are discovered at `start` from every replica and declared: the context length
from `/v1/models`, the logprobs limit and prompt-embedding support from the errors the
server gives for requests it refuses before generating anything.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import numpy as np

from reasoner.engines.base import (
    Backend,
    CacheStats,
    Capabilities,
    Chunk,
    FinishReason,
    Prompt,
    SamplingSpec,
    Tokenizer,
    solve_key,
)
from reasoner.engines.remote_discovery import discover_capabilities, pick_served_model
from reasoner.engines.remote_protocol import completion_payload, parse_event, parse_metrics
from reasoner.engines.remote_tokenizer import ServerTokenizer
from reasoner.engines.replica import Replica, ReplicaUnavailable, ServedModel, StreamBroken, normalize_endpoint
from reasoner.engines.routing import PrefixAffinity, RoutingPolicy
from reasoner.engines.weights import read_input_embeddings
from reasoner.errors import EngineError, InputError, ModelError
from reasoner.models import ResolvedModel, find_local_model

SERVER_TOKENIZER = "server"
DEFAULT_READ_TIMEOUT_S = 600.0
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_REPLICA_WAIT_S = 10.0


class RemoteBackend(Backend):
    """vLLM servers behind their OpenAI-compatible API; see the module docstring.

    `endpoints`: one URL (`http://host:8000` or `.../v1`; a router or load balancer is a
    one-element fleet) or several replicas serving the same model. `model`: the served model
    when a server lists several. `api_key`: sent as a bearer token (default
    `REASONER_API_KEY`). `tokenizer`: a local tokenizer name or folder (or a `Tokenizer`),
    when the served model's name does not resolve on this machine; without a local copy, or
    with `tokenizer="server"`, the server's `/tokenize` is used (a blocking call per new text).
    `verify`: TLS verification (a CA bundle path, or False). A request is tried at most
    `max_attempts` times; when no replica is up it waits up to `replica_wait_s` for one to
    come back. `transport` replaces httpx's network transport (`httpx.MockTransport` in tests).
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str | None = None,
        api_key: str | None = None,
        tokenizer: str | Tokenizer | None = None,
        policy: RoutingPolicy | None = None,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        replica_wait_s: float = DEFAULT_REPLICA_WAIT_S,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        urls = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not urls:
            raise InputError("endpoint list is empty; pass at least one server URL")
        self.endpoints = list(dict.fromkeys(normalize_endpoint(url) for url in urls))
        if max_attempts < 1:
            raise InputError(f"max_attempts must be at least 1, got {max_attempts}")
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("REASONER_API_KEY")
        self.tokenizer_source = tokenizer if isinstance(tokenizer, str) else None
        self._tokenizer: Tokenizer | None = None if isinstance(tokenizer, str) else tokenizer
        self.policy: RoutingPolicy = policy or PrefixAffinity()
        self.timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self.max_attempts = max_attempts
        self.replica_wait_s = replica_wait_s
        self.verify = verify
        self.transport = transport
        self.replicas: list[Replica] = []
        self.served_model: str | None = None
        self.resent_requests = 0
        self._client: httpx.AsyncClient | None = None
        self._start_lock: asyncio.Lock | None = None
        self._capabilities: Capabilities | None = None
        self._local_model: ResolvedModel | None = None
        self._embeddings: np.ndarray | None = None
        self._aborted: set[str] = set()
        self._prompt_tokens_seen = 0
        self._cached_tokens_seen = 0

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            raise EngineError("the remote backend has not started yet; call start() first")
        return self._capabilities

    @property
    def running(self) -> bool:
        return self._client is not None

    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            source = self.tokenizer_source or self.model or self.served_model
            if source is None:
                raise EngineError("the served model is not known yet; call start() first or pass model=")
            self._tokenizer = self._load_tokenizer(source)
        return self._tokenizer

    def _load_tokenizer(self, source: str) -> Tokenizer:
        from reasoner.tokenizer import HFTokenizer

        local = None if source == SERVER_TOKENIZER else find_local_model(source)
        if local is None:
            return self._server_tokenizer()
        try:
            return HFTokenizer(local.source)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the tokenizer of {source!r}: {exc}") from None

    def _server_tokenizer(self) -> Tokenizer:
        up = [replica for replica in self.replicas if replica.is_up]
        if not up or self.served_model is None:
            raise EngineError("the server's tokenizer is reachable only once the backend has started")
        transport = self.transport if isinstance(self.transport, httpx.BaseTransport) else None
        return ServerTokenizer(
            up[0].root_url, self.served_model, headers=self._headers(), verify=self.verify, transport=transport
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    async def start(self) -> None:
        if self._client is not None:
            return
        self._start_lock = self._start_lock or asyncio.Lock()
        async with self._start_lock:
            if self._client is None:
                await self._connect()

    async def _connect(self) -> None:
        headers = self._headers()
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        client = httpx.AsyncClient(
            timeout=self.timeout, limits=limits, headers=headers, verify=self.verify, transport=self.transport
        )
        replicas = [Replica(url, client) for url in self.endpoints]
        try:
            listed = await asyncio.gather(*(self._listing(replica) for replica in replicas))
            up = [(replica, models) for replica, models in zip(replicas, listed, strict=True) if models is not None]
            if not up:
                reasons = "; ".join(f"{replica.root_url}: {replica.last_error}" for replica in replicas)
                raise EngineError(f"no server answered ({reasons})")
            served = pick_served_model(self.model, [models for _, models in up])
            self._local_model = find_local_model(self.tokenizer_source or served.id)
            self._capabilities = await discover_capabilities(served, [replica for replica, _ in up], self._local_model)
        except BaseException:
            await client.aclose()
            raise
        self.served_model = served.id
        self.replicas = replicas
        self._client = client

    async def _listing(self, replica: Replica) -> list[ServedModel] | None:
        try:
            return await replica.models()
        except ReplicaUnavailable as exc:
            replica.mark_down(str(exc))
            return None

    async def close(self) -> None:
        client, self._client = self._client, None
        self.replicas = []
        if client is not None:
            await client.aclose()

    async def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        if self._client is None or self.served_model is None:
            raise EngineError("the remote backend is not running; call start() first")
        payload, prompt_length = completion_payload(self.served_model, prompt, sampling)
        work = prompt_length + sampling.max_tokens
        key = solve_key(request_id)
        failures: list[str] = []
        try:
            while True:
                replica = await self._route(key, failures)
                replica.begin(work)
                streamed = 0
                try:
                    async with replica.completion_stream(payload) as events:
                        async for chunk in self._chunks(request_id, events, prompt_length):
                            streamed += len(chunk.token_ids)
                            yield chunk
                    return
                except (ReplicaUnavailable, StreamBroken) as exc:
                    replica.mark_down(str(exc), getattr(exc, "retry_after_s", None))
                    if streamed:
                        raise EngineError(
                            f"request {request_id} failed after {streamed} tokens on {replica.root_url}: {exc}"
                        ) from None
                    failures.append(f"{replica.root_url}: {exc}")
                finally:
                    replica.end(work)
                if len(failures) >= self.max_attempts:
                    raise EngineError(f"request {request_id} failed on {len(failures)} tries: {'; '.join(failures)}")
                self.resent_requests += 1
        finally:
            self._aborted.discard(request_id)

    async def _route(self, key: str, failures: list[str]) -> Replica:
        """An up replica for solve `key`: probe the ones whose back-off passed, wait briefly if none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.replica_wait_s
        while True:
            now = time.monotonic()
            due = [replica for replica in self.replicas if replica.due_for_probe(now)]
            if due:
                await asyncio.gather(*(replica.probe() for replica in due))
            up = [replica for replica in self.replicas if replica.is_up]
            if up:
                return self.policy.choose(key, up)
            downs = [replica.down_until for replica in self.replicas if replica.down_until is not None]
            pause = max(0.05, min(downs) - time.monotonic())
            if loop.time() + pause > deadline:
                reasons = "; ".join(failures) or "; ".join(f"{r.root_url}: {r.last_error}" for r in self.replicas)
                raise EngineError(f"no server is up ({reasons})")
            await asyncio.sleep(pause)

    async def _chunks(
        self, request_id: str, events: AsyncIterator[dict[str, Any]], prompt_length: int
    ) -> AsyncIterator[Chunk]:
        finish: FinishReason | None = None
        prompt_tokens, cached = prompt_length, 0
        async for event in events:
            try:
                usage, outputs = parse_event(event)
            except (AttributeError, KeyError, TypeError, ValueError):
                raise StreamBroken(f"the server sent a malformed event for request {request_id}") from None
            if usage is not None:
                prompt_tokens, cached = usage[0] or prompt_tokens, usage[1]
            for token_ids, text, logprobs, reason in outputs:
                if reason is not None:
                    finish = reason
                if token_ids or text:
                    yield Chunk(token_ids, text, logprobs, False, None, prompt_tokens, 0)
            if request_id in self._aborted:
                finish = "abort"
                break
        if finish is None:
            raise StreamBroken("the stream ended before the request finished")
        self._prompt_tokens_seen += prompt_tokens
        self._cached_tokens_seen += cached
        yield Chunk((), "", None, True, finish, prompt_tokens, cached)

    async def abort(self, request_id: str) -> None:
        """Stop a request: its stream is closed at its next event, which aborts it in vLLM."""
        self._aborted.add(request_id)

    async def input_embeddings(self) -> np.ndarray:
        if self._embeddings is None:
            if self._local_model is None:
                raise EngineError("the remote backend has not started yet; call start() first")
            self._embeddings = await asyncio.to_thread(read_input_embeddings, self._local_model)
        return self._embeddings

    def cache_stats(self) -> CacheStats:
        """Prompt tokens sent and prompt tokens the servers reported as prefix-cache hits."""
        return CacheStats(prefix_cache_queries=self._prompt_tokens_seen, prefix_cache_hits=self._cached_tokens_seen)

    async def server_metrics(self) -> dict[str, dict[str, float]]:
        """Each replica's Prometheus counters (`vllm:generation_tokens_total`, ...), summed over labels."""
        if self._client is None:
            raise EngineError("the remote backend is not running; call start() first")
        pages = await asyncio.gather(*(replica.metrics_text() for replica in self.replicas))
        return {replica.root_url: parse_metrics(page) for replica, page in zip(self.replicas, pages, strict=True)}
