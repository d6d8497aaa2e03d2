"""voxserve against OpenAI's own description of its audio API (tests/openai_spec/audio.json).

The vendored extract of OpenAI's published OpenAPI document (scripts/refresh_openai_spec.py
refreshes it) drives schemathesis over :data:`OPERATIONS`, in process, on the fake engine.
Every request the document calls valid must either succeed or be refused for one of the
reasons in :data:`DEVIATIONS`, the one list of deliberate differences; and every response
must match the document:

- an error is OpenAI's error object (``ErrorResponse``), whatever its status;
- audio comes with the media type of the format asked for (the one listed deviation from
  the document's ``application/octet-stream``);
- ``stream_format=sse`` gives ``text/event-stream`` whose events each match
  ``CreateSpeechResponseStreamEvent``: base64 ``speech.audio.delta`` events, then one
  ``speech.audio.done`` with ``usage``, last;
- every other schemathesis check (status codes, headers, auth: the app runs with an API
  key, so a request without it gets 401) passes, or fails only as a deviation explains.

Two generators run: the document as published, and the same document with OpenAI's open
enums (``anyOf: [string, {enum}]`` for ``model`` and ``voice``) narrowed to the names it
lists, so that most requests get past the model and voice lookup and reach synthesis,
encoding and streaming. Both are derandomized and bounded (:data:`MAX_EXAMPLES`).

To check another operation (``/audio/transcriptions``, ``/audio/translations``), add it to
:data:`OPERATIONS` with the check of its successful answers, and any deliberate difference
to :data:`DEVIATIONS` (docs/api.md's conformance tables say the same).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry
from schemathesis.checks import ignored_auth, response_schema_conformance
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode

from fake_server import fake_settings, fake_synthesizer
from fakes import FakeEngine
from openai_document import (
    SPEC,
    SPEECH_REQUEST,
    builtin_voices,
    named_values_only,
    request_schema,
    tts_models,
    validator,
)
from voxserve.audio import FORMATS
from voxserve.server.app import create_app

pytestmark = pytest.mark.inprocess

#: Where voxserve serves OpenAI's paths (the document's server is OpenAI's /v1 too).
BASE_PATH = "/v1"
API_KEY = "conformance-test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}

#: Generated requests per operation and generator, besides the examples and boundary
#: values schemathesis always tries (~40): a few seconds in all on the fake engine.
MAX_EXAMPLES = 100

#: Failures every refusal of a valid request causes: its status is not among the
#: document's (it lists 200 and 429 only) and it refuses data the document calls valid.
REFUSAL = frozenset({"UndefinedStatusCode", "RejectedPositiveData"})


def always(body: Any) -> bool:
    return True


@dataclass(frozen=True)
class Deviation:
    """A deliberate difference between voxserve and OpenAI's document, and its reason."""

    operation: str
    """The operation's label, as in :data:`OPERATIONS`."""
    status: int
    """The status voxserve answers where the document expects something else."""
    code: str | None
    """The ``error.code`` of that answer; None for a success."""
    reason: str
    """Why voxserve differs; docs/api.md's conformance table says the same."""
    example: dict[str, Any]
    """A request body the document calls valid that shows the difference."""
    applies: Callable[[Any], bool] = always
    """Whether the difference can explain the answer to a request body: a refusal of a
    request this says no to is a failure, even with the same status and code."""
    explains: frozenset[str] = REFUSAL
    """The schemathesis failures (class names) this difference causes, and only those."""


#: The speech operation's label (schemathesis labels an operation by method and path).
SPEECH = "POST /audio/speech"


def unlisted_model(body: Any) -> bool:
    return body.get("model") not in tts_models()


def unlisted_voice(body: Any) -> bool:
    voice = body.get("voice")
    return not isinstance(voice, str) or voice.lower() not in builtin_voices()


def nothing_to_say(body: Any) -> bool:
    return not any(c.isalnum() for c in body.get("input", ""))


def audio(body: Any) -> bool:
    return body.get("stream_format") != "sse"


