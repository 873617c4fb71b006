"""Every error the server answers with, rendered in one place in OpenAI's error JSON.

`{"error": {"message", "type", "param", "code"}}`: input the toolkit refuses (its
`InputError`s, request validation, bad JSON or text) is a 400, a missing or wrong key a
401, an unknown model a 404, a full queue a 429 with `Retry-After`, a server shutting down
a 503, and an engine failure a 500 that says so. No user input reaches a bare 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from reasoner.errors import CapabilityError, EngineError, InputError
from server.protocol import ErrorDetail, ErrorResponse

logger = logging.getLogger("reasoner.server")


class APIError(Exception):
    """An error answered as OpenAI's error JSON with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(error: APIError) -> dict[str, Any]:
    """The JSON an error is answered with (also sent as the last event of a broken stream)."""
    detail = ErrorDetail(message=error.message, type=error.type, param=error.param, code=error.code)
    return ErrorResponse(error=detail).model_dump()


def as_api_error(exc: BaseException) -> APIError:
    """The toolkit's errors as API errors: the caller's fault is a 400, the engine's a 500."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, InputError | CapabilityError):
        return APIError(400, str(exc), code=type(exc).__name__)
    if isinstance(exc, EngineError):
        return APIError(500, f"engine error: {exc}", type_="server_error", code="engine_error")
    logger.exception("unexpected error while serving a request", exc_info=exc)
    return APIError(500, f"internal error ({type(exc).__name__})", type_="server_error", code="internal_error")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON (or not UTF-8)", None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    """Render every error of `app` as OpenAI's error JSON."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        error = as_api_error(exc)
        return JSONResponse(error_body(error), status_code=error.status, headers=error.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        message, param = _validation_message(exc)
        error = APIError(400, message, param=param, code="invalid_value")
        return JSONResponse(error_body(error), status_code=400)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        message = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in message:
            message = "the request body is not valid JSON (or not UTF-8)"
        error = APIError(exc.status_code, message, type_=type_)
        return JSONResponse(error_body(error), status_code=exc.status_code, headers=dict(exc.headers or {}))

    app.add_exception_handler(APIError, on_api_error)
    app.add_exception_handler(InputError, on_api_error)
    app.add_exception_handler(CapabilityError, on_api_error)
    app.add_exception_handler(EngineError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)
