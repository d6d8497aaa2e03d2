"""Logs (voxserve.logs, server/observe.py): JSON lines, request ids, secrets, syslog.

Most tests read the log of a real server (tests/live.py). The access line of a request is
written just after its last byte is sent, so a test polls the log (for a bounded time)
until the line with its request id is there. The unit tests at the end drive the
formatter, the request-id filter and the syslog handler directly.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from live import LiveServer, free_port
from voxserve.errors import ConfigError
from voxserve.logs import JSONFormatter, RequestIdFilter, configure, syslog_handler
from voxserve.metrics import Metrics
from voxserve.server.auth import key_id
from voxserve.server.observe import ObserveMiddleware
from voxserve.settings import Settings

SPEECH = "/v1/audio/speech"
VOICE = "en_US-joe-medium"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
#: Fields every access line of a synthesized request carries.
ACCESS_FIELDS = {
    "request_id", "method", "route", "status", "duration_ms",
    "voice", "format", "characters", "cache", "audio_seconds",
}  # fmt: skip
#: Servers other than the default one skip espeak-ng voice discovery to start faster.
QUICK = {"VOXSERVE_ESPEAK": "false"}


def parse_json_log(log: str) -> list[dict[str, Any]]:
    """Every non-empty line of ``log`` as JSON; a line that is not JSON fails the test."""
    records = []
    for line in log.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"log line is not JSON: {line!r}")
    return records


def wait_for_access(server: LiveServer, request_id: str, timeout: float = 20) -> dict[str, Any]:
    """The JSON access line of ``request_id``, once the server has written it."""
    deadline = time.monotonic() + timeout
    while True:
        for record in parse_json_log(server.log):
            if record.get("logger") == "voxserve.access" and record.get("request_id") == request_id:
                return record
        if time.monotonic() > deadline:
            pytest.fail(f"no access line for {request_id!r} after {timeout}s:\n{server.log}")
        time.sleep(0.05)


def speak(
    server: LiveServer, text: str, headers: dict[str, str] | None = None, **options: Any
) -> httpx.Response:
    body = {"input": text, "response_format": "wav", **options}
    return httpx.post(server.url + SPEECH, json=body, headers=headers, timeout=120)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """A server with default settings: JSON logs, no text in them, no API keys."""
    with LiveServer() as live:
        yield live


# -- request ids and access lines -------------------------------------------------------------


def test_given_request_id_is_echoed_and_logged_with_the_request_fields(
    server: LiveServer,
) -> None:
    text = "The lighthouse keeper waved from the tower."
    response = speak(server, text, headers={"X-Request-ID": "test-req-42"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "test-req-42"
    access = wait_for_access(server, "test-req-42")
    assert set(access) >= ACCESS_FIELDS
    assert access["level"] == "INFO"
    assert access["method"] == "POST"
    assert access["route"] == SPEECH
    assert access["status"] == 200
    assert access["voice"] == VOICE
    assert access["format"] == "wav"
    assert access["characters"] == len(text)
    assert access["cache"] == "miss"
    assert access["duration_ms"] > 0
    assert access["audio_seconds"] > 1.0  # seven words take well over a second to say
    assert access["message"] == f"POST {SPEECH} 200"


def test_request_without_an_id_gets_a_generated_one_echoed_and_logged(
    server: LiveServer,
) -> None:
    response = httpx.get(server.url + "/v1/models", timeout=30)

    assert response.status_code == 200
    generated = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(generated)
    access = wait_for_access(server, generated)
    assert (access["route"], access["status"], access["method"]) == ("/v1/models", 200, "GET")


def test_longest_allowed_request_id_is_kept(server: LiveServer) -> None:
    given = "trace.id:42_" + "a" * 116  # 128 characters of the allowed set

    response = httpx.get(server.url + "/healthz", headers={"X-Request-ID": given}, timeout=30)

    assert response.headers["x-request-id"] == given
    assert wait_for_access(server, given)["route"] == "/healthz"


@pytest.mark.parametrize(
    "given",
    [
        pytest.param(b"r" * 300, id="300-chars"),
        pytest.param(b"r" * 129, id="129-chars"),
        pytest.param(b"has spaces in it", id="spaces"),
        pytest.param(b"tab\there", id="tab"),
        pytest.param(b'x","status":500,"level":"ERROR', id="json-injection"),
        pytest.param(b"caf\xe9-id", id="non-ascii"),
    ],
)
def test_invalid_request_id_is_replaced_by_a_generated_one(
    server: LiveServer, given: bytes
) -> None:
    """The unusable id is neither echoed nor logged: the log gets a fresh id instead."""
    response = httpx.get(server.url + "/healthz", headers={"X-Request-ID": given}, timeout=30)

    assert response.status_code == 200
    replaced = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(replaced)
    access = wait_for_access(server, replaced)
    assert access["status"] == 200
    assert given.decode("latin-1") not in server.log


def test_folded_request_id_header_cannot_inject_a_log_line(server: LiveServer) -> None:
    """An obsolete folded header (a line break inside the value) reaches the app as one
    value with a space, which is refused, so the second line never reaches the log."""
    request = (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"X-Request-ID: folded-start\r\n INJECTED-LINE\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk

    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 200")
    echoed = re.search(r"^x-request-id: (.*)$", head, re.M)
    assert echoed is not None
    replaced = echoed.group(1).strip()
    assert GENERATED_ID.fullmatch(replaced)
    wait_for_access(server, replaced)
    assert "INJECTED-LINE" not in server.log
    assert "folded-start" not in server.log


# -- what must not be logged ----------------------------------------------------------------


def test_input_text_is_not_logged_by_default(server: LiveServer) -> None:
    text = "Periwinkle xylophones serenade the sleepy harbour."
    response = speak(server, text, headers={"X-Request-ID": "no-text-1"})

    assert response.status_code == 200
    access = wait_for_access(server, "no-text-1")
    assert "text" not in access
    assert access["characters"] == len(text)
    for word in ("Periwinkle", "xylophones", "serenade"):
        assert word.lower() not in server.log.lower()


def test_every_log_line_is_a_json_object_with_the_core_fields(server: LiveServer) -> None:
    """After successes, errors and a stream, stdout holds only JSON lines."""
    assert speak(server, "A short streamed sentence.", response_format="mp3").status_code == 200
    assert speak(server, "Hello.", voice="nobody").status_code == 404
    assert speak(server, "Hello.", speed=100).status_code == 422
    last = httpx.get(server.url + "/no/such/page", headers={"X-Request-ID": "last-1"})
    assert last.status_code == 404
    wait_for_access(server, "last-1")

    records = parse_json_log(server.log)
    assert len(records) > 5
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record), record
        assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    loggers = {r["logger"] for r in records}
    assert {"voxserve.access", "voxserve.server.app", "uvicorn.error"} <= loggers
    statuses = {r["status"] for r in records if r["logger"] == "voxserve.access"}
    assert {200, 404, 422} <= statuses


API_KEY = "sk-logs-Zr8Kq2Lm5Nv1"
WRONG_KEY = "sk-nope-Tb4Wy7Hc3Jx9"


def test_api_keys_never_appear_in_the_log() -> None:
    """Right and wrong keys, as Bearer and X-API-Key: the log holds only the key's hash."""
    with LiveServer(env={**QUICK, "VOXSERVE_API_KEYS": API_KEY}) as live:
        attempts = {
            "right-bearer": ({"Authorization": f"Bearer {API_KEY}"}, 200),
            "right-header": ({"X-API-Key": API_KEY}, 200),
            "wrong-bearer": ({"Authorization": f"Bearer {WRONG_KEY}"}, 401),
            "wrong-header": ({"X-API-Key": WRONG_KEY}, 401),
        }
        for request_id, (headers, status) in attempts.items():
            response = speak(live, "Keys stay secret.", {**headers, "X-Request-ID": request_id})
            assert response.status_code == status, request_id

        lines = {request_id: wait_for_access(live, request_id) for request_id in attempts}
        log = live.log

    assert lines["right-bearer"]["client"] == key_id(API_KEY)
    assert lines["right-header"]["client"] == key_id(API_KEY)
    assert lines["wrong-bearer"]["status"] == 401
    assert "client" not in lines["wrong-bearer"]
    assert API_KEY not in log
    assert WRONG_KEY not in log
    assert key_id(WRONG_KEY) not in log


