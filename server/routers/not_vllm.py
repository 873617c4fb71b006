"""`/tokenize`, `/detokenize`: answered with a 404 that says why, for clients that expect a raw vLLM server.

The toolkit's remote backend (`Reasoner(endpoint=...)`) needs a raw vLLM server: token-id
prompts, per-token logprobs and these endpoints. A `reasoner serve` runs whole solves per
request instead, so pointing that backend here would run every strategy twice over.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.errors import APIError

router = APIRouter()

NOT_A_VLLM_SERVER = (
    "this is a `reasoner serve` server: each chat or completion request runs a whole solve (pick the strategy "
    "with `model='<strategy>@<budget>'` or `extra_body`); it has no /tokenize, token-id prompts or logprobs, so "
    "Reasoner(endpoint=...) must point at a raw vLLM server instead"
)


@router.api_route("/tokenize", methods=["GET", "POST"])
@router.api_route("/detokenize", methods=["GET", "POST"])
async def not_a_vllm_server() -> None:
    raise APIError(404, NOT_A_VLLM_SERVER, code="not_a_vllm_server")
