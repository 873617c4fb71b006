"""The pooling endpoint client the PRM scorer uses for a PRM served by `vllm serve --runner pooling`."""

from __future__ import annotations

import json

import httpx
import pytest

from reasoner import EngineError, PromptError
from reasoner.engines.remote_pooling import PoolingEndpoint


def pooling_server(rows: object, status: int = 200) -> tuple[httpx.MockTransport, list[dict[str, object]]]:
    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "served-prm", "max_model_len": 512}]})
        seen.append(json.loads(request.content))
        if status != 200:
            return httpx.Response(status, json={"error": {"message": "too long"}})
        return httpx.Response(200, json={"data": [{"index": 0, "data": rows}]})

    return httpx.MockTransport(handle), seen


async def test_token_ids_go_out_as_one_token_classify_request_and_rows_come_back() -> None:
    transport, seen = pooling_server([[0.2, 0.8], [0.6, 0.4]])
    endpoint = PoolingEndpoint("http://prm.test/v1", model="local-name", transport=transport)
    rows = await endpoint.token_probabilities([5, 6])
    assert rows == [[0.2, 0.8], [0.6, 0.4]]
    assert seen == [{"model": "served-prm", "input": [5, 6], "task": "token_classify", "add_special_tokens": False}]
    assert (await endpoint.served_model()).max_model_len == 512


async def test_a_refused_request_is_a_prompt_error_and_a_malformed_answer_an_engine_error() -> None:
    transport, _ = pooling_server([], status=400)
    with pytest.raises(PromptError, match="too long"):
        await PoolingEndpoint("http://prm.test", transport=transport).token_probabilities([1])
    transport, _ = pooling_server("not rows")
    with pytest.raises(EngineError, match="not a list"):
        await PoolingEndpoint("http://prm.test", transport=transport).token_probabilities([1])
