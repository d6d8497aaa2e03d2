"""Piper VITS voices run with onnxruntime directly.

We do not use ``piper.PiperVoice.synthesize``: it runs one sentence at a time. Running the
session ourselves lets a batch of sentences be padded into one call and each item be cut
back to its true length. The length comes from the per-phoneme durations, which the graph
computes but does not output; :func:`load_patched_model` marks that tensor as an output
(hop length 256 samples per duration unit).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from voxserve.errors import EngineError, InvalidParameter, VoiceLoadError
from voxserve.types import FloatArray, SynthesisParams, Utterance, Voice

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def select_providers(device: str, available: Sequence[str]) -> list[str]:
    """Pick onnxruntime execution providers for ``device`` (auto, cpu or cuda).

    ``auto`` takes CUDA when this onnxruntime build offers it. ``cuda`` without CUDA
    falls back to CPU with a warning rather than refusing to start: a container built
    for GPU must still serve on a node without one.
    """
    if device == "cpu":
        return [CPU]
    if CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        log.warning(
            "VOXSERVE_DEVICE=cuda but onnxruntime offers no CUDAExecutionProvider "
            "(install voxserve[gpu] and check the driver); falling back to CPU"
        )
    return [CPU]


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256: identifies the model in cache keys."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def read_config(config_path: Path) -> dict[str, Any]:
    """Read and check a Piper ``.onnx.json``; VoiceLoadError names what is wrong."""
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VoiceLoadError(f"{config_path.name}: unreadable voice config ({exc})") from exc
    if not isinstance(config, dict):
        raise VoiceLoadError(f"{config_path.name}: voice config is not a JSON object")
    try:
        rate = int(config["audio"]["sample_rate"])
        if not 4000 <= rate <= 96000:
            raise VoiceLoadError(f"{config_path.name}: bad sample_rate {rate} (4000 to 96000)")
        id_map = config["phoneme_id_map"]
        if not isinstance(id_map, dict) or not id_map:
            raise ValueError("empty phoneme_id_map")
        if not all(
            isinstance(ids, list) and all(isinstance(i, int) for i in ids)
            for ids in id_map.values()
        ):
            raise ValueError("phoneme_id_map values must be lists of integers")
        from piper.config import PiperConfig

        PiperConfig.from_dict(config)  # what the engine will need: num_symbols, espeak voice, ...
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise VoiceLoadError(f"{config_path.name}: not a Piper voice config ({exc!r})") from exc
    return config


def load_patched_model(model_path: Path) -> tuple[bytes, bool]:
    """The model bytes with the phoneme-duration tensor exposed, and whether that worked."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise VoiceLoadError(f"{model_path.name}: not a readable ONNX model ({exc})") from exc
    try:
        add_alignment_output(model)
    except ValueError as exc:
        if "already marked" in str(exc):
            return model.SerializeToString(), True
        log.warning("%s: no duration output (%s); batches fall back to size 1", model_path, exc)
        return model.SerializeToString(), False
    return model.SerializeToString(), True


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
    ) -> None:
        """Load ``voice``.

        ``threads``: onnxruntime's intra-op threads for a run that has the machine to
        itself (0: onnxruntime's default, every physical core). ``lanes`` > 1 (CPU only)
        adds a second session of the same model with ``threads // lanes`` threads, for
        runs side by side: one inference per core gets more audio out of a CPU than one
        inference on every core (docs/performance.md), at the cost of the second
        session's memory.

        ``batching`` pads several utterances into one model call. None means "on GPU
        only": on CPU the padding costs more than the batch saves (see docs/performance.md),
        so there a batch runs as consecutive single calls.
        """
        if voice.model_path is None or voice.config_path is None:
            raise VoiceLoadError(f"{voice.id}: a Piper voice needs a model and a config file")
        from piper import PiperVoice
        from piper.config import PiperConfig

        raw = read_config(voice.config_path)
        config = PiperConfig.from_dict(raw)
        model_bytes, self._has_durations = load_patched_model(voice.model_path)

        providers = select_providers(device, ort.get_available_providers())
        session = _session(voice, model_bytes, providers, threads)
        self._check_matches(voice, session, config, raw)

        self._voice = voice
        self._config = config
        self._session = session
        self.providers = session.get_providers()
        on_gpu = self.providers[0] == CUDA
        self._lanes = 1 if on_gpu else max(1, lanes)
        # InferenceSession.run is thread-safe: the lanes share this one session.
        self._lane_session = (
            _session(voice, model_bytes, providers, max(1, threads // self._lanes))
            if self._lanes > 1
            else session
        )
        self._sid = "sid" in {i.name for i in session.get_inputs()}
        # PiperVoice is used only for its phonemizer (espeak-ng bundled in piper-tts).
        self._phonemizer = PiperVoice(session=session, config=config)
        self.batching = on_gpu if batching is None else batching
        log.info("loaded voice %s on %s, %d lane(s)", voice.id, self.providers[0], self._lanes)

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

    def infer(self, batch: Sequence[Utterance], *, exclusive: bool = False) -> list[FloatArray]:
        session = self._session if exclusive else self._lane_session
        results: dict[int, FloatArray] = {}
        # The model takes one set of scales per call: group items that share them.
        order = sorted(range(len(batch)), key=lambda i: self._scales(batch[i].params))
        for _, group in groupby(order, key=lambda i: self._scales(batch[i].params)):
            indices = list(group)
            step = len(indices) if self._has_durations and self.batching else 1
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                audio = self._run(session, [batch[i] for i in chunk])
                results.update(zip(chunk, audio, strict=True))
        return [results[i] for i in range(len(batch))]

    def _run(self, session: ort.InferenceSession, items: list[Utterance]) -> list[FloatArray]:
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
        try:
            # InferenceSession.run is thread-safe: concurrent workers need no lock.
            outputs = session.run(None, feeds)
        except Exception as exc:  # onnxruntime's errors are untyped
            raise EngineError(f"{self._voice.id}: inference failed ({exc})") from exc
        audio = outputs[0].reshape(len(items), -1)
        if len(items) == 1:
            return [np.ascontiguousarray(audio[0], dtype=np.float32)]
        durations = outputs[1].reshape(len(items), -1)
        hop = int(self._config.hop_length)
        out = []
        for row, n in enumerate(lengths):
            true_len = int(durations[row, :n].sum()) * hop
            out.append(np.ascontiguousarray(audio[row, :true_len], dtype=np.float32))
        return out

    def close(self) -> None:
        """Nothing to do: onnxruntime frees the sessions with the last reference to them."""


def _session(
    voice: Voice, model: bytes, providers: list[str], threads: int
) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise VoiceLoadError(f"{voice.id}: onnxruntime cannot load the model ({exc})") from exc
