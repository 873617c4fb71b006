"""The app's contract with OpenAI clients, on the scripted backend: shapes, usage, errors, auth, queue."""

from __future__ import annotations

import asyncio
import itertools
import math

import httpx
import openai
import pytest

from reasoner import Reasoner
from reasoner.profiles import get_profile
from reasoner.testing import ScriptedBackend, ScriptedToken
from server import ServerConfig, create_app
from tests.server.scripted_app import API_KEY, MODEL, scripted_server

QUESTION = [{"role": "user", "content": "2 + 3?"}]


async def test_a_chat_completion_answers_with_exact_usage_and_the_solve_account() -> None:
    server = scripted_server()
    response = await server.client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=32)
    assert response.choices[0].message.content == "The sum is 5.\n\nFinal answer: 5"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    record = server.backend.requests[0]
    assert response.usage.prompt_tokens == len(record.prompt_token_ids)
    assert response.usage.completion_tokens == 7
    assert response.usage.total_tokens == response.usage.prompt_tokens + 7
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert account["strategy"] == "direct" and account["budget"] == {"tokens": 32} and account["answer"] == "5"
    assert account["usage_by_phase"] == {"answer": 7} and account["trace"]["segments"] == {"answer": 1}


async def test_elastic_reports_its_thinking_as_reasoning_tokens_and_content() -> None:
    server = scripted_server(ScriptedBackend(["adding 2 and 3", "5"]))
    response = await server.client.chat.completions.create(model="elastic@64", messages=QUESTION)
    usage = response.usage
    assert usage is not None and usage.completion_tokens_details is not None
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert usage.completion_tokens_details.reasoning_tokens == account["usage_by_phase"]["thinking"] > 0
    assert usage.completion_tokens == sum(account["usage_by_phase"].values())
    assert response.choices[0].message.reasoning_content == "adding 2 and 3"  # type: ignore[attr-defined]


async def test_completions_solve_each_prompt_and_sum_the_usage() -> None:
    server = scripted_server()
    response = await server.client.completions.create(model="direct@16", prompt=["1 + 1?", "2 + 2?"], stop=["\n"])
    assert [choice.text for choice in response.choices] == ["The sum is 5.", "The sum is 5."]
    assert [choice.index for choice in response.choices] == [0, 1]
    assert response.usage is not None and response.usage.completion_tokens == 14


async def test_streaming_sends_content_deltas_then_the_finish_and_the_usage() -> None:
    server = scripted_server()
    stream = await server.client.chat.completions.create(
        model=MODEL, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert content == "The sum is 5.\n\nFinal answer: 5"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


async def test_a_streamed_answer_stops_at_a_stop_string_even_across_deltas() -> None:
    server = scripted_server()
    stream = await server.client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True, stop=["Final"])
    content = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert content == "The sum is 5.\n\n"


# The thinking request's text, then the answer request's: elastic's content is its lead-in and the answer.
THINK_THEN_ANSWER = ["Three and four make seven, so the sum is seven.", " The sum is 7.\n\nQuestion: and 5 + 5?"]


async def test_elastic_streams_thinking_live_then_the_answer_and_the_deltas_add_up_to_the_message() -> None:
    request = {"model": "elastic@64", "messages": QUESTION, "stop": ["Question:"]}
    plain = scripted_server(ScriptedBackend(THINK_THEN_ANSWER))
    message = (await plain.client.chat.completions.create(**request)).choices[0].message  # type: ignore[call-overload]
    server = scripted_server(ScriptedBackend(THINK_THEN_ANSWER, delay_s=0.005))
    stream = await server.client.chat.completions.create(**request, stream=True)  # type: ignore[call-overload]
    deltas = [chunk.choices[0].delta async for chunk in stream if chunk.choices]
    pieces = [
        ("reasoning", reasoning)
        if (reasoning := getattr(delta, "reasoning_content", None))
        else ("content", delta.content)
        for delta in deltas
        if getattr(delta, "reasoning_content", None) or delta.content
    ]
    kinds = [kind for kind, _ in pieces]
    assert kinds.count("reasoning") > 1 and kinds.count("content") > 1, "both are streamed as they are generated"
    assert kinds == sorted(kinds, key=lambda kind: kind == "content"), "all of the thinking comes before the answer"
    assert "".join(text for kind, text in pieces if kind == "reasoning") == message.reasoning_content
    assert (
        "".join(text for kind, text in pieces if kind == "content")
        == message.content
        == "Final answer: The sum is 7.\n\n"
    )


