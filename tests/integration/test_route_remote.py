"""`route` on two names of the shared `vllm serve` (one server, no new start), lengths forced.

A hand-built routing policy bins on the `probe` estimator with a probe over one feature the model
does not write, the prompt's digit count: a prompt with few digits is easy and runs `direct` on
`small`, one with many is hard and runs `direct` on `large`. The estimate runs on `small` (the
default model) either way. Lengths are forced, so every request runs to its `max_tokens`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controllers.estimators import EstimatorSpec
from controllers.policy import Choice, Policy
from controllers.probe import Probe
from reasoner import Budget, Reasoner
from reasoner.engines.vllm_server import VLLMServer
from tests.integration.test_entropy_switch_remote import Recorded

pytestmark = pytest.mark.engine

EASY = "What is 2 + 3?"
HARD = "What is 48213 * 9172 - 3315 + 20417?"
ESTIMATE_TOKENS = 8  # the probe estimator's greedy tokens
ANSWER_TOKENS = {"small": 16, "large": 24}
BUDGET = Budget(tokens=64, cost=1e13)


def routing_policy(folder: Path) -> str:
    """easy/normal: direct on small; hard: direct on large. P(wrong) = sigmoid(digits - 5)."""
    probe = Probe(("prompt_digits",), np.array([1.0]), 0.0, np.array([5.0]), np.array([1.0]))
    small = Choice("direct", ANSWER_TOKENS["small"], model="small")
    large = Choice("direct", ANSWER_TOKENS["large"], model="large")
    choices = {"easy": small, "normal": small, "hard": large}
    curves = {name: [choice] for name, choice in choices.items()}
    policy = Policy((1 / 3, 2 / 3), choices, curves, estimator=EstimatorSpec("probe", probe), source="hand")
    path = folder / "route.json"
    policy.save(path)
    return str(path)


async def test_route_sends_each_prompt_to_its_bins_model(vllm_server: VLLMServer, tmp_path: Path) -> None:
    reasoner = Reasoner(models={"small": {"endpoint": vllm_server.url}, "large": {"endpoint": vllm_server.url}})
    remotes = {name: target.backend for name, target in reasoner.models.items()}
    recorders = {name: Recorded(backend) for name, backend in remotes.items()}
    for name, target in reasoner.models.items():
        target.backend = recorders[name]
    policy_file = routing_policy(tmp_path)
    try:
        easy = await reasoner.asolve(EASY, BUDGET, "route", policy_file=policy_file)
        small_requests = set(recorders["small"].tokens)
        assert recorders["large"].tokens == {}
        hard = await reasoner.asolve(HARD, BUDGET, "route", policy_file=policy_file)
    finally:
        await reasoner.aclose()
        for remote in remotes.values():
            await remote.close()
    assert (easy.metrics["difficulty_bin"], easy.metrics["chosen_model"]) == ("easy", "small")
    assert (hard.metrics["difficulty_bin"], hard.metrics["chosen_model"]) == ("hard", "large")
    assert list(easy.usage.by_model) == ["small"]
    assert easy.usage.by_model["small"].generated_tokens == ESTIMATE_TOKENS + ANSWER_TOKENS["small"]
    assert hard.usage.by_model["small"].generated_tokens == ESTIMATE_TOKENS
    assert hard.usage.by_model["large"].generated_tokens == ANSWER_TOKENS["large"]
    # The hard prompt's answer went to the large name, its estimate to the small one: one request each.
    assert len(recorders["large"].tokens) == 1 and len(set(recorders["small"].tokens) - small_requests) == 1
    assert sum(recorders["large"].tokens.values()) == ANSWER_TOKENS["large"]
    for solution in (easy, hard):
        usage = solution.usage
        assert usage.generated_tokens <= BUDGET.tokens
        assert usage.cost is not None and BUDGET.cost is not None and usage.cost <= BUDGET.cost
        assert usage.cost == sum(model.cost or 0 for model in usage.by_model.values())
