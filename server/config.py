"""The server's settings, from `reasoner serve`'s options (one object, passed explicitly)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServerConfig:
    """How the server admits, solves and shuts down.

    `max_concurrency` solves run on the engine at once; up to `max_queue` more wait for a
    slot; past that a request is refused with 429 and `Retry-After: retry_after_s`. On
    SIGTERM the server stops taking requests and gives solves in flight `shutdown_timeout_s`
    to finish before aborting them. A request's budget may not pass `max_budget` tokens.
    `models` names the models of a Reasoner with several (`model_name` is then the default's);
    a request picks one by its model name (`server.selection`). Empty: one model.
    `strategy_options` are the operator's options per strategy (`--strategy-option`, checked at
    start-up by `server.operator_options`): every request of that strategy runs with them.
    """

    model_name: str
    models: tuple[str, ...] = ()
    default_strategy: str = "direct"
    default_budget: int = 512
    max_budget: int = 32768
    api_key: str | None = None
    max_concurrency: int = 64
    max_queue: int = 64
    retry_after_s: int = 1
    shutdown_timeout_s: float = 30.0
    progress_interval_s: float = 0.25
    strategy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
