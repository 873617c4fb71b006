"""Session fixtures for the remote-backend tests: one real vLLM server, and a second on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reasoner.engines.vllm_server import TAIL_KV_SERVER_ARGS, VLLMServer, cpu_server_args
from reasoner.models import resolve_model

SERVER_ARGS = (
    *cpu_server_args(),
    *TAIL_KV_SERVER_ARGS,
    "--max-model-len",
    "2048",
    "--enable-prompt-embeds",
    "--enable-prompt-tokens-details",
    "--max-num-seqs",
    "64",
)
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}


def embedded_model_server() -> VLLMServer:
    """A started `vllm serve` of the embedded model on a free 127.0.0.1 port (CPU, small)."""
    return VLLMServer(resolve_model(None).source, SERVER_ARGS, env=SERVER_ENV).start()


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[VLLMServer]:
    """One server of the embedded model, shared by every remote test of the run."""
    server = embedded_model_server()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def second_vllm_server(vllm_server: VLLMServer) -> Iterator[VLLMServer]:
    """A second replica, started only for the two-replica tests (the last of them kills it)."""
    server = embedded_model_server()
    yield server
    server.stop()


@pytest.fixture
def prm_server() -> Iterator[VLLMServer]:
    """The embedded model as a Math-Shepherd-style PRM ("-"/"+" LM-head rows) on a pooling server.

    Started for its one test and stopped after it, so no more than two servers run at once.
    """
    overrides = '{"classifier_from_token": ["-", "+"], "method": "no_post_processing"}'
    pooling = ("--runner", "pooling", "--convert", "classify", "--hf-overrides", overrides)
    pooling += ("--pooler-config", '{"task": "token_classify"}')
    args = (*cpu_server_args(), "--max-model-len", "2048", *pooling)
    server = VLLMServer(resolve_model(None).source, args, env=SERVER_ENV).start()
    yield server
    server.stop()
