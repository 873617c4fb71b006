"""The served model's tokenizer through the server itself (`/tokenize`, `/detokenize`).

For a served model whose files are not on this machine. Each call is a blocking HTTP round
trip (the `Tokenizer` protocol is synchronous), memoised, so prefer a local tokenizer where
one exists. End-of-sequence ids come from `/tokenizer_info` when the server exposes it
(`--enable-tokenizer-info-endpoint`); otherwise they are unknown (empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import httpx

from reasoner.errors import EngineError, PromptError

TIMEOUT_S = 30.0
CACHE_SIZE = 4096


class ServerTokenizer:
    """`Tokenizer` over one server's tokenize endpoints; see the module docstring."""

    def __init__(
        self,
        root_url: str,
        model: str,
        *,
        headers: dict[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
    ):
        self.root_url = root_url
        self.model = model
        self._client = httpx.Client(timeout=TIMEOUT_S, headers=headers, verify=verify, transport=transport)
        self._encode = lru_cache(maxsize=CACHE_SIZE)(self._encode_uncached)
        self._decode = lru_cache(maxsize=CACHE_SIZE)(self._decode_uncached)
        self._eos: tuple[int, ...] | None = None

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._decode(tuple(token_ids)))

    def chat_prompt(self, messages: list[dict[str, str]], **template_kwargs: object) -> str:
        body = {"model": self.model, "messages": messages, "add_generation_prompt": True}
        body |= {"add_special_tokens": False, "chat_template_kwargs": template_kwargs}
        return self.decode(self._post("/tokenize", body)["tokens"])

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        if self._eos is None:
            self._eos = self._read_eos()
        return self._eos

    @property
    def vocab_size(self) -> int:
        info = self._tokenizer_info()
        size = info.get("vocab_size") if info else None
        return int(size) if isinstance(size, int) else 0

    def _encode_uncached(self, text: str) -> tuple[int, ...]:
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return tuple(int(token) for token in self._post("/tokenize", body)["tokens"])

    def _decode_uncached(self, token_ids: tuple[int, ...]) -> str:
        return str(self._post("/detokenize", {"model": self.model, "tokens": list(token_ids)})["prompt"])

    def _read_eos(self) -> tuple[int, ...]:
        info = self._tokenizer_info()
        eos = info.get("eos_token") if info else None
        if isinstance(eos, dict):
            eos = eos.get("content")
        return tuple(self.encode(eos)) if isinstance(eos, str) and eos else ()

    def _tokenizer_info(self) -> dict[str, Any] | None:
        try:
            response = self._client.get(f"{self.root_url}/tokenizer_info")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        body = response.json()
        return body if isinstance(body, dict) else None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(f"{self.root_url}{path}", json=body)
        except httpx.HTTPError as exc:
            raise EngineError(f"{self.root_url}{path} is unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code == 400:
            raise PromptError(f"{self.root_url}{path} refused the request: {response.text[:300]}")
        if response.status_code != 200:
            raise EngineError(f"{self.root_url}{path} answered HTTP {response.status_code}: {response.text[:300]}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise EngineError(f"{self.root_url}{path} answered something that is not an object")
        return answer
