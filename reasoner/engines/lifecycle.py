"""The life of an in-process vLLM engine, shared by the policy backend and the auxiliary pooling engines.

Build it (in a thread; its processes spawned without re-running the user's `__main__`, watched
so they die with this process, their output in a log file unless verbose), hold it
(`EngineHolder`: started on first use, its owner tracked so it is shut down at interpreter
exit), shut it down so a later `__del__` is harmless, and map vLLM's request errors to the
toolkit's in one place (`engine_error`): a dead engine is dropped by its owner (the next call
starts a fresh one), a refused input is the caller's error.
"""

from __future__ import annotations

import abc
import asyncio
import atexit
import contextlib
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from reasoner.engines.cpu_engine import executor_kept, with_cpu_choices
from reasoner.engines.engine_output import cancel_output_handler, engine_output_to_log, quiet_vllm_logger
from reasoner.engines.watchdog import watch_new_children
from reasoner.errors import EngineError, PromptError, ReasonerError


class EngineOwner(Protocol):
    """Something that holds an engine and can shut it down (a backend, a scorer)."""

    def shutdown(self) -> None: ...


_live_owners: weakref.WeakSet[Any] = weakref.WeakSet()


class EngineHolder(abc.ABC):
    """Holder of one in-process vLLM engine (the local backend, an auxiliary pooling engine).

    The engine is built on first use (`_started`, once however many callers wait) and shut down
    at interpreter exit unless `shutdown` came first. A dead engine is dropped, whether it died
    during a request (`_vllm_errors`) or while idle (noticed at the next `_started`), so the next
    call starts a fresh one; `starts` counts the engines built, `restarts` the dead ones dropped.
    """

    _engine: Any = None
    _start_lock: asyncio.Lock | None = None
    starts: int = 0
    restarts: int = 0

    @abc.abstractmethod
    def _build_engine(self) -> Any:
        """Build the engine (`build_async_engine`); runs in a worker thread."""

    @abc.abstractmethod
    def engine_label(self) -> str:
        """What the engine is, in messages: "the PRM 'x'", "the pooling engine of 'y'"."""

    @property
    def running(self) -> bool:
        return self._engine is not None

    def shutdown(self) -> None:
        """Stop the engine and its processes now (safe to call twice, and at exit)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            shutdown_engine(engine)
        untrack_engine_owner(self)

    async def _started(self) -> Any:
        """The engine, built first if there is none or the one there died while idle."""
        if self._engine is not None and self._engine.errored:
            self._drop_dead_engine()
        if self._engine is None:
            self._start_lock = self._start_lock or asyncio.Lock()
            async with self._start_lock:
                if self._engine is None:
                    self._engine = await asyncio.to_thread(self._build_engine)
                    self.starts += 1
                    track_engine_owner(self)
        return self._engine

    @contextlib.contextmanager
    def _vllm_errors(self, engine: Any, what: str, refused: type[ReasonerError] = PromptError) -> Iterator[None]:
        """Inside, vLLM's request errors on `engine` become the toolkit's (`engine_error`); a dead engine is dropped."""
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        try:
            yield
        except (EngineDeadError, EngineGenerateError, ValueError) as exc:
            raise engine_error(engine, exc, what, self._engine_died, refused) from None

    def _engine_died(self, cause: BaseException) -> EngineError:
        self._drop_dead_engine()
        return EngineError(
            f"{self.engine_label()} died ({type(cause).__name__}: {cause}); the next call starts a fresh one"
        )

    def _drop_dead_engine(self) -> None:
        self.shutdown()
        self.restarts += 1


def track_engine_owner(owner: EngineOwner) -> None:
    """Shut `owner`'s engine down at interpreter exit unless it is shut down before."""
    _live_owners.add(owner)


def untrack_engine_owner(owner: EngineOwner) -> None:
    _live_owners.discard(owner)


