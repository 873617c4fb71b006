"""Refuse a prompt that cannot fit the model's context window, cheaply and off the event loop.

A token is at most `MAX_CHARS_PER_TOKEN` characters, so a question longer than the context
window times that cannot fit: refused by its length alone, before any tokenizer sees it.
A question shorter than the context window in UTF-8 bytes always fits (a token covers at
least one byte). Between the two, the question is tokenized in a worker thread, so a long
prompt never stalls the loop that answers every other client, and refused when its tokens
alone fill the window. What fits is then tokenized by the solve as usual.
"""

from __future__ import annotations

import asyncio

from reasoner import Reasoner
from server.errors import APIError

# The longest token of SmolLM2's vocabulary is 81 characters (a run of '#'); the bound leaves
# room for vocabularies with longer runs. A false refusal needs a question that averages more.
MAX_CHARS_PER_TOKEN = 256


async def check_prompts_fit(reasoner: Reasoner, prompts: list[str]) -> None:
    """Raise a 400 for the first prompt whose own tokens fill the context window."""
    window = reasoner.backend.capabilities.max_model_len
    for index, prompt in enumerate(prompts):
        where = f"prompt {index}" if len(prompts) > 1 else "the prompt"
        if len(prompt) > window * MAX_CHARS_PER_TOKEN:
            raise APIError(
                400,
                f"{where} is {len(prompt)} characters, more than a {window}-token context window can hold "
                f"(a token is at most {MAX_CHARS_PER_TOKEN} characters); shorten it",
                code="context_length_exceeded",
            )
        if len(prompt.encode("utf-8")) < window:
            continue
        tokens = len(await asyncio.to_thread(_encode, reasoner, prompt))
        if tokens >= window:
            raise APIError(
                400,
                f"{where} is {tokens} tokens, which leaves no room in the model's {window}-token context window; "
                "shorten it",
                code="context_length_exceeded",
            )


def _encode(reasoner: Reasoner, prompt: str) -> list[int]:
    return reasoner.backend.tokenizer().encode(prompt)
