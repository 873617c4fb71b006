"""The tail KV connector's bookkeeping: what it saves, what a later request loads, what it drops.

The scheduler side runs here on stand-ins for vLLM's request and scheduler output; the worker
side copies rows of a small tensor laid out like vLLM's CPU KV cache. The real engine path is
in tests/strategies/test_latent_switch.py (every row before a soft token is served).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from reasoner.engines import lifecycle, tail_kv
from reasoner.engines.tail_kv import TailKVConnector, TailMetadata
from reasoner.engines.vllm_local import TAIL_KV_CONNECTOR, VLLMBackend, default_engine_args
from reasoner.models import resolve_model

BLOCK = 4
HIDDEN = 3


@dataclass
class FakeRequest:
    request_id: str
    prompt_embeds: torch.Tensor | None
    block_hashes: list[bytes] = field(default_factory=list)
    max_tokens: int = 16
    arrival_time: float = 0.0

    @property
    def num_prompt_tokens(self) -> int:
        assert self.prompt_embeds is not None
        return int(self.prompt_embeds.shape[0])


class FakeBlocks:
    def __init__(self) -> None:
        self.by_request: dict[str, list[int]] = {}

    def get_block_ids(self, request_id: str) -> tuple[list[int], ...]:
        return (self.by_request[request_id],)


def rows(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, HIDDEN, generator=generator).to(torch.bfloat16)


def request(request_id: str, embeds: torch.Tensor) -> FakeRequest:
    """A prompt-embedding request whose block hashes chain over its full blocks, as vLLM's do."""
    data = embeds.contiguous().view(torch.uint8).numpy()
    width = data.shape[1]
    hashes = [
        hashlib.sha256(data[: (index + 1) * BLOCK].tobytes()).digest()[: width + 8]
        for index in range(embeds.shape[0] // BLOCK)
    ]
    return FakeRequest(request_id, embeds, hashes)


def connector(role: Any = None, extra: dict[str, Any] | None = None) -> TailKVConnector:
    transfer = SimpleNamespace(kv_connector_extra_config=extra or {})
    config = SimpleNamespace(cache_config=SimpleNamespace(block_size=BLOCK), kv_transfer_config=transfer)
    made = TailKVConnector(config, role, None)
    blocks = FakeBlocks()
    made._kv_cache_manager = blocks  # type: ignore[assignment]
    return made


def schedule(
    made: TailKVConnector, new: list[tuple[FakeRequest, list[int], int]], resumed: FakeRequest | None = None
) -> TailMetadata:
    """One scheduler step: each new request with its blocks and prompt rows already computed, and a
    preempted request scheduled again from its first row (its blocks set beforehand)."""
    blocks: FakeBlocks = made._kv_cache_manager  # type: ignore[assignment]
    scheduled_new = []
    for req, block_ids, computed in new:
        blocks.by_request[req.request_id] = block_ids
        scheduled_new.append(
            SimpleNamespace(req_id=req.request_id, block_ids=(block_ids,), num_computed_tokens=computed)
        )
    output = SimpleNamespace(
        scheduled_new_reqs=scheduled_new,
        scheduled_cached_reqs=SimpleNamespace(
            req_ids=[resumed.request_id] if resumed else [],
            num_computed_tokens=[0] if resumed else [],
            resumed_req_ids={resumed.request_id} if resumed else set(),
        ),
        num_scheduled_tokens={req.request_id: req.num_prompt_tokens - computed for req, _, computed in new}
        | ({resumed.request_id: resumed.num_prompt_tokens} if resumed else {}),
    )
    meta = made.build_connector_meta(output)
    assert isinstance(meta, TailMetadata)
    return meta


def admit(made: TailKVConnector, req: FakeRequest, cached_rows: int) -> int:
    made.on_new_request(req)
    loaded, asynchronous = made.get_num_new_matched_tokens(req, cached_rows)
    assert asynchronous is False
    made.update_state_after_alloc(req, None, loaded)
    return loaded


def test_a_prompt_extending_a_saved_tail_loads_all_but_its_new_row() -> None:
    made = connector()
    head = rows(10)
    first = request("a", head)
    assert admit(made, first, cached_rows=0) == 0
    saves = schedule(made, [(first, [7, 8, 9], 0)]).saves
    assert [save.block for save in saves] == [9]  # rows 8 and 9, in the request's third block

    second = request("b", torch.cat([head, rows(1, seed=1)]))
    assert admit(made, second, cached_rows=8) == 2  # rows 8 and 9; row 10 is computed
    meta = schedule(made, [(second, [7, 8, 5], 8)])
    assert [(load.key, load.block) for load in meta.loads] == [(saves[0].key, 5)]
    assert [save.block for save in meta.saves] == [5]  # rows 8 to 10, for the request after


def test_a_tail_with_different_rows_or_a_different_head_is_not_loaded() -> None:
    made = connector()
    head = rows(10)
    admit(made, request("a", head), 0)
    schedule(made, [(request("a", head), [1, 2, 3], 0)])
    changed_tail = torch.cat([head[:9], rows(2, seed=5)])
    assert admit(made, request("b", changed_tail), 8) == 0
    changed_head = torch.cat([rows(8, seed=6), head[8:], rows(1, seed=7)])
    assert admit(made, request("c", changed_head), 8) == 0


def test_prompts_that_share_their_full_blocks_keep_a_tail_each() -> None:
    made = connector()
    shared = rows(8)
    first, second = torch.cat([shared, rows(2, seed=1)]), torch.cat([shared, rows(2, seed=2)])
    for name, embeds, block in (("a", first, 3), ("b", second, 4)):
        admit(made, request(name, embeds), 8)
        assert len(schedule(made, [(request(name, embeds), [1, 2, block], 8)]).saves) == 1
    assert admit(made, request("a2", torch.cat([first, rows(1, seed=3)])), 8) == 2
    assert admit(made, request("b2", torch.cat([second, rows(1, seed=4)])), 8) == 2


def test_the_last_row_is_always_left_to_compute() -> None:
    made = connector()
    head = rows(10)
    admit(made, request("a", head), 0)
    schedule(made, [(request("a", head), [1, 2, 3], 0)])
    assert admit(made, request("same", head.clone()), 8) == 0  # the same 10 rows: row 9 must be computed
    assert admit(made, request("longer", torch.cat([head, rows(1, seed=3)])), 8) == 2


def test_a_preempted_request_that_starts_over_loads_its_tail_again() -> None:
    made = connector()
    head = rows(10)
    admit(made, request("a", head), 0)
    saves = schedule(made, [(request("a", head), [1, 2, 3], 0)]).saves
    again = request("b", torch.cat([head, rows(1, seed=1)]))
    assert admit(made, again, cached_rows=8) == 2
    schedule(made, [(again, [1, 2, 4], 8)])
    assert made.get_num_new_matched_tokens(again, 8) == (2, False)  # preempted: looked up again
    made.update_state_after_alloc(again, None, 2)
    made._kv_cache_manager.by_request["b"] = [1, 2, 6]  # type: ignore[union-attr]
    meta = schedule(made, [], resumed=again)
    assert [(load.key, load.block) for load in meta.loads] == [(saves[0].key, 6)]


def test_without_block_hashes_only_prompts_shorter_than_a_block_are_kept() -> None:
    made = connector()
    unhashed = FakeRequest("u", rows(10))
    made.on_new_request(unhashed)
    assert made.get_num_new_matched_tokens(unhashed, 8) == (0, False)
    assert schedule(made, [(unhashed, [1, 2, 3], 0)]).saves == []
    short = FakeRequest("s", rows(3))
    made.on_new_request(short)
    assert len(schedule(made, [(short, [4], 0)]).saves) == 1


def test_token_prompts_are_neither_saved_nor_loaded() -> None:
    made = connector()
    token_request = FakeRequest("t", None)
    made.on_new_request(token_request)
    assert made.get_num_new_matched_tokens(token_request, 0) == (0, False)
    output = SimpleNamespace(
        scheduled_new_reqs=[SimpleNamespace(req_id="t", block_ids=([1],), num_computed_tokens=0)],
        scheduled_cached_reqs=SimpleNamespace(req_ids=[], num_computed_tokens=[], resumed_req_ids=set()),
        num_scheduled_tokens={"t": 6},
    )
    meta = made.build_connector_meta(output)
    assert isinstance(meta, TailMetadata) and meta.saves == [] and meta.loads == []


def test_the_least_recently_used_tails_are_dropped_beyond_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tail_kv, "MAX_TAILS", 2)
    made = connector()
    saved = []
    dropped = []
    for index in range(4):
        req = request(f"r{index}", rows(6, seed=index))
        admit(made, req, 0)
        meta = schedule(made, [(req, [index * 2, index * 2 + 1], 0)])
        saved += [save.key for save in meta.saves]
        dropped += meta.drops
    assert dropped == saved[:2]
    assert admit(made, request("again", torch.cat([rows(6, seed=0), rows(1)])), 4) == 0
    assert admit(made, request("kept", torch.cat([rows(6, seed=3), rows(1)])), 4) == 2


