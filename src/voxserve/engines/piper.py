"""Piper VITS voices run with onnxruntime directly.

We do not use ``piper.PiperVoice.synthesize``: it runs one sentence at a time, whole. Running
the sessions ourselves lets a batch of sentences be padded into one call and each item be
cut back to its true length (from the per-phoneme durations, hop length 256 samples per
duration unit), and lets the vocoder run on part of a sentence: the graph is cut in two
(:mod:`voxserve.engines.piper_model`).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from voxserve.engines.base import Head, Rest, whole_heads
from voxserve.engines.piper_model import read_config
from voxserve.engines.piper_runtime import CUDA, Sessions, select_providers
from voxserve.engines.piper_words import Symbols, word_times
from voxserve.engines.prepared import prepared_graphs, published
from voxserve.errors import EngineError, InvalidParameter, VoiceLoadError
from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice

log = logging.getLogger(__name__)

#: Latent frames the vocoder gets beyond each cut, so that a head and its rest join
#: seamlessly. Measured on en_US-joe-medium against uncut runs: 16 frames keep every
#: sample within 2e-7 (below 16-bit resolution), 8 frames miss by up to 2.6e-3 (a click).
VOCODER_CONTEXT = 16
#: Most latent frames the vocoder is given at once (about 3 s of audio at 22.05 kHz): a
#: longer span is vocoded in windows, which bounds the memory one sentence needs. Measured
#: on en_US-joe-medium, one 400-character sentence: 490 MB of RSS growth in one call, 107 MB
#: in windows of 256 frames (with memory patterns off), at the same speed within 1-3 %;
#: 192 frames: 79 MB, 3-5 % slower.
VOCODER_WINDOW = 256

T = TypeVar("T")


@dataclass(frozen=True)
class _Latent:
    """One utterance after the acoustic model: the vocoder's input, cut to its length."""

    frames: FloatArray
    """Latent frames, shape (1, channels, n)."""
    head: int = 0
    """Frames already vocoded (by infer_head)."""
    durations: npt.NDArray[np.int64] | None = None
    """Frames of each phoneme id (None where the graph gives no durations)."""

    @property
    def length(self) -> int:
        return int(self.frames.shape[2])


