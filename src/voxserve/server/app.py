"""``create_app``: builds the whole HTTP service from settings.

The lifespan owns every resource: it loads the voices, warms each Piper voice up with one
real synthesis (``/readyz`` answers 503 until then), and on shutdown turns readiness off,
stops the schedulers and releases the models.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from importlib.resources import files
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from voxserve.admission import Admission
from voxserve.asr import AsrConfig, Transcriber, discover
from voxserve.cache import AnyCache, build_cache
from voxserve.lanes import Lanes
from voxserve.metrics import Metrics
from voxserve.server import compat, errors, live, openai, ops, ssml_routes, transcribe
from voxserve.server import jobs as job_routes
from voxserve.server.auth import APIKeyMiddleware
from voxserve.server.docs import install_docs
from voxserve.server.guard import GuardMiddleware
from voxserve.server.headers import SecurityHeadersMiddleware
from voxserve.server.limits import ConcurrencyLimitMiddleware, RateLimitMiddleware
from voxserve.server.observe import ObserveMiddleware
from voxserve.server.speech import SpeechResponder
from voxserve.settings import Settings
from voxserve.synthesizer import Synthesizer
from voxserve.types import SynthesisRequest

if TYPE_CHECKING:  # imported when a Wyoming socket is given: most starts need none
    from voxserve.server.wyoming import WyomingServer

log = logging.getLogger(__name__)

WARMUP_TEXT = "Ready."
#: The background loading starts once no speech work has been admitted for this long: a
#: replica woken by a request gets it as it turns ready, and that request goes first (the
#: loading holds the GIL while it creates sessions).
QUIET_SECONDS = 0.5
#: ... or after this long in any case (until then the lanes share one session set).
QUIET_LIMIT_SECONDS = 10.0


def build_transcriber(settings: Settings, lanes: Lanes, metrics: Metrics) -> Transcriber | None:
    """The speech recognition service on the synthesizer's lanes; None when VOXSERVE_ASR
    is off or no model is installed."""
    if not settings.asr:
        return None
    models = discover(settings.asr_model, settings.resolved_model_cache_dir())
    if not models:
        log.warning("speech recognition is off: no model installed (pip install voxserve)")
        return None
    config = AsrConfig(
        max_seconds=settings.asr_max_seconds,
        vad=settings.asr_vad,
        beam_size=settings.asr_beam_size,
        device="cuda" if settings.device == "cuda" else "cpu",
        cache_dir=settings.resolved_model_cache_dir(),
    )
    return Transcriber(models, lanes, config=config, metrics=metrics)


async def warm_up(synth: Synthesizer, metrics: Metrics) -> None:
    """Load the preloaded voices (VOXSERVE_PRELOAD) and run one real synthesis on each.

    That synthesis runs alone, on every core (onnxruntime's first run of a session is
    slow). The lanes' sessions are left to :func:`after_ready`.
    """
    engines = await synth.apreload(lanes_later=True)
    for engine in engines:
        metrics.model_load.labels(engine.voice.id).set(synth.library.load_seconds(engine.voice))
        plan = synth.plan(SynthesisRequest(WARMUP_TEXT, voice=engine.voice.id, format="wav"))
        await synth.asynthesize(plan)


async def quiet_moment(
    work: Callable[[], float],
    *,
    quiet: float = QUIET_SECONDS,
    limit: float = QUIET_LIMIT_SECONDS,
    poll: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """Wait until ``work()`` has been 0 for ``quiet`` seconds (True) or ``limit`` seconds
    have passed (False)."""
    start = since = clock()
    while True:
        now = clock()
        if work() > 0:
            since = now
        elif now - since >= quiet:
            return True
        if now - start >= limit:
            return False
        await sleep(poll)


async def after_ready(
    synth: Synthesizer, listener: Transcriber | None, admission: Admission | None = None
) -> None:
    """What the first request does not need, loaded once the service is ready (a cold
    start answers sooner) and, with ``admission``, quiet (:func:`quiet_moment`): the lanes'
    sessions of the preloaded voices, each warmed by one run (until then lane runs share
    the sessions warm_up warmed), PyAV (the compressed formats' encoder, imported on first
    use), then the speech recognition model (a transcription that comes first waits for
    it in ``Transcriber.load``). A failure is logged; what failed loads on first use
    instead."""
    if admission is not None:
        await quiet_moment(lambda: admission.work)
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        await synth.awarm_lanes(await synth.aopen_lanes(), WARMUP_TEXT)
        await loop.run_in_executor(None, importlib.import_module, "av")
        if listener is not None:
            await listener.load(listener.model(None))
    except Exception:
        log.exception("loading in the background failed; it is retried on first use")
        return
    log.info("background loading done in %.1fs", time.perf_counter() - started)


def sync_voices_at_start(settings: Settings) -> None:
    """Copy the bucket's voices (VOXSERVE_VOICES_URL) into the voices directory. A store
    that fails is logged, and the server starts with the voices it has locally (those
    synced before, the bundled one); POST /admin/voices/reload tries again."""
    from voxserve.errors import StorageError
    from voxserve.voice_sync import sync_voices

    try:
        sync_voices(settings)
    except StorageError as exc:
        log.error("voices from %s not synced: %s", settings.voices_url, exc)


def create_app(
    settings: Settings | None = None,
    *,
    synthesizer: Synthesizer | None = None,
    transcriber: Transcriber | None = None,
    cache: AnyCache | None = None,
    registry: CollectorRegistry | None = None,
    wyoming: socket.socket | None = None,
) -> FastAPI:
    """The API application. Pass ``synthesizer``, ``transcriber``, ``cache`` or ``registry``
    to inject your own (a transcriber only with the synthesizer whose lanes it shares).

    An injected synthesizer, transcriber or cache is closed by the app's lifespan like its
    own. ``wyoming``: a bound TCP socket to serve the Wyoming protocol on once the voices
    are warm (voxserve.server.wyoming; ``voxserve serve`` binds VOXSERVE_WYOMING_PORT).
    """
    settings = settings or Settings.load()
    metrics = Metrics(registry)
    keys = settings.resolved_api_keys()
    # The machine's admission gate (voxserve.admission), shared by the responder and the
    # concurrency middleware's early refusals.
    admission = Admission(
        lanes=synthesizer.lanes.total if synthesizer else settings.resolved_lanes(),
        max_wait=settings.max_wait_seconds,
        max_queue=settings.max_queue,
        stretch=settings.schedule_stretch,
        max_overtake=settings.schedule_max_overtake_seconds,
    )
    admission.on_refused = metrics.admission_refused.inc
    # Read at each scrape: a ticket closed by the middleware (a hang-up) counts at once.
    metrics.admitted_work.set_function(lambda: admission.work)

    lifespan = _lifespan(
        settings, metrics, admission, keys,
        synthesizer=synthesizer, transcriber=transcriber, cache=cache, wyoming=wyoming,
    )  # fmt: skip
    app = FastAPI(
        title="voxserve",
        summary="Self-hosted text to speech and speech to text with OpenAI-, Coqui- and "
        "MaryTTS-compatible APIs.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # install_docs serves /docs from packaged files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.admission = admission
    app.state.transcriber = None
    app.state.ready = False
    app.state.draining = False
    errors.install(app)
    app.include_router(openai.router)
    app.include_router(transcribe.router)
    live.install(app)
    app.include_router(compat.router)
    app.include_router(ops.router)
    app.include_router(ssml_routes.router)
    app.include_router(job_routes.router)
    install_docs(app)

    static = files("voxserve.server").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.head("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return static.joinpath("index.html").read_text(encoding="utf-8")

    _add_middleware(app, settings, metrics, admission, keys)
    return app


def _add_middleware(
    app: FastAPI, settings: Settings, metrics: Metrics, admission: Admission, keys: frozenset[str]
) -> None:
    # Added innermost first, so a request meets: security headers, observe (id, log,
    # metrics), the guard (body read whole, bounded in size and time; work cancelled when
    # the client goes), auth, rate, concurrency (and admission by work, in the responder,
    # on a cache miss).
    app.add_middleware(
        ConcurrencyLimitMiddleware, limit=settings.max_concurrency, admission=admission
    )
    app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit, burst=settings.rate_burst)
    app.add_middleware(APIKeyMiddleware, keys=keys)
    app.add_middleware(
        GuardMiddleware,
        max_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout_seconds,
        send_timeout=settings.send_timeout_seconds,
        metrics=metrics,
        uploads=job_routes.uploads(settings)
        | dict.fromkeys(
            ("/v1/audio/transcriptions", "/v1/audio/translations"),
            (settings.asr_max_upload_bytes, settings.asr_upload_timeout_seconds),
        ),
    )
    routes = [
        *job_routes.router.routes,
        *openai.router.routes, *transcribe.router.routes, *compat.router.routes,
        *ops.router.routes, *live.router.routes,
    ]  # fmt: skip
    app.add_middleware(ObserveMiddleware, metrics=metrics, routes=routes)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: on every response


def _lifespan(
    settings: Settings,
    metrics: Metrics,
    admission: Admission,
    keys: frozenset[str],
    *,
    synthesizer: Synthesizer | None,
    transcriber: Transcriber | None,
    cache: AnyCache | None,
    wyoming: socket.socket | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: builds (or takes) every resource, warms up, releases at the end."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        synth = synthesizer
        if synth is None and settings.voices_url:
            await asyncio.get_running_loop().run_in_executor(None, sync_voices_at_start, settings)
        if synth is None:
            synth = await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(Synthesizer.from_settings, settings, metrics=metrics)
            )
        listener = transcriber
        if listener is None and synthesizer is None:
            listener = build_transcriber(settings, synth.lanes, metrics)
        store = cache if cache is not None else build_cache(settings)
        for guard in store.guards() if store is not None else []:
            guard.on_error = lambda backend, op: metrics.cache_errors.labels(backend, op).inc()
        app.state.synthesizer = synth
        app.state.cache = store
        app.state.transcriber = listener
        app.state.responder = SpeechResponder(
            synth, metrics, store, admission,
            log_text=settings.log_text, spool_bytes=settings.spool_bytes,
        )  # fmt: skip
        app.state.wyoming = None
        app.state.background = None
        app.state.jobs = job_routes.start_service(settings, synth, admission)
        try:
            await warm_up(synth, metrics)
            metrics.voices_loaded.set(len(synth.library.loaded()))
            app.state.ready = True
            metrics.ready.set(1)
            _log_ready(time.perf_counter() - started, synth, listener, store, keys)
            app.state.background = asyncio.create_task(after_ready(synth, listener, admission))
            if wyoming is not None:
                app.state.wyoming = await _start_wyoming(app, wyoming)
            yield
        finally:
            app.state.ready = False
            app.state.draining = True
            metrics.ready.set(0)
            if app.state.background is not None:
                app.state.background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await app.state.background
            if app.state.wyoming is not None:
                await app.state.wyoming.stop()
            await app.state.jobs.aclose()
            await synth.aclose()
            if listener is not None:
                listener.close()
            if store is not None:
                await store.close()

    return lifespan


async def _start_wyoming(app: FastAPI, sock: socket.socket) -> WyomingServer:
    """The Wyoming listener on ``sock``, sharing the app's synthesizer, transcriber,
    admission, cache and metrics (server/wyoming/)."""
    from voxserve.server.wyoming import Doors, WyomingServer

    state = app.state
    doors = Doors(
        state.settings, state.synthesizer, state.transcriber, state.admission, state.cache,
        state.metrics, version=_version(),
    )  # fmt: skip
    server = WyomingServer(doors, sock)
    await server.start()
    return server


def _log_ready(
    seconds: float,
    synth: Synthesizer,
    listener: Transcriber | None,
    store: AnyCache | None,
    keys: frozenset[str],
) -> None:
    loaded = ", ".join(e.voice.id for e in synth.library.loaded()) or "none"
    log.info(
        "voxserve ready in %.1fs: %d voices (%s loaded), default %s, speech recognition %s, "
        "cache %s, API keys %s",
        seconds,
        len(synth.voices()),
        loaded,
        synth.library.default_voice,
        ", ".join(listener.models) if listener else "off",
        store.name if store else "off",
        "on" if keys else "off",
    )


def _version() -> str:
    from importlib.metadata import version

    return version("voxserve")