def test_resetting_forgets_every_tail_and_tells_the_worker() -> None:
    made = connector()
    head = rows(6)
    admit(made, request("a", head), 0)
    saved = schedule(made, [(request("a", head), [1, 2], 0)]).saves
    assert made.reset_cache() is True
    assert admit(made, request("b", torch.cat([head, rows(1, seed=2)])), 4) == 0
    assert schedule(made, []).drops == [save.key for save in saved]


class Clock:
    """Stands in for both the monotonic and the wall clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def with_clock(made: TailKVConnector) -> Clock:
    clock = Clock()
    made._rounds.clock = made._rounds.wall_clock = clock
    return clock


def latent_step(request_id: str, clock: Clock, seed: int = 0) -> FakeRequest:
    """A one-token prompt-embedding request that the frontend stamps now."""
    return FakeRequest(request_id, rows(5, seed=seed), max_tokens=1, arrival_time=clock.now)


PASS_S = 0.04  # so a round waits at most 0.02 s for its latecomers


def run_pass(made: TailKVConnector, clock: Clock, requests: list[FakeRequest]) -> None:
    """One forward pass over waiting `requests`, that takes `PASS_S` and ends with all of them finished."""
    for req in requests:
        loaded, _ = made.get_num_new_matched_tokens(req, 0)
        assert loaded is not None
    schedule(made, [(req, [index], 0) for index, req in enumerate(requests)])
    clock.now += PASS_S
    for req in requests:
        made.request_finished(req, [])


def arrive(made: TailKVConnector, req: FakeRequest) -> FakeRequest:
    made.on_new_request(req)
    return req


def test_a_latent_step_waits_for_the_steps_of_the_last_pass_to_come_back() -> None:
    made = connector()
    clock = with_clock(made)
    first = [arrive(made, latent_step(name, clock)) for name in ("a1", "b1")]
    run_pass(made, clock, first)
    early = arrive(made, latent_step("a2", clock))
    assert made.get_num_new_matched_tokens(early, 0) == (None, False)  # b has not come back
    clock.now += 0.015
    late = arrive(made, latent_step("b2", clock))
    assert made.get_num_new_matched_tokens(early, 0) == (0, False)
    assert made.get_num_new_matched_tokens(late, 0) == (0, False)


def test_steps_sent_during_a_pass_wait_for_the_steps_that_pass_runs() -> None:
    """Two groups out of step: the second group's steps were sent while the first group's pass ran."""
    made = connector()
    clock = with_clock(made)
    first = [arrive(made, latent_step(name, clock)) for name in ("a1", "b1")]
    sent_during = [latent_step(name, clock) for name in ("c1", "d1")]
    run_pass(made, clock, first)
    for req in sent_during:
        arrive(made, req)  # the engine reads its input between passes
        assert made.get_num_new_matched_tokens(req, 0) == (None, False)
    clock.now += 0.002
    back = [arrive(made, latent_step(name, clock)) for name in ("a2", "b2")]
    assert all(made.get_num_new_matched_tokens(req, 0) == (0, False) for req in sent_during + back)


def test_a_chain_that_does_not_come_back_holds_the_others_only_until_the_wait_ends() -> None:
    made = connector()
    clock = with_clock(made)
    run_pass(made, clock, [arrive(made, latent_step(name, clock)) for name in ("a1", "b1")])
    again = arrive(made, latent_step("a2", clock))
    clock.now += 0.015
    assert made.get_num_new_matched_tokens(again, 0) == (None, False)
    clock.now += 0.005  # half the pass's 0.04 s
    assert made.get_num_new_matched_tokens(again, 0) == (0, False)
    run_pass(made, clock, [again])  # b is forgotten: the next round awaits a alone
    third = arrive(made, latent_step("a3", clock))
    assert made.get_num_new_matched_tokens(third, 0) == (0, False)


def test_nothing_is_held_while_a_pass_runs_anyway_or_for_other_requests() -> None:
    made = connector()
    clock = with_clock(made)
    decoding = arrive(made, FakeRequest("decode", rows(3, seed=9)))  # an explicit block: many tokens
    run_pass(made, clock, [arrive(made, latent_step(name, clock)) for name in ("a1", "b1")])
    schedule(made, [(decoding, [7], 0)])  # still running: the next pass happens without waiting
    step = arrive(made, latent_step("a2", clock))
    assert made.get_num_new_matched_tokens(step, 0) == (0, False)
    made.request_finished(decoding, [])
    run_pass(made, clock, [arrive(made, latent_step(name, clock)) for name in ("a3", "b3")])
    longer = arrive(made, FakeRequest("block", rows(5), max_tokens=8, arrival_time=clock.now))
    assert made.get_num_new_matched_tokens(longer, 0) == (0, False)


def test_a_step_aborted_before_it_ran_is_not_awaited() -> None:
    made = connector()
    clock = with_clock(made)
    run_pass(made, clock, [arrive(made, latent_step("a1", clock))])
    made.request_finished(arrive(made, latent_step("b1", clock)), [])  # aborted while it waited
    step = arrive(made, latent_step("a2", clock))
    assert made.get_num_new_matched_tokens(step, 0) == (0, False)


@pytest.mark.parametrize("round_wait_s", [0.005, 0.0])
def test_round_wait_caps_the_wait_and_zero_turns_holding_off(round_wait_s: float) -> None:
    made = connector(extra={"round_wait_s": round_wait_s})
    clock = with_clock(made)
    run_pass(made, clock, [arrive(made, latent_step(name, clock)) for name in ("a1", "b1")])
    step = arrive(made, latent_step("a2", clock))
    if round_wait_s:
        clock.now += 0.004  # within the cap, and well within half the 0.04 s pass
        assert made.get_num_new_matched_tokens(step, 0) == (None, False)
        clock.now += 0.002
    assert made.get_num_new_matched_tokens(step, 0) == (0, False)


def test_the_worker_saves_a_whole_block_after_the_forward_pass_and_loads_it_before_the_next() -> None:
    made = connector()
    cache = torch.zeros(6, 2, 2 * BLOCK, 5)  # [blocks, kv heads, keys then values, head size]
    made.register_kv_caches({"layer.0": cache})
    cache[3] = torch.arange(2 * 2 * BLOCK * 5, dtype=torch.float32).reshape(2, 2 * BLOCK, 5)
    key = b"k" * 32
    made.bind_connector_metadata(TailMetadata(saves=[tail_kv.TailTransfer(key, 3)]))
    made.start_load_kv(None)
    made.wait_for_save()
    made.clear_connector_metadata()
    cache[3] = -1.0  # the block is freed and reused after the request ends
    made.bind_connector_metadata(TailMetadata(loads=[tail_kv.TailTransfer(key, 5)]))
    made.start_load_kv(None)
    made.wait_for_save()
    made.clear_connector_metadata()
    assert torch.equal(cache[5], torch.arange(2 * 2 * BLOCK * 5, dtype=torch.float32).reshape(2, 2 * BLOCK, 5))
    made.bind_connector_metadata(TailMetadata(drops=[key]))
    made.start_load_kv(None)
    made.wait_for_save()
    assert made._tails == {}


def test_the_cpu_engine_keeps_tails_by_default_and_an_engine_argument_turns_it_off() -> None:
    assert default_engine_args(on_cpu=True)["kv_transfer_config"] == TAIL_KV_CONNECTOR
    assert "kv_transfer_config" not in default_engine_args(on_cpu=False)
    turned_off = VLLMBackend(resolve_model(None), {"kv_transfer_config": None}).engine_args()
    assert turned_off["kv_transfer_config"] is None


def test_a_connector_given_as_a_dict_becomes_vllms_config_object() -> None:
    from vllm.config import KVTransferConfig

    arguments = lifecycle._with_config_objects({"model": "m", "kv_transfer_config": TAIL_KV_CONNECTOR})
    connector = arguments["kv_transfer_config"]
    assert isinstance(connector, KVTransferConfig)
    assert connector.kv_connector == "TailKVConnector"
    assert connector.kv_connector_module_path == "reasoner.engines.tail_kv"
    assert lifecycle._with_config_objects({"model": "m"}) == {"model": "m"}