#: Every deliberate difference from OpenAI's document. A valid request that gets any other
#: refusal, or a response failing any other check, fails the suite.
DEVIATIONS: dict[str, Deviation] = {
    "audio media type": Deviation(
        SPEECH, 200, None,
        reason="Audio is labelled with its format's media type (audio/mpeg, audio/wav, "
        "audio/ogg, audio/flac, audio/aac, audio/pcm), as OpenAI's servers label it, where "
        "the document says application/octet-stream; clients read the bytes either way.",
        example={"model": "tts-1", "input": "Hello.", "voice": "alloy"},
        applies=audio,
        explains=frozenset({"UndefinedContentType"}),
    ),
    "empty input": Deviation(
        SPEECH, 400, "empty_input",
        reason="The document allows an empty `input` (it sets no minLength); there is "
        "nothing to speak in it, nor in one of only spaces or punctuation. OpenAI refuses "
        "an empty input with a 400 too.",
        example={"model": "tts-1", "input": "", "voice": "alloy"},
        applies=nothing_to_say,
    ),
    "unknown model": Deviation(
        SPEECH, 404, "model_not_found",
        reason="The document types `model` as any string, leaving room for models to come; "
        "a name it does not list that is neither 'voxserve' nor an installed voice id is "
        "refused, as OpenAI refuses a model it does not have.",
        example={"model": "tts-9000", "input": "Hello.", "voice": "alloy"},
        applies=unlisted_model,
    ),
    "unknown voice": Deviation(
        SPEECH, 404, "voice_not_found",
        reason="The document types `voice` as any string or {id}, leaving room for new and "
        "custom voices; a name it does not list that is neither an installed voice id nor "
        "a key of VOXSERVE_VOICE_MAP, and an {id} that is neither, is refused: there is no "
        "such voice to speak with.",
        example={"model": "tts-1", "input": "Hello.", "voice": {"id": "voice_1234"}},
        applies=unlisted_voice,
    ),
    "spoken input too long": Deviation(
        SPEECH, 413, "spoken_input_too_long",
        reason="`input` is within the document's 4096 characters, but written out (numbers, "
        "dates, symbols) it is longer than VOXSERVE_MAX_SPOKEN_CHARS (8192), the bound on "
        "the audio one request can ask for.",
        example={"model": "tts-1", "input": "9" * 4096, "voice": "alloy"},
    ),
}  # fmt: skip


# -- the document, as schemathesis reads it --------------------------------------------------


def load(document: dict[str, Any]) -> Any:
    """Valid requests only, without credentials (the test sends its key on each)."""
    document = {**copy.deepcopy(document), "servers": [{"url": BASE_PATH}]}
    config = SchemathesisConfig()
    config.projects.default.generation.update(
        modes=[GenerationMode.POSITIVE], with_security_parameters=False
    )
    return schemathesis.openapi.from_dict(document, config=config).include(name=list(OPERATIONS))


ERROR = validator("ErrorResponse")
SPEECH_EVENT = validator("CreateSpeechResponseStreamEvent")


# -- checks ----------------------------------------------------------------------------------


def header(response: Any, name: str) -> str:
    """One header of a schemathesis response (its values are lists) or an httpx one."""
    value = response.headers.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value)


def assert_error_object(response: Any) -> dict[str, Any]:
    """An error response is OpenAI's error object, whatever its status; returns ``error``."""
    assert header(response, "content-type").startswith("application/json"), response.content
    body = response.json()
    problems = [e.message for e in ERROR.iter_errors(body)]
    assert not problems, f"error body {body} does not match ErrorResponse: {problems}"
    error: dict[str, Any] = body["error"]
    return error


