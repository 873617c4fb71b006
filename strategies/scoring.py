"""Scorers: how good a (partial) response looks, as a number in [0, 1], higher is better.

`SelfEvalScorer` is the capability-aware self-evaluation of Adaptive Inference-Time Compute
(Manvi et al., 2024): after the response, a new user turn asks the model whether it would do
better if it started over; one generated token, read through its top-20 log-probabilities,
gives P("No") renormalised over the Yes/No spellings, which is the score. The score request
is the sample's own token ids plus a short suffix, so it is one cached prefill plus one token.

`FunctionScorer` wraps a plain function of (question, response). Scorers are found by name
through a small registry (`get_scorer`, `register_scorer`), so strategies take them as options.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from reasoner import Generation, Session, StrategyError
from reasoner.engines.base import Tokenizer

SELF_EVAL_QUESTION = 'Would you do better if you started over? ("Yes." or "No.")'
NEUTRAL_SCORE = 0.5
TOP_LOGPROBS = 20
_YES_SPELLINGS = ("Yes", " Yes", "yes", " yes", "YES", " YES")
_NO_SPELLINGS = ("No", " No", "no", " no", "NO", " NO")
_MARK = "\x00RESPONSE\x00"


@runtime_checkable
class Scorer(Protocol):
    """Scores a response to a question; the value is in [0, 1] and higher is better."""

    name: str

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        """Score `response` (complete or partial) to `question`; `parent` is its trace node."""
        ...


class SelfEvalScorer:
    """P("No") to "would you do better if you started over?", read from one generated token.

    Each score is one request of one token in the ledger phase `evaluation`, a trace segment of
    kind `eval` carrying `score` and `score_fallback`. When no Yes/No spelling is among the
    top log-probabilities the score is 0.5 and the segment is marked as a fallback.
    """

    name = "self_eval"

    def __init__(self, question_text: str = SELF_EVAL_QUESTION):
        if not question_text.strip():
            raise StrategyError("the self-evaluation question_text is empty; pass a Yes/No question")
        self.question_text = question_text
        self._suffixes: dict[int, str] = {}
        self._answer_ids: dict[int, tuple[frozenset[int], frozenset[int]]] = {}

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        """Score a response given as text; the prompt is rebuilt the way `direct` builds it."""
        prompt = session.profile.build_prompt(
            session.tokenizer, question, thinking=False, answer_format=session.answer_format
        )
        return await self.score_ids(session, session.encode(prompt), session.encode(response), parent=parent)

    async def score_generation(self, session: Session, generation: Generation, upto: int | None = None) -> float:
        """Score a generation (its first `upto` tokens) on its own token ids: an exact cached prefix."""
        response_ids = generation.token_ids if upto is None else generation.token_ids[:upto]
        return await self.score_ids(session, generation.prompt_token_ids, response_ids, parent=generation.node)

    async def score_ids(
        self, session: Session, prompt_ids: Sequence[int], response_ids: Sequence[int], *, parent: int | None = None
    ) -> float:
        """Score the response `response_ids` to the prompt `prompt_ids` with one one-token request."""
        response = list(response_ids)
        while response and response[-1] in session.tokenizer.eos_token_ids:
            response.pop()
        suffix_ids = session.encode(self._suffix(session.tokenizer))
        top = min(TOP_LOGPROBS, session.backend.capabilities.max_logprobs)
        generation = await session.generate(
            [*prompt_ids, *response, *suffix_ids],
            max_tokens=1,
            phase="evaluation",
            kind="eval",
            parent=parent,
            logprobs=top,
            scorer=self.name,
            scored_tokens=len(response),
        )
        score, fallback = self._read(session.tokenizer, generation)
        session.trace.update(generation.node, score=score, score_fallback=fallback)
        return score

    def _read(self, tokenizer: Tokenizer, generation: Generation) -> tuple[float, bool]:
        if not generation.logprobs:
            return NEUTRAL_SCORE, True
        yes_ids, no_ids = self._yes_no_ids(tokenizer)
        top = generation.logprobs[0]
        yes = sum(math.exp(logprob) for token, logprob in top.items() if token in yes_ids)
        no = sum(math.exp(logprob) for token, logprob in top.items() if token in no_ids)
        if yes + no == 0.0:
            return NEUTRAL_SCORE, True
        return no / (yes + no), False

    def _suffix(self, tokenizer: Tokenizer) -> str:
        key = id(tokenizer)
        if key not in self._suffixes:
            self._suffixes[key] = follow_up_turn(tokenizer, self.question_text)
        return self._suffixes[key]

    def _yes_no_ids(self, tokenizer: Tokenizer) -> tuple[frozenset[int], frozenset[int]]:
        """First-token ids of every Yes and No spelling that starts with a whole yes/no token."""
        key = id(tokenizer)
        if key not in self._answer_ids:
            self._answer_ids[key] = (_first_tokens(tokenizer, _YES_SPELLINGS), _first_tokens(tokenizer, _NO_SPELLINGS))
        return self._answer_ids[key]


def follow_up_turn(tokenizer: Tokenizer, message: str) -> str:
    """Text that ends the assistant's turn, adds `message` as a user turn and opens the next reply.

    Rendered by the model's own chat template, so appending it to a response's token ids asks
    a follow-up question without re-encoding (or re-computing) the response.
    """
    rendered = tokenizer.chat_prompt(
        [
            {"role": "user", "content": "question"},
            {"role": "assistant", "content": _MARK},
            {"role": "user", "content": message},
        ]
    )
    return rendered.split(_MARK, 1)[1]


def _first_tokens(tokenizer: Tokenizer, spellings: Sequence[str]) -> frozenset[int]:
    found = set()
    for spelling in spellings:
        ids = tokenizer.encode(spelling)
        if ids and tokenizer.decode(ids[:1]).strip().lower() == spelling.strip().lower():
            found.add(ids[0])
    return frozenset(found)


class FunctionScorer:
    """A scorer from a plain function `fn(question, response) -> float in [0, 1]`.

    The function runs in a worker thread, so a slow grader does not block the event loop.
    """

    def __init__(self, fn: Callable[[str, str], float], name: str = "function"):
        self.fn = fn
        self.name = name

    async def score(self, session: Session, question: str, response: str, *, parent: int | None = None) -> float:
        value = await asyncio.to_thread(self.fn, question, response)
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise StrategyError(f"scorer {self.name!r} returned {value!r}; a score must be a number in [0, 1]")
        return float(value)


async def score_generation(
    scorer: Scorer, session: Session, question: str, generation: Generation, upto: int | None = None
) -> float:
    """Score a generation (its first `upto` tokens): on its token ids where the scorer can, else on text."""
    if isinstance(scorer, SelfEvalScorer):
        return await scorer.score_generation(session, generation, upto)
    token_ids = generation.token_ids if upto is None else generation.token_ids[:upto]
    return await scorer.score(session, question, session.tokenizer.decode(token_ids), parent=generation.node)


def evaluation_counts(session: Session) -> tuple[int, int]:
    """(self-evaluation requests, of which fallbacks to 0.5) recorded in the session's trace."""
    requests = fallbacks = 0
    for _, attrs in session.trace.graph.nodes(data=True):
        if attrs["kind"] == "eval" and attrs.get("scorer") == SelfEvalScorer.name:
            requests += 1
            fallbacks += bool(attrs.get("score_fallback", False))
    return requests, fallbacks


_SCORERS: dict[str, Callable[[], Scorer]] = {SelfEvalScorer.name: SelfEvalScorer}


def register_scorer(name: str, factory: Callable[[], Scorer]) -> None:
    """Make a scorer available by `name`; `factory` builds a fresh one for each use."""
    _SCORERS[name] = factory


def scorer_names() -> list[str]:
    """Names of every registered scorer."""
    return sorted(_SCORERS)


def get_scorer(name_or_scorer: str | Scorer) -> Scorer:
    """A fresh scorer registered under a name, or the given scorer object unchanged."""
    if isinstance(name_or_scorer, str):
        try:
            return _SCORERS[name_or_scorer]()
        except KeyError:
            raise StrategyError(
                f"unknown scorer {name_or_scorer!r}; known: {', '.join(scorer_names())}"
                " (add one with strategies.scoring.register_scorer)"
            ) from None
    if isinstance(name_or_scorer, Scorer):
        return name_or_scorer
    raise StrategyError(
        f"a scorer must be a registered name or have `name` and an async `score`, got {name_or_scorer!r}"
    )
