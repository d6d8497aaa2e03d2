"""The Wyoming protocol: Home Assistant's door to local voice services.

``voxserve serve`` listens for it beside HTTP (``VOXSERVE_WYOMING_PORT``, default
10200), with the same voices, scheduler, cache, admission and metrics:

- :mod:`.info`: ``describe`` → ``info`` (every voice, every Whisper model);
- :mod:`.speak`: speech as ``audio-chunk`` events, through the cache and admission;
- :mod:`.buffer`: streamed text cut into complete sentences;
- :mod:`.listen`: a recording received as PCM events, recognized with Whisper;
- :mod:`.handler`: one connection's events and requests;
- :mod:`.service`: the listener and the mDNS advertisement.

Wyoming has no authentication: the port belongs on a trusted network
(docs/home-assistant.md).
"""

from voxserve.server.wyoming.context import Doors
from voxserve.server.wyoming.service import WyomingServer

__all__ = ["Doors", "WyomingServer"]