def sse_events(content: bytes) -> Iterator[dict[str, Any]]:
    """The JSON ``data`` of each server-sent event in ``content``."""
    for block in content.decode("utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        fields = [line.partition(":") for line in lines]
        assert all(name == "data" for name, _, _ in fields), f"unexpected SSE fields: {lines}"
        yield json.loads("\n".join(value.removeprefix(" ") for _, _, value in fields))


def assert_speech(body: dict[str, Any], response: Any) -> None:
    """A successful speech response, as the document and the deviations describe it."""
    media = header(response, "content-type")
    if body.get("stream_format") == "sse":
        assert media.startswith("text/event-stream"), media
        events = list(sse_events(response.content))
        for event in events:
            problems = [e.message for e in SPEECH_EVENT.iter_errors(event)]
            assert not problems, f"SSE event {str(event)[:200]} does not match: {problems}"
        *deltas, done = events
        assert done["type"] == "speech.audio.done", [e["type"] for e in events]
        assert deltas, "no audio before speech.audio.done"
        assert all(e["type"] == "speech.audio.delta" for e in deltas)
        assert all(base64.b64decode(e["audio"], validate=True) for e in deltas)
        return
    fmt = FORMATS[body.get("response_format", "mp3")]
    assert media == fmt.content_type, (media, fmt.name)
    assert response.content, "empty audio"


#: The operations checked, each with the check of its successful responses. Add
#: "POST /audio/transcriptions" and "POST /audio/translations" here, with a check of their
#: answers (JSON, text, SSE), once voxserve serves them.
OPERATIONS: dict[str, Callable[[Any, Any], None]] = {SPEECH: assert_speech}

published = load(SPEC)
named = load(named_values_only(SPEC))


def explaining(operation: str, body: Any, status: int, code: str | None) -> Deviation | None:
    """The deviation that explains this answer to ``body``, if any."""
    for deviation in DEVIATIONS.values():
        if (deviation.operation, deviation.status, deviation.code) == (operation, status, code):
            return deviation if deviation.applies(body) else None
    return None


def check(case: Any, app: FastAPI) -> None:
    """Call ``case`` and hold its response to the document and :data:`DEVIATIONS`."""
    response = case.call(app=app, headers=AUTH)
    label = case.operation.label
    request = f"{label} {json.dumps(case.body, default=repr)[:300]}"
    assert response.status_code < 500, f"{request} -> {response.status_code} {response.text}"
    if response.status_code >= 400:
        error = assert_error_object(response)
        deviation = explaining(label, case.body, response.status_code, error["code"])
        assert deviation is not None, (
            f"{request} is valid by OpenAI's document but was refused for no listed reason: "
            f"{response.status_code} {error}"
        )
    else:
        OPERATIONS[label](case.body, response)
        deviation = explaining(label, case.body, response.status_code, None)
    # Two checks are made by this module instead: schemathesis reads an SSE schema as
    # describing each event's envelope (data, event, id), OpenAI's document as describing
    # the JSON in `data` (assert_speech); and its probe without credentials goes through a
    # transport of its own rather than the app (test_a_request_without_the_key_is_401).
    excluded = [ignored_auth]
    if header(response, "content-type").startswith("text/event-stream"):
        excluded.append(response_schema_conformance)
    try:
        case.validate_response(
            response, headers=AUTH, transport_kwargs={"app": app}, excluded_checks=excluded
        )
    except FailureGroup as group:
        allowed = deviation.explains if deviation else frozenset()
        unexplained = [f for f in group.exceptions if type(f).__name__ not in allowed]
        if unexplained:
            raise FailureGroup(unexplained, f"{request}: {len(unexplained)} failures") from None


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    # One app serves every example of an operation (its lifespan runs once per test).
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.fixture
def app() -> FastAPI:
    """The API on the fake engine, with an API key: the document requires bearer auth."""
    config = fake_settings(api_keys=API_KEY)
    return create_app(
        config, synthesizer=fake_synthesizer(FakeEngine(), config), registry=CollectorRegistry()
    )


@published.parametrize()
@FUZZ
def test_valid_requests_as_the_document_publishes_them(case: Any, app: FastAPI) -> None:
    check(case, app)


@named.parametrize()
@FUZZ
def test_valid_requests_with_the_names_the_document_lists(case: Any, app: FastAPI) -> None:
    check(case, app)


# -- the deviations list stays true ----------------------------------------------------------


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, headers=AUTH) as http:
        yield http


