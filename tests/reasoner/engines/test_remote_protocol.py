"""The completions wire format: what a request sends, and how the server's events are read."""

from __future__ import annotations

import base64
import io

import numpy as np

from reasoner.engines.base import SamplingSpec, TokensPrompt
from reasoner.engines.remote_protocol import completion_payload, encode_prompt_embeds, parse_event, parse_metrics


def test_a_request_sends_token_ids_and_every_sampling_knob_explicitly() -> None:
    sampling = SamplingSpec(max_tokens=8, temperature=0.7, top_k=5, stop=("\n\n",), logprobs=3)
    body, length = completion_payload("m", TokensPrompt((1, 2, 3)), sampling)
    assert length == 3 and body["prompt"] == [1, 2, 3]
    assert body["repetition_penalty"] == 1.0 and body["min_p"] == 0.0  # no server-side defaults sneak in
    assert body["logprobs"] == 3 and body["return_tokens_as_token_ids"] is True
    assert body["stop"] == ["\n\n"] and body["top_k"] == 5 and body["temperature"] == 0.7


def test_an_event_gives_token_ids_text_logprobs_by_id_and_the_finish_reason() -> None:
    event = {
        "choices": [
            {
                "text": " 5",
                "token_ids": [42],
                "finish_reason": "length",
                "logprobs": {"top_logprobs": [{"token_id:42": -0.1, "token_id:7": -2.5}]},
            }
        ],
        "usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}},
    }
    usage, outputs = parse_event(event)
    assert usage == (9, 4)
    assert outputs == [((42,), " 5", ({42: -0.1, 7: -2.5},), "length")]


def test_prompt_embeddings_travel_as_a_base64_torch_tensor() -> None:
    import torch

    embeds = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensor = torch.load(io.BytesIO(base64.b64decode(encode_prompt_embeds(embeds))), weights_only=True)
    assert tuple(tensor.shape) == (3, 4) and tensor.dtype == torch.bfloat16
    assert np.allclose(tensor.float().numpy(), embeds)


def test_prometheus_counters_are_summed_over_label_sets() -> None:
    page = '# HELP x\nvllm:generation_tokens_total{engine="0"} 5.0\nvllm:generation_tokens_total{engine="1"} 2.0\n'
    assert parse_metrics(page)["vllm:generation_tokens_total"] == 7.0
