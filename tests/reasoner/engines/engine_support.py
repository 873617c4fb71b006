"""A stand-in for vLLM's `AsyncLLM`, enough for the engine holders' control flow (no model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import torch


class FakeEngine:
    """Answers pooling requests with constant tensors, or raises `fail` instead when it is set.

    `embed` gives one row of 4 ones; `token_classify` gives [tokens, 2] of 0.5. Counts its
    shutdowns; `errored` is what vLLM's engine says once its core has died.
    """

    def __init__(self, fail: BaseException | None = None, errored: bool = False):
        self.fail, self.errored = fail, errored
        self.shutdowns = 0
        self.requests = 0
        self.tokenizer = SimpleNamespace(encode=lambda text, add_special_tokens=True: [ord(c) % 50 for c in text])
        self.model_config = SimpleNamespace(max_model_len=512)

    def shutdown(self) -> None:
        self.shutdowns += 1

    async def encode(self, prompt: dict[str, Any], params: Any, request_id: str) -> AsyncIterator[Any]:
        self.requests += 1
        if self.fail is not None:
            raise self.fail
        tokens = len(prompt["prompt_token_ids"])
        data = torch.full((tokens, 2), 0.5) if params.task == "token_classify" else torch.ones(4)
        yield SimpleNamespace(outputs=SimpleNamespace(data=data))
