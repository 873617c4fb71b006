"""The completions wire format vLLM's OpenAI server speaks: request bodies and server-sent events.

Requests ask for token ids back (`return_token_ids`), top logprobs keyed by token id
(`return_tokens_as_token_ids`), usage at the end of the stream (`include_usage`), and send
every sampling knob explicitly so the server's generation-config defaults change nothing.
Parsing assumes nothing of the server: a malformed event raises, for the caller to map.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import numpy as np

from reasoner.engines.base import EmbedsPrompt, FinishReason, Prompt, SamplingSpec, TextPrompt, TokensPrompt
from reasoner.engines.embeds import bfloat16_tensor
from reasoner.errors import PromptError

_TOKEN_ID_KEY = re.compile(r"^token_id:(-?\d+)$")
Output = tuple[tuple[int, ...], str, tuple[dict[int, float], ...] | None, FinishReason | None]


def completion_payload(model: str, prompt: Prompt, sampling: SamplingSpec) -> tuple[dict[str, Any], int]:
    """The streaming `/v1/completions` body for one request, and the prompt's length in tokens (0 for text)."""
    payload: dict[str, Any] = {
        "model": model,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "stop": list(sampling.stop),
        "stop_token_ids": list(sampling.stop_token_ids),
        "include_stop_str_in_output": sampling.include_stop_str_in_output,
        "ignore_eos": sampling.ignore_eos,
        "add_special_tokens": False,
        "stream": True,
        "stream_options": {"include_usage": True},
        "return_token_ids": True,
    }
    if sampling.logprobs is not None:
        payload["logprobs"] = sampling.logprobs
        payload["return_tokens_as_token_ids"] = True
    if isinstance(prompt, TokensPrompt):
        payload["prompt"] = list(prompt.token_ids)
        return payload, len(prompt.token_ids)
    if isinstance(prompt, TextPrompt):
        payload["prompt"] = prompt.text
        return payload, 0
    if isinstance(prompt, EmbedsPrompt):
        payload["prompt_embeds"] = encode_prompt_embeds(prompt.embeds)
        return payload, int(prompt.embeds.shape[0])
    raise TypeError(f"unsupported prompt type {type(prompt).__name__}")


def encode_prompt_embeds(embeds: np.ndarray) -> str:
    """Prompt embeddings as vLLM reads them: a `torch.save`d bfloat16 tensor, base64-encoded."""
    import torch

    if embeds.ndim != 2 or embeds.shape[0] < 1:
        raise PromptError(f"prompt embeddings must be [length, hidden] with length >= 1, got {embeds.shape}")
    buffer = io.BytesIO()
    torch.save(bfloat16_tensor(embeds), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def parse_metrics(page: str) -> dict[str, float]:
    """Prometheus text to {metric name: value summed over its label sets}."""
    totals: dict[str, float] = {}
    for line in page.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value = line.rpartition(" ")
        name = name_part.split("{", 1)[0].strip()
        try:
            totals[name] = totals.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return totals


def parse_event(event: dict[str, Any]) -> tuple[tuple[int, int] | None, list[Output]]:
    """One server-sent event: (prompt tokens, cached prompt tokens) when it has usage, and its outputs."""
    usage = event.get("usage")
    figures = None
    if isinstance(usage, dict):
        details = usage.get("prompt_tokens_details")
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        figures = (int(usage.get("prompt_tokens") or 0), cached)
    outputs: list[Output] = []
    for choice in event.get("choices") or ():
        token_ids = tuple(int(token) for token in choice.get("token_ids") or ())
        reason = choice.get("finish_reason")
        finish = _finish_reason(str(reason)) if reason else None
        outputs.append((token_ids, str(choice.get("text") or ""), _logprobs(choice.get("logprobs")), finish))
    return figures, outputs


def _logprobs(raw: Any) -> tuple[dict[int, float], ...] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("top_logprobs"), list):
        return None
    positions = []
    for entry in raw["top_logprobs"]:
        row: dict[int, float] = {}
        for key, value in (entry or {}).items():
            found = _TOKEN_ID_KEY.match(str(key))
            if found is not None:
                row[int(found.group(1))] = float(value)
        positions.append(row)
    return tuple(positions)


def _finish_reason(reason: str) -> FinishReason:
    if reason == "length":
        return "length"
    if reason == "abort":
        return "abort"
    return "stop"
