"""Hostile requests over real HTTP (issue 23): each is refused in OpenAI's error shape, at once, touching nothing.

The app runs on the scripted backend behind real uvicorn (`scripted_http`), so chunked bodies,
raw bytes and a stalled event loop are what a client would see, without an engine start.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from reasoner.testing import ScriptedBackend
from server.app import MAX_BODY_BYTES
from server.prompt_fit import MAX_CHARS_PER_TOKEN
from server.protocol import MAX_ITEMS
from tests.server.scripted_app import MODEL
from tests.server.scripted_http import HTTPScriptedServer, http_scripted_server

QUESTION = [{"role": "user", "content": "2 + 3?"}]
HEALTH_WHILE_BUSY_S = 1.0


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPScriptedServer]:
    with http_scripted_server() as running:
        yield running


def assert_openai_error(response: httpx.Response, status: int, fragment: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and fragment in error["message"], error
    return dict(error)


def chat(server: HTTPScriptedServer, **fields: object) -> httpx.Response:
    with server.client() as http:
        return http.post("/v1/chat/completions", json={"model": MODEL, "messages": QUESTION} | fields)


@pytest.mark.parametrize(
    "model",
    ["elastic@\u00b2", "elastic@" + "9" * 5000, "elastic@\u0663", "elastic@-5", "elastic@ 12", "elastic@1e3"],
)
def test_a_budget_in_the_model_name_that_is_not_ascii_digits_is_a_400(server: HTTPScriptedServer, model: str) -> None:
    requests_before = len(server.backend.requests)
    assert_openai_error(chat(server, model=model), 400, "must be a positive integer")
    assert len(server.backend.requests) == requests_before


def test_a_huge_budget_in_the_model_name_is_the_servers_limit_not_a_crash(server: HTTPScriptedServer) -> None:
    assert_openai_error(chat(server, model="elastic@999999999999"), 400, "above this server's limit")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port nothing should ever connect to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def connections_made(sock: socket.socket) -> int:
    ready, _, _ = select.select([sock], [], [], 0.2)
    return len(ready)


@pytest.mark.parametrize(
    ("model", "option", "value"),
    [
        ("tree_search", "step_embedder", "http://127.0.0.1:{port}/internal-admin"),
        ("tree_search", "step_embedder", "minilm"),
        ("auto", "policy_file", "/etc/passwd"),
        ("auto", "probe_file", "/etc/passwd"),
    ],
)
def test_options_that_name_urls_files_or_engines_are_refused_before_anything_is_reached(
    server: HTTPScriptedServer, listener: socket.socket, model: str, option: str, value: str
) -> None:
    options = {option: value.format(port=listener.getsockname()[1])}
    error = assert_openai_error(chat(server, model=f"{model}@256", strategy_options=options), 400, option)
    assert "operator" in str(error["message"]) and error["param"] == "strategy_options"
    assert connections_made(listener) == 0, "the server connected to a host the client named"


def test_the_same_strategy_without_the_operators_option_is_served(server: HTTPScriptedServer) -> None:
    response = chat(server, model="tree_search@256", strategy_options={"width": 2, "max_depth": 2})
    assert response.status_code == 200, response.text


def body_of(prompt: str) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}]}).encode()


def post_in_background(server: HTTPScriptedServer, body: bytes) -> tuple[threading.Thread, list[httpx.Response]]:
    replies: list[httpx.Response] = []

    def post() -> None:
        with server.client(timeout_s=120) as http:
            replies.append(
                http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
            )

    thread = threading.Thread(target=post)
    thread.start()
    return thread, replies


@contextmanager
def encodes_recorded(backend: ScriptedBackend) -> Iterator[list[tuple[int, int]]]:
    """(characters, thread id) of every text the backend's tokenizer encodes inside the block."""
    tokenizer = backend.tokenizer()
    original = tokenizer.encode
    calls: list[tuple[int, int]] = []

    def recorded(text: str) -> list[int]:
        calls.append((len(text), threading.get_ident()))
        return original(text)

    tokenizer.encode = recorded  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        tokenizer.encode = original  # type: ignore[method-assign]


