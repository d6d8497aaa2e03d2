"""Oversized and malformed request heads (server/protocol.py), over a real uvicorn.

Each is answered in the API's JSON error shape with the status that names the problem,
whether the head arrived whole (the guard middleware) or h11 gave up buffering it (the
protocol), and the answer (a body's 413 too) reaches a client that was still sending.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fake_server import FakeServer, fake_settings
from fakes import FakeEngine
from voxserve.server.protocol import (
    MAX_HEAD_BYTES,
    MAX_HEADER_BYTES,
    MAX_TARGET_BYTES,
    check_head,
)

pytestmark = pytest.mark.inprocess


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer(FakeEngine(), fake_settings()) as running:
        yield running


def get(
    server: FakeServer, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A GET with http.client, which sends any length of URL (httpx refuses past 64 KiB)."""
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(server: FakeServer, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers until it closes."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def error_of(body: bytes) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_a_megabyte_query_string_gets_414_in_the_api_error_shape(server: FakeServer) -> None:
    """h11 gives up on the head long before its end; the client, still sending, reads
    the answer all the same (no reset)."""
    status, headers, body = get(server, "/api/tts?text=" + "a" * 1_000_000)
    assert status == 414
    assert headers["content-type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    error = error_of(body)
    assert error["code"] == "uri_too_long"
    assert "POST" in error["message"]


def test_a_query_string_just_over_the_limit_gets_414_too(server: FakeServer) -> None:
    """A head that arrives whole is refused by the guard, with the same answer."""
    status, _, body = get(server, "/healthz?x=" + "a" * MAX_TARGET_BYTES)
    assert status == 414
    assert error_of(body)["code"] == "uri_too_long"


def test_the_longest_text_fits_in_a_get_query(server: FakeServer) -> None:
    """4096 characters of four-byte UTF-8, percent-encoded: about 48 KiB of URL."""
    status, _, _ = get(server, "/healthz?text=" + "%F0%9F%98%80" * 4096)
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "y" * (MAX_HEADER_BYTES + 1)},  # one field, the head arriving whole
        {f"X-H{i}": "z" * 100 for i in range(MAX_HEADER_BYTES // 100)},  # many fields
        {"X-Huge": "y" * (2 * MAX_HEAD_BYTES)},  # more than h11 buffers
    ],
    ids=["one-large", "many", "past-buffer"],
)
def test_huge_headers_get_431_in_the_api_error_shape(
    server: FakeServer, headers: dict[str, str]
) -> None:
    status, response_headers, body = get(server, "/healthz", headers)
    assert status == 431
    assert response_headers["content-type"] == "application/json"
    assert error_of(body)["code"] == "headers_too_large"


def test_a_head_that_is_not_http_gets_a_json_400(server: FakeServer) -> None:
    answer = raw(server, b"GET / HTTP/1.1\r\nno colon in this header\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert error_of(body)["code"] == "invalid_http"


def test_a_body_over_the_limit_gets_its_413_while_the_client_still_sends(
    server: FakeServer,
) -> None:
    """http.client (like requests, httpx and openai) sends the whole body before reading:
    closed at once, the server would reset the connection and the 413 would be lost."""
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(3):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request(
                "POST", "/v1/audio/speech", body=b"x" * 4_000_000,
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            response = connection.getresponse()
            assert response.status == 413
            assert error_of(response.read())["code"] == "request_too_large"
        finally:
            connection.close()


def test_the_server_still_serves_after_refusals(server: FakeServer) -> None:
    assert get(server, "/healthz?x=" + "a" * 200_000)[0] == 414
    assert get(server, "/healthz")[0] == 200


def scope(target: int = 1, header_bytes: int = 10) -> dict[str, Any]:
    return {
        "raw_path": b"/" + b"p" * (target - 1),
        "query_string": b"",
        "headers": [(b"x", b"v" * (header_bytes - 5))],
    }


def test_check_head_limits_are_inclusive() -> None:
    assert check_head(scope(target=MAX_TARGET_BYTES, header_bytes=MAX_HEADER_BYTES)) is None
    refused = check_head(scope(target=MAX_TARGET_BYTES + 1))
    assert refused is not None
    assert refused.status == 414
    refused = check_head(scope(header_bytes=MAX_HEADER_BYTES + 1))
    assert refused is not None
    assert refused.status == 431