class PiperEngine:
    """One Piper voice on onnxruntime."""

    def __init__(
        self,
        voice: Voice,
        *,
        device: str = "auto",
        threads: int = 0,
        lanes: int = 1,
        batching: bool | None = None,
        model_cache: Path | None = None,
        lanes_later: bool = False,
    ) -> None:
        """Load ``voice``.

        ``threads``: onnxruntime's intra-op threads for a run that has the machine to
        itself (0: onnxruntime's default, every physical core). ``lanes`` > 1 (CPU only)
        adds a second set of sessions of the same model with ``threads // lanes`` threads,
        for runs side by side: one inference per core gets more audio out of a CPU than
        one inference on every core (docs/performance.md), at the cost of the second set's
        memory.

        ``batching`` pads several utterances into one model call. None means "on GPU
        only": on CPU the padding costs more than the batch saves (see docs/performance.md),
        so there a batch runs as consecutive single calls.

        ``model_cache``: where the optimized graphs are saved by the first load and reused
        by the next ones (:mod:`voxserve.engines.prepared`; None: prepared at every load).
        ``lanes_later``: do not create the lanes' sessions yet; :meth:`open_lanes` does
        (until then lane runs share the exclusive sessions), so a server can be ready
        first.
        """
        if voice.model_path is None or voice.config_path is None:
            raise VoiceLoadError(f"{voice.id}: a Piper voice needs a model and a config file")
        from piper import PiperVoice
        from piper.config import PiperConfig

        raw = read_config(voice.config_path)
        config = PiperConfig.from_dict(raw)
        providers = select_providers(device, ort.get_available_providers())
        graphs, staging = prepared_graphs(voice, providers, model_cache)
        try:
            alone = Sessions(voice, graphs, providers, threads, save=staging)
            self._check_matches(voice, alone.acoustic, config, raw)
        except BaseException:
            if staging is not None:
                staging.discard()
            raise
        if staging is not None:
            graphs = published(voice, graphs, staging)

        self._voice = voice
        self._config = config
        self._graphs = graphs
        self._hop = int(config.hop_length)
        self.providers = alone.acoustic.get_providers()
        on_gpu = self.providers[0] == CUDA
        self._lanes = 1 if on_gpu else max(1, lanes)
        self._alone = alone
        self._providers = providers
        self._lane_threads = max(1, threads // self._lanes)
        self._lanes_lock = threading.Lock()
        self._shared: Sessions | None = alone if self._lanes == 1 else None
        if not lanes_later:
            self.open_lanes()
        self._sid = "sid" in {i.name for i in alone.acoustic.get_inputs()}
        # PiperVoice is used only for its phonemizer (espeak-ng bundled in piper-tts).
        self._phonemizer = PiperVoice(session=alone.acoustic, config=config)
        self._symbols = Symbols(config.phoneme_id_map)
        self.batching = on_gpu if batching is None else batching
        log.info(
            "loaded voice %s on %s, %d lane(s), vocoder %s",
            voice.id, self.providers[0], self._lanes,
            "apart" if graphs.vocoder is not None else "in one graph",
        )  # fmt: skip

    def open_lanes(self) -> None:
        """Create the sessions lane runs use (one core each), if not yet done."""
        with self._lanes_lock:
            if self._shared is None:
                self._shared = Sessions(
                    self._voice, self._graphs, self._providers, self._lane_threads
                )
                log.info("voice %s: %d lanes open", self._voice.id, self._lanes)

    @property
    def lanes_open(self) -> bool:
        """Whether lane runs have their own sessions (see :meth:`open_lanes`)."""
        return self._shared is not None

    def _sessions(self, exclusive: bool) -> Sessions:
        shared = self._shared
        return self._alone if exclusive or shared is None else shared

    @staticmethod
    def _check_matches(voice: Voice, session: ort.InferenceSession, config: Any, raw: Any) -> None:
        inputs = {i.name for i in session.get_inputs()}
        if not {"input", "input_lengths", "scales"} <= inputs:
            raise VoiceLoadError(f"{voice.id}: the model is not a Piper VITS voice ({inputs})")
        if config.num_speakers > 1 and "sid" not in inputs:
            raise VoiceLoadError(
                f"{voice.id}: the config says {config.num_speakers} speakers but the model "
                "takes no speaker id; the .onnx and .onnx.json do not belong together"
            )
        max_id = max(i for ids in config.phoneme_id_map.values() for i in ids)
        num_symbols = int(raw.get("num_symbols", max_id + 1))
        if max_id >= num_symbols:
            raise VoiceLoadError(f"{voice.id}: phoneme ids exceed num_symbols={num_symbols}")

    @property
    def voice(self) -> Voice:
        return self._voice

    @property
    def sample_rate(self) -> int:
        return int(self._config.sample_rate)

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def splits_vocoder(self) -> bool:
        """Whether a head costs only the acoustic model and the head's vocoder frames."""
        return self._graphs.vocoder is not None

    def prepare(self, text: str, params: SynthesisParams) -> list[Utterance]:
        if params.speaker is not None and not 0 <= params.speaker < self._config.num_speakers:
            raise InvalidParameter(
                f"Speaker {params.speaker} does not exist; voice {self._voice.id} has "
                f"{self._config.num_speakers} speaker(s), numbered from 0.",
                param="speaker",
            )
        return [
            Utterance(
                text=text, ids=tuple(self._phonemizer.phonemes_to_ids(phonemes)), params=params
            )
            for phonemes in self._phonemizer.phonemize(text)
            if phonemes
        ]

    def _scales(self, params: SynthesisParams) -> tuple[float, float, float]:
        c = self._config
        return (
            c.noise_scale if params.noise_scale is None else params.noise_scale,
            c.length_scale / params.speed,
            c.noise_w_scale if params.noise_w is None else params.noise_w,
        )

    def _speaker(self, params: SynthesisParams) -> int:
        if params.speaker is not None:
            return params.speaker
        return int(self._config.default_speaker_id or 0) if self._sid else 0

    # -- the protocol ---------------------------------------------------------------------------

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        sessions = self._sessions(exclusive)
        if sessions.vocoder is None:
            return self._grouped(batch, lambda items: self._run_whole(sessions, items))

        def run(items: list[Utterance]) -> list[FloatArray]:
            latents = self._acoustic(sessions, items)
            return self._vocode(sessions, [(lat.frames, 0, lat.length) for lat in latents])

        return self._grouped(batch, run)

    def infer_head(
        self, batch: Sequence[Utterance], seconds: float, *, exclusive: bool = False
    ) -> list[Head]:
        sessions = self._sessions(exclusive)
        if sessions.vocoder is None:
            return whole_heads(self, batch, exclusive=exclusive)
        # math.inf: the whole utterance, with its word timings.
        head = (
            max(1, round(seconds * self.sample_rate / self._hop))
            if math.isfinite(seconds)
            else sys.maxsize
        )

        def run(items: list[Utterance]) -> list[Head]:
            latents = self._acoustic(sessions, items)
            # A sentence less than twice the head is made whole: its rest would save little
            # and leave the listener a short buffer to play while the rest is made.
            cut = [lat.length >= 2 * head for lat in latents]
            spans = [
                (lat.frames, 0, head if c else lat.length)
                for lat, c in zip(latents, cut, strict=True)
            ]
            audio = self._vocode(sessions, spans)
            return [
                Head(
                    a,
                    Rest(u, _Latent(lat.frames, head)) if c else None,
                    word_times(u.ids, lat.durations, self._symbols, self._hop / self.sample_rate),
                )
                for u, lat, a, c in zip(items, latents, audio, cut, strict=True)
            ]

        return self._grouped(batch, run)

    def infer_rest(self, batch: Sequence[Rest], *, exclusive: bool = False) -> list[FloatArray]:
        sessions = self._sessions(exclusive)
        spans = []
        for rest in batch:
            latent = rest.state
            if not isinstance(latent, _Latent):
                raise TypeError(f"not a rest of this engine: {type(latent).__name__}")
            spans.append((latent.frames, latent.head, latent.length))
        return self._chunked(spans, lambda part: self._vocode(sessions, part))

    def close(self) -> None:
        """Nothing to do: onnxruntime frees the sessions with the last reference to them."""

    # -- running the graphs ------------------------------------------------------------------------

    def _grouped(
        self, batch: Sequence[Utterance], run: Callable[[list[Utterance]], list[T]]
    ) -> list[T]:
        """``run`` over the batch in model calls, results in the batch's order. The model
        takes one set of scales per call, so items are grouped by them."""
        results: dict[int, T] = {}
        order = sorted(range(len(batch)), key=lambda i: self._scales(batch[i].params))
        for _, group in groupby(order, key=lambda i: self._scales(batch[i].params)):
            indices = list(group)
            out = self._chunked([batch[i] for i in indices], run)
            results.update(zip(indices, out, strict=True))
        return [results[i] for i in range(len(batch))]

    def _chunked(self, items: list[Any], run: Callable[[list[Any]], list[T]]) -> list[T]:
        """``run`` on all ``items`` at once where batches pay, else one by one."""
        step = len(items) if self._graphs.has_durations and self.batching else 1
        return [
            out for start in range(0, len(items), step) for out in run(items[start : start + step])
        ]

    def _feeds(self, items: list[Utterance]) -> tuple[dict[str, Any], npt.NDArray[np.int64]]:
        """The acoustic model's inputs for a padded batch, and the ids' true lengths."""
        lengths = np.array([len(u.ids) for u in items], dtype=np.int64)
        ids = np.zeros((len(items), int(lengths.max())), dtype=np.int64)
        for row, u in enumerate(items):
            ids[row, : len(u.ids)] = u.ids
        feeds: dict[str, Any] = {
            "input": ids,
            "input_lengths": lengths,
            "scales": np.array(self._scales(items[0].params), dtype=np.float32),
        }
        if self._sid:
            feeds["sid"] = np.array([self._speaker(u.params) for u in items], dtype=np.int64)
        return feeds, lengths

    def _call(self, session: ort.InferenceSession, feeds: dict[str, Any]) -> list[Any]:
        try:
            return list(session.run(None, feeds))
        except Exception as exc:  # onnxruntime's errors are untyped
            raise EngineError(f"{self._voice.id}: inference failed ({exc})") from exc

    def _run_whole(self, sessions: Sessions, items: list[Utterance]) -> list[FloatArray]:
        """The uncut graph: ids to audio in one call, rows cut at their true length."""
        feeds, lengths = self._feeds(items)
        outputs = self._call(sessions.acoustic, feeds)
        audio = outputs[0].reshape(len(items), -1)
        if len(items) == 1:
            return [np.ascontiguousarray(audio[0], dtype=np.float32)]
        durations = outputs[1].reshape(len(items), -1)
        return [
            np.ascontiguousarray(audio[row, : int(durations[row, :n].sum()) * self._hop])
            for row, n in enumerate(lengths)
        ]

    def _acoustic(self, sessions: Sessions, items: list[Utterance]) -> list[_Latent]:
        """Each item's latent frames, cut from the padded batch at its summed durations."""
        feeds, lengths = self._feeds(items)
        frames, durations = self._call(sessions.acoustic, feeds)
        durations = durations.reshape(len(items), -1)
        return [
            _Latent(
                np.ascontiguousarray(frames[row : row + 1, :, : int(durations[row, :n].sum())]),
                durations=durations[row, :n].astype(np.int64),
            )
            for row, n in enumerate(lengths)
        ]

    def _vocode(
        self, sessions: Sessions, spans: list[tuple[FloatArray, int, int]]
    ) -> list[FloatArray]:
        """Audio of frames ``start:stop`` of each latent, in windows of at most
        VOCODER_WINDOW frames: one padded vocoder call per window of each span.

        The vocoder's intermediate tensors grow with its input (about 450 MB for a
        400-character sentence in one call, kept by onnxruntime's arena afterwards); in
        windows the memory one sentence needs is bounded, and the joins are as exact as the
        head's (VOCODER_CONTEXT frames of overlap).
        """
        parts: list[list[FloatArray]] = [[] for _ in spans]
        offset = 0
        while True:
            current = [
                (i, (frames, start + offset, min(stop, start + offset + VOCODER_WINDOW)))
                for i, (frames, start, stop) in enumerate(spans)
                if start + offset < stop or (offset == 0 and start == stop)
            ]
            if not current:
                break
            audio = self._vocode_once(sessions, [span for _, span in current])
            for (i, _), piece in zip(current, audio, strict=True):
                parts[i].append(piece)
            offset += VOCODER_WINDOW
        return [p[0] if len(p) == 1 else np.concatenate(p) for p in parts]

    def _vocode_once(
        self, sessions: Sessions, spans: list[tuple[FloatArray, int, int]]
    ) -> list[FloatArray]:
        """Audio of frames ``start:stop`` of each latent, in one padded vocoder call.

        Each span is vocoded with up to VOCODER_CONTEXT frames beyond each end, whose audio
        is then dropped, so that spans of one latent join as if it had been vocoded whole.
        """
        assert sessions.vocoder is not None
        hop, context = self._hop, VOCODER_CONTEXT
        windows = []
        for frames, start, stop in spans:
            low, high = max(0, start - context), min(frames.shape[2], stop + context)
            windows.append((frames[:, :, low:high], start - low, stop - start))
        longest = max(w.shape[2] for w, _, _ in windows)
        batch = np.zeros((len(windows), windows[0][0].shape[1], longest), dtype=np.float32)
        for row, (window, _, _) in enumerate(windows):
            batch[row, :, : window.shape[2]] = window[0]
        (audio,) = self._call(sessions.vocoder, {self._graphs.latent: batch})
        audio = audio.reshape(len(windows), -1)
        return [
            np.ascontiguousarray(audio[row, skip * hop : (skip + count) * hop], dtype=np.float32)
            for row, (_, skip, count) in enumerate(windows)
        ]
