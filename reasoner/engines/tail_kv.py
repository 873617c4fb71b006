"""A vLLM KV connector that keeps the KV of a prompt's last, partial block for the next request.

vLLM's prefix cache holds only full KV blocks, so a request whose prompt extends an earlier one
by a row recomputes every row since the last block boundary: up to `block_size - 1` rows. Latent
thinking sends one such request per soft token (`strategies.latent_switch`), so on a CPU (block
size at least 32, a forward pass that costs in proportion to its rows) each latent step
recomputed 16.5 rows on average. This connector stores, after each forward pass, the KV of the
partial tail of every prompt-embedding request that finished its prompt, keyed by the hash of
the full blocks before it and the tail's own embedding bytes; a later request whose prompt
starts with those rows loads them instead of recomputing, so a latent step computes one row.

Only prompt-embedding requests are stored (token prompts keep vLLM's own behaviour). The store
lives in the worker process, at most `MAX_TAILS` tails (least recently used dropped; the
scheduler decides, so both sides agree on what is held). A tail is saved and loaded as its whole
KV block, `cache[block]` of each layer: the attention kernel's layout inside a block (keys and
values apart, rows possibly tiled) never matters, and the rows past the tail are overwritten
by the rows the next request computes. It needs the block index first in each layer's KV
tensor, as vLLM's CPU attention lays it out, and is enabled only on the CPU engine
(`vllm_local.TAIL_KV_CONNECTOR` in its defaults; the engine argument `kv_transfer_config=None`
turns it off). vLLM calls this connector API experimental, and a connector turns vLLM's hybrid
KV cache manager off (hybrid SSM models need it).

It also gathers latent steps into rounds (`engines.latent_rounds`): a held step gets "not yet"
from `get_num_new_matched_tokens`; `kv_connector_extra_config={"round_wait_s": ...}` sets the cap.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from vllm.distributed.kv_transfer.kv_connector.v1.base import (
    KVConnectorBase_V1,
    KVConnectorMetadata,
    KVConnectorRole,
)

from reasoner.engines.latent_rounds import ROUND_WAIT_S, RoundGate

MAX_TAILS = 256
_ROOT = b"reasoner-tail-root"


@dataclass
class TailTransfer:
    """One tail to load into, or save from, the paged KV cache: its key and the KV block that holds it."""

    key: bytes
    block: int


@dataclass
class TailMetadata(KVConnectorMetadata):
    """What the worker does this step: loads before the forward pass, saves and drops after it."""

    loads: list[TailTransfer] = field(default_factory=list)
    saves: list[TailTransfer] = field(default_factory=list)
    drops: list[bytes] = field(default_factory=list)


def tail_key(parent: bytes, rows: torch.Tensor) -> bytes:
    """The key of a tail: the hash of the full blocks before it and its rows' bytes."""
    data = rows.contiguous().view(torch.uint8).numpy().tobytes()
    return hashlib.sha256(parent + data).digest()


