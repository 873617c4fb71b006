"""`HFTokenizer`: a Hugging Face tokenizer behind the toolkit's small `Tokenizer` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HFTokenizer:
    """Wraps `transformers.AutoTokenizer`; loads without starting the engine."""

    def __init__(self, source: str, trust_remote_code: bool = False):
        from transformers import AutoTokenizer

        self._tokenizer: Any = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        eos = self._tokenizer.eos_token_id
        self._eos_ids = tuple(eos) if isinstance(eos, list) else ((eos,) if eos is not None else ())

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=False))

    def chat_prompt(self, messages: list[dict[str, str]], **template_kwargs: object) -> str:
        if not getattr(self._tokenizer, "chat_template", None):
            turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
            return "\n\n".join(turns) + "\n\nAssistant:"
        return str(
            self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
        )

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        return self._eos_ids

    @property
    def vocab_size(self) -> int:
        return len(self._tokenizer)
