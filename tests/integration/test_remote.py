"""Every strategy over real `vllm serve` processes of the embedded model: one server, then two replicas.

Usage is exact over HTTP: the sum of the solves' generated tokens equals the servers' own
`vllm:generation_tokens_total` delta.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reasoner import Budget, EngineError, Reasoner, Session, Solution
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.vllm_server import VLLMServer
from reasoner.models import resolve_model
from reasoner.tokenizer import HFTokenizer
from strategies.scoring_prm import PRMFormat, PRMScorer
from strategies.soft_tokens import PrefixEmbeds, soft_embedding, top_k_distribution

pytestmark = pytest.mark.engine

GENERATED = "vllm:generation_tokens_total"
QUESTION = "What is 12 + 30?"
STRATEGIES: dict[str, dict[str, Any]] = {
    "direct": {},
    "elastic": {},
    "mode": {"mode": "low"},
    # The model's thinking opens with "1" (of "12"), a digit, which SwiReasoning's `explicit_math` safeguard
    # feeds as that token (a math step, not a latent one); the entropy then drops and the rule goes explicit,
    # so by default no soft token is sent. Without the safeguard that first step (the start mode is latent)
    # is a soft token sent as prompt embeddings: latent steps really run over the endpoint.
    "latent_switch": {"explicit_math": False},
    "self_eval": {},
    "self_consistency": {"n": 4},
    "parallel": {},
    # ETS's sentence model is a local pooling engine whatever the backend: started here on this test's loop it
    # would start again on the shared engine's loop (~30 s each); its clustering has engine tests of its own.
    "tree_search": {"selection": "rebase"},
    "auto": {},
}


async def generated_on_servers(reasoner: Reasoner) -> dict[str, float]:
    backend = reasoner.backend
    assert isinstance(backend, RemoteBackend)
    return {url: counters[GENERATED] for url, counters in (await backend.server_metrics()).items()}


async def test_every_strategy_runs_over_an_endpoint_and_usage_equals_the_server_counter(
    vllm_server: VLLMServer,
) -> None:
    async with Reasoner(endpoint=vllm_server.url) as reasoner:
        await reasoner.astart()
        assert reasoner.model_name == "smollm2-135m-instruct"
        assert reasoner.backend.capabilities.prompt_embeds
        before = await generated_on_servers(reasoner)
        # All at once: one run of decode steps on the CPU server instead of one run per strategy.
        solved = await asyncio.gather(
            *(reasoner.asolve(QUESTION, budget=160, strategy=name, **options) for name, options in STRATEGIES.items())
        )
        solutions = dict(zip(STRATEGIES, solved, strict=True))
        after = await generated_on_servers(reasoner)
    for name, solution in solutions.items():
        assert 0 < solution.usage.generated_tokens <= 160, name
    assert solutions["self_consistency"].usage.cached_prompt_tokens > 0  # samples share the prompt's KV
    assert int(solutions["latent_switch"].metrics["latent_steps"] or 0) > 0  # soft tokens went over the endpoint
    spent = sum(solution.usage.generated_tokens for solution in solutions.values())
    assert spent == after[vllm_server.root_url] - before[vllm_server.root_url]


async def test_latent_steps_over_the_endpoint_compute_one_row_each(vllm_server: VLLMServer) -> None:
    async with Reasoner(endpoint=vllm_server.url) as reasoner:
        await reasoner.astart()
        backend = reasoner.backend
        embeddings = await backend.input_embeddings()
        session = Session(backend, backend.tokenizer(), reasoner.profile, Budget(tokens=10_000))
        prefix = PrefixEmbeds(embeddings.shape[1])
        prefix.append(embeddings[session.encode(" ".join(str(number) for number in range(60)))])
        computed = []
        for _ in range(5):
            step = await session.generate(prefix.view(), max_tokens=1, phase="thinking", kind="step", logprobs=5)
            assert step.logprobs is not None
            computed.append(step.prompt_tokens - step.cached_prompt_tokens)
            prefix.append(soft_embedding(embeddings, top_k_distribution(step.logprobs[0], 5), 1.0))
    assert computed[0] > 32 and computed[1:] == [1, 1, 1, 1]  # the tail connector on the server


async def test_the_servers_tokenizer_renders_and_encodes_like_the_local_one(vllm_server: VLLMServer) -> None:
    backend = RemoteBackend(vllm_server.url, tokenizer="server")
    async with Reasoner(backend=backend, profile="smollm2") as reasoner:
        await reasoner.astart()
        remote = backend.tokenizer()
        local = HFTokenizer(resolve_model(None).source)
        messages = [{"role": "user", "content": QUESTION}]
        rendered = local.chat_prompt(messages)
        assert remote.chat_prompt(messages) == rendered
        assert remote.encode(rendered) == local.encode(rendered)
        assert remote.decode(local.encode(rendered)) == rendered
        solution = await reasoner.asolve(QUESTION, budget=64)
    assert solution.usage.generated_tokens > 0


async def test_tree_search_scores_with_a_prm_served_by_a_pooling_endpoint(
    vllm_server: VLLMServer, prm_server: VLLMServer
) -> None:
    plus_minus = PRMFormat("plus-minus", step_tag=" ки", chat=False, classifier_tokens=("-", "+"))
    scorer = PRMScorer(resolve_model(None).source, prm_format=plus_minus, endpoint=prm_server.url, name="remote_prm")
    rewards, prompt_tokens = await scorer.step_rewards("What is 2 + 3?", ["2 + 3 = 5.", "So 5.", "Answer: 5"])
    assert len(rewards) == 3 and all(0.0 <= reward <= 1.0 for reward in rewards)
    assert prompt_tokens > 10
    async with Reasoner(endpoint=vllm_server.url) as reasoner:
        solution = await reasoner.asolve(
            "What is 7 + 5?",
            200,
            "tree_search",
            scorer=scorer,
            selection="rebase",  # the PRM's scores are the point; ETS would start its sentence model here
            width=2,
            max_depth=2,
            step_tokens=24,
        )
    evals = [attrs for _, attrs in solution.trace.nodes(data=True) if attrs.get("scorer") == "remote_prm"]
    assert evals and solution.metrics["scorer_errors"] == 0


async def test_two_replicas_are_both_used_and_their_counters_sum_to_the_usage(
    vllm_server: VLLMServer, second_vllm_server: VLLMServer
) -> None:
    async with Reasoner(endpoint=[vllm_server.url, second_vllm_server.url]) as reasoner:
        await reasoner.astart()
        before = await generated_on_servers(reasoner)
        prompts = [f"What is {index} + {index + 3}?" for index in range(6)]
        solutions = await reasoner.asolve_many(
            prompts, budget=96, strategy="self_consistency", budget_per_prompt=True, n=3
        )
        after = await generated_on_servers(reasoner)
        backend = reasoner.backend
        assert isinstance(backend, RemoteBackend)
        assert all(replica.requests_sent > 0 for replica in backend.replicas)
    spent = sum(solution.usage.generated_tokens for solution in solutions)
    assert spent == sum(after.values()) - sum(before.values())
    assert all(after[url] > before[url] for url in before)


async def test_a_replica_killed_mid_run_gives_typed_errors_at_most_and_the_other_goes_on(
    vllm_server: VLLMServer, second_vllm_server: VLLMServer
) -> None:
    budget = 600
    async with Reasoner(endpoint=[vllm_server.url, second_vllm_server.url]) as reasoner:
        await reasoner.astart()
        backend = reasoner.backend
        assert isinstance(backend, RemoteBackend)
        prompts = ["Count from 1 to 300, one number per line."] * 8
        calls = [asyncio.ensure_future(reasoner.asolve(prompt, budget=budget)) for prompt in prompts]
        while backend.replicas[1].in_flight == 0 and not all(call.done() for call in calls):
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # let its requests stream a while
        second_vllm_server.kill()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        after = await reasoner.asolve(QUESTION, budget=64)
        assert backend.replicas[1].requests_sent > 0
        assert not backend.replicas[1].is_up
    assert all(isinstance(outcome, (Solution, EngineError)) for outcome in outcomes), outcomes
    assert any(isinstance(outcome, Solution) for outcome in outcomes)
    for outcome in outcomes:
        if isinstance(outcome, Solution):
            assert outcome.usage.generated_tokens <= budget
    assert after.usage.generated_tokens > 0


def test_the_cli_solves_over_an_endpoint(vllm_server: VLLMServer, capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    code = main(["solve", QUESTION, "--budget", "64", "--endpoint", vllm_server.url, "--json"])
    assert code == 0
    solution = Solution.model_validate_json(capsys.readouterr().out)
    assert solution.usage.generated_tokens > 0
