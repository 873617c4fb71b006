"""`entropy_switch` on two scripted models that write the same words with known entropies.

Both models continue ` t0 t1 t2 ...` from wherever the prompt stops, so the response is the same
whoever writes each token; what differs is the entropy each one reports per position (a
two-outcome distribution, LOW or HIGH). `expected_switches` is the rule written out by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reasoner import Budget, CapabilityError, Reasoner, Solution, StrategyError
from reasoner.engines.base import Chunk, Prompt, SamplingSpec
from reasoner.model_set import ModelSpec
from reasoner.testing import ScriptedBackend, ScriptedToken
from strategies.entropy_switch import tokenizer_mismatch
from tests.priced_models import priced

LOW, HIGH = 0.99, 0.5  # probability of the written token; the rest goes to one alternative
WORDS = 30
QUESTION = "Count for me."
_WORD = re.compile(r" t(\d+)")


def binary_entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def writer(levels: Callable[[int], float], words: int = WORDS) -> Callable[[str], list[ScriptedToken]]:
    """A responder that continues ` t<i>` after the last word in the prompt, token i at probability levels(i)."""

    def respond(prompt: str) -> list[ScriptedToken]:
        written = [int(index) for index in _WORD.findall(prompt)]
        begin = max(written) + 1 if written else 0
        return [
            ScriptedToken(f" t{i}", {f" t{i}": math.log(levels(i)), " alt": math.log(1 - levels(i))})
            for i in range(begin, words)
        ]

    return respond


def two_models(
    small_levels: Callable[[int], float],
    large_levels: Callable[[int], float],
    words: int = WORDS,
    cost: bool = False,
    backend: type[ScriptedBackend] = ScriptedBackend,
) -> tuple[Reasoner, ScriptedBackend, ScriptedBackend]:
    small = backend(writer(small_levels, words))
    large = backend(writer(large_levels, words))
    large.tokenizer_ = small.tokenizer_  # one tokenizer, as the strategy requires
    costs = [priced(layers) if cost else None for layers in (2, 8)]
    reasoner = Reasoner(
        models={
            "small": ModelSpec(backend=small, profile="smollm2", cost_model=costs[0]),
            "large": ModelSpec(backend=large, profile="smollm2", cost_model=costs[1]),
        }
    )
    return reasoner, small, large


class Chunky(ScriptedBackend):
    """Streams `SIZE` tokens a chunk, as a busy engine does: an abort lands a few tokens late."""

    SIZE = 3

    async def generate(self, request_id: str, prompt: Prompt, sampling: SamplingSpec) -> AsyncIterator[Chunk]:
        pending: list[Chunk] = []
        async for chunk in super().generate(request_id, prompt, sampling):
            pending.append(chunk)
            if len(pending) == self.SIZE or chunk.finished:
                logprobs = [position for each in pending for position in each.logprobs or ()]
                yield dataclasses.replace(
                    chunk,
                    token_ids=tuple(token for each in pending for token in each.token_ids),
                    text="".join(each.text for each in pending),
                    logprobs=tuple(logprobs) if sampling.logprobs is not None else None,
                )
                pending = []


def expected_switches(
    small: Sequence[float], large: Sequence[float], threshold: float, window: int, min_segment: int
) -> list[int]:
    """Positions where the other model takes over: the rule of the module docstring, by hand.

    A crossing at the response's last token hands nothing over: the response is complete.
    """
    recent: deque[float] = deque(maxlen=window)
    on_small, length, points = True, 0, []
    for position in range(len(small)):
        recent.append(binary_entropy((small if on_small else large)[position]))
        length += 1
        rolling = sum(recent) / window if len(recent) == window else None
        crossed = rolling is not None and ((rolling > threshold) if on_small else (rolling < threshold))
        if crossed and length >= min_segment and position + 1 < len(small):
            points.append(position + 1)
            on_small, length = not on_small, 0
    return points


def solve(reasoner: Reasoner, budget: int = 400, **options: Any) -> Solution:
    return reasoner.solve(QUESTION, budget=Budget(tokens=budget), strategy="entropy_switch", **options)


def switch_points(solution: Solution) -> list[int]:
    text = str(solution.metrics["switch_points"])
    return [int(point) for point in text.split(",")] if text else []


def segments(solution: Solution) -> list[dict[str, Any]]:
    return [data for _, data in sorted(solution.trace.nodes(data=True)) if data["kind"] == "answer"]


def count(solution: Solution, metric: str) -> int:
    value = solution.metrics[metric]
    assert isinstance(value, int)
    return value


def small_then_high(position: int) -> float:
    return HIGH if position >= 6 else LOW


def test_the_large_model_takes_over_at_the_token_where_the_rolling_entropy_passes_the_threshold() -> None:
    reasoner, small, large = two_models(small_then_high, lambda position: LOW)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=2)
    # Rolling means of 3: tokens 5..7 are L, H, H = 0.481 > 0.4 (4..6 were 0.268): the large model
    # writes from token 8; its L at 8 leaves H, H, L = 0.481, and at 9 H, L, L = 0.268 < 0.4: back at 10.
    assert switch_points(solution)[:3] == [8, 10, 12]
    assert switch_points(solution) == expected_switches(
        [small_then_high(i) for i in range(WORDS)], [LOW] * WORDS, 0.4, 3, 2
    )
    assert solution.text == "".join(f" t{i}" for i in range(WORDS))
    # The large model continues from the small model's exact token ids.
    first_large = large.requests[0]
    assert first_large.prompt_token_ids == small.requests[0].prompt_token_ids + tuple(
        small.tokenizer_.encode("".join(f" t{i}" for i in range(8)))
    )
    nodes = segments(solution)
    assert [node["model"] for node in nodes[:3]] == ["small", "large", "small"]
    assert [node["kept_tokens"] for node in nodes[:2]] == [8, 2]
    assert nodes[0]["switch_entropy"] == pytest.approx((binary_entropy(LOW) + 2 * binary_entropy(HIGH)) / 3)
    assert nodes[1]["switch_entropy"] == pytest.approx((binary_entropy(HIGH) + 2 * binary_entropy(LOW)) / 3)
    assert nodes[-1]["switch_entropy"] is None and solution.metrics["finish_reason"] == "stop"


def test_min_segment_keeps_each_model_writing_for_that_many_tokens() -> None:
    reasoner, _, _ = two_models(small_then_high, lambda position: LOW)
    flapping = switch_points(solve(reasoner, threshold=0.4, window=3, min_segment=2))
    reasoner, _, _ = two_models(small_then_high, lambda position: LOW)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=4)
    steady = switch_points(solution)
    assert steady == expected_switches([small_then_high(i) for i in range(WORDS)], [LOW] * WORDS, 0.4, 3, 4)
    assert steady[:2] == [8, 12]
    assert all(later - earlier >= 4 for earlier, later in itertools.pairwise(steady))
    assert len(steady) < len(flapping)
    assert all(node["kept_tokens"] >= 4 for node in segments(solution)[:-1])


def test_the_large_model_keeps_writing_while_its_own_rolling_entropy_stays_high() -> None:
    reasoner, _, _ = two_models(small_then_high, lambda position: HIGH if position < 20 else LOW)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=2)
    # The large model is unsure up to token 19; rolling 19..21 = H, L, L falls below at 21: back at 22.
    # The crossing at the last token (30) hands nothing over: the response ends there.
    assert switch_points(solution) == [8, 22, 24, 26, 28]
    assert solution.metrics["large_tokens"] == 14 + 2 + 2
    assert solution.metrics["small_tokens"] == WORDS - 18
    assert solution.metrics["large_share"] == pytest.approx(18 / WORDS)
    assert solution.metrics["switches"] == 5 and solution.metrics["segments"] == 6
    assert solution.metrics["finish_reason"] == "stop"


def test_a_calm_small_model_writes_everything() -> None:
    reasoner, _, large = two_models(lambda position: LOW, lambda position: LOW)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=2)
    assert switch_points(solution) == [] and large.requests == []
    assert solution.metrics["small_tokens"] == WORDS and solution.metrics["large_share"] == 0.0


def test_cost_is_what_the_ledger_spent_and_is_compared_with_the_large_model_alone() -> None:
    reasoner, small, _ = two_models(small_then_high, lambda position: LOW, cost=True)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=4)
    metrics, spent = solution.metrics, solution.usage.cost
    assert spent is not None and metrics["cost"] == spent
    prompt = len(small.requests[0].prompt_token_ids)
    alone = priced(8).eflops(prompt, 0, WORDS)
    assert metrics["large_alone_cost"] == alone
    assert metrics["cost_saved"] == pytest.approx(1 - spent / alone)
    unpriced, _, _ = two_models(small_then_high, lambda position: LOW)
    plain = solve(unpriced, threshold=0.4, window=3, min_segment=4)
    assert plain.metrics["cost"] is None and plain.metrics["cost_saved"] is None
    assert plain.metrics["small_tokens"] == metrics["small_tokens"]


def test_tokens_the_engine_made_past_the_switch_are_dropped_and_still_counted() -> None:
    reasoner, _, _ = two_models(small_then_high, lambda position: LOW, cost=True, backend=Chunky)
    solution = solve(reasoner, threshold=0.4, window=3, min_segment=4)
    assert switch_points(solution) == expected_switches(
        [small_then_high(i) for i in range(WORDS)], [LOW] * WORDS, 0.4, 3, 4
    )
    assert solution.text == "".join(f" t{i}" for i in range(WORDS))
    overshoot = count(solution, "overshoot_tokens")
    assert overshoot > 0
    assert count(solution, "small_tokens") + count(solution, "large_tokens") + overshoot == (
        solution.usage.generated_tokens
    )
    assert solution.metrics["cost"] == solution.usage.cost
    nodes = segments(solution)
    assert sum(node["tokens"] - node["kept_tokens"] for node in nodes) == overshoot


LEVELS = st.lists(st.sampled_from([LOW, HIGH]), min_size=40, max_size=40)


@settings(max_examples=40, deadline=None)
@given(budget=st.integers(min_value=4, max_value=60), small=LEVELS, large=LEVELS)
@example(budget=42, small=[LOW] * 38 + [HIGH] * 2, large=[LOW] * 40)  # crosses at the last token: no switch
def test_the_budget_holds_across_both_models(budget: int, small: list[float], large: list[float]) -> None:
    reasoner, _, _ = two_models(small.__getitem__, large.__getitem__, words=40, backend=Chunky)
    solution = solve(reasoner, budget=budget, threshold=0.4, window=2, min_segment=3)
    usage = solution.usage
    assert usage.generated_tokens <= budget
    assert sum(each.generated_tokens for each in usage.by_model.values()) == usage.generated_tokens
    kept = count(solution, "small_tokens") + count(solution, "large_tokens")
    assert kept + count(solution, "overshoot_tokens") == usage.generated_tokens
    # Cut short by the budget, the switches made are the first ones of the unbounded run.
    expected = expected_switches(small, large, 0.4, 2, 3)
    assert switch_points(solution) == expected[: len(switch_points(solution))]
    assert all(point <= kept for point in switch_points(solution))
    # A switch may overshoot by a chunk: the crossing's segment waits for the next token before aborting.
    if budget >= 40 + Chunky.SIZE * len(expected):
        assert switch_points(solution) == expected


def test_models_with_different_tokenizers_are_refused() -> None:
    small, large = ScriptedBackend("a"), ScriptedBackend("b")
    small.tokenizer_.encode(" x")
    large.tokenizer_.encode(" y")  # same size, same end-of-sequence id, a different token 1
    reasoner = Reasoner(models={"small": {"backend": small}, "large": {"backend": large}})
    with pytest.raises(CapabilityError, match=r"share a tokenizer; theirs differ: token ids 0-\d+ decode to different"):
        solve(reasoner)
    assert small.requests == [] and large.requests == []
    size = small.tokenizer_.vocab_size
    large.tokenizer_.encode(" z")
    assert tokenizer_mismatch(small.tokenizer_, large.tokenizer_) == f"vocabularies of {size} and {size + 1} tokens"
    assert tokenizer_mismatch(small.tokenizer_, small.tokenizer_) is None


def test_one_model_is_refused_saying_so() -> None:
    reasoner = Reasoner(backend=ScriptedBackend(writer(lambda position: LOW)), profile="smollm2")
    with pytest.raises(CapabilityError, match="needs two models"):
        solve(reasoner)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"small": "huge"}, "option small='huge' names no model"),
        ({"large": "tiny"}, "option large='tiny' names no model"),
        ({"small": "small", "large": "small"}, "options small and large both name 'small'"),
        ({"small": "large", "large": "large"}, "options small and large both name 'large'"),
        ({"top_k": 21}, "option top_k=21"),
        ({"threshold": 0}, "option threshold=0"),
        ({"threshold": float("nan")}, "option threshold=nan"),
        ({"window": 0}, "option window=0"),
        ({"min_segment": 0}, "option min_segment=0"),
        ({"top_k": 1}, "option top_k=1"),
    ],
)
def test_bad_options_are_refused_naming_the_option(options: dict[str, Any], message: str) -> None:
    reasoner, small, _ = two_models(lambda position: LOW, lambda position: LOW)
    with pytest.raises(StrategyError, match=re.escape(message)):
        solve(reasoner, **options)
    assert small.requests == []


def test_the_small_and_large_options_pick_the_models() -> None:
    reasoner, small, large = two_models(lambda position: LOW, lambda position: LOW)
    solution = solve(reasoner, small="large", large="small", threshold=0.4, window=3, min_segment=2)
    assert small.requests == [] and len(large.requests) == 1
    assert solution.metrics["small_tokens"] == WORDS and set(solution.usage.by_model) == {"large"}


def test_naming_one_model_picks_the_other_as_its_partner() -> None:
    reasoner, small, large = two_models(lambda position: LOW, lambda position: LOW)
    solution = solve(reasoner, large="small", threshold=0.4, window=3, min_segment=2)
    assert small.requests == [] and len(large.requests) == 1  # "large" writes, "small" stands by
    assert solution.metrics["small_tokens"] == WORDS


def test_runs_under_asyncio() -> None:
    reasoner, _, _ = two_models(small_then_high, lambda position: LOW)
    solution = asyncio.run(
        reasoner.asolve(QUESTION, budget=400, strategy="entropy_switch", threshold=0.4, window=3, min_segment=2)
    )
    assert switch_points(solution)[:1] == [8]
