"""onnxruntime for Piper voices: which execution providers, and the voice's sessions with
the options measured to suit them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from voxserve.engines import prepared
from voxserve.engines.piper_model import ModelGraphs
from voxserve.errors import VoiceLoadError
from voxserve.types import Voice

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


class Sessions:
    """The voice's graphs as onnxruntime sessions with one thread budget.

    InferenceSession.run is thread-safe: lanes running side by side share one instance.
    """

    def __init__(
        self,
        voice: Voice,
        graphs: ModelGraphs,
        providers: list[str],
        threads: int,
        *,
        save: prepared.Staging | None = None,
    ) -> None:
        """``save``: where to write onnxruntime's optimized graphs while creating them."""

        def make(graph: bytes | Path, name: str) -> ort.InferenceSession:
            to = save.path(name) if save is not None else None
            return _session(
                voice, graph, providers, threads, optimized=graphs.optimized, save_to=to
            )

        self.acoustic = make(graphs.acoustic, prepared.ACOUSTIC)
        self.vocoder = None if graphs.vocoder is None else make(graphs.vocoder, prepared.VOCODER)


def _session(
    voice: Voice,
    model: bytes | Path,
    providers: list[str],
    threads: int,
    *,
    optimized: bool = False,
    save_to: Path | None = None,
) -> ort.InferenceSession:
    """``optimized``: ``model`` is a saved optimized graph (optimization off: 0.1-0.2 s
    instead of 0.7-0.9 s for the acoustic model, measured). ``save_to``: write the
    optimized graph there."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # A session's idle intra-op threads spin by default, taking cores from the session that
    # runs next (the vocoder after the acoustic model, lanes after an exclusive run):
    # measured 17 % slower sentences with spinning, 1.5 % slower than one uncut graph without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Memory patterns pre-plan one block per input shape, and every sentence has its own:
    # off, a long sentence grows the process by half as much, at the same speed (measured).
    options.enable_mem_pattern = False
    if optimized:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
        # onnxruntime warns that the saved graph fits this CPU only: its key names the CPU.
        options.log_severity_level = 3
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise VoiceLoadError(f"{voice.id}: onnxruntime cannot load the model ({exc})") from exc