def test_log_text_setting_puts_the_input_text_in_the_access_line() -> None:
    text = "Periwinkle xylophones serenade the harbour. Gulls listen quietly."
    with LiveServer(env={**QUICK, "VOXSERVE_LOG_TEXT": "true"}) as live:
        response = speak(live, text, headers={"X-Request-ID": "with-text-1"})
        assert response.status_code == 200
        access = wait_for_access(live, "with-text-1")

    assert access["text"] == text


def test_text_log_format_gives_human_lines() -> None:
    access_line = re.compile(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO +voxserve\.access: POST /v1/audio/speech 200"
        r" request_id=[0-9a-f]{32} .*duration_ms=[\d.]+.*"
    )
    with LiveServer(env={**QUICK, "VOXSERVE_LOG_FORMAT": "text"}) as live:
        response = speak(live, "Plain lines for people.")
        assert response.status_code == 200
        assert GENERATED_ID.fullmatch(response.headers["x-request-id"])
        deadline = time.monotonic() + 20
        while not any(access_line.fullmatch(line) for line in live.log.splitlines()):
            assert time.monotonic() < deadline, live.log
            time.sleep(0.05)
        lines = [line for line in live.log.splitlines() if line.strip()]

    assert any("voxserve.server.app: voxserve ready in" in line for line in lines)
    for line in lines:
        assert not line.lstrip().startswith("{"), line


