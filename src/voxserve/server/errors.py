"""Every error the API can return, mapped to a status code in one table.

The body always has OpenAI's shape, so the official clients raise their usual
exceptions: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Scope, Send

from voxserve import errors as e
from voxserve.server.headers import SECURITY_HEADERS

log = logging.getLogger(__name__)

#: Error class → (HTTP status, OpenAI error type). The first matching row wins, so a
#: subclass must come before its base.
STATUS: tuple[tuple[type[e.VoxserveError], int, str], ...] = (
    (e.UnknownVoice, 404, "invalid_request_error"),
    (e.UnknownModel, 404, "invalid_request_error"),
    (e.UnknownJob, 404, "invalid_request_error"),
    (e.TextTooLong, 413, "invalid_request_error"),
    (e.AudioTooLong, 413, "invalid_request_error"),
    (e.InvalidRequest, 400, "invalid_request_error"),
    (e.Overloaded, 503, "server_error"),
    (e.StorageUnavailable, 503, "server_error"),
    (e.EngineError, 500, "server_error"),
    (e.VoxserveError, 500, "server_error"),
)

_HTTP_TYPES = {
    401: ("authentication_error", "invalid_api_key"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "unavailable"),
}


class APIError(Exception):
    """An HTTP-level refusal (auth, limits, content type) with OpenAI's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after


def undecodable_body(exc: BaseException | None) -> str | None:
    """What is wrong with a request body that failed to decode with ``exc`` (a message for
    a 400 ``invalid_json``), or None if ``exc`` is no such failure."""
    if isinstance(exc, json.JSONDecodeError):
        return f"The request body is not valid JSON: {exc.msg}: character {exc.pos}."
    if isinstance(exc, UnicodeDecodeError):
        return "The request body is not UTF-8."
    if isinstance(exc, RecursionError):
        return "The request body's JSON is nested too deeply."
    return None


def error_body(
    message: str, type_: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


async def send_error(
    send: Send, status: int, message: str, type_: str, code: str,
    *, param: str | None = None, retry_after: float | None = None, close: bool = False,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:  # fmt: skip
    """The error response, straight to an ASGI ``send`` (for middleware, before any app).

    ``close``: ask the client to close the connection (what is left of its request
    cannot be read). ``headers``: more headers (WWW-Authenticate, ...).
    """
    body = json.dumps(error_body(message, type_, code, param)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if retry_after is not None:
        headers.append((b"retry-after", _retry_after(retry_after).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def refusal_send(scope: Scope, send: Send) -> Send:
    """Where a middleware sends its refusal (:func:`send_error`) for ``scope``.

    For a WebSocket handshake the refusal goes out as an HTTP response too, through the
    ASGI denial response extension (uvicorn has it): a client library sees the status and
    the JSON error. Without the extension the handshake is closed (uvicorn answers 403).
    """
    if scope["type"] != "websocket":
        return send
    if "websocket.http.response" in (scope.get("extensions") or {}):

        async def deny(message: Message) -> None:
            await send({**message, "type": "websocket." + message["type"]})

        return deny
    closed = False

    async def close(message: Message) -> None:
        nonlocal closed
        if not closed:
            closed = True
            await send({"type": "websocket.close", "code": 1008})

    return close


def _retry_after(seconds: float) -> str:
    """Whole seconds, rounded up so clients never retry too early."""
    return str(max(1, math.ceil(seconds)))


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": _retry_after(seconds)}


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None,
    retry_after: float | None = None, headers: Mapping[str, str] | None = None,
) -> JSONResponse:  # fmt: skip
    type_, default_code = _HTTP_TYPES.get(status, ("invalid_request_error", None))
    headers = {**(headers or {}), **(retry_after_header(retry_after) if retry_after else {})}
    return JSONResponse(
        error_body(message, type_, code or default_code, param), status_code=status, headers=headers
    )


def voxserve_error_response(exc: e.VoxserveError) -> JSONResponse:
    status, type_ = next((s, t) for cls, s, t in STATUS if isinstance(exc, cls))
    headers = retry_after_header(exc.retry_after) if isinstance(exc, e.Overloaded) else None
    if status >= 500 and not isinstance(exc, e.Overloaded):  # a 503 is back-pressure
        log.error("request failed: %s", exc.message)
    return JSONResponse(
        error_body(exc.message, type_, exc.code, exc.param), status_code=status, headers=headers
    )


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        position = first.get("loc", ("body", "?"))[-1]
        reason = first.get("ctx", {}).get("error", "cannot be decoded")
        message = f"The request body is not valid JSON: {reason}: character {position}."
        return error_response(400, message, param="body", code="invalid_json")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "form")]
    param = ".".join(loc) or None
    message = (
        f"Invalid value for {param!r}: {first.get('msg', 'invalid')}."
        if param
        else str(first.get("msg", "Invalid request."))
    )
    return error_response(422, message, param=param, code="invalid_value")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into OpenAI's error shape."""

    async def on_voxserve(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, e.VoxserveError)
        return voxserve_error_response(exc)

    async def on_api(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, APIError)
        return error_response(
            exc.status, exc.message, param=exc.param, code=exc.code, retry_after=exc.retry_after
        )

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_response(exc)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI's body parser turns what json.loads raises, other than JSONDecodeError
        # (not UTF-8, nested past the recursion limit), into this bare 400.
        if exc.status_code == 400 and (message := undecodable_body(exc.__cause__)):
            return error_response(400, message, param="body", code="invalid_json")
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        # Starlette sends this one from outside every middleware: add their headers here.
        return error_response(
            500, "Internal server error.", code="internal_error", headers=dict(SECURITY_HEADERS)
        )

    app.add_exception_handler(e.VoxserveError, on_voxserve)
    app.add_exception_handler(APIError, on_api)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
