"""An auxiliary vLLM pooling engine (a PRM, a prompt encoder, a step embedder) and its one request.

`PoolingEngineOwner` holds the engine like the policy backend holds its own (`EngineHolder`:
built on first use, dropped when it dies, shut down at exit). vLLM's engine serves one event
loop, and a policy `Reasoner` may run strategies on its own loop thread: calls from another
running loop are handed to the owner's (`_on_engine_loop`), and an owner whose loop has stopped
gives way (its engine is closed and started again on the new loop). `_pool` is the one pooling
request: token ids in, the output tensor out, vLLM's errors mapped as the backend's are, except
that a refused input is an `EngineError`: the toolkit built that input, not the caller.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from reasoner.engines.lifecycle import EngineHolder
from reasoner.errors import EngineError

T = TypeVar("T")
PoolingTask = Literal["embed", "token_classify"]
_pool_requests = itertools.count()


class PoolingEngineOwner(EngineHolder):
    """Holder of an auxiliary vLLM pooling engine, started on first use on the loop that uses it."""

    _loop: asyncio.AbstractEventLoop | None = None

    def close(self) -> None:
        """Stop the engine and its processes; the next call starts a fresh one."""
        self.shutdown()

    async def _on_engine_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        current = asyncio.get_running_loop()
        owner = self._loop
        if owner is None or owner.is_closed() or (owner is not current and not owner.is_running()):
            if owner is not None and owner is not current:
                self.close()
            self._loop = owner = current
            self._start_lock = None
        if owner is current:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, owner))

    async def _pool(self, token_ids: list[int], task: PoolingTask, what: str) -> Any:
        """One pooling request (`task`: "embed", "token_classify") on the started engine; its output tensor.

        `what` names the request in errors.
        """
        from vllm import PoolingParams

        engine = await self._started()
        output = None
        with self._vllm_errors(engine, what, refused=EngineError):
            async for chunk in engine.encode(
                {"prompt_token_ids": token_ids}, PoolingParams(task=task), request_id=f"pool{next(_pool_requests)}"
            ):
                output = chunk
        if output is None:
            raise EngineError(f"{what} returned no output")
        return output.outputs.data