# -- syslog ---------------------------------------------------------------------------------

#: ``<priority>voxserve: message``, NUL-terminated over datagrams, newline-framed over TCP.
SYSLOG_LINE = re.compile(rb"<(\d{1,3})>voxserve: (.*?)[\x00\n]?", re.S)
#: LOG_USER (1) * 8 + INFO (6): the priority of an INFO line.
USER_INFO = 14


def receive_until(sock: socket.socket, needle: bytes, timeout: float = 20) -> list[bytes]:
    """Datagrams from ``sock`` up to and including the first that contains ``needle``."""
    received: list[bytes] = []
    deadline = time.monotonic() + timeout
    while not received or needle not in received[-1]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no syslog datagram with {needle!r}; got {received!r}")
        sock.settimeout(remaining)
        try:
            received.append(sock.recv(65536))
        except TimeoutError:
            continue
    return received


def check_syslog_access(datagrams: list[bytes], request_id: str) -> None:
    parsed = [SYSLOG_LINE.fullmatch(d) for d in datagrams]
    assert all(parsed), datagrams
    last = parsed[-1]
    assert last is not None
    assert int(last[1]) == USER_INFO
    access = json.loads(last[2])
    assert access["logger"] == "voxserve.access"
    assert access["request_id"] == request_id
    assert access["status"] == 200
    assert access["route"] == SPEECH


def test_syslog_over_udp_receives_the_json_access_line() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        env = {**QUICK, "VOXSERVE_SYSLOG": f"udp://127.0.0.1:{port}"}
        with LiveServer(env=env) as live:
            response = speak(live, "Sent to syslog.", {"X-Request-ID": "syslog-udp-1"})
            assert response.status_code == 200
            datagrams = receive_until(receiver, b'"syslog-udp-1"')
            wait_for_access(live, "syslog-udp-1")  # stdout still gets it too

    check_syslog_access(datagrams, "syslog-udp-1")
    assert any(b"voxserve ready in" in d for d in datagrams)


def test_syslog_over_a_unix_datagram_socket_receives_the_json_access_line() -> None:
    directory = tempfile.mkdtemp(prefix="vx-", dir="/tmp")  # short: AF_UNIX paths max 107
    path = os.path.join(directory, "log.sock")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            with LiveServer(env={**QUICK, "VOXSERVE_SYSLOG": f"unix://{path}"}) as live:
                response = speak(live, "Sent to syslog.", {"X-Request-ID": "syslog-unix-1"})
                assert response.status_code == 200
                datagrams = receive_until(receiver, b'"syslog-unix-1"')
    finally:
        shutil.rmtree(directory, ignore_errors=True)

    check_syslog_access(datagrams, "syslog-unix-1")


