"""A server of several models, on two scripted backends: the model list, picking a model by name, bad names."""

from __future__ import annotations

import httpx
import openai
import pytest

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend
from server import ServerConfig, create_app
from tests.cli.cli_support import run_cli
from tests.server.scripted_app import API_KEY, ScriptedServer

QUESTION = [{"role": "user", "content": "2 + 3?"}]


def two_model_server() -> tuple[ScriptedServer, ScriptedBackend, ScriptedBackend]:
    small, large = ScriptedBackend("small: Final answer: 4"), ScriptedBackend("large thinks. Final answer: 5")
    reasoner = Reasoner(
        models={"small": {"backend": small, "profile": "smollm2"}, "large": {"backend": large, "profile": "smollm2"}}
    )
    app = create_app(reasoner, ServerConfig(model_name="small", models=("small", "large"), api_key=API_KEY))
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://server", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url="http://server/v1", http_client=http, max_retries=0)
    return ScriptedServer(app=app, backend=small, http=http, client=client), small, large


async def test_the_model_list_names_every_served_model_first() -> None:
    server, _, _ = two_model_server()
    ids = [card.id async for card in server.client.models.list()]
    assert ids[:2] == ["small", "large"] and "elastic" in ids


@pytest.mark.parametrize(
    ("model", "runs_on", "strategy", "budget"),
    [
        ("large", "large", "direct", 512),
        ("large:elastic@64", "large", "elastic", 64),
        ("small:direct@32", "small", "direct", 32),
        ("direct@32", "small", "direct", 32),
        ("small", "small", "direct", 512),
    ],
)
async def test_a_request_runs_on_the_model_its_model_name_picks(
    model: str, runs_on: str, strategy: str, budget: int
) -> None:
    server, small, large = two_model_server()
    response = await server.client.chat.completions.create(model=model, messages=QUESTION)
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert account["strategy"] == strategy and account["budget"]["tokens"] == budget
    assert list(account["usage_by_model"]) == [runs_on]
    ran = {"small": len(small.requests), "large": len(large.requests)}
    assert ran[runs_on] > 0 and sum(ran.values()) == ran[runs_on]
    named = model.partition(":")[0] in ("small", "large")
    assert response.model == (f"{runs_on}:" if named else "") + f"{strategy}@{budget}"


async def test_an_unknown_model_before_a_colon_is_a_400_naming_the_served_ones() -> None:
    server, small, large = two_model_server()
    response = await server.http.post("/v1/chat/completions", json={"model": "huge:direct", "messages": QUESTION})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "unknown model 'huge'" in error["message"] and "small, large" in error["message"]
    assert not small.requests and not large.requests


async def test_a_model_name_as_a_strategy_option_is_refused() -> None:
    server, _, _ = two_model_server()
    body = {"model": "small", "messages": QUESTION, "strategy_options": {"model": "large"}}
    response = await server.http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and "strategy_options may not set model" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--model", "a=x", "--model", "a=y"], "model name 'a' is given twice"),
        (["--model", "=x", "--model", "b=y"], "model name '' is not usable"),
        (["--model", "a=", "--model", "b=y"], "--model 'a=' names no model"),
        (["--model", "a=x", "--model", "y"], "cannot be mixed"),
        (["--model", "x", "--model", "y"], "need a name each"),
        (["--model", "a=x", "--endpoint", "http://127.0.0.1:9/v1"], "--endpoint serves one model"),
        (["--model", "a=x", "--served-model-name", "m"], "--served-model-name names one model"),
        (["--model", "elastic=x", "--model", "b=y"], "'elastic' is also a strategy name"),
        (["--model", "a=http://[::1/v1"], "endpoint 'http://[::1/v1' is not a valid URL"),
        (["--model", "a=http://127.0.0.1:9/v1", "-e", "max_model_len=512"], "--engine-arg configures in-process"),
    ],
)
def test_a_bad_served_model_set_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, out, err = run_cli(capsys, "serve", *argv)
    assert code == 2 and out == ""
    assert fragment in err and err.count("\n") == 1
