"""The `hidden` estimator: difficulty from the prompt's pooled hidden state, no generated token.

DiffAdapt (Liu et al., 2025) reads difficulty off the model before it writes anything: a small
probe over the prompt's hidden representation tells easy from hard. Here the representation
comes from a second vLLM engine on the same model in pooling mode (`runner="pooling"`, the last
prompt token's final-layer hidden state, no normalisation): one prefill, no decode. Its KV
space is small (64 MiB), so it sits beside the generating engine. A `Probe` trained by
`reasoner calibrate --estimator hidden` maps the vector to P(wrong), the difficulty.

Cheaper fallback, `representation="input_embeddings"`: the mean of the prompt's rows of the
model's input-embedding matrix (no forward pass, no second engine). It sees which tokens the
prompt holds, not what the model makes of them, so it is weaker; it runs only when asked for,
and the estimate names the representation that ran (`Estimate.representation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from controllers.estimate import Estimate, Estimator
from controllers.probe import Probe
from reasoner import Session, StrategyError
from reasoner.engines.base import Backend
from reasoner.engines.lifecycle import build_async_engine
from reasoner.engines.pooling import PoolingEngineOwner
from reasoner.errors import CapabilityError
from reasoner.models import ResolvedModel

REPRESENTATIONS = ("engine", "input_embeddings")
POOLING_ENGINE_DEFAULTS: dict[str, Any] = {
    "runner": "pooling",
    "enforce_eager": True,
    "block_size": 32,
    "max_model_len": 2048,
    # One 2048-token prompt of the embedded model takes 96 MiB of KV in float32 (a CPU without native bfloat16).
    "kv_cache_memory_bytes": 128 << 20,
    "max_num_seqs": 8,
    "pooler_config": {"pooling_type": "LAST", "use_activation": False},
    # No vLLM stat loggers: a new engine's Prometheus logger unregisters the policy engine's metrics.
    "disable_log_stats": True,
}


class PooledPromptEncoder(PoolingEngineOwner):
    """A vLLM pooling engine on one model: a prompt's token ids -> its last-token hidden state.

    Started on first use, on the event loop that first uses it (calls from another running loop
    are handed to that one); vLLM's errors leave as `EngineError`.
    """

    def __init__(self, model_source: str, engine_args: dict[str, Any] | None = None):
        self.model_source = model_source
        self.engine_args = {"model": model_source} | POOLING_ENGINE_DEFAULTS | dict(engine_args or {})

    def engine_label(self) -> str:
        return f"the pooling engine of {self.model_source!r}"

    def _build_engine(self) -> Any:
        return build_async_engine(self.engine_args, self.engine_label())

    async def represent(self, token_ids: Sequence[int]) -> np.ndarray:
        """The pooled hidden state `[hidden]` of the prompt `token_ids` (float32)."""
        return await self._on_engine_loop(self._represent(list(token_ids)))

    async def _represent(self, token_ids: list[int]) -> np.ndarray:
        data = await self._pool(token_ids, "embed", "the pooling request")
        return np.asarray(data.float().reshape(-1).tolist(), dtype=np.float32)


_ENCODERS: dict[str, PooledPromptEncoder] = {}


def prompt_encoder(model_source: str) -> PooledPromptEncoder:
    """The shared pooling encoder of a model (one engine per model for the whole process, stopped at exit)."""
    if model_source not in _ENCODERS:
        _ENCODERS[model_source] = PooledPromptEncoder(model_source)
    return _ENCODERS[model_source]


def local_model_source(backend: Backend) -> str:
    """The local model folder or id the backend serves; a `CapabilityError` for other backends."""
    model = getattr(backend, "model", None)
    if not isinstance(model, ResolvedModel):
        raise CapabilityError(
            f"{type(backend).__name__} has no local model for a pooling engine; "
            "use the local vLLM backend or representation='input_embeddings'"
        )
    return model.source


async def prompt_representation(session: Session, token_ids: Sequence[int], representation: str) -> np.ndarray:
    """The prompt's vector: the pooling engine's hidden state, or the mean input embedding (fallback)."""
    if representation == "engine":
        return await prompt_encoder(local_model_source(session.backend)).represent(token_ids)
    if representation == "input_embeddings":
        matrix = await session.backend.input_embeddings()
        return np.asarray(matrix[list(token_ids)].mean(axis=0), dtype=np.float32)
    raise StrategyError(f"unknown representation {representation!r}; known: {', '.join(REPRESENTATIONS)}")


def vector_features(vector: np.ndarray) -> dict[str, float]:
    """A representation as named probe features `h0`, `h1`, ..."""
    return {f"h{index}": float(value) for index, value in enumerate(vector)}


class HiddenStateEstimator(Estimator):
    """A trained probe over the prompt's pooled representation; costs no generated token."""

    name = "hidden"
    cost_cap = 0
    requests = 0

    def __init__(self, probe: Probe | None = None, representation: str = "engine"):
        if representation not in REPRESENTATIONS:
            raise StrategyError(f"unknown representation {representation!r}; known: {', '.join(REPRESENTATIONS)}")
        self.probe, self.representation = probe, representation

    async def estimate(self, session: Session, prompt: str) -> Estimate:
        estimate = await super().estimate(session, prompt)
        estimate.representation = self.representation
        return estimate

    async def _measure(self, session: Session, prompt: str, root: int) -> tuple[float, dict[str, float]]:
        text = session.profile.build_prompt(
            session.tokenizer, prompt, thinking=False, answer_format=session.answer_format
        )
        vector = await prompt_representation(session, session.encode(text), self.representation)
        session.trace.update(root, representation=self.representation, representation_size=int(vector.size))
        features = vector_features(vector)
        if self.probe is None:
            return 0.5, features
        return self.probe.predict(features), features
