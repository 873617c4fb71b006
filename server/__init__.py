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

from server.app import create_app
from server.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]
