"""`GET /v1/models` (the served model or models, and one entry per strategy) and `GET /health`."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from reasoner import strategy_names
from server.protocol import ModelCard, ModelList
from server.state import StateDep, check_api_key

router = APIRouter()


@router.get("/v1/models", dependencies=[Depends(check_api_key)])
async def list_models(state: StateDep) -> ModelList:
    config = state.config
    cards = [
        ModelCard(
            id=config.model_name,
            root=config.model_name,
            description=f"the default strategy ({config.default_strategy}) at {config.default_budget} tokens",
        )
    ]
    cards += [
        ModelCard(id=name, root=name, description=f"model {name}; '{name}:<strategy>[@<budget>]' picks the strategy")
        for name in config.models
        if name != config.model_name
    ]
    cards += [
        ModelCard(id=name, root=config.model_name, description=f"strategy {name}; '{name}@<budget>' sets the budget")
        for name in strategy_names()
    ]
    return ModelList(data=cards)


@router.get("/health")
async def health(state: StateDep) -> JSONResponse:
    """200 while the server takes requests, 503 once it is shutting down."""
    service = state.service
    status = 200 if service.accepting else 503
    body = {"status": "ok" if service.accepting else "shutting_down", "solves_in_flight": service.in_flight}
    return JSONResponse(body, status_code=status)