class TailKVConnector(KVConnectorBase_V1):
    """See the module docstring. One instance runs in the scheduler, one in each worker."""

    def __init__(self, vllm_config: Any, role: KVConnectorRole, kv_cache_config: Any = None):
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        self._block_size = int(vllm_config.cache_config.block_size)
        # Scheduler side: the tails the worker holds (LRU order), and per parent block how many
        # of them have each length (prompts that share their full blocks can hold several).
        self._held: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()
        self._lengths: dict[bytes, Counter[int]] = {}
        self._requests: dict[str, Any] = {}
        self._loads: dict[str, tuple[bytes, int]] = {}  # request -> (tail key, first row)
        self._saved: set[str] = set()
        self._dropped: list[bytes] = []
        extra = getattr(vllm_config.kv_transfer_config, "kv_connector_extra_config", None) or {}
        self._rounds = RoundGate(round_wait_s=float(extra.get("round_wait_s", ROUND_WAIT_S)))
        # Worker side: the KV caches by layer and the stored tails.
        self._kv_caches: dict[str, torch.Tensor] = {}
        self._tails: dict[bytes, dict[str, torch.Tensor]] = {}

    # Scheduler side.

    def on_new_request(self, request: Any) -> None:
        self._rounds.arrived(request)
        if request.prompt_embeds is not None:
            self._requests[request.request_id] = request

    def get_num_new_matched_tokens(self, request: Any, num_computed_tokens: int) -> tuple[int | None, bool]:
        self._loads.pop(request.request_id, None)
        if self._rounds.holds(request):
            return None, False
        if request.request_id not in self._requests or num_computed_tokens % self._block_size:
            return 0, False
        room = request.num_prompt_tokens - 1 - num_computed_tokens  # vLLM computes at least one row
        parent = self._parent(request, num_computed_tokens)
        if parent is None:
            return 0, False
        for rows in sorted(self._lengths.get(parent, ()), reverse=True):
            if rows > room:
                continue
            start = num_computed_tokens
            key = tail_key(parent, request.prompt_embeds[start : start + rows])
            if key in self._held:
                self._loads[request.request_id] = (key, start)
                self._held.move_to_end(key)
                return rows, False
        return 0, False

    def update_state_after_alloc(self, request: Any, blocks: Any, num_external_tokens: int) -> None:
        if num_external_tokens == 0:
            self._loads.pop(request.request_id, None)

    def build_connector_meta(self, scheduler_output: Any) -> KVConnectorMetadata:
        meta = TailMetadata(drops=self._dropped)
        self._dropped = []
        scheduled = scheduler_output.num_scheduled_tokens
        self._rounds.scheduled(scheduled)
        for new in scheduler_output.scheduled_new_reqs:
            if new.req_id in self._loads:
                key, start = self._loads.pop(new.req_id)
                meta.loads.append(self._transfer(key, new.block_ids[0], start))
            self._maybe_save(new.req_id, new.num_computed_tokens + scheduled.get(new.req_id, 0), meta)
        cached = scheduler_output.scheduled_cached_reqs
        for req_id, computed in zip(cached.req_ids, cached.num_computed_tokens, strict=True):
            if req_id in self._loads and req_id in cached.resumed_req_ids and self._kv_cache_manager is not None:
                key, start = self._loads.pop(req_id)  # a preempted request starts over, loads included
                meta.loads.append(self._transfer(key, self._kv_cache_manager.get_block_ids(req_id)[0], start))
            self._maybe_save(req_id, computed + scheduled.get(req_id, 0), meta)
        while len(self._held) > MAX_TAILS:
            key, (parent, rows) = self._held.popitem(last=False)
            lengths = self._lengths[parent]
            lengths[rows] -= 1
            if not +lengths:
                del self._lengths[parent]
            else:
                self._lengths[parent] = +lengths
            meta.drops.append(key)
        return meta

    def reset_cache(self) -> bool:
        """Forget every tail (vLLM's `reset_prefix_cache(reset_connector=True)`); the worker drops them next step."""
        self._dropped += list(self._held)
        self._held.clear()
        self._lengths.clear()
        return True

    def request_finished(self, request: Any, block_ids: list[int]) -> tuple[bool, dict[str, Any] | None]:
        self._rounds.finished(request)
        self._requests.pop(request.request_id, None)
        self._loads.pop(request.request_id, None)
        self._saved.discard(request.request_id)
        return False, None

    def _maybe_save(self, req_id: str, computed_after_step: int, meta: TailMetadata) -> None:
        """Save the prompt's partial tail once this step computes the whole prompt."""
        request = self._requests.get(req_id)
        if request is None or req_id in self._saved or computed_after_step < request.num_prompt_tokens:
            return
        self._saved.add(req_id)
        length = request.num_prompt_tokens
        start = length - length % self._block_size
        if start == length or self._kv_cache_manager is None:
            return
        parent = self._parent(request, start)
        if parent is None:
            return
        key = tail_key(parent, request.prompt_embeds[start:length])
        if key in self._held:
            self._held.move_to_end(key)
            return
        block_ids = self._kv_cache_manager.get_block_ids(req_id)[0]
        meta.saves.append(self._transfer(key, block_ids, start))
        self._held[key] = (parent, length - start)
        self._lengths.setdefault(parent, Counter())[length - start] += 1

    def _parent(self, request: Any, start: int) -> bytes | None:
        """The hash of the full blocks before row `start` (a constant before the first block; None unhashed)."""
        if not start:
            return _ROOT
        index = start // self._block_size - 1
        return bytes(request.block_hashes[index]) if index < len(request.block_hashes) else None

    def _transfer(self, key: bytes, block_ids: list[int], start: int) -> TailTransfer:
        return TailTransfer(key, block_ids[start // self._block_size])

    # Worker side.

    def register_kv_caches(self, kv_caches: dict[str, torch.Tensor]) -> None:
        self._kv_caches = dict(kv_caches)

    def start_load_kv(self, forward_context: Any, **kwargs: Any) -> None:
        meta = self._get_connector_metadata()
        assert isinstance(meta, TailMetadata)
        for load in meta.loads:
            tail = self._tails[load.key]
            for name, cache in self._kv_caches.items():
                cache[load.block] = tail[name]

    def wait_for_layer_load(self, layer_name: str) -> None:
        return None

    def save_kv_layer(self, layer_name: str, kv_layer: torch.Tensor, attn_metadata: Any, **kwargs: Any) -> None:
        return None

    def wait_for_save(self) -> None:
        meta = self._get_connector_metadata()
        assert isinstance(meta, TailMetadata)
        for save in meta.saves:
            self._tails[save.key] = {name: cache[save.block].clone() for name, cache in self._kv_caches.items()}
        for key in meta.drops:
            self._tails.pop(key, None)
