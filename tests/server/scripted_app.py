"""A `reasoner serve` app on the scripted backend, driven in-process by the openai client."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import openai
from fastapi import FastAPI

from reasoner import Reasoner
from reasoner.testing import ScriptedBackend
from server import ServerConfig, create_app

API_KEY = "test-key"
MODEL = "scripted"


@dataclass
class ScriptedServer:
    app: FastAPI
    backend: ScriptedBackend
    http: httpx.AsyncClient
    client: openai.AsyncOpenAI


def scripted_server(backend: ScriptedBackend | None = None, **config: object) -> ScriptedServer:
    backend = backend or ScriptedBackend("The sum is 5.\n\nFinal answer: 5")
    reasoner = Reasoner(backend=backend, profile="smollm2")
    settings = {"model_name": MODEL, "api_key": API_KEY} | config
    app = create_app(reasoner, ServerConfig(**settings))  # type: ignore[arg-type]
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://server",
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url="http://server/v1", http_client=http, max_retries=0)
    return ScriptedServer(app=app, backend=backend, http=http, client=client)