def test_a_prompt_near_the_body_limit_is_refused_by_its_length_and_health_stays_quick(
    server: HTTPScriptedServer,
) -> None:
    body = body_of("a " * ((MAX_BODY_BYTES - 200) // 2))
    assert len(body) < MAX_BODY_BYTES
    with encodes_recorded(server.backend) as encoded:
        thread, replies = post_in_background(server, body)
        slowest_health = 0.0
        while thread.is_alive():
            started = time.monotonic()
            assert httpx.get(server.base_url + "/health", timeout=30).status_code == 200
            slowest_health = max(slowest_health, time.monotonic() - started)
        thread.join()
    window = server.backend.capabilities.max_model_len
    error = assert_openai_error(replies[0], 400, f"more than a {window}-token context window can hold")
    assert error["code"] == "context_length_exceeded"
    assert all(length <= window * MAX_CHARS_PER_TOKEN for length, _ in encoded), "a huge prompt was tokenized"
    assert slowest_health < HEALTH_WHILE_BUSY_S


def test_a_prompt_within_the_character_bound_but_over_the_window_is_tokenized_off_the_event_loop() -> None:
    backend = ScriptedBackend("Final answer: 5", max_model_len=256)
    with http_scripted_server(backend) as small, encodes_recorded(backend) as encoded:
        response = chat(small, messages=[{"role": "user", "content": "a " * 600}])
        loop_thread = small.thread.ident
    error = assert_openai_error(response, 400, "tokens, which leaves no room in the model's 256-token context window")
    assert error["code"] == "context_length_exceeded" and backend.requests == []
    threads_of_the_long_prompt = {thread for length, thread in encoded if length >= 1200}
    assert threads_of_the_long_prompt and loop_thread not in threads_of_the_long_prompt


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1"])
def test_a_json_body_that_is_not_utf8_is_a_400(server: HTTPScriptedServer, encoding: str) -> None:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "2 + 3 = ¿?"}]}, ensure_ascii=False)
    with server.client() as http:
        response = http.post(
            "/v1/chat/completions", content=body.encode(encoding), headers={"Content-Type": "application/json"}
        )
    assert_openai_error(response, 400, "not UTF-8")


def chunks_of(body: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_over_the_limit_is_a_413(server: HTTPScriptedServer) -> None:
    body = body_of("x" * (9 << 20))
    with server.client() as http:
        response = http.post(
            "/v1/chat/completions", content=chunks_of(body), headers={"Content-Type": "application/json"}
        )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_openai_error(response, 413, f"over {MAX_BODY_BYTES} bytes")


def test_a_chunked_body_within_the_limit_is_served(server: HTTPScriptedServer) -> None:
    with server.client() as http:
        response = http.post(
            "/v1/chat/completions",
            content=chunks_of(body_of("2 + 3?"), 7),
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"].endswith("5")


def test_more_prompts_than_the_server_ever_holds_is_a_400_not_a_429() -> None:
    with http_scripted_server(max_concurrency=4, max_queue=4) as small, small.client() as http:
        # The blank first prompt would be a 400 of its own: the count is refused before any prompt is planned.
        prompts = ["   "] + [f"{n} + 1?" for n in range(19)]
        too_many = http.post("/v1/completions", json={"model": MODEL, "prompt": prompts})
        error = assert_openai_error(too_many, 400, "asks for 20 solves, more than this server ever holds at once (8")
        assert error["code"] == "too_many_prompts" and "retry-after" not in too_many.headers
        assert small.backend.requests == []
        fits = http.post("/v1/completions", json={"model": MODEL, "prompt": [f"{n} + 1?" for n in range(8)]})
        assert fits.status_code == 200 and len(fits.json()["choices"]) == 8


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "1?"}] * (MAX_ITEMS + 1)}, "messages"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "1"}] * (MAX_ITEMS + 1)}]},
            "messages.0.content",
        ),
        ("/v1/completions", {"prompt": ["1?"] * (MAX_ITEMS + 1)}, "prompt"),
    ],
)
def test_lists_past_the_item_limit_are_a_400_before_their_items_are_read(
    server: HTTPScriptedServer, path: str, fields: dict[str, object], param: str
) -> None:
    with server.client() as http:
        response = http.post(path, json={"model": MODEL} | fields)
    error = assert_openai_error(response, 400, f"at most {MAX_ITEMS} items, got {MAX_ITEMS + 1}")
    assert error["param"] == param


def raw_exchange(server: HTTPScriptedServer, request: bytes) -> bytes:
    with socket.create_connection(server.address, timeout=10) as connection:
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Value: a\x00b\r\n\r\n",
        b"GET /v1/models?" + b"q" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["header-name-bytes", "header-value-nul", "one-MiB-url"],
)
def test_requests_uvicorn_cannot_parse_get_its_plain_400_and_the_server_serves_on(
    server: HTTPScriptedServer, request_bytes: bytes
) -> None:
    reply = raw_exchange(server, request_bytes)
    assert reply.startswith(b"HTTP/1.1 400 ") and b"Invalid HTTP request received." in reply
    assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
    assert chat(server).status_code == 200
