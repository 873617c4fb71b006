"""What a fleet of vLLM servers serves and can do, asked before the first request.

`describe_remote_model` names the served model synchronously (a `Reasoner` picks its model
profile from it at construction). `discover_capabilities` reads, from every replica, the
context length (`/v1/models`), the logprobs limit and whether prompt embeddings are
accepted; the last two come from the errors vLLM gives for requests it refuses before
generating anything, so discovery spends no tokens. The fleet declares what all replicas can do.
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

import httpx

from reasoner.engines.base import Capabilities
from reasoner.engines.replica import Replica, ServedModel
from reasoner.errors import EngineError, ModelError, PromptError
from reasoner.models import ResolvedModel, find_local_model

DESCRIBE_TIMEOUT_S = 10.0
UNLIMITED_LOGPROBS = 1_000_000
_MAX_LOGPROBS_MESSAGE = re.compile(r"max allowed:\s*(-?\d+)")


class RemoteModelSource(Protocol):
    """What `describe_remote_model` needs of a remote backend."""

    endpoints: list[str]
    model: str | None
    api_key: str | None
    verify: bool | str


def describe_remote_model(backend: RemoteModelSource) -> tuple[str, str | None]:
    """The served model's display name and `model_type` (when its config is on this machine).

    Asks the first server that answers `/v1/models`, unless the backend names its model.
    """
    name = backend.model
    if name is None:
        name = pick_served_model(None, [_list_models_now(backend)]).id
    local = find_local_model(name)
    return (local.name if local is not None else name), (local.model_type if local is not None else None)


def _list_models_now(backend: RemoteModelSource) -> list[ServedModel]:
    headers = {"Authorization": f"Bearer {backend.api_key}"} if backend.api_key else {}
    reasons = []
    with httpx.Client(timeout=DESCRIBE_TIMEOUT_S, headers=headers, verify=backend.verify) as client:
        for root in backend.endpoints:
            try:
                response = client.get(f"{root}/v1/models")
            except httpx.HTTPError as exc:
                reasons.append(f"{root}: {type(exc).__name__}")
                continue
            if response.status_code in (401, 403):
                raise ModelError(f"{root} refused the API key (HTTP {response.status_code}); pass api_key=")
            if response.status_code != 200:
                reasons.append(f"{root}: HTTP {response.status_code}")
                continue
            try:
                entries = response.json().get("data")
            except (ValueError, AttributeError):
                entries = None
            if isinstance(entries, list):
                return [
                    ServedModel(entry["id"], entry.get("max_model_len"))
                    for entry in entries
                    if isinstance(entry, dict) and isinstance(entry.get("id"), str)
                ]
            reasons.append(f"{root}: /v1/models is not a model list")
    raise EngineError(f"no server answered /v1/models ({'; '.join(reasons)})")


def pick_served_model(wanted: str | None, listings: list[list[ServedModel]]) -> ServedModel:
    """The model `wanted` (or the only one served), checked to be served by every replica."""
    by_id = {model.id: model for models in listings for model in models}
    if not by_id:
        raise ModelError("the servers list no models")
    if wanted is None:
        if len(by_id) > 1:
            raise ModelError(f"the servers serve several models ({', '.join(sorted(by_id))}); pass model=")
        wanted = next(iter(by_id))
    if wanted not in by_id:
        raise ModelError(f"the servers do not serve {wanted!r}; they serve {', '.join(sorted(by_id))}")
    if any(wanted not in {model.id for model in models} for models in listings):
        raise ModelError(f"not every server serves {wanted!r}; point all endpoints at replicas of one model")
    return by_id[wanted]


async def discover_capabilities(
    served: ServedModel, replicas: list[Replica], local_model: ResolvedModel | None
) -> Capabilities:
    """What every replica can do with `served` (input embeddings: when its weights are local)."""
    if served.max_model_len is None:
        raise EngineError(f"the server does not list the context length of {served.id!r} in /v1/models")
    limits = await asyncio.gather(*(_max_logprobs(replica, served.id) for replica in replicas))
    embeds = await asyncio.gather(*(_accepts_prompt_embeds(replica, served.id) for replica in replicas))
    return Capabilities(
        prompt_embeds=all(embeds),
        logprobs=True,
        max_logprobs=min(limits),
        prefix_caching=True,
        per_request_seed=False,
        max_model_len=served.max_model_len,
        name=f"remote:{served.id}",
        input_embeddings=local_model is not None and local_model.local_dir is not None,
    )


async def _max_logprobs(replica: Replica, model: str) -> int:
    """The server's logprobs limit, read from the error a too-large request gets before it runs."""
    probe = {"model": model, "prompt": [0], "max_tokens": 1, "logprobs": UNLIMITED_LOGPROBS}
    try:
        await replica.post_json("/v1/completions", probe)
    except PromptError as exc:
        found = _MAX_LOGPROBS_MESSAGE.search(str(exc))
        return int(found.group(1)) if found else 0
    return UNLIMITED_LOGPROBS


async def _accepts_prompt_embeds(replica: Replica, model: str) -> bool:
    """Whether the server runs with `--enable-prompt-embeds` (the probe is malformed on purpose)."""
    probe = {"model": model, "prompt_embeds": "!", "max_tokens": 1}
    try:
        await replica.post_json("/v1/completions", probe)
    except PromptError as exc:
        return "enable-prompt-embeds" not in str(exc)
    return True
