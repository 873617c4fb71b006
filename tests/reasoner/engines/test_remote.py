"""The remote backend's control flow, against fake vLLM servers (real servers: tests/integration/test_remote.py)."""

from __future__ import annotations

import asyncio

import pytest
from remote_support import MODEL, WORDS, FakeFleet

from reasoner import Budget, CapabilityError, EngineError, InputError, ModelError, Reasoner, Session
from reasoner.engines.remote import RemoteBackend
from reasoner.engines.remote_discovery import describe_remote_model
from reasoner.profiles import get_profile

PROMPT = "What is 2 + 3?"


def reasoner_on(fleet: FakeFleet, **options: object) -> Reasoner:
    return Reasoner(backend=fleet.backend(**options), profile="smollm2")


async def test_a_solve_streams_token_ids_and_counts_exactly_what_the_server_generated() -> None:
    fleet = FakeFleet()
    solution = await reasoner_on(fleet).asolve(PROMPT, budget=64)
    assert solution.answer == "5"
    assert solution.text == "".join(WORDS)
    assert solution.usage.generated_tokens == fleet.servers[0].generated_tokens == len(WORDS)
    assert solution.usage.cached_prompt_tokens == 1  # reported with the last chunk only
    sent = fleet.servers[0].completions[0]
    assert all(isinstance(token, int) for token in sent["prompt"])
    assert sent["stream"] is True and sent["return_token_ids"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == MODEL and sent["max_tokens"] == 64


async def test_capabilities_are_discovered_from_the_servers_without_generating() -> None:
    fleet = FakeFleet(2)
    fleet.servers[1].prompt_embeds = False
    backend = fleet.backend()
    await backend.start()
    capabilities = backend.capabilities
    assert capabilities.max_model_len == 2048
    assert capabilities.max_logprobs == 20
    assert capabilities.prompt_embeds is False  # one replica lacks it, so the fleet does
    assert capabilities.input_embeddings is False  # the fake model's weights are not on this machine
    assert sum(server.generated_tokens for server in fleet.servers) == 0


async def test_latent_switch_on_a_server_without_prompt_embeds_is_refused_up_front() -> None:
    fleet = FakeFleet(prompt_embeds=False)
    with pytest.raises(CapabilityError, match="prompt_embeds"):
        await reasoner_on(fleet).asolve(PROMPT, budget=64, strategy="latent_switch")
    assert fleet.servers[0].completions == []


async def test_the_requests_of_one_solve_stay_on_one_replica_and_solves_spread() -> None:
    fleet = FakeFleet(2, delay_s=0.01)
    reasoner = reasoner_on(fleet)
    solutions = await reasoner.asolve_many([PROMPT] * 4, budget=256, strategy="self_consistency", n=3)
    per_server = [len(server.completions) for server in fleet.servers]
    assert per_server[0] > 0 and per_server[1] > 0
    backend = reasoner.backend
    assert isinstance(backend, RemoteBackend)
    assert sum(solution.usage.generated_tokens for solution in solutions) == sum(
        server.generated_tokens for server in fleet.servers
    )
    assert all(len(server.completions) % 3 == 0 for server in fleet.servers)  # whole solves, 3 samples each


async def test_a_request_refused_before_its_first_token_goes_to_another_replica() -> None:
    fleet = FakeFleet(2)
    fleet.servers[0].status = 503
    reasoner = reasoner_on(fleet)
    await reasoner.astart()
    solutions = await reasoner.asolve_many([PROMPT] * 2, budget=64)
    assert all(solution.answer == "5" for solution in solutions)
    backend = reasoner.backend
    assert isinstance(backend, RemoteBackend)
    assert backend.resent_requests >= 1
    assert not backend.replicas[0].is_up
    assert fleet.servers[0].generated_tokens == 0


async def test_a_down_replica_is_probed_again_and_taken_back() -> None:
    fleet = FakeFleet(2)
    backend = fleet.backend()
    await backend.start()
    backend.replicas[0].mark_down("test", retry_after_s=0.0)
    await Reasoner(backend=backend, profile="smollm2").asolve(PROMPT, budget=64)
    assert backend.replicas[0].is_up


async def test_a_busy_single_server_is_retried_after_its_retry_after() -> None:
    fleet = FakeFleet(1, retry_after="0.1")
    reasoner = reasoner_on(fleet)
    await reasoner.astart()
    fleet.servers[0].status = 429

    asyncio.get_running_loop().call_later(0.05, setattr, fleet.servers[0], "status", 200)
    solution = await reasoner.asolve(PROMPT, budget=64)
    assert solution.answer == "5"


async def test_a_stream_that_dies_mid_way_is_charged_what_it_streamed_and_raises_engine_error() -> None:
    fleet = FakeFleet(2, break_after=3)
    backend = fleet.backend()
    await backend.start()
    session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=64))
    running = await session.start(PROMPT, max_tokens=64, phase="answer", kind="answer")
    with pytest.raises(EngineError, match="after 3 tokens"):
        await running.result()
    assert session.ledger.generated_tokens == 3
    assert session.ledger.reserved_tokens == 0
    assert sum(len(server.completions) for server in fleet.servers) == 1  # not re-sent once tokens came
    assert sum(not replica.is_up for replica in backend.replicas) == 1  # the replica that broke is down


