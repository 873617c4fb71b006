"""Step-wise paths on shared prefixes, as `tree_search` and `particle_filter` grow them.

A step is one request whose prompt is the question's prompt ids plus every earlier step's
generated ids, and which stops at the profile's step delimiter. `ends_path` says when a
step finishes its path (the model ended its reply, or the step wrote an answer: a marker or
a boxed value; for code, a closed fence). `score_path` scores a path with a `Scorer`:
self-evaluation on the path's exact token ids (a cached prefix), any other scorer on text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reasoner import BudgetExhausted, EngineError, Generation, Session
from reasoner.extract import answer_after_marker, last_boxed
from strategies.scoring import Scorer, SelfEvalScorer


def writes_answer(answer_format: str, step_text: str) -> bool:
    """True when a step's text holds a final answer in the given format."""
    if answer_format == "code":
        return step_text.count("```") >= 2
    return last_boxed(step_text) is not None or answer_after_marker(step_text) is not None


def ends_path(session: Session, generation: Generation) -> bool:
    """True when the step in `generation` finishes its path."""
    text = generation.text
    ended_by_model = generation.finish_reason == "stop" and not text.endswith(session.profile.step_delimiter)
    return ended_by_model or writes_answer(session.answer_format, text)


async def score_path(
    scorer: Scorer,
    session: Session,
    question: str,
    prompt_ids: Sequence[int],
    path_ids: Sequence[int],
    path_text: str,
    node: int,
) -> float | None:
    """The path's score in [0, 1], or None when the scorer raised or gave no such number.

    `BudgetExhausted` (no token left for a self-evaluation) and `EngineError` propagate.
    """
    try:
        if isinstance(scorer, SelfEvalScorer):
            value = await scorer.score_ids(session, prompt_ids, path_ids, parent=node)
        else:
            value = await scorer.score(session, question, path_text, parent=node)
    except (BudgetExhausted, EngineError):
        raise
    except Exception:  # noqa: BLE001 - a user scorer may raise anything; the path scores lowest
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        return None
    return float(value)
