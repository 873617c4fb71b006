"""Server-sent events for streamed completions: progress, reasoning and content deltas, usage.

What a stream carries, in order:
- chat: a first chunk with the assistant role;
- progress as SSE comments (`: progress {"index", "phase", "generated_tokens",
  "prompt_tokens", "requests"}`), at most every `progress_interval_s` while tokens flow;
  OpenAI clients skip comments, so nothing breaks for them;
- live deltas where one chain carries the answer (`direct`, `elastic`, `mode`, and the explicit
  thinking `latent_switch` keeps; `server.live_chain`): the thinking as `reasoning_content`
  deltas while it is generated, then the answer as `content` deltas (as vLLM's reasoning
  parsers split them). A delta is sent only once no later token can change it (a stop string,
  the end-of-thinking delimiter or trailing whitespace the final text drops may still be
  coming), so the deltas concatenate to the non-streamed message;
- for the other strategies the answer is known only when the solve ends (which sample wins),
  so their `reasoning_content` and `content` come in one delta each then, the chosen chain's;
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
from reasoner.profiles import ModelProfile
from server.errors import APIError, as_api_error, error_body
from server.live_chain import LiveChain, content_shape
from server.responses import cut_at_stops, finish_reason, reasoner_info, reasoning_text, usage_info
from server.selection import SolvePlan
from server.service import SolveService

StreamKind = Literal["chat", "completion"]
logger = logging.getLogger("reasoner.server")


@dataclass
class _Progress:
    phase: str = "queued"
    generated_tokens: int = 0
    prompt_tokens: int = 0
    requests: int = 0
    changed: bool = False
    live: LiveChain | None = None
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
    profiles: list[ModelProfile],
) -> AsyncIterator[str]:
    """Run the admitted `plans` (`profiles`: each one's model's) and yield their SSE stream (see the docstring)."""
    progress = [_Progress(live=_live_chain(plan, profile)) for plan, profile in zip(plans, profiles, strict=True)]
    wake = asyncio.Event()

    def on_event(index: int, event: SolveEvent) -> None:
        state = progress[index]
        state.phase, state.generated_tokens = event.phase, event.generated_tokens
        state.prompt_tokens, state.requests, state.changed = event.prompt_tokens, event.requests, True
        if state.live is not None:
            state.live.add(event)
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
                for piece in _live_pieces(writer, index, state.live):
                    yield piece
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


def _live_chain(plan: SolvePlan, profile: ModelProfile) -> LiveChain | None:
    shape = content_shape(plan, profile)
    return None if shape is None else LiveChain(shape, plan.stops)


def _live_pieces(writer: StreamWriter, index: int, live: LiveChain | None) -> list[str]:
    """The reasoning and content deltas that became settled since the last call."""
    if live is None:
        return []
    pieces = []
    if (reasoning := live.take_reasoning()) and writer.kind == "chat":
        pieces.append(writer.delta(index, reasoning=reasoning))
    if content := live.take_content():
        pieces.append(writer.delta(index, content=content))
    return pieces


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
    """What is left of the message when the solve ends (all of it, where nothing was live), then the finish."""
    pieces = []
    content = cut_at_stops(solution.text, plan.stops)
    reasoning = reasoning_text(solution.trace) or ""
    if state.live is not None:
        reasoning, content, consistent = state.live.rest(reasoning, content)
        if not consistent:
            logger.warning("streamed text of %s is not a prefix of its final message", plan.strategy)
    if reasoning and writer.kind == "chat":
        pieces.append(writer.delta(index, reasoning=reasoning))
    if content:
        pieces.append(writer.delta(index, content=content))
    pieces.append(writer.finish(index, solution))
    return pieces