def run_serve(**env: str) -> subprocess.CompletedProcess[str]:
    """``voxserve serve`` with these variables; expected to exit on its own at start-up."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXSERVE_")}
    clean.update(
        VOXSERVE_HOST="127.0.0.1",
        VOXSERVE_PORT=str(free_port()),
        VOXSERVE_METRICS_PORT=str(free_port()),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "voxserve", "serve"],
        env=clean,
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )


def test_bad_syslog_target_stops_start_up_naming_the_variable() -> None:
    result = run_serve(VOXSERVE_SYSLOG="ftp://x")

    assert result.returncode != 0
    assert "VOXSERVE_SYSLOG" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_tcp_syslog_stops_start_up_naming_the_variable() -> None:
    result = run_serve(VOXSERVE_SYSLOG=f"tcp://127.0.0.1:{free_port()}")

    assert result.returncode != 0
    assert "VOXSERVE_SYSLOG" in result.stderr
    assert "Traceback" not in result.stderr


# -- units: formatter, filter, handler ---------------------------------------------------------


def make_record(**fields: Any) -> logging.LogRecord:
    base: dict[str, Any] = {
        "name": "voxserve.test",
        "levelno": logging.WARNING,
        "levelname": "WARNING",
        "msg": "spoke %d sentences",
        "args": (3,),
        "created": 1_790_000_000.25,
    }
    return logging.makeLogRecord({**base, **fields})


def test_json_formatter_puts_extra_fields_at_the_top_level() -> None:
    line = JSONFormatter().format(make_record(voice=VOICE, characters=42, source=io.StringIO))

    entry = json.loads(line)
    assert entry["timestamp"] == "2026-09-21T14:13:20.250+00:00"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "voxserve.test"
    assert entry["message"] == "spoke 3 sentences"
    assert entry["voice"] == VOICE
    assert entry["characters"] == 42
    assert entry["source"] == str(io.StringIO)  # not JSON-serializable: written as text
    assert not {"msg", "args", "levelno", "created", "exc_info", "exc_text"} & set(entry)


def test_json_formatter_writes_an_exception_on_the_same_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = make_record(exc_info=sys.exc_info())

    line = JSONFormatter().format(record)

    assert "\n" not in line
    exception = json.loads(line)["exception"]
    assert exception.startswith("Traceback (most recent call last):")
    assert exception.endswith("ValueError: boom\nsecond line")


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, Capture]]:
    logger = logging.getLogger("voxserve.test.request_id")
    handler = Capture()
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler
    logger.removeHandler(handler)
    logger.propagate = True


def test_request_id_filter_adds_the_id_only_inside_a_request(
    captured: tuple[logging.Logger, Capture],
) -> None:
    logger, handler = captured

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        logger.info("inside")
        logger.info("explicit", extra={"request_id": "set-by-caller"})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ObserveMiddleware(endpoint, metrics=Metrics())
    logger.info("before")
    # No context manager: the app has no lifespan, only the one HTTP request.
    response = TestClient(app).get("/anything", headers={"X-Request-ID": "unit-7"})
    logger.info("after")

    assert response.headers["x-request-id"] == "unit-7"
    ids = {r.getMessage(): getattr(r, "request_id", None) for r in handler.records}
    assert ids == {"before": None, "inside": "unit-7", "explicit": "set-by-caller", "after": None}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure() rewires the root logger and uvicorn's: put them back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    uvicorn = {n: logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    saved_uvicorn = {n: (lg.handlers[:], lg.level, lg.propagate) for n, lg in uvicorn.items()}
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, (handlers, lvl, propagate) in saved_uvicorn.items():
        uvicorn[name].handlers[:] = handlers
        uvicorn[name].setLevel(lvl)
        uvicorn[name].propagate = propagate


@pytest.mark.usefixtures("restore_logging")
def test_configure_sends_json_lines_to_stdout_and_quiets_uvicorn_access(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("INFO", "json")
    logging.getLogger("voxserve.test.configure").info("hello %s", "there", extra={"n": 1})
    logging.getLogger("voxserve.test.configure").debug("not at INFO")
    logging.getLogger("uvicorn.access").info("duplicate access line")

    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["hello there"]
    assert json.loads(lines[0])["n"] == 1


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as stdout is in a shell."""

    def isatty(self) -> bool:
        return True


@pytest.mark.inprocess
@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("stream", "readable"), [(Terminal(), True), (io.StringIO(), False)], ids=["tty", "pipe"]
)
def test_auto_format_is_text_on_a_terminal_and_json_elsewhere(
    stream: io.StringIO, readable: bool
) -> None:
    """The default (auto): a person at a terminal reads lines, a collector gets JSON."""
    configure("INFO", "auto", stream=stream)
    logging.getLogger("voxserve.test.auto").info("hello %s", "there", extra={"n": 1})

    (line,) = stream.getvalue().splitlines()
    if readable:
        assert re.fullmatch(r"\S+ \S+ INFO +voxserve\.test\.auto: hello there n=1", line), line
    else:
        assert json.loads(line)["message"] == "hello there"


@pytest.mark.inprocess
def test_log_format_defaults_to_auto() -> None:
    assert Settings().log_format == "auto"


def test_syslog_handler_over_tcp_delivers_a_prioritized_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        handler = syslog_handler(f"tcp://127.0.0.1:{port}")
        try:
            handler.setFormatter(JSONFormatter())
            handler.handle(make_record(voice=VOICE))
            listener.settimeout(10)
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(10)
                data = b""
                while not data.endswith(b"\n"):
                    chunk = connection.recv(65536)
                    assert chunk, data
                    data += chunk
        finally:
            handler.close()

    match = SYSLOG_LINE.fullmatch(data)
    assert match is not None
    assert int(match[1]) == 8 + 4  # LOG_USER, WARNING
    assert json.loads(match[2])["voice"] == VOICE


@pytest.mark.parametrize(
    "target", ["ftp://x", "udp://", "tcp://:601", "syslog.example.com:514", "/dev/log"]
)
def test_syslog_handler_refuses_unusable_targets_naming_the_variable(target: str) -> None:
    with pytest.raises(ConfigError) as raised:
        syslog_handler(target)

    assert raised.value.param == "VOXSERVE_SYSLOG"
    assert "VOXSERVE_SYSLOG" in raised.value.message
    assert "udp://host:port" in raised.value.message
