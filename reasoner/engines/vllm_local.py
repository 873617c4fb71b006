"""The vLLM backend: vLLM's v1 `AsyncLLM`, in-process, one engine per backend.

vLLM's exceptions stop here: everything the engine raises leaves this module as an
`EngineError` (or a `PromptError` for input the engine refused), and a dead engine is
dropped so the next `start` builds a fresh one (also when it died while idle). Unless
verbose, the engine's processes write their output to a log file (`engine_output`), and
they die with this process even when it is killed (`watchdog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from reasoner.engines.base import (
    Backend,
    CacheStats,
    Capabilities,
    Chunk,
    EmbedsPrompt,
    FinishReason,
    Prompt,
    SamplingSpec,
    TextPrompt,
    TokensPrompt,
)
from reasoner.engines.embeds import bfloat16_tensor
from reasoner.engines.lifecycle import EngineHolder, build_async_engine
from reasoner.engines.weights import read_input_embeddings
from reasoner.errors import EngineError, ModelError
from reasoner.models import ResolvedModel
from reasoner.tokenizer import HFTokenizer

# Keeps the KV of each prompt-embedding request's last partial block for the next request, so a
# latent step computes one row instead of up to block_size - 1 (see `engines.tail_kv`). CPU only:
# it addresses the KV cache in vLLM's CPU attention layout.
TAIL_KV_CONNECTOR: dict[str, Any] = {
    "kv_connector": "TailKVConnector",
    "kv_connector_module_path": "reasoner.engines.tail_kv",
    "kv_role": "kv_both",
}
CPU_DEFAULTS: dict[str, Any] = {
    "kv_transfer_config": TAIL_KV_CONNECTOR,
    "enforce_eager": True,
    "block_size": 32,
    "kv_cache_memory_bytes": 2 << 30,
    "max_model_len": 4096,
    "max_num_seqs": 128,
}
GPU_DEFAULTS: dict[str, Any] = {"block_size": 16, "gpu_memory_utilization": 0.85}
ALWAYS: dict[str, Any] = {
    "enable_prefix_caching": True,
    "enable_prompt_embeds": True,
    "disable_log_stats": False,
    "max_logprobs": 64,
    "seed": 0,
}


def default_engine_args(on_cpu: bool) -> dict[str, Any]:
    """The engine arguments the toolkit uses unless the caller overrides them."""
    defaults = dict(CPU_DEFAULTS if on_cpu else GPU_DEFAULTS)
    if on_cpu and os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        # The environment variable wins inside vLLM anyway; do not pretend otherwise.
        del defaults["kv_cache_memory_bytes"]
    return defaults | ALWAYS


class _CacheStatsRecorder:
    """A vLLM stat logger that keeps running prefix-cache totals and the latest KV usage."""

    def __init__(self) -> None:
        self.queries = 0
        self.hits = 0
        self.kv_cache_usage = 0.0
        self.preemptions = 0

    def factory(self, vllm_config: Any, engine_index: int = 0) -> Any:
        from vllm.v1.metrics.loggers import StatLoggerBase

        recorder = self

        class Logger(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0):
                pass

            def record(
                self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0
            ) -> None:
                if scheduler_stats is None:
                    return
                recorder.queries += scheduler_stats.prefix_cache_stats.queries
                recorder.hits += scheduler_stats.prefix_cache_stats.hits
                recorder.kv_cache_usage = scheduler_stats.kv_cache_usage
                if iteration_stats is not None:
                    recorder.preemptions += getattr(iteration_stats, "num_preempted_reqs", 0)

            def log_engine_initialized(self) -> None:
                pass

        return Logger(vllm_config, engine_index)


class VLLMBackend(EngineHolder, Backend):
    """vLLM's `AsyncLLM` in this process; started lazily, restarted after engine death (`EngineHolder`)."""

    def __init__(self, model: ResolvedModel, engine_args: dict[str, Any] | None = None, *, verbose: bool = False):
        self.model = model
        self.verbose = verbose
        self._user_engine_args = dict(engine_args or {})
        self._stats = _CacheStatsRecorder()
        self._tokenizer: HFTokenizer | None = None
        self._embeddings: np.ndarray | None = None
        self._capabilities: Capabilities | None = None

    def engine_args(self) -> dict[str, Any]:
        """The toolkit's defaults, then the caller's `engine_args`; on CPU the build adds the executor and number
        format where these leave them unset (`reasoner.engines.cpu_engine`)."""
        from vllm.platforms import current_platform

        return {"model": self.model.source} | default_engine_args(current_platform.is_cpu()) | self._user_engine_args

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            raise EngineError("the engine has not started yet; call start() first")
        return self._capabilities

    @property
    def engine(self) -> Any:
        """The running vLLM `AsyncLLM` (None before `start`), for benchmarks and direct use."""
        return self._engine

    def tokenizer(self) -> HFTokenizer:
        if self._tokenizer is None:
            try:
                self._tokenizer = HFTokenizer(self.model.source, self._user_engine_args.get("trust_remote_code", False))
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load the tokenizer of {self.model.name!r}: {exc}") from None
        return self._tokenizer

    async def start(self) -> None:
        await self._started()

    def engine_label(self) -> str:
        return f"the vLLM engine of {self.model.name!r}"

    def _build_engine(self) -> Any:
        arguments = self.engine_args()
        engine = build_async_engine(
            arguments, repr(self.model.name), stat_loggers=[self._stats.factory], quiet=not self.verbose
        )
        config = engine.model_config
        self._capabilities = Capabilities(
            prompt_embeds=bool(arguments.get("enable_prompt_embeds")),
            logprobs=True,
            max_logprobs=int(config.max_logprobs),
            prefix_caching=bool(arguments.get("enable_prefix_caching")),
            per_request_seed=not _on_cpu(),
            max_model_len=int(config.max_model_len),
            name=f"vllm:{self.model.name}",
            input_embeddings=self.model.local_dir is not None,
        )
        return engine

    async def close(self) -> None:
        self.shutdown()

    async def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        if self._engine is None:
            raise EngineError("the engine is not running; call start() first")
        engine = self._engine
        params = _sampling_params(sampling)
        engine_prompt = _engine_prompt(prompt)
        prompt_length = _prompt_length(prompt)
        finished = False
        try:
            with self._vllm_errors(engine, f"request {request_id}"):
                async for output in engine.generate(engine_prompt, params, request_id=request_id):
                    completion = output.outputs[0]
                    finished = bool(output.finished)
                    yield Chunk(
                        token_ids=tuple(completion.token_ids),
                        text=completion.text,
                        logprobs=_logprobs(completion.logprobs),
                        finished=finished,
                        finish_reason=_finish_reason(completion.finish_reason) if finished else None,
                        prompt_tokens=prompt_length,
                        cached_prompt_tokens=int(output.num_cached_tokens or 0),
                    )
        finally:
            if not finished and self._engine is engine:
                with contextlib.suppress(Exception):
                    await engine.abort(request_id)

    async def abort(self, request_id: str) -> None:
        if self._engine is not None:
            with contextlib.suppress(Exception):
                await self._engine.abort(request_id)

    async def input_embeddings(self) -> np.ndarray:
        if self._embeddings is None:
            self._embeddings = await asyncio.to_thread(read_input_embeddings, self.model)
        return self._embeddings

    def cache_stats(self) -> CacheStats:
        return CacheStats(
            prefix_cache_queries=self._stats.queries,
            prefix_cache_hits=self._stats.hits,
            kv_cache_usage=self._stats.kv_cache_usage,
            extra={"preemptions": float(self._stats.preemptions)},
        )


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _sampling_params(sampling: SamplingSpec) -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        max_tokens=sampling.max_tokens,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        top_k=sampling.top_k,
        stop=list(sampling.stop) or None,
        stop_token_ids=list(sampling.stop_token_ids) or None,
        logprobs=sampling.logprobs,
        include_stop_str_in_output=sampling.include_stop_str_in_output,
        ignore_eos=sampling.ignore_eos,
        output_kind=RequestOutputKind.DELTA,
    )


def _engine_prompt(prompt: Prompt) -> Any:
    if isinstance(prompt, TokensPrompt):
        return {"prompt_token_ids": list(prompt.token_ids)}
    if isinstance(prompt, TextPrompt):
        return {"prompt": prompt.text}
    if isinstance(prompt, EmbedsPrompt):
        # One canonical dtype, so equal embeddings are equal bytes and hit the prefix cache.
        return {"prompt_embeds": bfloat16_tensor(prompt.embeds)}
    raise TypeError(f"unsupported prompt type {type(prompt).__name__}")


def _prompt_length(prompt: Prompt) -> int:
    if isinstance(prompt, TokensPrompt):
        return len(prompt.token_ids)
    if isinstance(prompt, EmbedsPrompt):
        return int(prompt.embeds.shape[0])
    return 0


def _logprobs(logprobs: Any) -> tuple[dict[int, float], ...] | None:
    if logprobs is None:
        return None
    return tuple({int(token): float(entry.logprob) for token, entry in position.items()} for position in logprobs)


def _finish_reason(reason: str | None) -> FinishReason:
    if reason == "length":
        return "length"
    if reason == "abort":
        return "abort"
    return "stop"
