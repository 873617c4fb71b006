from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest

from reasoner import Budget, EngineError, Reasoner, StrategyError
from reasoner.profiles import get_profile
from reasoner.session import Session
from reasoner.testing import ScriptedBackend
from strategies.step_clusters import cluster_vectors
from strategies.step_embedders import (
    EndpointEmbedder,
    InputEmbeddingEmbedder,
    PoolingEmbedder,
    get_embedder,
    mean_pooled,
    minilm_available,
    shared_pooling_embedder,
)


def session() -> Session:
    backend = ScriptedBackend()
    return Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=10))


def test_mean_pooled_averages_the_rows_of_the_step_tokens() -> None:
    matrix = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0]])
    assert mean_pooled(matrix, [0, 2]).tolist() == [2.0, 1.5]


def test_names_resolve_to_their_embedders() -> None:
    assert isinstance(get_embedder("input"), InputEmbeddingEmbedder)
    assert isinstance(get_embedder("http://127.0.0.1:9/v1"), EndpointEmbedder)
    assert get_embedder("minilm") is shared_pooling_embedder()


def test_auto_is_the_sentence_model_on_an_engine_and_the_fallback_on_the_scripted_backend() -> None:
    assert minilm_available()
    assert isinstance(get_embedder("auto", "vllm:smollm2"), PoolingEmbedder)
    assert isinstance(get_embedder("auto", "scripted"), InputEmbeddingEmbedder)


def test_the_pooling_engine_runs_the_embed_task_of_the_bundled_model() -> None:
    embedder = PoolingEmbedder()
    arguments = embedder.engine_args()
    assert arguments["runner"] == "pooling"
    assert arguments["model"].endswith("model")
    assert not embedder.running


@pytest.mark.parametrize("spec", ["bert", "ftp://host/embed", 3])
def test_an_unknown_embedder_is_a_strategy_error(spec: Any) -> None:
    with pytest.raises(StrategyError, match="step_embedder"):
        get_embedder(spec)


class _Embeddings(BaseHTTPRequestHandler):
    reply: Any = None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = type(self).reply or {
            "data": [
                {"index": index, "embedding": [1.0, 0.0] if "add" in text else [0.0, 1.0]}
                for index, text in reversed(list(enumerate(body["input"])))
            ]
        }
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    _Embeddings.reply = None


async def test_an_endpoint_embeds_steps_in_order(endpoint: str) -> None:
    vectors = await EndpointEmbedder(endpoint).embed(session(), [[1], [2], [3]], ["add 1", "sub", "add 2"])
    assert cluster_vectors(vectors, 0.2) == [0, 1, 0]


async def test_an_endpoint_answering_garbage_is_an_engine_error(endpoint: str) -> None:
    _Embeddings.reply = {"data": [{"index": 0}]}
    with pytest.raises(EngineError, match="embeddings endpoint"):
        await EndpointEmbedder(endpoint).embed(session(), [[1]], ["add"])


async def test_an_unreachable_endpoint_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="embeddings endpoint"):
        await EndpointEmbedder("http://127.0.0.1:9", timeout_s=2).embed(session(), [[1]], ["add"])


@pytest.mark.engine
def test_the_sentence_model_puts_paraphrases_together_and_other_steps_apart(engine_reasoner: Reasoner) -> None:
    # The process's shared embedder, on the loop where ETS (tree_search's engine tests) uses it: one engine start.
    texts = ["2 + 3 = 5.", "Adding 2 and 3 gives 5.", "The capital of France is Paris."]
    vectors = asyncio.run(engine_reasoner.arun_on_engine_loop(shared_pooling_embedder().embed_texts(texts)))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    assert vectors.shape == (3, 384)
    assert similarity[0, 1] > similarity[0, 2] + 0.3