@pytest.mark.parametrize("name", sorted(DEVIATIONS))
def test_each_deviation_is_real_and_its_example_is_valid(client: TestClient, name: str) -> None:
    """Each entry's example is valid by the document and still gets the listed answer:
    an entry whose cause was fixed fails here, and must go."""
    deviation = DEVIATIONS[name]
    method, path = deviation.operation.split(" ", 1)
    operation = SPEC["paths"][path][method.lower()]
    assert not list(validator(request_schema(deviation.operation)).iter_errors(deviation.example))
    response = client.request(method, BASE_PATH + path, json=deviation.example)
    assert response.status_code == deviation.status, response.text
    if deviation.code is None:
        documented = operation["responses"][str(deviation.status)]["content"]
        assert response.headers["content-type"] not in documented
    else:
        assert assert_error_object(response)["code"] == deviation.code


def test_docs_list_each_deviation() -> None:
    """docs/api.md's conformance tables name each deviation's answer."""
    text = (Path(__file__).parent.parent / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("### Conformance with OpenAI's published API", 1)[1].split("\n## ", 1)[0]
    for deviation in DEVIATIONS.values():
        assert (deviation.code or "application/octet-stream") in section, deviation


def test_deviations_name_checked_operations() -> None:
    assert {d.operation for d in DEVIATIONS.values()} <= set(OPERATIONS)
    labels = {f"{m.upper()} {p}" for p, item in SPEC["paths"].items() for m in item}
    assert set(OPERATIONS) <= labels


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_request_without_the_key_is_401(app: FastAPI, operation: str) -> None:
    """The document requires bearer auth (``security: ApiKeyAuth``); with keys configured,
    voxserve refuses a request without one in OpenAI's error shape."""
    assert SPEC["security"] == [{"ApiKeyAuth": []}]
    method, path = operation.split(" ", 1)
    with TestClient(app) as anonymous:
        response = anonymous.request(method, BASE_PATH + path, json={})
    assert response.status_code == 401
    assert assert_error_object(response)["type"] == "authentication_error"


def listed_values() -> Iterator[tuple[str, Any]]:
    """Each value the speech request lists or bounds, field by field."""
    properties = SPEECH_REQUEST["properties"]
    yield from (("model", name) for name in tts_models())
    yield from (("voice", name) for name in builtin_voices())
    yield from (("response_format", fmt) for fmt in properties["response_format"]["enum"])
    yield from (("stream_format", fmt) for fmt in properties["stream_format"]["enum"])
    yield from (("speed", properties["speed"][bound]) for bound in ("minimum", "maximum"))
    yield "input", "Long. " * (properties["input"]["maxLength"] // 6)
    yield "instructions", "Speak softly. " * (properties["instructions"]["maxLength"] // 14)


@pytest.mark.parametrize(("field", "value"), list(listed_values()), ids=lambda v: str(v)[:20])
def test_every_value_the_document_lists_is_spoken(
    client: TestClient, field: str, value: Any
) -> None:
    body = {"model": "tts-1", "input": "Hello there.", "voice": "alloy", field: value}
    assert not list(validator("CreateSpeechRequest").iter_errors(body))
    response = client.post(BASE_PATH + "/audio/speech", json=body)
    assert response.status_code == 200, response.text
    assert_speech(body, response)


@pytest.mark.parametrize("stream_format", SPEECH_REQUEST["properties"]["stream_format"]["enum"])
@pytest.mark.parametrize("fmt", SPEECH_REQUEST["properties"]["response_format"]["enum"])
def test_every_format_in_every_stream_format(
    client: TestClient, fmt: str, stream_format: str
) -> None:
    body = {"model": "gpt-4o-mini-tts", "input": "One. Two.", "voice": "marin",
            "response_format": fmt, "stream_format": stream_format}  # fmt: skip
    response = client.post(BASE_PATH + "/audio/speech", json=body)
    assert response.status_code == 200, response.text
    assert_speech(body, response)
