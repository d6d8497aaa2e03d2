"""Logging set-up: one JSON object per line, or plain text for people (on a terminal).

Every record logged while a request is served carries its ``request_id``: the server
binds each request's :class:`RequestInfo` to its context (:func:`bind_request`), and
:func:`annotate` adds fields to its access log line. Optionally a
copy of each line goes to syslog (``VOXSERVE_SYSLOG=udp://host:514``, ``tcp://host:601``
or ``unix:///dev/log``).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import socket
import sys
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlparse

from voxserve.errors import ConfigError

#: LogRecord attributes that are not user-supplied ``extra`` fields.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


@dataclass
class RequestInfo:
    """What one request did; filled in as it is served and logged at its end."""

    request_id: str
    fields: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestInfo | None] = ContextVar("voxserve_request", default=None)


def current_request() -> RequestInfo | None:
    """The request being served in this context, if any."""
    return _current.get()


def annotate(**fields: Any) -> None:
    """Add fields to the current request's access log line (no-op outside a request)."""
    info = _current.get()
    if info is not None:
        info.fields.update(fields)


def bind_request(info: RequestInfo) -> Token[RequestInfo | None]:
    """Make ``info`` the current request of this context; reset with the token's var."""
    return _current.set(info)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = _current.get()
        if info is not None and not hasattr(record, "request_id"):
            record.request_id = info.request_id
        return True


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra={...}`` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _SyslogHandler(logging.handlers.SysLogHandler):
    """RFC 3164-style lines tagged ``voxserve:``; newline-framed over TCP, as rsyslog expects."""

    def __init__(self, address: str | tuple[str, int], socktype: socket.SocketKind) -> None:
        super().__init__(address=address, socktype=socktype)
        self.ident = "voxserve: "
        self._tcp = socktype == socket.SOCK_STREAM
        self.append_nul = not self._tcp

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        return line + "\n" if self._tcp else line


def syslog_handler(target: str) -> logging.Handler:
    """A syslog handler for ``udp://host:port``, ``tcp://host:port`` or ``unix:///path``.

    An unusable target stops start-up with a ConfigError naming VOXSERVE_SYSLOG rather
    than failing on every log line later.
    """
    url = urlparse(target)
    try:
        if url.scheme == "unix" and url.path:
            return _SyslogHandler(url.path, socket.SOCK_DGRAM)
        if url.scheme in ("udp", "tcp") and url.hostname:
            kind = socket.SOCK_DGRAM if url.scheme == "udp" else socket.SOCK_STREAM
            # Resolve now: SysLogHandler would only fail on the first record for UDP.
            socket.getaddrinfo(url.hostname, url.port or 514, type=kind)
            return _SyslogHandler((url.hostname, url.port or 514), kind)
    except OSError as exc:
        raise ConfigError(
            f"VOXSERVE_SYSLOG={target!r}: cannot reach the syslog server ({exc}).",
            param="VOXSERVE_SYSLOG",
        ) from exc
    raise ConfigError(
        f"VOXSERVE_SYSLOG={target!r}: use udp://host:port, tcp://host:port or unix:///path",
        param="VOXSERVE_SYSLOG",
    )


class TextFormatter(logging.Formatter):
    """Human-readable lines; ``extra`` fields follow the message as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        return f"{line} {extra}" if extra else line


def configure(
    level: str = "INFO",
    fmt: str = "auto",
    syslog: str | None = None,
    *,
    stream: IO[str] | None = None,
) -> None:
    """Send voxserve's and uvicorn's logs to ``stream`` (stdout) in ``fmt``.

    ``fmt``: ``json``, ``text``, or ``auto``: text for a person when the stream is a
    terminal, JSON otherwise (a container, a file, a pipe). Syslog gets the same format,
    JSON under ``auto``.
    """
    stream = stream if stream is not None else sys.stdout
    if fmt == "auto":
        console: logging.Formatter = TextFormatter() if stream.isatty() else JSONFormatter()
        machine: logging.Formatter = JSONFormatter()
    else:
        console = machine = JSONFormatter() if fmt == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    handlers[0].setFormatter(console)
    if syslog:
        handlers.append(syslog_handler(syslog))
        handlers[1].setFormatter(machine)
    for handler in handlers:
        handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # voxserve.access logs every request with more detail than uvicorn's access log.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
