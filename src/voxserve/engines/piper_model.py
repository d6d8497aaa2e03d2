"""A Piper voice's files: the config checked, the ONNX graph prepared for voxserve.

VITS runs in two parts. The acoustic model (text encoder, duration predictor, flow) turns
phoneme ids into latent frames, one per ``hop_length`` (256) samples; the vocoder
(HiFi-GAN, the graph's ``/dec/`` nodes) turns frames into samples. On
``en_US-joe-medium`` the vocoder takes about 70 % of the time, and it sees only a few
frames around each sample. So :func:`load_model` cuts the graph there: the whole sentence
goes through the acoustic model (its prosody is the sentence's), and the vocoder can then
run on the first second alone, which a stream plays while the rest is made.

The graph computes the per-phoneme durations but does not output them;
:func:`load_model` marks that tensor as an output too, which is how a padded batch is cut
back to each item's true length.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxserve.errors import VoiceLoadError

log = logging.getLogger(__name__)

#: Prefix of the vocoder's node names in Piper's export (``self.dec`` of the VITS model).
VOCODER_SCOPE = "/dec/"


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256: identifies the model in cache keys."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def recorded_digest(path: Path, distribution: str) -> str | None:
    """:func:`file_digest` of an installed package's file without reading it: from the
    SHA-256 in the package's RECORD (which pip checked when it installed the file), if
    RECORD lists the file with the size it has now; else None.

    Reading a 63 MB model to hash it costs 0.1-0.2 s of every start; the bundled voice's
    digest is known from its package.
    """
    from importlib.metadata import PackageNotFoundError, files

    try:
        listed = files(distribution) or []
    except PackageNotFoundError:
        return None
    try:
        target = path.resolve()
        size = target.stat().st_size
    except OSError:
        return None
    for entry in listed:
        if entry.hash is None or entry.hash.mode != "sha256" or entry.size != size:
            continue
        if Path(str(entry.locate())).resolve() == target:
            value = entry.hash.value
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()[:16]
    return None


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


@dataclass(frozen=True)
class ModelGraphs:
    """The serialized graphs of one voice."""

    acoustic: bytes | Path
    """Phoneme ids to the vocoder's inputs and the durations; the whole model (ids to
    audio) when ``vocoder`` is None. Serialized, or the file of a saved one."""
    vocoder: bytes | Path | None
    """The vocoder's inputs to audio; None when the graph could not be cut."""
    latent: str
    """Name of the vocoder's input, the latent frames (``""`` without a vocoder)."""
    has_durations: bool
    """Whether the acoustic graph outputs the per-phoneme durations."""
    optimized: bool = False
    """Whether the graphs are onnxruntime's optimized ones, saved by an earlier start
    (:mod:`voxserve.engines.prepared`): loaded with graph optimization off."""


def load_model(model_path: Path) -> ModelGraphs:
    """Read ``model_path``, expose the durations and cut the graph at the vocoder.

    A graph that cannot be cut (not a standard Piper export) still loads, whole; a stream
    then starts with its whole first sentence instead of its first second.
    """
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise VoiceLoadError(f"{model_path.name}: not a readable ONNX model ({exc})") from exc
    has_durations = True
    try:
        add_alignment_output(model)
    except ValueError as exc:
        if "already marked" not in str(exc):
            log.warning("%s: no duration output (%s); batches fall back to size 1", model_path, exc)
            has_durations = False
    whole = ModelGraphs(model.SerializeToString(), None, "", has_durations)
    latent = vocoder_input(model)
    if not has_durations or latent is None:
        log.info("%s: the vocoder cannot be run apart; streams start sentence by sentence",
                 model_path.name)  # fmt: skip
        return whole
    durations = model.graph.output[1].name
    outputs = [model.graph.output[0].name]
    try:
        extractor = onnx.utils.Extractor(model)
        acoustic = extractor.extract_model([i.name for i in model.graph.input], [latent, durations])
        vocoder = extractor.extract_model([latent], outputs)
    except Exception as exc:  # onnx raises assorted errors for graphs it cannot cut
        log.warning("%s: could not cut the graph at the vocoder (%s)", model_path.name, exc)
        return whole
    missing = dangling_inputs(vocoder)
    if missing:  # a multi-speaker voice conditions its vocoder on the speaker, too
        log.info("%s: the vocoder needs more than the latent frames (%s); not cut",
                 model_path.name, ", ".join(sorted(missing)))  # fmt: skip
        return whole
    return ModelGraphs(acoustic.SerializeToString(), vocoder.SerializeToString(), latent, True)


def dangling_inputs(model: object) -> set[str]:
    """Tensors the graph's nodes read that nothing in it provides."""
    graph = model.graph  # type: ignore[attr-defined]
    provided = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    provided |= {out for node in graph.node for out in node.output}
    return {name for node in graph.node for name in node.input if name and name not in provided}


def vocoder_input(model: object) -> str | None:
    """The latent frames: what the vocoder's first layer reads, taken from before any
    quantization that ``voxserve quantize`` put in front of it; None without a vocoder."""
    graph = model.graph  # type: ignore[attr-defined]
    made_by = {out: node for node in graph.node for out in node.output}
    constants = {i.name for i in graph.initializer}
    first = next((n for n in graph.node if n.name.startswith(VOCODER_SCOPE + "conv_pre/")), None)
    if first is None:
        return None
    name = next((i for i in first.input if i and i not in constants), None)
    while name in made_by and made_by[name].op_type in _QUANTIZERS:
        name = made_by[name].input[0]
    return name


_QUANTIZERS = frozenset({"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear"})
