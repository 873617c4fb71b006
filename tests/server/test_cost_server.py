"""A cost budget through `reasoner serve` (the request's `budget` object): held when valid, a 400 when not."""

from __future__ import annotations

import httpx
import openai
import pytest

from reasoner import Reasoner
from reasoner.cost import CostModel
from reasoner.testing import ScriptedBackend
from server import ServerConfig, create_app
from tests.reasoner.test_cost import QWEN25_05B
from tests.server.scripted_app import API_KEY, MODEL, scripted_server

QUESTION = [{"role": "user", "content": "2 + 3?"}]
COST_MODEL = CostModel.from_config(QWEN25_05B)


def priced_server(backend: ScriptedBackend) -> openai.AsyncOpenAI:
    reasoner = Reasoner(backend=backend, profile="smollm2", cost_model=COST_MODEL)
    app = create_app(reasoner, ServerConfig(model_name=MODEL, api_key=API_KEY))
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://server",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    return openai.AsyncOpenAI(api_key=API_KEY, base_url="http://server/v1", http_client=http, max_retries=0)


async def test_a_cost_budget_in_the_request_caps_the_solve() -> None:
    backend = ScriptedBackend(" ".join(["step"] * 100))
    client = priced_server(backend)
    probe = await client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=8)
    assert probe.usage is not None
    cap = COST_MODEL.eflops(probe.usage.prompt_tokens, 0, 12)
    response = await client.chat.completions.create(
        model=MODEL, messages=QUESTION, extra_body={"budget": {"tokens": 64, "cost": cap}}
    )
    assert response.usage is not None and response.usage.completion_tokens == 12
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert account["budget"] == {"tokens": 64, "cost": cap}
    cached = response.usage.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    assert account["cost"] == COST_MODEL.eflops(response.usage.prompt_tokens, cached or 0, 12) <= cap


@pytest.mark.parametrize(
    ("budget", "fragment"),
    [
        ({"tokens": 64, "cost": 0}, "invalid budget cost=0"),
        ({"tokens": 64, "cost": -1e12}, "invalid budget cost=-1000000000000.0"),
        ({"tokens": 64, "cost": "1e12"}, "invalid budget cost='1e12'"),
    ],
)
async def test_a_bad_cost_budget_is_a_400(budget: dict[str, object], fragment: str) -> None:
    backend = ScriptedBackend("Final answer: 5")
    with pytest.raises(openai.APIStatusError) as caught:
        await priced_server(backend).chat.completions.create(
            model=MODEL, messages=QUESTION, extra_body={"budget": budget}
        )
    assert caught.value.status_code == 400
    error = caught.value.body
    assert isinstance(error, dict) and fragment in error["message"] and error["type"] == "invalid_request_error"
    assert backend.requests == []


async def test_a_cost_budget_on_an_unpriced_model_is_a_400() -> None:
    server = scripted_server()
    with pytest.raises(openai.APIStatusError) as caught:
        await server.client.chat.completions.create(
            model=MODEL, messages=QUESTION, extra_body={"budget": {"tokens": 64, "cost": 1e12}}
        )
    assert caught.value.status_code == 400
    assert "needs a cost model" in caught.value.body["message"]  # type: ignore[index]
    assert server.backend.requests == []
