"""Server-sent events for streamed completions: progress, content deltas, usage.

What a stream carries, in order:
- chat: a first chunk with the assistant role;
- progress as SSE comments (`: progress {"index", "phase", "generated_tokens",
  "prompt_tokens", "requests"}`), at most every `progress_interval_s` while tokens flow;
  OpenAI clients skip comments, so nothing breaks for them;
- content deltas: live, token by token, for strategies whose answer is the text of their
  one request (`direct`); for the others the answer is known only when the solve ends (which
  sample wins, where the forced answer starts), so it comes in one delta then, after the
  `reasoning_content` delta of the thinking behind it;
- a chunk with `finish_reason` and the `reasoner` account of the solve, then, with
  `stream_options.include_usage`, a chunk with no choices and the usage; then `[DONE]`.
An error mid-stream is sent as `data: {"error": ...}` before `[DONE]`. When the client goes
away the generator is cancelled and every solve of the request with it (their engine
requests are aborted).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from reasoner import Solution
from reasoner.events import SolveEvent
from server.errors import APIError, as_api_error, error_body
from server.responses import cut_at_stops, finish_reason, reasoner_info, reasoning_text, usage_info
from server.selection import SolvePlan
from server.service import SolveService

LIVE_CONTENT_STRATEGIES = frozenset({"direct"})
StreamKind = Literal["chat", "completion"]
logger = logging.getLogger("reasoner.server")


@dataclass
class _LiveText:
    """Answer text streamed as it is generated, held back where it could still become a stop string."""

    stops: tuple[str, ...]
    received: str = ""
    sent: int = 0

    def take(self) -> str:
        safe = cut_at_stops(self.received, self.stops)
        if len(safe) == len(self.received) and self.stops:
            safe = safe[: max(self.sent, len(safe) - (max(len(stop) for stop in self.stops) - 1))]
        delta = safe[self.sent :]
        self.sent = len(safe)
        return delta


@dataclass
class _Progress:
    phase: str = "queued"
    generated_tokens: int = 0
    prompt_tokens: int = 0
    requests: int = 0
    changed: bool = False
    live: _LiveText | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class StreamWriter:
    """Chunks in the shape of the endpoint: chat deltas or completion texts."""

    def __init__(self, kind: StreamKind, response_id: str, model: str):
        self.kind = kind
        self.response_id = response_id
        self.model = model
        self.created = int(time.time())

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        obj = "chat.completion.chunk" if self.kind == "chat" else "text_completion"
        return sse(
            {"id": self.response_id, "object": obj, "created": self.created, "model": self.model}
            | {"choices": choices}
            | extra
        )

    def delta(self, index: int, *, content: str | None = None, reasoning: str | None = None, role: bool = False) -> str:
        if self.kind == "completion":
            return self.chunk([{"index": index, "text": content or "", "finish_reason": None, "logprobs": None}])
        delta: dict[str, Any] = {"role": "assistant"} if role else {}
        if content is not None:
            delta["content"] = content
        if reasoning is not None:
            delta["reasoning_content"] = reasoning
        return self.chunk([{"index": index, "delta": delta, "finish_reason": None, "logprobs": None}])

    def finish(self, index: int, solution: Solution) -> str:
        info = reasoner_info(solution).model_dump()
        if self.kind == "completion":
            choice = {"index": index, "text": "", "finish_reason": finish_reason(solution), "logprobs": None}
        else:
            choice = {"index": index, "delta": {}, "finish_reason": finish_reason(solution), "logprobs": None}
        return self.chunk([choice], reasoner=info)


async def stream_solves(
    service: SolveService,
    plans: list[SolvePlan],
    writer: StreamWriter,
    include_usage: bool,
    progress_interval_s: float,
) -> AsyncIterator[str]:
    """Run the admitted `plans` and yield their SSE stream (see the module docstring)."""
    progress = [
        _Progress(live=_LiveText(plan.stops) if plan.strategy in LIVE_CONTENT_STRATEGIES else None) for plan in plans
    ]
    wake = asyncio.Event()

    def on_event(index: int, event: SolveEvent) -> None:
        state = progress[index]
        state.phase, state.generated_tokens = event.phase, event.generated_tokens
        state.prompt_tokens, state.requests, state.changed = event.prompt_tokens, event.requests, True
        if state.live is not None and event.phase == "answer":
            state.live.received += event.text
        wake.set()

    tasks = [service.start(plan, on_event=functools.partial(on_event, index)) for index, plan in enumerate(plans)]
    finished: list[Solution | None] = [None] * len(plans)
    try:
        if writer.kind == "chat":
            yield writer.delta(0, content="", role=True)
        last_progress = 0.0
        while any(solution is None for solution in finished):
            waiter = asyncio.ensure_future(wake.wait())
            pending = {task for task, solution in zip(tasks, finished, strict=True) if solution is None}
            await asyncio.wait({waiter, *pending}, timeout=progress_interval_s, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            wake.clear()
            for index, state in enumerate(progress):
                if state.live is not None and (text := state.live.take()):
                    yield writer.delta(index, content=text)
            if time.monotonic() - last_progress >= progress_interval_s:
                last_progress = time.monotonic()
                for index, state in enumerate(progress):
                    if state.changed:
                        state.changed = False
                        yield _progress_comment(index, state)
            for index, task in enumerate(tasks):
                if finished[index] is None and task.done():
                    if task.cancelled():
                        raise APIError(503, "the server shut down before the solve finished", type_="server_error")
                    solution = task.result()
                    finished[index] = solution
                    for piece in _final_pieces(writer, index, plans[index], progress[index], solution):
                        yield piece
        solutions = [solution for solution in finished if solution is not None]
        if include_usage:
            yield writer.chunk([], usage=usage_info(solutions).model_dump())
    except Exception as exc:  # noqa: BLE001 - any failure is reported in the stream, in OpenAI's shape
        yield sse(error_body(as_api_error(exc)))
    finally:
        for task in tasks:
            task.cancel()
    yield "data: [DONE]\n\n"


def _live_text(plan: SolvePlan) -> _LiveText | None:
    return _LiveText(plan.stops) if plan.strategy in LIVE_CONTENT_STRATEGIES else None


def _progress_comment(index: int, state: _Progress) -> str:
    figures = {
        "index": index,
        "phase": state.phase,
        "generated_tokens": state.generated_tokens,
        "prompt_tokens": state.prompt_tokens,
        "requests": state.requests,
    }
    return f": progress {json.dumps(figures)}\n\n"


def _final_pieces(writer: StreamWriter, index: int, plan: SolvePlan, state: _Progress, solution: Solution) -> list[str]:
    pieces = []
    content = cut_at_stops(solution.text, plan.stops)
    if state.live is not None:
        streamed = state.live.received[: state.live.sent]
        if not content.startswith(streamed):
            logger.warning("streamed content of %s is not a prefix of its final text", plan.strategy)
        content = content[len(streamed) :]
    elif writer.kind == "chat" and (reasoning := reasoning_text(solution.trace)):
        pieces.append(writer.delta(index, reasoning=reasoning))
    if content:
        pieces.append(writer.delta(index, content=content))
    pieces.append(writer.finish(index, solution))
    return pieces
