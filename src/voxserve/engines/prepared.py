"""Piper graphs prepared once (cut at the vocoder, optimized by onnxruntime) and reused.

Cutting the graph (:func:`~voxserve.engines.piper_model.load_model`) and onnxruntime's
graph optimization cost most of a voice's load: measured on the 2-core machine, about
2.5 s of a 4 s start (benchmarks/bench_coldstart.py). The first start writes the
optimized graphs (``SessionOptions.optimized_model_filepath``) under the model cache
directory (``VOXSERVE_MODEL_CACHE_DIR``); later starts load them with graph optimization
off and never import ``onnx``.

An optimized graph is only valid for what produced it, so its directory is named by a
key over: the model file's digest, the onnxruntime version, the execution providers, the
session options that shape the graph, this module's :data:`FORMAT` (how voxserve cuts
the graph) and the CPU (at the highest level onnxruntime lays tensors out for the CPU's
vector width, and says so when it saves). A changed model is a new key; the directories
of the voice's other keys are removed when a new one is written. CPU only: on a GPU the
graph is prepared at every start, as before.

Nothing here is required: an unwritable or damaged cache logs a warning and the voice
loads the slow way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from voxserve.engines.piper_model import ModelGraphs, file_digest, load_model
from voxserve.types import Voice

log = logging.getLogger(__name__)

#: Bump when the prepared graphs change for the same model (how load_model cuts them).
FORMAT = 1
#: The file that completes a prepared directory (written last).
META = "graph.json"
ACOUSTIC = "acoustic.onnx"
VOCODER = "vocoder.onnx"
CPU = "CPUExecutionProvider"
#: What shapes an optimized graph besides the model and providers (part of its key).
GRAPH_OPTIONS: dict[str, Any] = {"graph_optimization_level": "ORT_ENABLE_ALL"}


@dataclass(frozen=True)
class Prepared:
    """Where one voice's prepared graphs are, or are to be written."""

    directory: Path
    """The key's directory: ``<model cache>/piper/<voice id>-<key>``."""
    latent: str = ""
    """Name of the vocoder's input (``""`` when the graph is whole)."""
    has_durations: bool = True
    """Whether the acoustic graph outputs the per-phoneme durations."""
    whole: bool = False
    """True when the graph could not be cut: ``acoustic`` is the whole model."""

    @property
    def acoustic(self) -> Path:
        return self.directory / ACOUSTIC

    @property
    def vocoder(self) -> Path | None:
        return None if self.whole else self.directory / VOCODER


def cpu_identity() -> str:
    """The CPU's model and feature flags (what an optimized graph may depend on)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    wanted = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    seen: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() in wanted:
            seen.setdefault(name.strip(), value.strip())
    return f"{platform.machine()} " + json.dumps(seen, sort_keys=True)


def key(digest: str, providers: list[str], options: dict[str, Any]) -> str:
    """16 hex digits naming what the optimized graphs depend on."""
    parts = {
        "model": digest,
        "onnxruntime": ort.__version__,
        "providers": providers,
        "options": options,
        "format": FORMAT,
        "cpu": cpu_identity(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def locate(cache_dir: Path, voice_id: str, digest: str, providers: list[str],
           options: dict[str, Any]) -> Prepared:  # fmt: skip
    """The directory for this voice and key (it may not exist yet)."""
    return Prepared(cache_dir / "piper" / f"{voice_id}-{key(digest, providers, options)}")


def load(where: Prepared) -> Prepared | None:
    """The prepared graphs in ``where.directory``, or None when there are none (or they
    are incomplete: ``graph.json`` is written last)."""
    try:
        meta = json.loads((where.directory / META).read_text(encoding="utf-8"))
        found = Prepared(
            where.directory,
            latent=str(meta["latent"]),
            has_durations=bool(meta["has_durations"]),
            whole=bool(meta["whole"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the saved optimized model in %s (%s)", where.directory, exc)
        return None
    missing = [p for p in (found.acoustic, found.vocoder) if p is not None and not p.is_file()]
    if missing:
        log.warning("ignoring the saved optimized model in %s: %s missing",
                    where.directory, missing[0].name)  # fmt: skip
        return None
    return found


class Staging:
    """A temporary directory beside the key's, renamed to it by :meth:`publish` once the
    graphs and ``graph.json`` are written; None from :meth:`open` when the model cache
    cannot be written (a read-only file system)."""

    def __init__(self, where: Prepared, directory: Path) -> None:
        self.where = where
        self.directory = directory

    @classmethod
    def open(cls, where: Prepared) -> Staging | None:
        try:
            where.directory.parent.mkdir(parents=True, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=".staging-", dir=where.directory.parent)
        except OSError as exc:
            log.warning(
                "cannot save optimized models under %s (%s): every start prepares them again; "
                "point VOXSERVE_MODEL_CACHE_DIR at a writable directory",
                where.directory.parent, exc,
            )  # fmt: skip
            return None
        return cls(where, Path(staging))

    def path(self, name: str) -> Path:
        return self.directory / name

    def publish(self, latent: str, has_durations: bool, whole: bool) -> Prepared | None:
        """Complete and rename the staging directory; remove the voice's other keys."""
        meta = {"latent": latent, "has_durations": has_durations, "whole": whole}
        target = self.where.directory
        try:
            (self.directory / META).write_text(json.dumps(meta), encoding="utf-8")
            self.directory.rename(target)
        except OSError as exc:  # another process published it first, or the disk is full
            shutil.rmtree(self.directory, ignore_errors=True)
            if not (target / META).is_file():
                log.warning("could not save optimized models to %s (%s)", target, exc)
                return None
        voice_id = target.name.rsplit("-", 1)[0]
        for stale in target.parent.glob(f"{voice_id}-*"):
            if stale != target and stale.name.rsplit("-", 1)[0] == voice_id:
                shutil.rmtree(stale, ignore_errors=True)
        return load(self.where)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def prepared_graphs(
    voice: Voice, providers: list[str], model_cache: Path | None
) -> tuple[ModelGraphs, Staging | None]:
    """The voice's graphs: the optimized ones an earlier load saved in ``model_cache``, or
    cut now, with where to save the optimized ones (None: not saved; on GPU, without a
    cache, or where the cache cannot be written)."""
    assert voice.model_path is not None
    if model_cache is None or providers != [CPU]:
        return load_model(voice.model_path), None
    digest = voice.digest or file_digest(voice.model_path)
    where = locate(model_cache, voice.id, digest, providers, GRAPH_OPTIONS)
    found = load(where)
    if found is None:
        return load_model(voice.model_path), Staging.open(where)
    log.info("voice %s: reusing the optimized model saved in %s", voice.id, found.directory)
    graphs = ModelGraphs(
        found.acoustic, found.vocoder, found.latent, found.has_durations, optimized=True
    )
    return graphs, None


def published(voice: Voice, graphs: ModelGraphs, staging: Staging) -> ModelGraphs:
    """The saved graphs once ``staging`` is published (the serialized ones are then
    dropped: later sessions load the optimized files); ``graphs`` if it cannot be."""
    saved = staging.publish(graphs.latent, graphs.has_durations, whole=graphs.vocoder is None)
    if saved is None:
        return graphs
    log.info("voice %s: optimized model saved in %s for the next start", voice.id, saved.directory)
    return ModelGraphs(
        saved.acoustic, saved.vocoder, saved.latent, saved.has_durations, optimized=True
    )
