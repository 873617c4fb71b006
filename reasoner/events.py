"""Progress of a solve as it runs: an optional callback for streaming and dashboards.

`Reasoner.asolve(..., on_event=callback)` calls `callback(SolveEvent)` on the solve's event
loop each time one of its engine requests produces output or finishes. The callback must
be quick and must not raise (an exception from it is not caught); it sees every request of
the solve (samples, branches, evaluations, estimators), tagged with the request's phase,
trace-segment kind and model (`reasoner.model_set`), and the solve's running token totals.

A strategy whose chain is not its requests' raw output also reports, through `Session.keep`, the
text it keeps as it decides it (`latent_switch`: the explicit thinking the switch rule keeps, never
the tokens the engine made past a switch). Such events have `kept=True`, no request (`request_id`
is empty) and no tokens (`new_tokens` 0); the kept `think` texts joined are the thinking the trace
keeps, whatever the requests streamed. A stretch of latent thinking has no text: two kept events of
kind `latent` and empty text mark it, one as it starts and one (`finished=True`) as it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reasoner.engines.base import FinishReason


@dataclass(frozen=True)
class SolveEvent:
    """New output of one request of a solve (or, with `kept`, text the strategy keeps), with the solve's totals."""

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
    kept: bool = False


EventCallback = Callable[[SolveEvent], None]
