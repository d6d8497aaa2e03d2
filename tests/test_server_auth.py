"""API keys over real HTTP: from VOXSERVE_API_KEYS, from a key file, and switched off.

One server reads keys from both places at once (the two sets add up); another has none.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import soundfile as sf

from live import LiveServer

SPEECH = "/v1/audio/speech"
KEYS = ("key-one", "key-two")
FILE_KEYS = ("file-key-alpha", "file-key-beta")
WRONG_KEY = "wrong-key-0xDEADBEEF"
SHORT = {"input": "Hi.", "response_format": "wav", "stream": False}


@pytest.fixture(scope="module")
def absent_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A key file path that does not exist, so a host's /run/secrets cannot turn auth on."""
    return tmp_path_factory.mktemp("nokeys") / "absent"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Two keys from VOXSERVE_API_KEYS and two more from a key file with a comment line."""
    key_file = tmp_path_factory.mktemp("keys") / "tts_api_key"
    key_file.write_text(f"# keys for the test run\n{FILE_KEYS[0]}\n\n  {FILE_KEYS[1]}  \n")
    env = {
        "VOXSERVE_API_KEYS": ",".join(KEYS),
        "VOXSERVE_API_KEY_FILE": str(key_file),
        # The most talkative level, so the no-keys-in-the-log checks see every line there is.
        "VOXSERVE_LOG_LEVEL": "DEBUG",
    }
    with LiveServer(env) as live:
        yield live


@pytest.fixture(scope="module")
def open_server(absent_key_file: Path) -> Iterator[LiveServer]:
    with LiveServer({"VOXSERVE_API_KEY_FILE": str(absent_key_file)}) as live:
        yield live


@pytest.fixture
def http() -> Iterator[Callable[[LiveServer], httpx.Client]]:
    """Factory: an httpx client for a server, closed after the test."""
    clients: list[httpx.Client] = []

    def make(server: LiveServer) -> httpx.Client:
        client = httpx.Client(base_url=server.url, timeout=60)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def assert_unauthorized(response: httpx.Response) -> str:
    """401 with WWW-Authenticate and OpenAI's error shape; returns the message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == "invalid_api_key"
    message: str = body["error"]["message"]
    return message


def assert_wav(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == 22050
    assert len(samples) > 0


# -- keys from VOXSERVE_API_KEYS ------------------------------------------------------------


def test_request_without_key_is_401_with_www_authenticate(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    message = assert_unauthorized(http(keyed).post(SPEECH, json=SHORT))
    assert "Authorization: Bearer" in message
    assert "X-API-Key" in message


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"X-API-Key": WRONG_KEY},
        {"Authorization": "Bearer key-one-but-longer"},
        {"Authorization": "Basic a2V5LW9uZTo="},  # key-one: as basic auth is not a bearer key
    ],
    ids=["bearer", "x-api-key", "prefix-of-a-key", "basic-scheme"],
)
def test_wrong_key_is_401(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client], headers: dict[str, str]
) -> None:
    assert_unauthorized(http(keyed).post(SPEECH, json=SHORT, headers=headers))


def test_bearer_key_one_is_accepted(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    assert_wav(http(keyed).post(SPEECH, json=SHORT, headers={"Authorization": "Bearer key-one"}))


def test_x_api_key_two_is_accepted(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    assert_wav(http(keyed).post(SPEECH, json=SHORT, headers={"X-API-Key": "key-two"}))


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_need_no_key(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client], path: str
) -> None:
    response = http(keyed).get(path)
    assert response.status_code == 200
    assert response.json()["status"] in {"ok", "ready"}


@pytest.mark.parametrize("path", ["/v1/models", "/openapi.json", "/v1/audio/voices"])
def test_listing_routes_need_the_key(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client], path: str
) -> None:
    client = http(keyed)
    assert_unauthorized(client.get(path))
    response = client.get(path, headers={"Authorization": "Bearer key-two"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_keys_never_appear_in_the_log(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    """After accepted and refused requests, neither key string is anywhere in the log."""
    client = http(keyed)
    assert client.get("/v1/models", headers={"Authorization": "Bearer key-one"}).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": "key-two"}).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": WRONG_KEY}).status_code == 401
    bad = {"Authorization": f"Bearer {WRONG_KEY}"}
    assert client.post(SPEECH, json=SHORT, headers=bad).status_code == 401
    log = keyed.log
    for secret in (*KEYS, WRONG_KEY):
        assert secret not in log
    assert "Traceback" not in log


# -- the official OpenAI client ---------------------------------------------------------------


def test_openai_client_with_the_right_key_gets_audio(keyed: LiveServer) -> None:
    with openai.OpenAI(api_key="key-one", base_url=keyed.url + "/v1", max_retries=0) as client:
        audio = client.audio.speech.create(
            model="tts-1", voice="alloy", input="Hello from the client.", response_format="wav"
        )
        samples, rate = sf.read(io.BytesIO(audio.content), dtype="float32")
    assert rate == 22050
    assert len(samples) > rate // 2


def test_openai_client_with_a_wrong_key_raises_authentication_error(keyed: LiveServer) -> None:
    client = openai.OpenAI(api_key=WRONG_KEY, base_url=keyed.url + "/v1", max_retries=0)
    with client, pytest.raises(openai.AuthenticationError) as raised:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hello.")
    assert raised.value.status_code == 401
    assert "Invalid API key" in str(raised.value)


# -- keys from a file ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", FILE_KEYS)
def test_every_key_in_the_key_file_works(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client], key: str
) -> None:
    client = http(keyed)
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200


def test_key_file_comment_and_blank_lines_are_not_keys(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    client = http(keyed)
    assert_unauthorized(client.get("/v1/models"))
    assert_unauthorized(client.get("/v1/models", headers={"X-API-Key": "# keys for the test run"}))
    assert_unauthorized(client.get("/v1/models", headers={"X-API-Key": ""}))


def test_key_file_keys_never_appear_in_the_log(
    keyed: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    client = http(keyed)
    for key in FILE_KEYS:
        assert client.get("/v1/models", headers={"X-API-Key": key}).status_code == 200
    log = keyed.log
    for key in FILE_KEYS:
        assert key not in log


# -- auth off -------------------------------------------------------------------------------------


def test_without_configured_keys_no_key_is_needed(
    open_server: LiveServer, http: Callable[[LiveServer], httpx.Client]
) -> None:
    client = http(open_server)
    assert client.get("/v1/models").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert_wav(client.post(SPEECH, json=SHORT))
    # A key sent anyway is ignored, not refused.
    assert_wav(client.post(SPEECH, json=SHORT, headers={"Authorization": f"Bearer {WRONG_KEY}"}))
