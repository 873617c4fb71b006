"""A scripted backend: deterministic, no model, for unit tests of control flow.

Users test their own strategies with it the way the toolkit tests its own. It answers
each request from a script (a fixed text, a list consumed in order, or a function of the
prompt), streams one token at a time, honours max_tokens, stop strings, stop token ids and
aborts, reports prefix-cache hits, and logs every request for assertions.

It never stands in for the real engine in a benchmark, an eval figure or a demo.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from reasoner.engines.base import (
    Backend,
    CacheStats,
    Capabilities,
    Chunk,
    EmbedsPrompt,
    FinishReason,
    Prompt,
    SamplingSpec,
    TextPrompt,
    TokensPrompt,
)
from reasoner.errors import EngineError

_PIECE = re.compile(r"\s*\S+|\s+")


class ScriptedTokenizer:
    """Word-level tokenizer: each piece is a word with its leading whitespace; ids by first sight."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {"<eos>": 0}
        self._pieces: list[str] = ["<eos>"]

    def encode(self, text: str) -> list[int]:
        return [self._id(piece) for piece in _PIECE.findall(text)]

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(self._pieces[token] for token in token_ids)

    def chat_prompt(self, messages: list[dict[str, str]], **template_kwargs: object) -> str:
        turns = "".join(f"<|{m['role']}|> {m['content']}\n" for m in messages)
        flags = "".join(f"<|{key}={value}|>" for key, value in sorted(template_kwargs.items()))
        return f"{turns}{flags}<|assistant|>"

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return (0,)

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def _id(self, piece: str) -> int:
        if piece not in self._ids:
            self._ids[piece] = len(self._pieces)
            self._pieces.append(piece)
        return self._ids[piece]


@dataclass(frozen=True)
class ScriptedToken:
    """One scripted output token, optionally with the logprobs the backend should report."""

    text: str
    logprobs: dict[str, float] | None = None


Script = str | Sequence[ScriptedToken]
Responder = Callable[[str], Script]


@dataclass
class RequestRecord:
    """What the scripted backend was asked, and what it did."""

    request_id: str
    prompt_text: str
    prompt_token_ids: tuple[int, ...]
    sampling: SamplingSpec
    output_text: str = ""
    generated_tokens: int = 0
    cached_prompt_tokens: int = 0
    finish_reason: FinishReason | None = None
    aborted: bool = False
    embeds: np.ndarray | None = field(default=None, repr=False)