def latent_switch_backend(delay_s: float = 0.0) -> ScriptedBackend:
    """Latent steps, an explicit block the rule leaves at its fifth token (the engine goes on: dropped), then
    more thinking and the answer; its tokenizer knows every piece before the solve reads the embeddings."""
    sure, unsure = {" 5": math.log(0.9), " 6": math.log(0.05)}, dict.fromkeys((" 5", " 6", " 7"), math.log(0.3))
    block = [ScriptedToken(word, sure) for word in (" plus", " four", " is", " seven")]
    eos = ScriptedToken("<eos>", {"<eos>": 0.0})
    scripts = [*[[ScriptedToken(" 5", unsure)]] * 4, [ScriptedToken(" Three", sure)]]
    scripts += [block + [ScriptedToken(" dropped", unsure)] * 30, [ScriptedToken(" 7", sure), eos]]
    calls = itertools.count()
    backend = ScriptedBackend(lambda _: scripts[min(next(calls), len(scripts) - 1)], delay_s=delay_s)
    tokenizer, profile = backend.tokenizer(), get_profile("smollm2")
    tokenizer.encode(profile.build_prompt(tokenizer, QUESTION[0]["content"], thinking=True, answer_format="math"))
    for text in (profile.forced_answer_suffix("") + profile.answer_lead_in, profile.think_open, profile.think_close):
        tokenizer.encode(text)
    tokenizer.encode(" 5 6 7 Three plus four is seven dropped")
    return backend


async def test_latent_switch_streams_the_thinking_it_keeps_live_and_the_deltas_add_up_to_the_message() -> None:
    request = {
        "model": "latent_switch@80",
        "messages": QUESTION,
        "extra_body": {"strategy_options": {"window": 4, "max_switches": 4, "explicit_math": False}},
    }
    plain = scripted_server(latent_switch_backend())
    message = (await plain.client.chat.completions.create(**request)).choices[0].message  # type: ignore[call-overload]
    server = scripted_server(latent_switch_backend(delay_s=0.002))
    stream = await server.client.chat.completions.create(**request, stream=True)  # type: ignore[call-overload]
    deltas = [chunk.choices[0].delta async for chunk in stream if chunk.choices]
    reasoning = [text for delta in deltas if (text := getattr(delta, "reasoning_content", None))]
    content = [delta.content for delta in deltas if delta.content]
    assert len(reasoning) > 1, "the kept thinking is streamed as the rule keeps it"
    assert "".join(reasoning) == message.reasoning_content == " Three plus four is seven 7 7"
    assert "".join(content) == message.content == "Final answer: 7"


async def test_a_stream_on_a_second_model_is_shaped_by_that_models_profile() -> None:
    models = {
        "small": {"backend": ScriptedBackend("x"), "profile": "smollm2"},
        "qwen": {"backend": ScriptedBackend(THINK_THEN_ANSWER, delay_s=0.005), "profile": "qwen3"},
    }
    app = create_app(Reasoner(models=models), ServerConfig(model_name="small", models=("small", "qwen")))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server")
    client = openai.AsyncOpenAI(api_key="none", base_url="http://server/v1", http_client=http, max_retries=0)
    stream = await client.chat.completions.create(model="qwen:elastic@64", messages=QUESTION, stream=True)
    content = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert content == "The sum is 7.\n\nQuestion: and 5 + 5?", (
        "qwen3's answer lead-in is a blank line, no 'Final answer:'"
    )


async def test_a_strategy_that_chooses_among_samples_sends_the_chosen_chain_at_the_end() -> None:
    server = scripted_server(ScriptedBackend("The sum is 5.\n\nFinal answer: 5", delay_s=0.005))
    stream = await server.client.chat.completions.create(
        model="self_consistency@64", messages=QUESTION, stream=True, extra_body={"strategy_options": {"n": 3}}
    )
    chunks = [chunk async for chunk in stream if chunk.choices]
    content = [chunk for chunk in chunks if chunk.choices[0].delta.content]
    assert len(content) == 1 and content[0].choices[0].delta.content == "The sum is 5.\n\nFinal answer: 5"
    assert chunks.index(content[0]) == len(chunks) - 2, "the chosen chain comes with the finish, once the vote is in"


async def test_the_response_names_the_strategy_and_budget_that_ran_not_the_name_asked_for() -> None:
    server = scripted_server(ScriptedBackend(["thinking it over", "5"]))
    chosen = {"strategy": "elastic", "budget": 64}
    response = await server.client.chat.completions.create(model=MODEL, messages=QUESTION, extra_body=chosen)
    assert response.model == "elastic@64" and response.model_extra["reasoner"]["strategy"] == "elastic"  # type: ignore[index]
    stream = await server.client.chat.completions.create(
        model="self_consistency@512", messages=QUESTION, extra_body=chosen, stream=True
    )
    assert {chunk.model async for chunk in stream} == {"elastic@64"}
    capped = await server.client.completions.create(model="direct@512", prompt=["1 + 1?"], max_tokens=32)
    assert capped.model == "direct@32"


