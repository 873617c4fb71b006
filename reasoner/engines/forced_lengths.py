"""A backend wrapper that makes every request ignore the end-of-sequence token.

Real-engine tests need long generations (an abort that must fire, a kill mid-solve), and a
model decides for itself when to stop. Wrapped, every request runs to its `max_tokens` (or a
stop string), whatever the model would have written: the test forces the length instead of
hoping for it. The wrapped engine is shared, not owned: closing the wrapper leaves it running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import numpy as np

from reasoner.engines.base import Backend, CacheStats, Capabilities, Chunk, Prompt, SamplingSpec, Tokenizer


class ForcedLengths(Backend):
    """Runs every request on `inner` with `ignore_eos=True`; everything else passes through."""

    def __init__(self, inner: Backend):
        self.inner = inner

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        """Leaves the wrapped engine running: its owner closes it."""

    def tokenizer(self) -> Tokenizer:
        return self.inner.tokenizer()

    def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        return self.inner.generate(request_id, prompt, dataclasses.replace(sampling, ignore_eos=True))

    async def abort(self, request_id: str) -> None:
        await self.inner.abort(request_id)

    async def input_embeddings(self) -> np.ndarray:
        return await self.inner.input_embeddings()

    def cache_stats(self) -> CacheStats:
        return self.inner.cache_stats()
