"""The engine backend protocol: one method per engine capability.

A backend runs single-sample requests (one request per sample, so any sample can be
aborted on its own), streams their tokens, and reports what it can do in `capabilities`.
Strategies never talk to a backend directly: they go through the ledger-keeping
`Session`, which clamps every request to the budget.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from reasoner.errors import CapabilityError

FinishReason = Literal["stop", "length", "abort"]


@dataclass(frozen=True)
class TextPrompt:
    """A prompt as text; the backend tokenizes it (no special tokens added)."""

    text: str


@dataclass(frozen=True)
class TokensPrompt:
    """A prompt as token ids."""

    token_ids: tuple[int, ...]


@dataclass(frozen=True)
class EmbedsPrompt:
    """A prompt as input embeddings `[length, hidden]`, e.g. soft tokens for latent thinking."""

    embeds: np.ndarray


Prompt = TextPrompt | TokensPrompt | EmbedsPrompt


@dataclass(frozen=True)
class SamplingSpec:
    """How to sample one request. `top_k=0` means no top-k cut; `logprobs` is the top-k to return.

    `ignore_eos` keeps generating past the end-of-sequence token (stop strings still stop), so a
    test can force a request's length instead of hoping the model writes long.
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    logprobs: int | None = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False


@dataclass(frozen=True)
class Chunk:
    """New output of one request since the previous chunk.

    `logprobs` has one dict per new token (token id -> log-probability, top-k plus the
    sampled token) when the request asked for logprobs. The prompt figures are set on the
    first chunk and repeated after.
    """

    token_ids: tuple[int, ...]
    text: str
    logprobs: tuple[dict[int, float], ...] | None
    finished: bool
    finish_reason: FinishReason | None
    prompt_tokens: int
    cached_prompt_tokens: int


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; strategies check these instead of trying and failing.

    `prompt_embeds`: accepts `EmbedsPrompt`. `input_embeddings`: `Backend.input_embeddings()`
    returns the model's input-embedding matrix (for soft tokens). `max_logprobs`: the most
    top logprobs one request may ask for. `max_model_len`: prompt plus output, in tokens.
    """

    prompt_embeds: bool
    logprobs: bool
    max_logprobs: int
    prefix_caching: bool
    per_request_seed: bool
    max_model_len: int
    name: str = "backend"
    input_embeddings: bool = True


@dataclass(frozen=True)
class CacheStats:
    """Prefix-cache and KV figures since the backend started (tokens, not blocks)."""

    prefix_cache_queries: int
    prefix_cache_hits: int
    kv_cache_usage: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        return self.prefix_cache_hits / self.prefix_cache_queries if self.prefix_cache_queries else 0.0


def solve_key(request_id: str) -> str:
    """The solve a request belongs to: request ids are `<solve>/<n>` (see `Session`).

    A backend with several replicas keeps the requests of one solve on one replica, so the
    prefixes its samples and branches share hit one prefix cache.
    """
    return request_id.rpartition("/")[0] or request_id


class Tokenizer(Protocol):
    """The part of a tokenizer the toolkit uses."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...

    def chat_prompt(self, messages: list[dict[str, str]], **template_kwargs: object) -> str: ...

    @property
    def eos_token_ids(self) -> tuple[int, ...]: ...

    @property
    def vocab_size(self) -> int: ...


class Backend(abc.ABC):
    """An inference engine. Subclass it to add one; optional methods have safe defaults."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this backend supports."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start the engine if it is not running (idempotent)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop the engine and free its resources (idempotent)."""

    @abc.abstractmethod
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer (available before `start`)."""

    @abc.abstractmethod
    def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        """Run one request, yielding its output as it is produced; the last chunk is `finished`."""

    @abc.abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stop a running request; its stream then ends with finish_reason `abort`."""

    async def input_embeddings(self) -> np.ndarray:
        """The input-embedding matrix `[vocab, hidden]`, for soft tokens (when `capabilities.input_embeddings`)."""
        raise CapabilityError(f"{self.capabilities.name} does not expose the input-embedding matrix")

    def cache_stats(self) -> CacheStats:
        """Prefix-cache statistics; zero where the backend keeps none."""
        return CacheStats(prefix_cache_queries=0, prefix_cache_hits=0)
