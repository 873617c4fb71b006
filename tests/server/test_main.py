"""`reasoner serve` for real: the embedded model on vLLM, driven by the official openai client."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time

import httpx
import openai
import psutil
import pytest

from tests.server.serve_process import MAX_CONCURRENCY, MAX_QUEUE, SERVE_API_KEY, RunningServer

pytestmark = pytest.mark.engine

QUESTION = [{"role": "user", "content": "What is 3 + 4?"}]
# The solve SIGTERM interrupts streams this many tokens (forced), seconds on the CPU engine, within the
# server's shutdown timeout.
SIGTERM_SOLVE_TOKENS = 64
# Before the character bound a near-8-MiB prompt was tokenized on the event loop: 43 s to the 400, /health
# held for 40.7 s. Now it is refused by its length; the bounds leave room for a busy machine.
NEAR_LIMIT_ANSWER_S = 10.0
NEAR_LIMIT_HEALTH_S = 2.0
STRATEGIES = ["direct", "elastic", "mode", "self_consistency", "self_eval", "parallel", "tree_search", "latent_switch"]
# ETS would start its sentence-model engine in the server for this one request (~30 s); its clustering has
# engine tests of its own, and the budget is what this test is about.
OPTIONS = {"tree_search": {"selection": "rebase"}}


def sync_client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=SERVE_API_KEY, base_url=server.api_url, max_retries=0, timeout=300)


def async_client(server: RunningServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=SERVE_API_KEY, base_url=server.api_url, max_retries=0, timeout=300)


def wait_for_no_running_requests(server: RunningServer, timeout_s: float = 20) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.metric("vllm:num_requests_running") == 0 and server.metric("vllm:num_requests_waiting") == 0:
            return deadline - time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"engine requests still running after {timeout_s}s")


async def test_every_strategy_holds_its_budget_through_the_api(served: RunningServer) -> None:
    # All at once: one batch of decode steps on the CPU engine instead of one run of them per strategy.
    client = async_client(served)
    responses = await asyncio.gather(
        *(
            client.chat.completions.create(
                model=f"{strategy}@96", messages=QUESTION, extra_body={"strategy_options": OPTIONS.get(strategy, {})}
            )
            for strategy in STRATEGIES
        )
    )
    for strategy, response in zip(STRATEGIES, responses, strict=True):
        account = response.model_extra["reasoner"]  # type: ignore[index]
        assert response.usage is not None and 0 < response.usage.completion_tokens <= 96, strategy
        assert account["strategy"] == strategy and account["budget"]["tokens"] == 96
        assert response.model == f"{strategy}@96"
        assert response.usage.completion_tokens == sum(account["usage_by_phase"].values()), strategy
        assert isinstance(response.choices[0].message.content, str), strategy


def test_max_tokens_caps_every_request_of_a_solve_together(served: RunningServer) -> None:
    response = sync_client(served).chat.completions.create(
        model="self_consistency@1024", messages=QUESTION, max_tokens=48, extra_body={"strategy_options": {"n": 4}}
    )
    account = response.model_extra["reasoner"]  # type: ignore[index]
    assert response.usage is not None and response.usage.completion_tokens <= 48
    assert account["budget"]["tokens"] == 48 and account["requests"] >= 2


async def test_reported_completion_tokens_add_up_to_the_engines_own_counter(served: RunningServer) -> None:
    wait_for_no_running_requests(served)
    generated_before = served.metric("vllm:generation_tokens_total")
    prompt_before = served.metric("vllm:prompt_tokens_total")
    client = async_client(served)
    calls = [
        client.chat.completions.create(model=f"{strategy}@32", messages=QUESTION)
        for strategy in ("direct", "elastic", "self_consistency", "parallel", "self_eval")
    ]
    calls.append(client.completions.create(model="direct@16", prompt=["1 + 1?", "2 + 5?"]))
    responses = await asyncio.gather(*calls)
    wait_for_no_running_requests(served)
    completion = sum(response.usage.completion_tokens for response in responses if response.usage)
    prompt = sum(response.usage.prompt_tokens for response in responses if response.usage)
    assert completion > 0
    assert served.metric("vllm:generation_tokens_total") - generated_before == completion
    assert served.metric("vllm:prompt_tokens_total") - prompt_before == prompt


async def test_48_concurrent_clients_all_get_answers_within_their_budgets(served: RunningServer) -> None:
    client = async_client(served)
    questions = [[{"role": "user", "content": f"What is {index} + {index}?"}] for index in range(48)]
    responses = await asyncio.gather(
        *(client.chat.completions.create(model="direct@12", messages=question) for question in questions)
    )
    assert len(responses) == 48
    assert all(response.usage and 0 < response.usage.completion_tokens <= 12 for response in responses)
    assert len({response.id for response in responses}) == 48


async def test_a_full_queue_answers_429_with_retry_after(served: RunningServer) -> None:
    capacity = MAX_CONCURRENCY + MAX_QUEUE
    body = {"model": "direct@24", "messages": QUESTION}
    headers = {"Authorization": f"Bearer {SERVE_API_KEY}"}
    async with httpx.AsyncClient(base_url=served.base_url, headers=headers, timeout=300) as http:
        responses = await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(capacity + 16)))
    refused = [response for response in responses if response.status_code == 429]
    assert refused and all(response.headers["Retry-After"].isdigit() for response in refused)
    assert refused[0].json()["error"]["code"] == "queue_full"
    assert all(response.status_code in (200, 429) for response in responses)


def test_streaming_sends_progress_content_and_usage(served: RunningServer) -> None:
    stream = sync_client(served).chat.completions.create(
        model="direct@24", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    deltas = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    final = chunks[-1]
    assert len(deltas) > 1, "the direct answer streams token by token"
    assert final.usage is not None and 0 < final.usage.completion_tokens <= 24
    finish = chunks[-2]
    assert finish.choices[0].finish_reason in ("stop", "length")
    assert finish.model_extra["reasoner"]["usage_by_phase"]["answer"] == final.usage.completion_tokens  # type: ignore[index]


def test_progress_comments_report_phase_and_tokens_so_far(served: RunningServer) -> None:
    body = {"model": "elastic@64", "messages": QUESTION, "stream": True}
    headers = {"Authorization": f"Bearer {SERVE_API_KEY}"}
    progress = []
    with httpx.stream(
        "POST", served.api_url + "/chat/completions", json=body, headers=headers, timeout=300
    ) as response:
        for line in response.iter_lines():
            if line.startswith(": progress "):
                progress.append(json.loads(line.removeprefix(": progress ")))
    assert progress and {"thinking", "answer"} >= {event["phase"] for event in progress}
    tokens = [event["generated_tokens"] for event in progress]
    assert tokens == sorted(tokens) and tokens[-1] > 0


def leave_mid_solve(server: RunningServer, body: dict[str, object], stream: bool) -> None:
    """Send a long solve and go away while its engine requests run."""
    headers = {"Authorization": f"Bearer {SERVE_API_KEY}"}
    if stream:
        url = server.api_url + "/chat/completions"
        with httpx.stream("POST", url, json=body | {"stream": True}, headers=headers, timeout=60) as reply:
            for line in reply.iter_lines():
                if line.startswith(": progress ") and json.loads(line.removeprefix(": progress "))["generated_tokens"]:
                    return
        raise AssertionError("the stream ended before the solve generated anything")
    payload = json.dumps(body).encode()
    host, port = server.base_url.removeprefix("http://").split(":")
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {SERVE_API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(request + payload)
        deadline = time.monotonic() + 30
        while server.metric("vllm:num_requests_running") == 0:
            assert time.monotonic() < deadline, "the solve never reached the engine"
            time.sleep(0.1)


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_disconnects_aborts_every_engine_request_of_its_solve(
    served: RunningServer, stream: bool
) -> None:
    wait_for_no_running_requests(served)
    aborted_before = served.metric("reasoner_server_solves_aborted_total")
    counting = [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]
    body = {"model": "self_consistency@3000", "messages": counting, "strategy_options": {"n": 6, "temperature": 0.8}}
    leave_mid_solve(served, body, stream)
    wait_for_no_running_requests(served, timeout_s=5)
    assert served.metric("reasoner_server_solves_aborted_total") == aborted_before + 1


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, {"model": "direct", "messages": QUESTION}, 401),
        ({"Authorization": "Bearer wrong"}, {"model": "direct", "messages": QUESTION}, 401),
        ({"Authorization": f"Bearer {SERVE_API_KEY}"}, {"model": "nope@5", "messages": QUESTION}, 400),
        ({"Authorization": f"Bearer {SERVE_API_KEY}"}, {"model": "direct", "messages": []}, 400),
        ({"Authorization": f"Bearer {SERVE_API_KEY}"}, {"model": "direct", "messages": QUESTION, "budget": -3}, 400),
    ],
)
def test_bad_requests_and_keys_are_refused_in_openais_shape(
    served: RunningServer, headers: dict[str, str], body: dict[str, object], status: int
) -> None:
    response = httpx.post(served.api_url + "/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_metrics_hold_the_engines_counters_and_the_servers_own(served: RunningServer) -> None:
    page = httpx.get(served.base_url + "/metrics", timeout=10).text
    for name in ("vllm:generation_tokens_total", "vllm:num_requests_running", "reasoner_server_requests_total"):
        assert name in page
    assert served.metric("reasoner_server_solves_total") > 0


def test_a_prompt_near_the_body_limit_is_a_quick_400_and_health_answers_meanwhile(served: RunningServer) -> None:
    body = json.dumps({"model": "direct@16", "messages": [{"role": "user", "content": "a " * ((4 << 20) - 100)}]})
    replies: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {SERVE_API_KEY}", "Content-Type": "application/json"}
    caller = threading.Thread(
        target=lambda: replies.append(
            httpx.post(served.api_url + "/chat/completions", content=body, headers=headers, timeout=120)
        )
    )
    started = time.monotonic()
    caller.start()
    slowest_health = 0.0
    while caller.is_alive():
        asked = time.monotonic()
        assert httpx.get(served.base_url + "/health", timeout=60).status_code == 200
        slowest_health = max(slowest_health, time.monotonic() - asked)
    answered_s = time.monotonic() - started
    assert replies[0].status_code == 400 and replies[0].json()["error"]["code"] == "context_length_exceeded"
    assert answered_s < NEAR_LIMIT_ANSWER_S and slowest_health < NEAR_LIMIT_HEALTH_S, (answered_s, slowest_health)


@pytest.mark.stops_server
def test_sigterm_lets_the_solve_in_flight_finish_then_leaves_nothing_running(served: RunningServer) -> None:
    engine_processes = psutil.Process(served.process.pid).children(recursive=True)
    assert engine_processes, "the in-process engine runs its core in child processes"
    body = {
        "model": f"direct@{SIGTERM_SOLVE_TOKENS}",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {SERVE_API_KEY}"}
    deltas, deltas_at_signal, chunks = 0, None, []
    with httpx.stream("POST", served.api_url + "/chat/completions", json=body, headers=headers, timeout=120) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            chunks.append(chunk)
            deltas += bool(chunk["choices"] and chunk["choices"][0]["delta"].get("content"))
            if deltas and deltas_at_signal is None:
                served.process.send_signal(signal.SIGTERM)
                deltas_at_signal = deltas
    assert deltas_at_signal is not None, "the solve never streamed, so SIGTERM was never sent mid-solve"
    assert deltas > deltas_at_signal, "no token of the solve arrived after SIGTERM"
    # Forced lengths: the solve in flight ran to its whole budget, not cut short by the shutdown.
    assert chunks[-1]["usage"]["completion_tokens"] == SIGTERM_SOLVE_TOKENS
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert served.process.wait(timeout=60) == 0
    # The engine's processes and the watchdog that kills them exit within moments of the server.
    _, alive = psutil.wait_procs(engine_processes, timeout=15)
    assert not [process for process in alive if process.is_running() and process.status() != "zombie"]
    with pytest.raises(httpx.TransportError):
        httpx.get(served.base_url + "/health", timeout=2)
