"""The Wyoming listener: connections on a socket bound before the voices load, and the
mDNS advertisement Home Assistant discovers it by.

Started by the app's lifespan once the voices are warm, on the same event loop as the
HTTP routes (:func:`voxserve.server.app.create_app` takes the socket). Stopping it closes
the listener, lets the requests in progress finish (up to a grace period), then cancels
whatever is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from functools import partial
from typing import Any

from wyoming.server import AsyncServer, HandlerFactory

from voxserve.server.wyoming.context import Doors
from voxserve.server.wyoming.handler import WyomingHandler

log = logging.getLogger(__name__)

#: The mDNS service type Home Assistant's Wyoming integration browses for.
SERVICE_TYPE = "_wyoming._tcp.local."
#: Seconds requests in progress get to finish when the server stops.
GRACE_SECONDS = 10.0


class WyomingServer(AsyncServer):
    """Serves Wyoming on an already bound TCP socket (wyoming's own servers bind it
    themselves, which would come after the models load)."""

    def __init__(self, doors: Doors, sock: socket.socket) -> None:
        super().__init__()
        self.doors = doors
        self.socket = sock
        self._server: asyncio.Server | None = None
        self._zeroconf: Advertisement | None = None

    @property
    def address(self) -> str:
        """``tcp://host:port`` of the listener (the real port when 0 was asked for)."""
        host, port = self.socket.getsockname()[:2]
        return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"

    async def run(self, handler_factory: HandlerFactory) -> None:
        await self.start(handler_factory)
        assert self._server is not None
        await self._server.serve_forever()

    async def start(self, handler_factory: HandlerFactory | None = None) -> None:
        """Accept connections (``handler_factory``: default, a WyomingHandler each)."""
        factory = handler_factory or partial(WyomingHandler, self.doors)
        self._server = await asyncio.start_server(
            partial(self._handler_callback, factory), sock=self.socket
        )
        log.info("Wyoming (Home Assistant) listening on %s", self.address)
        if self.doors.settings.wyoming_zeroconf:
            self._zeroconf = Advertisement(self.socket.getsockname()[1], self.socket)
            await self._zeroconf.start()

    async def stop(self) -> None:
        """Stop accepting, give requests in progress GRACE_SECONDS, then cancel the rest."""
        if self._zeroconf is not None:
            await self._zeroconf.stop()
            self._zeroconf = None
        if self._server is not None:
            self._server.close()
        deadline = time.monotonic() + GRACE_SECONDS
        while time.monotonic() < deadline and any(
            isinstance(h, WyomingHandler) and h.busy for h in self._handlers.values()
        ):
            await asyncio.sleep(0.05)
        tasks = list(self._handlers)
        await super().stop()  # each handler's reader ends: its run() cancels its work
        if tasks:
            await asyncio.wait(tasks, timeout=GRACE_SECONDS)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


class Advertisement:
    """``_wyoming._tcp`` over mDNS, as wyoming-piper's ``--zeroconf`` does, so Home
    Assistant finds the server by itself (VOXSERVE_WYOMING_ZEROCONF).

    The address advertised is the listener's, or where it listens on every address, the
    one this machine reaches the mDNS group from.
    """

    def __init__(self, port: int, sock: socket.socket, *, name: str | None = None) -> None:
        self.port = port
        self.host = advertised_host(sock.getsockname()[0])
        self.name = name or f"voxserve-{socket.gethostname()}"
        self._zeroconf: Any = None
        self._info: Any = None

    def service_info(self) -> Any:
        from zeroconf.asyncio import AsyncServiceInfo

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.name}.{SERVICE_TYPE}",
            addresses=[socket.inet_pton(family, self.host)],
            port=self.port,
        )

    async def start(self) -> None:
        from zeroconf.asyncio import AsyncZeroconf

        if self.host.startswith("127."):
            log.warning(
                "Wyoming discovery advertises %s, which only this machine can reach: set "
                "VOXSERVE_WYOMING_HOST to an address Home Assistant can connect to",
                self.host,
            )
        self._info = self.service_info()
        try:
            self._zeroconf = AsyncZeroconf()
            await self._zeroconf.async_register_service(self._info)
        except Exception as exc:  # no multicast here: serve on, without discovery
            log.warning(
                "Wyoming discovery is off: mDNS failed (%s); add the integration by host "
                "and port", exc,
            )  # fmt: skip
            await self.stop()
            return
        log.info("Wyoming discovery: %s at %s:%d", self._info.name, self.host, self.port)

    async def stop(self) -> None:
        if self._zeroconf is None:
            return
        zeroconf, self._zeroconf = self._zeroconf, None
        with contextlib.suppress(Exception):  # the network may be gone at shutdown
            await zeroconf.async_unregister_service(self._info)
        with contextlib.suppress(Exception):
            await zeroconf.async_close()


def advertised_host(bound: str) -> str:
    """The IPv4 address to advertise for a listener bound to ``bound``."""
    if bound not in ("0.0.0.0", "", "::"):
        return bound
    # Connecting a UDP socket sends nothing: it only asks the kernel for the route.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.setblocking(False)
        probe.connect(("224.0.0.251", 5353))
        return str(probe.getsockname()[0])
