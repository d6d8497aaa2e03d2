"""A Piper voice's ONNX graph, prepared for voxserve: durations exposed, cut at the vocoder.

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

import logging
from dataclasses import dataclass
from pathlib import Path

from voxserve.errors import VoiceLoadError

log = logging.getLogger(__name__)

#: Prefix of the vocoder's node names in Piper's export (``self.dec`` of the VITS model).
VOCODER_SCOPE = "/dec/"


@dataclass(frozen=True)
class ModelGraphs:
    """The serialized graphs of one voice."""

    acoustic: bytes
    """Phoneme ids to the vocoder's inputs and the durations; the whole model (ids to
    audio) when ``vocoder`` is None."""
    vocoder: bytes | None
    """The vocoder's inputs to audio; None when the graph could not be cut."""
    latent: str
    """Name of the vocoder's input, the latent frames (``""`` without a vocoder)."""
    has_durations: bool
    """Whether the acoustic graph outputs the per-phoneme durations."""


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
    return ModelGraphs(acoustic.SerializeToString(), vocoder.SerializeToString(), latent, True)


def vocoder_input(model: object) -> str | None:
    """The one tensor the vocoder's nodes read from the rest of the graph: the latent frames.

    None if the graph has no vocoder scope, or if the vocoder reads more than that: a
    multi-speaker voice conditions it on the speaker, and such a voice is left whole (it
    streams sentence by sentence) rather than cut on a guess.
    """
    graph = model.graph  # type: ignore[attr-defined]
    nodes = [n for n in graph.node if n.name.startswith(VOCODER_SCOPE)]
    made_inside = {out for n in nodes for out in n.output}
    constants = {i.name for i in graph.initializer}
    outside = {
        name
        for node in nodes
        for name in node.input
        if name and name not in made_inside and name not in constants
    }
    return outside.pop() if len(outside) == 1 else None