@contextlib.contextmanager
def _spawn_without_rerunning_main() -> Iterator[None]:
    """Start engine processes without re-running the user's `__main__` in them.

    vLLM spawns its engine processes; `multiprocessing` re-imports the parent's main module
    in each child, which re-runs a script that has no `if __name__ == "__main__"` guard.
    Hiding the main module's file and spec while the engine starts leaves the children
    nothing to re-import, so plain scripts work.
    """
    main = sys.modules.get("__main__")
    saved_spec = getattr(main, "__spec__", None)
    saved_file = getattr(main, "__file__", None)
    if main is not None:
        main.__spec__ = None
        if saved_file is not None:
            del main.__file__
    try:
        yield
    finally:
        if main is not None:
            main.__spec__ = saved_spec
            if saved_file is not None:
                main.__file__ = saved_file


def build_async_engine(
    arguments: dict[str, Any], label: str, stat_loggers: list[Any] | None = None, *, quiet: bool = True
) -> Any:
    """vLLM's `AsyncLLM` from engine arguments, its processes spawned without re-running `__main__`,
    watched so they die with this process, and (when `quiet`) writing to a log file.

    Every start-up failure becomes an `EngineError` naming `label`. Blocking: call it in a thread.
    """
    output = engine_output_to_log(label) if quiet else contextlib.nullcontext(None)
    log: Path | None = None
    try:
        with _spawn_without_rerunning_main(), watch_new_children(), output as log:
            from vllm.engine.arg_utils import AsyncEngineArgs  # its import notices go to the log too
            from vllm.platforms import current_platform
            from vllm.v1.engine.async_llm import AsyncLLM

            arguments = with_cpu_choices(arguments, current_platform.is_cpu())
            try:
                engine_args = AsyncEngineArgs(**_with_config_objects(arguments))
            except (TypeError, ValueError) as exc:
                raise EngineError(f"invalid engine_args for {label}: {exc}") from None
            with executor_kept(arguments):
                engine = AsyncLLM.from_engine_args(engine_args, stat_loggers=stat_loggers)
    except EngineError:
        raise
    except Exception as exc:  # noqa: BLE001 - any start-up failure is the engine's
        where = f" (engine log: {log})" if log is not None else ""
        raise EngineError(f"the vLLM engine failed to start for {label}: {exc}{where}") from None
    if quiet:
        quiet_vllm_logger()
    # Shut engines down at exit before vLLM's own finalizers kill their processes under them.
    atexit.unregister(_shut_down_live_engines)
    atexit.register(_shut_down_live_engines)
    return engine


def _with_config_objects(arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with a `kv_transfer_config` given as a dict made into vLLM's config object (vLLM takes only that)."""
    connector = arguments.get("kv_transfer_config")
    if not isinstance(connector, dict):
        return arguments
    from vllm.config import KVTransferConfig

    return arguments | {"kv_transfer_config": KVTransferConfig(**connector)}


def shutdown_engine(engine: Any) -> None:
    """Shut an `AsyncLLM` down now (its output handler first), and make its later `__del__` harmless."""
    with contextlib.suppress(Exception):
        cancel_output_handler(engine)
    with contextlib.suppress(Exception):
        engine.shutdown()
    # AsyncLLM.__del__ shuts down again; when the object outlives vLLM's module globals
    # (interpreter teardown) that second call raises. It has nothing left to do.
    engine.shutdown = _already_shut_down


def engine_error(
    engine: Any,
    exc: BaseException,
    what: str,
    on_death: Callable[[BaseException], EngineError],
    refused: type[ReasonerError] = PromptError,
) -> ReasonerError:
    """The toolkit's error for a vLLM error raised while running `what` on `engine`.

    A dead engine (`EngineDeadError`, or an errored engine) is `on_death(exc)`: its owner
    drops it and says so. Input the engine refused (`ValueError`) is `refused`. Anything
    else the engine raised for the request is an `EngineError`.
    """
    from vllm.v1.engine.exceptions import EngineDeadError

    if isinstance(exc, ValueError):
        return refused(f"the engine refused {what}: {exc}")
    if isinstance(exc, EngineDeadError) or getattr(engine, "errored", False):
        return on_death(exc)
    return EngineError(f"{what} failed in the engine: {exc.__cause__ or exc}")


def _already_shut_down(*args: object, **kwargs: object) -> None:
    return None


@atexit.register
def _shut_down_live_engines() -> None:
    for owner in list(_live_owners):
        owner.shutdown()
