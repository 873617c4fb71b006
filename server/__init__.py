"""`reasoner serve`: every strategy behind an OpenAI-compatible API.

`create_app(reasoner, config)` builds the FastAPI app; `server.main` runs it under uvicorn
from the command line. Layout (as vLLM's server): `protocol` (request and response models),
`selection` (request -> strategy, budget, options), `prompt_fit` (the context window, off the
event loop), `service` (queue and cancellation), `streaming` (SSE), `live_chain` (what of a
single-chain solve may stream before it ends), `responses` (usage and the `reasoner` account),
`errors` (OpenAI's error JSON, in one place), `metrics` (Prometheus), `routers/` (one per
endpoint group).

Layer: an entry point, on top (DESIGN.md section 1). Imports the public API of the layers below
and finds strategies through the registry; only the CLI imports it (`reasoner serve`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.app import create_app
    from server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI builds `reasoner serve`'s parser from `server.main` on every command,
    # and the app's imports (FastAPI, the routers) cost about 0.2 s that no other command needs.
    if name == "create_app":
        from server.app import create_app

        return create_app
    if name == "ServerConfig":
        from server.config import ServerConfig

        return ServerConfig
    raise AttributeError(f"module 'server' has no attribute {name!r}")
