"""Progress of a solve as it runs: an optional callback for streaming and dashboards.

`Reasoner.asolve(..., on_event=callback)` calls `callback(SolveEvent)` on the solve's event
loop each time one of its engine requests produces output or finishes. The callback must
be quick and must not raise (an exception from it is not caught); it sees every request of
the solve (samples, branches, evaluations, estimators), tagged with the request's phase,
trace-segment kind and model (`reasoner.model_set`), and the solve's running token totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reasoner.engines.base import FinishReason


@dataclass(frozen=True)
class SolveEvent:
    """New output of one request of a solve, with the solve's totals so far."""

    request_id: str
    phase: str
    kind: str
    text: str
    new_tokens: int
    finished: bool
    finish_reason: FinishReason | None
    generated_tokens: int
    prompt_tokens: int
    requests: int
    model: str = ""


EventCallback = Callable[[SolveEvent], None]
