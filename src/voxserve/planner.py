"""Planning: a request checked and turned into the sentences each voice will speak.

:class:`Planner` owns what a plan is made from besides the request: the voice library (to
resolve voices, SSML's ``<voice>`` names included), the limits on input and spoken
length, and the pronunciation lexicon, swapped whole by :meth:`Planner.reload_lexicon`.
Nothing here runs a model.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from voxserve.audio.formats import get_format
from voxserve.configs import SynthesisConfig
from voxserve.engines.voices import VoiceLibrary
from voxserve.errors import EmptyText, SpokenTextTooLong, TextTooLong
from voxserve.plan import Plan, check_params, named_voices, with_parts
from voxserve.text.lexicon import NAMES_LEXICON, Lexicon, load_lexicon, reads_names
from voxserve.text.spoken import Reader, plain_runs, render
from voxserve.text.ssml import parse_ssml
from voxserve.types import SPEED_RANGE, VOLUME_RANGE, SynthesisParams, SynthesisRequest, Voice

log = logging.getLogger(__name__)


def _scaled(params: SynthesisParams, rate: float, volume: float) -> SynthesisParams:
    """``params`` with SSML's rate and volume multipliers applied, within their ranges."""
    if rate == 1.0 and volume == 1.0:
        return params
    speed = min(max(params.speed * rate, SPEED_RANGE[0]), SPEED_RANGE[1])
    gain = min(max(params.volume * volume, VOLUME_RANGE[0]), VOLUME_RANGE[1])
    return replace(params, speed=speed, volume=gain)


class Planner:
    """Turns requests into plans for the voices of one library."""

    def __init__(self, library: VoiceLibrary, config: SynthesisConfig) -> None:
        self.library = library
        self.config = config
        self.lexicon = self._load_lexicon()
        """The pronunciation lexicon (VOXSERVE_LEXICON, then the bundled names unless
        VOXSERVE_NAMES_LEXICON=false); swapped whole by reload_lexicon."""

    def plan(self, request: SynthesisRequest, *, max_chars: int | None = None) -> Plan:
        """Validate ``request`` and split its text; raises an InvalidRequest subclass.

        The text must be at most ``max_input_chars`` long as sent, and ``max_spoken_chars``
        once normalized (digits expand 5-9 times when written out). An explicit
        ``max_chars`` (the CLI reading a file block by block) replaces both.
        """
        limit = self.config.max_input_chars if max_chars is None else max_chars
        fmt = get_format(request.format)
        check_params(request.params)
        voice = self.library.resolve(request.voice)
        if not request.text or not request.text.strip():
            raise EmptyText()
        if len(request.text) > limit:
            raise TextTooLong(len(request.text), limit)
        document = parse_ssml(request.text) if request.ssml else None
        named = named_voices(self.library.resolve, document.voices if document else ())
        runs = document.runs if document is not None else plain_runs(request.text)
        lexicon = self.lexicon
        spoken = render(
            runs,
            language=voice.language,
            voice=voice.id,
            sentence_silence=request.params.sentence_silence,
            max_sentence_chars=self.config.max_sentence_chars,
            lexicon=lexicon,
            phonemes=voice.engine == "piper",
            voices={n: Reader(v.id, v.language, v.engine == "piper") for n, v in named.items()},
        )
        spoken_limit = self.config.max_spoken_chars if max_chars is None else None
        spoken_chars = sum(len(s.text) + 1 for s in spoken.sentences)
        if spoken_limit is not None and spoken_chars > spoken_limit:
            raise SpokenTextTooLong(spoken_chars, spoken_limit)
        if not spoken.sentences:
            raise EmptyText(
                "The input has no speakable text (only punctuation, symbols or control characters)."
            )
        sentences = tuple(s.text for s in spoken.sentences)
        params = request.params
        sentence_params = tuple(_scaled(params, s.rate, s.volume) for s in spoken.sentences)
        pauses = tuple(s.pause for s in spoken.sentences)
        default_pauses = (params.sentence_silence,) * (len(sentences) - 1) + (0.0,)
        voices = [named[s.voice] if s.voice else voice for s in spoken.sentences]
        plan = Plan(
            voice=voices[0],
            format=fmt,
            params=params,
            sentences=sentences,
            input_chars=len(request.text),
            sentence_params=() if all(p == params for p in sentence_params) else sentence_params,
            pauses=() if pauses == default_pauses else pauses,
            marks=spoken.marks,
            warnings=document.warnings if document is not None else (),
            lexicon=_digest(lexicon, voices[0]),
        )
        if any(v.id != voices[0].id for v in voices):
            by_id = {v.id: v for v in voices}
            plan = with_parts(plan, voices, lambda vid: _digest(lexicon, by_id[vid]))
        return plan

    def reload_lexicon(self) -> Lexicon:
        """Read the VOXSERVE_LEXICON files again and use them from the next plan on;
        raises InvalidLexicon (the old lexicon stays) if one has a bad line."""
        self.lexicon = self._load_lexicon()
        log.info(
            "lexicon loaded: %d entries from %s, %d bundled names",
            len(self.lexicon.entries),
            ", ".join(self.lexicon.sources) or "no files",
            len(self.lexicon.names),
        )
        return self.lexicon

    def _load_lexicon(self) -> Lexicon:
        names = NAMES_LEXICON if self.config.names_lexicon else None
        return load_lexicon(self.config.lexicon, names=names)


def _digest(lexicon: Lexicon, voice: Voice) -> str:
    """The digest of the entries ``voice`` reads with (part of the cache key)."""
    return lexicon.digest(voice.id, names=reads_names(voice.language, voice.engine == "piper"))