async def test_models_list_the_served_name_and_every_strategy() -> None:
    server = scripted_server()
    ids = [model.id async for model in server.client.models.list()]
    assert ids[0] == MODEL and {"direct", "elastic", "self_consistency", "tree_search"} <= set(ids)


@pytest.mark.parametrize(
    ("fields", "status", "fragment"),
    [
        ({"model": "nope@16"}, 400, "unknown strategy"),
        ({"model": "gpt-4o"}, 404, "does not exist"),
        ({"extra_body": {"budget": 0}}, 400, "budget"),
        ({"extra_body": {"budget": {"tokens": 64, "bogus": 1}}}, 400, "unknown budget field"),
        ({"extra_body": {"strategy_options": {"n": 4}}}, 400, "unknown option 'n'"),
        ({"model": "self_consistency", "extra_body": {"strategy_options": {"n": -1}}}, 400, "option n=-1"),
        ({"messages": []}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "   "}]}, 400, "prompt is empty"),
        ({"messages": [{"role": "tool", "content": "x"}]}, 400, "messages"),
        ({"n": 3}, 400, "n"),
        ({"logprobs": True}, 400, "logprobs"),
        ({"max_tokens": 2}, 400, "below"),
        ({"model": "self_consistency", "temperature": 0}, 400, "--gen_kwargs temperature=0.7"),
    ],
)
async def test_bad_input_is_a_400_in_openais_error_shape(fields: dict[str, object], status: int, fragment: str) -> None:
    server = scripted_server()
    request = {"model": MODEL, "messages": QUESTION} | fields
    with pytest.raises(openai.APIStatusError) as caught:
        await server.client.chat.completions.create(**request)  # type: ignore[call-overload]
    assert caught.value.status_code == status
    error = caught.value.body
    assert isinstance(error, dict) and fragment in error["message"] and error["type"] == "invalid_request_error"
    assert server.backend.requests == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"model": "scripted", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"model": "scripted", "messages": [{"role": "user", "content": "\\ud800"}]}',
    ],
)
async def test_bodies_that_are_not_json_or_not_utf8_are_a_400(body: bytes) -> None:
    server = scripted_server()
    response = await server.http.post(
        "/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic " + API_KEY, API_KEY])
async def test_a_missing_or_wrong_key_is_a_401(header: str | None) -> None:
    server = scripted_server()
    headers = {} if header is None else {"Authorization": header}
    server.http.headers.pop("Authorization")
    response = await server.http.post(
        "/v1/chat/completions", json={"model": MODEL, "messages": QUESTION}, headers=headers
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert (await server.http.get("/v1/models", headers=headers)).status_code == 401
    assert (await server.http.get("/health")).status_code == 200


async def test_a_full_queue_is_a_429_with_retry_after_and_admitted_solves_still_finish() -> None:
    server = scripted_server(ScriptedBackend("Final answer: 5", delay_s=0.02), max_concurrency=2, max_queue=1)
    calls = [server.http.post("/v1/chat/completions", json={"model": MODEL, "messages": QUESTION}) for _ in range(6)]
    responses = await asyncio.gather(*calls)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 200, 200, 429, 429, 429]
    refused = [response for response in responses if response.status_code == 429]
    assert all(response.headers["Retry-After"] == "1" for response in refused)
    assert refused[0].json()["error"]["code"] == "queue_full"


async def test_metrics_count_requests_tokens_and_refusals() -> None:
    server = scripted_server()
    await server.client.chat.completions.create(model=MODEL, messages=QUESTION)
    page = (await server.http.get("/metrics")).text
    assert 'reasoner_server_generated_tokens_total{strategy="direct"} 7.0' in page
    assert 'reasoner_server_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0' in page
    assert "reasoner_server_request_latency_seconds_bucket" in page


async def test_vllm_only_endpoints_say_this_is_not_a_raw_vllm_server() -> None:
    server = scripted_server()
    response = await server.http.post("/tokenize", json={"prompt": "hi"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_a_vllm_server"
    assert "raw vLLM server" in response.json()["error"]["message"]


async def test_an_oversized_body_is_a_413_before_it_is_parsed() -> None:
    server = scripted_server()
    huge = b'{"model": "scripted", "messages": [{"role": "user", "content": "' + b"x" * (9 << 20) + b'"}]}'
    response = await server.http.post(
        "/v1/chat/completions", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "over" in response.json()["error"]["message"]
    assert server.backend.requests == []