class ScriptedBackend(Backend):
    """Answers from scripts; see the module docstring.

    `script` is a text (every request gets it), a list of texts (consumed in order, the last
    repeated), or a function from the prompt text to a script. `delay_s` sleeps between
    tokens so concurrent requests interleave in time. `prompt_embeds` and `input_embeddings`
    set the declared capabilities of those names.
    """

    def __init__(
        self,
        script: Script | list[str] | Responder = "Final answer: 42",
        *,
        max_model_len: int = 4096,
        prompt_embeds: bool = True,
        input_embeddings: bool = True,
        block_size: int = 1,
        delay_s: float = 0.0,
        hidden_size: int = 8,
    ):
        self._script = script
        self._queue_index = 0
        self.tokenizer_ = ScriptedTokenizer()
        self.requests: list[RequestRecord] = []
        self.started = False
        self.starts = 0
        self.dead = False
        self.block_size = block_size
        self.delay_s = delay_s
        self.hidden_size = hidden_size
        self._seen_prompts: list[tuple[int, ...]] = []
        self._aborted: set[str] = set()
        self._queries = 0
        self._hits = 0
        self._capabilities = Capabilities(
            prompt_embeds=prompt_embeds,
            logprobs=True,
            max_logprobs=20,
            prefix_caching=True,
            per_request_seed=True,
            max_model_len=max_model_len,
            name="scripted",
            input_embeddings=input_embeddings,
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def tokenizer(self) -> ScriptedTokenizer:
        return self.tokenizer_

    async def start(self) -> None:
        if not self.started:
            self.started = True
            self.dead = False
            self.starts += 1

    async def close(self) -> None:
        self.started = False

    def kill(self) -> None:
        """Simulate engine death: running and new requests fail until `start` runs again."""
        self.dead = True
        self.started = False

    async def abort(self, request_id: str) -> None:
        self._aborted.add(request_id)

    async def input_embeddings(self) -> np.ndarray:
        if not self._capabilities.input_embeddings:
            return await super().input_embeddings()
        rows = [
            np.random.default_rng(token).standard_normal(self.hidden_size)
            for token in range(self.tokenizer_.vocab_size)
        ]
        return np.asarray(rows, dtype=np.float32)

    def cache_stats(self) -> CacheStats:
        return CacheStats(prefix_cache_queries=self._queries, prefix_cache_hits=self._hits)

    async def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        if self.dead or not self.started:
            raise EngineError("the scripted engine is not running" + (" (it died)" if self.dead else ""))
        prompt_ids = self._prompt_ids(prompt)
        record = RequestRecord(
            request_id,
            self.tokenizer_.decode(prompt_ids),
            prompt_ids,
            sampling,
            embeds=prompt.embeds if isinstance(prompt, EmbedsPrompt) else None,
        )
        self.requests.append(record)
        record.cached_prompt_tokens = self._cached_prefix(prompt_ids)
        tokens = self._tokens_for(record.prompt_text)
        emitted = 0
        text = ""
        finish: FinishReason = "stop"
        while True:
            await asyncio.sleep(self.delay_s)
            if self.dead:
                raise EngineError("the scripted engine died mid-request")
            if request_id in self._aborted:
                finish = "abort"
                break
            if emitted >= sampling.max_tokens:
                finish = "length"
                break
            if emitted >= len(tokens):
                break
            piece, logprobs = tokens[emitted]
            token_id = self.tokenizer_.encode(piece)[0] if piece.strip() else self.tokenizer_._id(piece)
            emitted += 1
            if token_id in sampling.stop_token_ids:
                yield self._chunk(record, (token_id,), "", logprobs, sampling, True, "stop", emitted)
                return
            text += piece
            stop_at = _first_stop(text, sampling.stop)
            if stop_at is not None:
                visible = text[: stop_at[1]] if sampling.include_stop_str_in_output else text[: stop_at[0]]
                delta = visible[len(record.output_text) :]
                yield self._chunk(record, (token_id,), delta, logprobs, sampling, True, "stop", emitted)
                return
            yield self._chunk(record, (token_id,), piece, logprobs, sampling, False, None, emitted)
        yield self._chunk(record, (), "", None, sampling, True, finish, emitted)

    def _chunk(
        self,
        record: RequestRecord,
        token_ids: tuple[int, ...],
        text: str,
        logprobs: dict[str, float] | None,
        sampling: SamplingSpec,
        finished: bool,
        reason: FinishReason | None,
        emitted: int,
    ) -> Chunk:
        record.output_text += text
        record.generated_tokens = emitted
        if finished:
            record.finish_reason = reason
            record.aborted = reason == "abort"
        reported = None
        if sampling.logprobs is not None and token_ids:
            scripted = logprobs or {}
            reported = (
                {self.tokenizer_._id(piece): value for piece, value in scripted.items()}
                | {token_ids[0]: scripted.get(self.tokenizer_.decode(token_ids), 0.0)},
            )
        return Chunk(
            token_ids=token_ids,
            text=text,
            logprobs=reported,
            finished=finished,
            finish_reason=reason,
            prompt_tokens=len(record.prompt_token_ids) or (record.embeds.shape[0] if record.embeds is not None else 0),
            cached_prompt_tokens=record.cached_prompt_tokens,
        )

    def _prompt_ids(self, prompt: Prompt) -> tuple[int, ...]:
        if isinstance(prompt, TokensPrompt):
            return prompt.token_ids
        if isinstance(prompt, TextPrompt):
            return tuple(self.tokenizer_.encode(prompt.text))
        return ()

    def _cached_prefix(self, prompt_ids: tuple[int, ...]) -> int:
        best = 0
        for seen in self._seen_prompts:
            shared = 0
            for left, right in zip(seen, prompt_ids, strict=False):
                if left != right:
                    break
                shared += 1
            best = max(best, shared)
        self._seen_prompts.append(prompt_ids)
        # Like vLLM: only whole blocks are reused, and the last prompt token is always computed.
        cached = min(best, max(len(prompt_ids) - 1, 0)) // self.block_size * self.block_size
        self._queries += len(prompt_ids)
        self._hits += cached
        return cached

    def _tokens_for(self, prompt_text: str) -> list[tuple[str, dict[str, float] | None]]:
        script = self._next_script(prompt_text)
        if isinstance(script, str):
            return [(piece, None) for piece in _PIECE.findall(script)]
        return [(token.text, token.logprobs) for token in script]

    def _next_script(self, prompt_text: str) -> Script:
        if callable(self._script):
            return self._script(prompt_text)
        if isinstance(self._script, list) and all(isinstance(item, str) for item in self._script):
            index = min(self._queue_index, len(self._script) - 1)
            self._queue_index += 1
            return self._script[index]
        return self._script  # type: ignore[return-value]


def _first_stop(text: str, stops: Sequence[str]) -> tuple[int, int] | None:
    found = [(text.find(stop), text.find(stop) + len(stop)) for stop in stops if stop and stop in text]
    return min(found) if found else None
