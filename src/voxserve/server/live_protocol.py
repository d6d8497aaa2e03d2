"""The live speech protocol's messages and errors (``WS /v1/audio/speech/live``,
voxserve.server.live; docs/agents.md): the start message, the close codes, and how an
error becomes the ``error`` event and close code that end a session.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError

from voxserve import errors as e
from voxserve.server.errors import STATUS, error_body
from voxserve.server.schemas import SpeechRequest
from voxserve.text.ssml import parse_ssml

log = logging.getLogger(__name__)

#: WebSocket close codes (RFC 6455) by what ended the session.
CLOSE_CODES: Mapping[str, int] = {
    "done": 1000,  # normal closure, after "done"
    "invalid": 1008,  # policy violation: a bad message, key, voice or parameter
    "invalid_json": 1007,  # a text message that is not JSON
    "binary": 1003,  # unsupported data: the client sent a binary message
    "too_big": 1009,  # a delta or the session's text over its limit
    "overloaded": 1013,  # try again later
    "internal": 1011,  # the server failed
}


class LiveStart(SpeechRequest):
    """The session's first message: the speech request's fields, without ``input``."""

    type: Literal["start"]
    input: str = Field("", description="Text to begin with (more comes in text messages).")
    response_format: str = Field("pcm", description="Audio format of the session's stream.")
    api_key: str | None = Field(
        None, repr=False, description="The API key, for clients that cannot send headers."
    )


class Fatal(Exception):
    """The session must end with an error event and ``close``."""

    def __init__(self, close: int, body: dict[str, Any]) -> None:
        super().__init__(body["error"]["message"])
        self.close = close
        self.body = body


def invalid(message: str, code: str, param: str | None = None, *, close: str = "invalid") -> Fatal:
    return Fatal(CLOSE_CODES[close], error_body(message, "invalid_request_error", code, param))


def from_voxserve(exc: e.VoxserveError) -> Fatal:
    status, type_ = next((s, t) for cls, s, t in STATUS if isinstance(exc, cls))
    if isinstance(exc, e.Overloaded):
        close = "overloaded"
    elif isinstance(exc, e.TextTooLong):
        close = "too_big"
    elif status >= 500:
        log.error("live session failed: %s", exc.message)
        close = "internal"
    else:
        close = "invalid"
    body = error_body(exc.message, type_, exc.code, exc.param)
    if isinstance(exc, e.Overloaded):
        body["error"]["retry_after"] = exc.retry_after
    return Fatal(CLOSE_CODES[close], body)


def from_validation(exc: ValidationError) -> Fatal:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    if first["type"] == "literal_error" and param == "type":
        return invalid(
            'The first message must be {"type": "start", ...}.', "invalid_message", "type"
        )
    return invalid(f"Invalid value for {param!r}: {first['msg']}.", "invalid_value", param)


def ssml_flag(data: dict[str, Any]) -> bool:
    """A text message's ``ssml``: its delta is one whole SSML document (checked here, so
    that an error names the message's field)."""
    flag = data.get("ssml", False)
    if not isinstance(flag, bool):
        raise invalid('"ssml" must be true or false.', "invalid_value", "ssml")
    if flag:
        try:
            parse_ssml(data["delta"])
        except e.InvalidSsml as exc:
            raise e.InvalidSsml(exc.message, param="delta") from None
    return flag
