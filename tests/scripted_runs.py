"""A `Reasoner` on a scripted backend that answers by prompt, and the requests it was sent."""

from __future__ import annotations

from collections.abc import Callable

from reasoner import Reasoner
from reasoner.testing import RequestRecord, ScriptedBackend


def reasoner_with(respond: Callable[[str], str], delay_s: float = 0.0) -> Reasoner:
    return Reasoner(backend=ScriptedBackend(respond, delay_s=delay_s), profile="smollm2")


def records(reasoner: Reasoner) -> list[RequestRecord]:
    backend = reasoner.backend
    assert isinstance(backend, ScriptedBackend)
    return backend.requests
