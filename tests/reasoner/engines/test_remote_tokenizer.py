"""The server's tokenizer, for a served model whose files are not on this machine."""

from __future__ import annotations

import json

import httpx
import pytest

from reasoner import EngineError
from reasoner.engines.remote_tokenizer import ServerTokenizer

VOCAB = {"<|im_start|>": 1, "<|im_end|>": 2, "user": 3, " hi": 4, "assistant": 5, "\n": 6}
PIECES = {index: piece for piece, index in VOCAB.items()}


def tokenize_server(info: bool = True) -> tuple[httpx.MockTransport, list[str]]:
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/tokenizer_info":
            return httpx.Response(200, json={"eos_token": "<|im_end|>", "vocab_size": 49152} if info else {})
        body = json.loads(request.content)
        if request.url.path == "/detokenize":
            return httpx.Response(200, json={"prompt": "".join(PIECES[token] for token in body["tokens"])})
        if "messages" in body:
            assert body["add_generation_prompt"] is True
            return httpx.Response(200, json={"tokens": [1, 3, 4, 2, 6, 1, 5, 6]})
        pieces = [body["prompt"]] if body["prompt"] in VOCAB else body["prompt"].split("|")
        return httpx.Response(200, json={"tokens": [VOCAB[piece] for piece in pieces]})

    return httpx.MockTransport(handle), calls


def test_encode_and_decode_go_to_the_server_once_per_text() -> None:
    transport, calls = tokenize_server()
    tokenizer = ServerTokenizer("http://s.test", "m", transport=transport)
    assert tokenizer.encode("user| hi") == [3, 4]
    assert tokenizer.encode("user| hi") == [3, 4]
    assert tokenizer.decode([3, 4]) == "user hi"
    assert calls == ["/tokenize", "/detokenize"]


def test_the_chat_prompt_is_the_servers_template_as_text() -> None:
    transport, _ = tokenize_server()
    tokenizer = ServerTokenizer("http://s.test", "m", transport=transport)
    assert (
        tokenizer.chat_prompt([{"role": "user", "content": "hi"}])
        == "<|im_start|>user hi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_end_of_sequence_ids_come_from_tokenizer_info_or_are_unknown() -> None:
    transport, _ = tokenize_server()
    assert ServerTokenizer("http://s.test", "m", transport=transport).eos_token_ids == (2,)
    transport, _ = tokenize_server(info=False)
    assert ServerTokenizer("http://s.test", "m", transport=transport).eos_token_ids == ()


def test_an_unreachable_server_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="unreachable"):
        ServerTokenizer("http://127.0.0.1:9", "m").encode("x")
