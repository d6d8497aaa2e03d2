"""OpenAI's voice names, and how the ``voice`` of an OpenAI request becomes an installed voice.

The voice library knows voice ids only; OpenAI's names are the business of the OpenAI door.
A request's ``voice`` is, in this order:

1. an installed voice id (``en_US-joe-medium``): that voice;
2. a key of ``VOXSERVE_VOICE_MAP`` (``{"nova": "en_GB-alba-medium"}``): the voice it names;
3. one of OpenAI's built-in names (:data:`OPENAI_VOICES`, any case) not in the map: the
   default voice, so every client that sends a name from OpenAI's list is answered;
4. anything else: :class:`~voxserve.errors.UnknownVoice` (404 ``voice_not_found``).

OpenAI's custom-voice object, ``{"id": "voice_1234"}``, goes through steps 1, 2 and 4:
it names one voice, so it must be installed or mapped; a built-in name there is no
fallback to the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from voxserve.errors import UnknownVoice

if TYPE_CHECKING:
    from voxserve.engines.voices import VoiceLibrary

#: OpenAI's built-in voice names (the speech request's ``voice`` in OpenAI's published API
#: document, tests/openai_spec/audio.json). Each is answered by the voice
#: ``VOXSERVE_VOICE_MAP`` names for it, or else by the default voice.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx",
    "sage", "shimmer", "verse",
)  # fmt: skip


def voice_id(
    name: str, library: VoiceLibrary, voice_map: Mapping[str, str], *, custom: bool = False
) -> str:
    """The installed voice id for an OpenAI request's ``voice`` (see the module docstring).

    ``custom``: ``name`` came as ``{"id": name}``, OpenAI's custom-voice object; unknown
    (empty included), it is reported against ``voice.id``. An empty plain ``name`` is the
    default voice.
    """
    if not name and not custom:
        return library.default_voice
    installed = {v.id for v in library.voices()}
    if name in installed:
        return name
    mapped = voice_map.get(name)
    if mapped is None and not custom and name.lower() in OPENAI_VOICES:
        mapped = voice_map.get(name.lower(), library.default_voice)
    if mapped is not None and mapped in installed:
        return mapped
    raise UnknownVoice(
        name,
        installed,
        param="voice.id" if custom else "voice",
        default=library.default_voice,
    )


def aliases(library: VoiceLibrary, voice_map: Mapping[str, str]) -> dict[str, str]:
    """Every name :func:`voice_id` maps to an installed voice (built-in and configured),
    with that voice's id; a mapping to a voice that is not installed is left out."""
    found = {}
    for name in (*OPENAI_VOICES, *sorted(voice_map)):
        try:
            resolved = voice_id(name, library, voice_map)
        except UnknownVoice:
            continue
        if resolved != name:
            found[name] = resolved
    return found
