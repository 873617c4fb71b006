"""A solve's wall-clock deadline (`Budget.deadline_s`): cut what runs, still give an answer.

After the deadline no new request starts, except a strategy's one final answer request
(`Session.start(..., final=True)`), so elastic still forces its answer. `result_by_deadline`
aborts a running request when the deadline passes. A strategy that the deadline stops
anywhere else ends with `deadline_outcome`: the answer found in the text generated so far,
with `deadline_reached` in its metrics. A solve stopped by its cost cap (`Budget.cost`) ends
the same way, with `cost_cap_reached`.
"""

from __future__ import annotations

import asyncio
import time

from reasoner.session import Generation, RunningRequest, Session
from reasoner.strategy import Outcome


def seconds_left(session: Session) -> float | None:
    """Seconds until the solve's deadline (0 once passed), or None when it has none."""
    deadline_s = session.budget.deadline_s
    if deadline_s is None:
        return None
    return max(0.0, deadline_s - (time.monotonic() - session.ledger.started_at))


async def result_by_deadline(session: Session, running: RunningRequest) -> tuple[Generation, bool]:
    """Wait for `running`; abort it when the deadline passes. Returns (generation, cut by the deadline)."""
    left = seconds_left(session)
    if left is None:
        return await running.result(), False
    waiter = asyncio.ensure_future(running.result())
    done, _ = await asyncio.wait([waiter], timeout=left)
    if done:
        return waiter.result(), False
    generation = await running.abort()
    await asyncio.gather(waiter, return_exceptions=True)
    return generation, generation.finish_reason == "abort"


def deadline_outcome(session: Session) -> Outcome:
    """The best answer a solve stopped by its deadline can give: the one in its latest text."""
    texts = [str(text) for _, text in session.trace.graph.nodes(data="text") if text]
    text = texts[-1] if texts else ""
    return Outcome(
        text=text.strip(),
        answer=session.extract_answer(text) if text else None,
        metrics={"deadline_reached": True, "ended_by_deadline": True},
    )


def cost_cap_outcome(session: Session) -> Outcome:
    """The best answer a solve stopped by its cost cap can give: the one in its latest text."""
    cut = deadline_outcome(session)
    return Outcome(text=cut.text, answer=cut.answer, metrics={"cost_cap_reached": True})