async def test_a_malformed_event_from_the_server_is_an_engine_error_not_a_foreign_one() -> None:
    fleet = FakeFleet(malformed=True)
    with pytest.raises(EngineError, match="malformed event"):
        await reasoner_on(fleet).asolve(PROMPT, budget=64)


async def test_when_every_replica_is_down_the_solve_gets_an_engine_error() -> None:
    fleet = FakeFleet(2)
    reasoner = reasoner_on(fleet, replica_wait_s=0.1)
    await reasoner.astart()
    for server in fleet.servers:
        server.down = True
    with pytest.raises(EngineError, match="no server is up|failed on"):
        await reasoner.asolve(PROMPT, budget=64)


async def test_an_aborted_request_closes_its_stream() -> None:
    fleet = FakeFleet(delay_s=0.01)
    backend = fleet.backend()
    await backend.start()
    session = Session(backend, backend.tokenizer(), get_profile("smollm2"), Budget(tokens=64))
    running = await session.start(PROMPT, max_tokens=64, phase="answer", kind="answer")
    await running.wait_for_tokens(2)
    generation = await running.abort()
    assert generation.finish_reason == "abort"
    assert 2 <= len(generation.token_ids) < len(WORDS)
    assert fleet.servers[0].closed_early == 1
    assert session.ledger.aborted_tokens_saved == 64 - len(generation.token_ids)


async def test_a_refused_api_key_is_an_input_error() -> None:
    fleet = FakeFleet(api_key="secret")
    with pytest.raises(InputError, match="API key"):
        await fleet.backend(api_key="wrong").start()
    backend = fleet.backend(api_key="secret")
    await backend.start()
    assert backend.running


async def test_a_server_with_several_models_needs_model_named() -> None:
    fleet = FakeFleet(models=("m1", "m2"))
    with pytest.raises(ModelError, match="several models"):
        await fleet.backend(model=None).start()
    with pytest.raises(ModelError, match="do not serve 'm3'"):
        await fleet.backend(model="m3").start()
    backend = fleet.backend(model="m2")
    await backend.start()
    assert backend.served_model == "m2"


def test_an_endpoint_that_is_not_an_http_url_is_an_input_error() -> None:
    with pytest.raises(InputError, match="not an http"):
        RemoteBackend("ftp://example.org")
    with pytest.raises(InputError, match="empty"):
        RemoteBackend([])


def test_an_unreachable_endpoint_is_an_engine_error_naming_it() -> None:
    backend = RemoteBackend("http://127.0.0.1:9/v1")
    with pytest.raises(EngineError, match="127.0.0.1:9"):
        describe_remote_model(backend)


@pytest.mark.parametrize("url", ["http://[::1/v1", "ftp://host/v1", ""])
def test_an_endpoint_that_is_not_an_http_url_is_an_input_error_from_python_too(url: str) -> None:
    with pytest.raises(InputError, match="endpoint"):
        Reasoner(endpoint=url)
