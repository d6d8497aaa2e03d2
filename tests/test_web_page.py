"""The web page at ``/`` in a real headless Chromium against a real server.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/system-deps.sh test``
installs them) and ``selenium`` (the ``dev`` extra). A missing browser fails the module
with that hint rather than skipping it.

The speech-to-text panel is tested against the server's real Whisper model: a WAV of the
page's own synthesized speech goes in through the file input, the microphone (Chromium's
fake capture device playing that WAV) and the round trip, and the transcript must say the
words (word error rate at most 0.2; Whisper tiny.en on Piper speech measured 0-6 %, see
``voxserve.asr.wer``).

Set ``VOXSERVE_WEB_SCREENSHOT=docs/img/web-page.png`` to refresh the documentation's
screenshots, taken after speaking mp3 and transcribing it back: the whole page on a
desktop, and beside it (``web-page-phone.png``) on a phone's screen.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from live import LiveServer
from voxserve.asr.wer import word_error_rate

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
API_KEY = "secret-test-key"
DEFAULT_VOICE = "en_US-joe-medium"
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1000,1240",
)
#: Blob type the page gives each format, and the bytes each file starts with.
FORMATS = {
    "wav": ("audio/wav", [b"RIFF"]),
    "mp3": ("audio/mpeg", [b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xe3"]),
    "opus": ("audio/ogg; codecs=opus", [b"OggS"]),
    "aac": ("audio/aac", [b"\xff\xf1", b"\xff\xf9"]),
    "flac": ("audio/flac", [b"fLaC"]),
}

# Decodes the <audio> element's blob with WebAudio, independently of the page's own code.
DECODE_PLAYER_JS = """
const done = arguments[arguments.length - 1];
const player = document.getElementById('player');
fetch(player.src)
  .then(async (r) => {
    const blob = await r.blob();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const audio = await new OfflineAudioContext(1, 1, 48000).decodeAudioData(bytes.buffer.slice(0));
    done({type: blob.type, head: Array.from(bytes.slice(0, 4)), duration: audio.duration});
  })
  .catch((e) => done({error: String(e)}));
"""

#: What the speech-to-text tests say, synthesized by the server with its default voice.
SAMPLE_TEXT = "Please call me back tomorrow morning about the delivery of the new chairs."
#: Word error rate a transcript may have: Whisper tiny.en heard Piper speech with 0-6 %.
WER_BOUND = 0.2
#: What the server's default Whisper model is called (X-Model).
ASR_MODEL = "whisper-tiny.en"
#: A fake microphone for Chromium: it plays a file (once: %noloop) instead of capturing.
FAKE_MICROPHONE_ARGS = ("--use-fake-device-for-media-stream",)


@dataclass(frozen=True)
class Spoken:
    """What the page shows after one Speak."""

    ttfa_ms: float
    total_ms: float
    duration_s: float
    rtf: float
    voice: str


def chromium(profile: Path, *extra_args: str) -> WebDriver:
    """A headless Chromium with a fresh profile in ``profile`` and console logging."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Chromium and its driver are needed: run `scripts/system-deps.sh test` "
            "(apt-get install chromium chromium-driver)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROME_ARGS, *extra_args):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module. It has no microphone."""
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def sample_wav(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SAMPLE_TEXT spoken by the server's default voice, as a WAV file."""
    response = httpx.post(
        server.url + "/v1/audio/speech",
        json={"model": "tts-1", "input": SAMPLE_TEXT, "response_format": "wav"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    path = tmp_path_factory.mktemp("audio") / "speech-sample.wav"
    path.write_bytes(response.content)
    return path


@pytest.fixture(scope="module")
def microphone_browser(
    sample_wav: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebDriver]:
    """A second Chromium whose microphone plays ``sample_wav`` once from each start. Its
    permission prompt is dismissed, as headless Chromium does: a test grants or denies the
    microphone with :func:`allow_microphone`."""
    driver = chromium(
        tmp_path_factory.mktemp("chromium-microphone-profile"),
        *FAKE_MICROPHONE_ARGS,
        f"--use-file-for-fake-audio-capture={sample_wav}%noloop",
    )
    try:
        yield driver
    finally:
        driver.quit()


def allow_microphone(driver: WebDriver, live: LiveServer, *, allowed: bool) -> None:
    """Set the page's microphone permission, as a person answering the prompt would."""
    driver.execute_cdp_cmd(
        "Browser.setPermission",
        {
            "origin": live.url,
            "permission": {"name": "microphone"},
            "setting": "granted" if allowed else "denied",
        },
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[LiveServer]:
    with LiveServer(env={"VOXSERVE_API_KEYS": API_KEY}) as live:
        yield live


@pytest.fixture(scope="module")
def deaf_server() -> Iterator[LiveServer]:
    """A server with speech recognition turned off."""
    with LiveServer(env={"VOXSERVE_ASR": "false"}) as live:
        yield live


@pytest.fixture
def open_page(browser: WebDriver) -> Callable[[LiveServer], WebDriver]:
    """Load ``/`` of a server and wait until the page's script has asked for the voices."""

    def open_(live: LiveServer) -> WebDriver:
        return load_page(browser, live)

    return open_


def load_page(driver: WebDriver, live: LiveServer) -> WebDriver:
    """Load ``/`` of a server in ``driver`` and wait until the page's script has asked for
    the voices."""
    # Via a blank page: loading the same URL again counts as a reload, and Chrome would
    # then restore the form fields the previous test left behind.
    driver.get("about:blank")
    driver.get(live.url + "/")
    WebDriverWait(driver, 15).until(
        lambda d: (
            d.find_element(By.ID, "voice").get_attribute("value") == DEFAULT_VOICE
            or d.find_element(By.ID, "error").is_displayed()
        )
    )
    return driver


def console(driver: WebDriver) -> list[dict[str, Any]]:
    """The browser console entries since the last call (reading empties the buffer)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return entries


def severe_console_entries(driver: WebDriver) -> list[dict[str, Any]]:
    return [e for e in console(driver) if e["level"] == "SEVERE"]


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def speak(driver: WebDriver, submit: Callable[[], None] | None = None) -> None:
    """Press Speak (or run ``submit``) and wait until the page has finished that request."""
    before = driver.execute_script("return document.body.dataset.runs || '0'")
    if submit is None:
        driver.find_element(By.ID, "speak").click()
    else:
        submit()
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.body.dataset.runs || '0'") != before
    )


def spoken(driver: WebDriver) -> Spoken:
    assert not driver.find_element(By.ID, "error").is_displayed(), text_of(driver, "error")
    return Spoken(
        ttfa_ms=float(text_of(driver, "ttfa")),
        total_ms=float(text_of(driver, "total")),
        duration_s=float(text_of(driver, "duration")),
        rtf=float(text_of(driver, "rtf")),
        voice=text_of(driver, "voice-used"),
    )


def test_page_loads_its_own_assets_without_console_errors(
    browser: WebDriver, server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """Stylesheet and script come from /static/ (no CDN), and the console stays clean."""
    console(browser)  # drop what earlier pages logged
    page = open_page(server)
    assert page.title == "voxserve — text to speech, speech to text"
    resources = page.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources, "the page loaded no resources"
    assert all(url.startswith(server.url + "/") for url in resources), resources
    assert {server.url + "/static/style.css", server.url + "/static/app.js"} <= set(resources)
    assert page.execute_script("return document.styleSheets.length") == 1
    assert severe_console_entries(page) == []
    assert not page.find_element(By.ID, "error").is_displayed()


def voice_groups(page: WebDriver) -> dict[str, list[str]]:
    """The voice list as shown: {language group: [voice ids]}, in order."""
    pairs = page.execute_script(  # pairs: the driver may reorder an object's keys
        "return [...document.querySelectorAll('#voice optgroup')]"
        ".map(g => [g.label, [...g.children].map(o => o.value)])"
    )
    return {str(label): [str(v) for v in ids] for label, ids in pairs}


def collation_key(name: str) -> str:
    """Roughly how the browser sorts names: no case, no accents (Māori before Marathi)."""
    letters = unicodedata.normalize("NFKD", name)
    return "".join(c for c in letters if not unicodedata.combining(c)).casefold()


def shown_voices(page: WebDriver) -> list[str]:
    return [
        str(o.get_attribute("value")) for o in Select(page.find_element(By.ID, "voice")).options
    ]


def test_voice_list_is_filled_from_the_api_grouped_by_language_with_the_default_selected(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    page = open_page(server)
    api = httpx.get(server.url + "/v1/audio/voices").json()
    options = Select(page.find_element(By.ID, "voice")).options
    by_value = {o.get_attribute("value"): o.text for o in options}
    assert sorted(by_value) == sorted(v["id"] for v in api["voices"])
    assert len(options) == len(api["voices"])
    assert by_value[DEFAULT_VOICE] == f"{DEFAULT_VOICE} (en_US)"
    assert (
        Select(page.find_element(By.ID, "voice")).first_selected_option.get_attribute("value")
        == api["default"]
    )
    groups = voice_groups(page)
    assert next(iter(groups)) == "English"  # the default voice's language first
    assert {"espeak-en-gb", "espeak-en-us", DEFAULT_VOICE} <= set(groups["English"])
    assert groups["German"] == ["espeak-de"]
    assert list(groups)[1:] == sorted(list(groups)[1:], key=collation_key)
    assert text_of(page, "voice-count") == f"{len(api['voices'])} voices."


def test_voices_are_found_by_language_name_code_or_id(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """Typing narrows the list and picks its first voice; no match keeps the list; Enter
    goes on to the list instead of speaking."""
    page = open_page(server)
    find = page.find_element(By.ID, "voice-filter")
    find.send_keys("German")
    assert shown_voices(page) == ["espeak-de"]
    assert page.find_element(By.ID, "voice").get_attribute("value") == "espeak-de"
    assert text_of(page, "voice-count") == f"1 of {len(voice_ids(server))} voices match."

    find.clear()
    find.send_keys("en gb")
    assert shown_voices(page)
    assert all(v.startswith("espeak-en-gb") for v in shown_voices(page)), shown_voices(page)
    find.clear()
    find.send_keys("fr")  # French, not Afrikaans: words are matched from their start
    assert shown_voices(page) == ["espeak-fr-be", "espeak-fr-ch", "espeak-fr-fr"]
    find.clear()
    find.send_keys("joe")
    assert shown_voices(page) == [DEFAULT_VOICE]

    find.send_keys("xyz")
    assert shown_voices(page) == [DEFAULT_VOICE]
    assert text_of(page, "voice-count") == "No voice matches “joexyz”."
    runs = page.execute_script("return document.body.dataset.runs || '0'")
    find.send_keys(Keys.ENTER)
    assert page.switch_to.active_element.get_attribute("id") == "voice"
    assert page.execute_script("return document.body.dataset.runs || '0'") == runs


def voice_ids(server: LiveServer) -> list[str]:
    return [v["id"] for v in httpx.get(server.url + "/v1/audio/voices").json()["voices"]]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_speak_plays_a_decodable_blob_and_shows_timings(
    fmt: str,
    server: LiveServer,
    open_page: Callable[[LiveServer], WebDriver],
    tmp_path: Path,
) -> None:
    """Speak streams the audio into a blob the browser itself can decode and play."""
    page = open_page(server)
    Select(page.find_element(By.ID, "format")).select_by_value(fmt)
    console(page)
    speak(page)
    shown = spoken(page)

    player = page.find_element(By.ID, "player")
    src = player.get_attribute("src") or ""
    assert src.startswith(f"blob:{server.url}/")
    loaded = "return arguments[0].readyState >= 1 || arguments[0].error"  # metadata or failure
    WebDriverWait(page, 15).until(lambda d: d.execute_script(loaded, player))
    assert page.execute_script("return arguments[0].error", player) is None

    blob = page.execute_async_script(DECODE_PLAYER_JS)
    assert "error" not in blob, blob
    mime, magics = FORMATS[fmt]
    assert blob["type"] == mime
    assert any(bytes(blob["head"]).startswith(m) for m in magics), blob["head"]
    # Two sentences of the sample text: several seconds of speech.
    assert 2.0 < blob["duration"] < 20.0
    assert shown.duration_s == pytest.approx(blob["duration"], abs=0.006)

    assert 0 < shown.ttfa_ms <= shown.total_ms
    assert shown.rtf == pytest.approx(shown.total_ms / 1000 / shown.duration_s, rel=0.01, abs=0.002)
    assert shown.voice == DEFAULT_VOICE

    download = page.find_element(By.ID, "download")
    assert download.get_attribute("download") == f"voxserve.{fmt}"
    assert download.get_attribute("href") == src
    assert download.text == f"Download voxserve.{fmt}"
    assert severe_console_entries(page) == []

    page.save_screenshot(str(tmp_path / f"web-page-{fmt}.png"))


def test_keyboard_sets_speed_and_ctrl_enter_speaks_faster(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """End on the slider gives 4x, Ctrl+Enter in the text speaks, and the audio is shorter."""
    page = open_page(server)
    text = page.find_element(By.ID, "text")
    Select(page.find_element(By.ID, "format")).select_by_value("wav")
    speak(page, lambda: text.send_keys(Keys.CONTROL, Keys.ENTER))
    normal = spoken(page)

    slider = page.find_element(By.ID, "speed")
    slider.send_keys(Keys.END)
    assert text_of(page, "speed-value") == "4.00"
    assert slider.get_attribute("aria-valuetext") == "4.00 times"
    speak(page, lambda: text.send_keys(Keys.CONTROL, Keys.ENTER))
    fast = spoken(page)
    # Not 4x shorter: Piper gives every phoneme (and every pad between phonemes) at least
    # one frame, and the pause between sentences stays fixed; measured 0.49 of the length.
    assert fast.duration_s < 0.7 * normal.duration_s, (normal, fast)


def whole_page_screenshot(page: WebDriver, path: Path, *, width: int) -> None:
    """The whole page at ``width`` CSS pixels, however long; the window is put back."""
    size = page.get_window_size()
    try:
        page.set_window_size(width, size["height"])
        height = page.execute_script("return document.documentElement.scrollHeight")
        page.set_window_size(width, height + 150)  # the window's frame is not page
        page.save_screenshot(str(path))
    finally:
        page.set_window_size(size["width"], size["height"])


def snippet_request(curl: str) -> tuple[str, dict[str, str], dict[str, Any], str]:
    """(url, headers, JSON body, output file) of the page's curl command, as a shell reads
    it with VOXSERVE_API_KEY unset."""
    words = shlex.split(curl.replace("\\\n", " ").replace("$VOXSERVE_API_KEY", ""))
    assert words[:2] == ["curl", "-s"]
    headers: dict[str, str] = {}
    for i, word in enumerate(words):
        if word == "-H":
            name, _, value = words[i + 1].partition(": ")
            headers[name] = value
    return words[2], headers, json.loads(words[words.index("-d") + 1]), words[-1]


def test_the_code_snippets_repeat_what_the_page_did(
    server: LiveServer,
    open_page: Callable[[LiveServer], WebDriver],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After Speak, the curl and openai snippets send the same request: run as pasted
    (text with quotes and a dollar sign too), they give the same audio."""
    page = open_page(server)
    text = page.find_element(By.ID, "text")
    text.clear()
    text.send_keys('It\'s $3.50, "cheap" at half the price.')
    Select(page.find_element(By.ID, "voice")).select_by_value("espeak-en-us")
    Select(page.find_element(By.ID, "format")).select_by_value("wav")
    page.find_element(By.ID, "speed").send_keys(Keys.ARROW_RIGHT)
    speak(page)
    shown = spoken(page)

    curl = page.find_element(By.ID, "curl-snippet").get_attribute("textContent") or ""
    url, headers, body, output = snippet_request(curl)
    assert url == server.url + "/v1/audio/speech"
    assert headers == {"Content-Type": "application/json"}
    assert body == {
        "model": "tts-1",
        "input": 'It\'s $3.50, "cheap" at half the price.',
        "response_format": "wav",
        "speed": 1.05,
        "voice": "espeak-en-us",
    }
    assert output == "speech.wav"
    response = httpx.post(url, json=body, headers=headers, timeout=60)
    assert response.status_code == 200
    assert response.content[:4] == b"RIFF"

    python = page.find_element(By.ID, "python-snippet").get_attribute("textContent") or ""
    assert 'voice="espeak-en-us"' in python
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(python, namespace)
    namespace["client"].close()
    audio = (tmp_path / "speech.wav").read_bytes()
    assert audio[:4] == b"RIFF"
    assert shown.voice == "espeak-en-us"


def test_on_a_phone_the_page_fits_the_screen(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """At 390 CSS pixels nothing, not even the code snippets or the transcript, is wider
    than the screen."""
    page = open_page(server)
    speak(page)
    transcribe(page, page.find_element(By.ID, "use-spoken").click)
    size = page.get_window_size()
    try:
        page.set_window_size(390, 844)
        target = os.environ.get("VOXSERVE_WEB_SCREENSHOT")
        if target:  # with the transcription's snippets folded, as the page shows them
            phone = Path(target).with_name(Path(target).stem + "-phone.png")
            whole_page_screenshot(page, phone, width=390)
        page.find_element(By.CSS_SELECTOR, "#stt-code summary").click()  # unfold them
        widths = page.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], widths
        for element_id in ("text", "voice-filter", "voice", "format", "speed", "speak",
                           "curl-snippet", "python-snippet", "audio-file", "record",
                           "use-spoken", "stt-model", "stt-format", "transcribe",
                           "transcript", "source-player", "stt-curl-snippet",
                           "stt-python-snippet"):  # fmt: skip
            element = page.find_element(By.ID, element_id)
            assert element.is_displayed(), element_id
            right = page.execute_script(
                "return arguments[0].getBoundingClientRect().right", element
            )
            assert right <= widths[1], element_id
    finally:
        page.set_window_size(size["width"], size["height"])


def test_chosen_voice_is_the_one_that_speaks(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    page = open_page(server)
    Select(page.find_element(By.ID, "voice")).select_by_value("espeak-en-us")
    Select(page.find_element(By.ID, "format")).select_by_value("wav")
    speak(page)
    assert spoken(page).voice == "espeak-en-us"


def test_empty_text_shows_the_api_error_message(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    page = open_page(server)
    page.find_element(By.ID, "text").clear()
    speak(page)
    error = page.find_element(By.ID, "error")
    assert error.is_displayed()
    assert error.get_attribute("role") == "alert"
    assert error.text == "The input text is empty. [field: input]"
    assert page.find_element(By.ID, "player").get_attribute("src") in ("", None)
    assert not page.find_element(By.ID, "result").is_displayed()


def test_with_api_keys_the_page_asks_for_a_key_then_speaks_with_it(
    keyed_server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """The shell is public; every API call needs the key typed into the page."""
    assert httpx.get(keyed_server.url + "/v1/audio/voices").status_code == 401
    page = open_page(keyed_server)
    error = page.find_element(By.ID, "error")
    # The voice list already needed the key.
    assert error.is_displayed()
    assert "needs an API key" in error.text

    speak(page)
    assert "needs an API key" in error.text
    assert "Missing API key" in error.text

    apikey = page.find_element(By.ID, "apikey")
    apikey.send_keys("wrong-key")
    speak(page)
    assert "refused this API key" in error.text
    assert "Invalid API key." in error.text

    apikey.clear()
    apikey.send_keys(API_KEY)
    Select(page.find_element(By.ID, "format")).select_by_value("wav")
    speak(page)
    shown = spoken(page)
    assert shown.duration_s > 1.0
    assert shown.voice == DEFAULT_VOICE
    assert (page.find_element(By.ID, "player").get_attribute("src") or "").startswith("blob:")
    assert page.execute_script("return sessionStorage.getItem('voxserve.apiKey')") == API_KEY
    # The snippets name the key by an environment variable, never show it.
    for snippet in ("curl-snippet", "python-snippet"):
        code = page.find_element(By.ID, snippet).get_attribute("textContent") or ""
        assert "VOXSERVE_API_KEY" in code
        assert API_KEY not in code

    # The key survives a reload of the tab, and the voice list then loads with it.
    page = open_page(keyed_server)
    assert page.find_element(By.ID, "apikey").get_attribute("value") == API_KEY
    assert page.find_element(By.ID, "voice").get_attribute("value") == DEFAULT_VOICE
    assert not page.find_element(By.ID, "error").is_displayed()


# ---- Speech to text ----------------------------------------------------------------------

# Keeps every text the transcript shows, and whether the request was still running then.
WATCH_TRANSCRIPT_JS = """
window.shownTranscripts = [];
const result = document.getElementById('transcript-result');
new MutationObserver(() => {
  window.shownTranscripts.push({
    text: document.getElementById('transcript').textContent,
    busy: result.getAttribute('aria-busy') === 'true',
  });
}).observe(document.getElementById('transcript'), {childList: true, characterData: true,
                                                   subtree: true});
"""

# The transcript's download link, read back as the browser would save it.
READ_DOWNLOAD_JS = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById('transcript-download').href)
  .then(async (r) => { const b = await r.blob(); done({type: b.type, text: await b.text()}); })
  .catch((e) => done({error: String(e)}));
"""


@dataclass(frozen=True)
class Transcribed:
    """What the page shows after one transcription."""

    text: str
    source: str
    first_ms: float
    total_ms: float
    duration_s: float
    rtf: float
    model: str


def transcribe(driver: WebDriver, submit: Callable[[], None]) -> None:
    """Run ``submit`` (pick a file, press a button) and wait until the page has finished
    the transcription it starts."""
    count = "return document.body.dataset.transcriptions || '0'"
    before = driver.execute_script(count)
    submit()
    WebDriverWait(driver, 90).until(lambda d: d.execute_script(count) != before)


def transcribed(driver: WebDriver) -> Transcribed:
    error = driver.find_element(By.ID, "listen-error")
    assert not error.is_displayed(), error.text
    assert driver.find_element(By.ID, "transcript-result").is_displayed()
    # The audio's duration is decoded after the text is shown.
    WebDriverWait(driver, 15).until(lambda d: text_of(d, "stt-duration") != "–")
    return Transcribed(
        text=str(driver.find_element(By.ID, "transcript").get_attribute("textContent")),
        source=text_of(driver, "transcript-source"),
        first_ms=float(text_of(driver, "stt-first")),
        total_ms=float(text_of(driver, "stt-total")),
        duration_s=float(text_of(driver, "stt-duration")),
        rtf=float(text_of(driver, "stt-rtf")),
        model=text_of(driver, "stt-model-used"),
    )


def upload(driver: WebDriver, path: Path) -> None:
    """Pick ``path`` in the audio file input, and wait for its transcription."""
    transcribe(driver, lambda: driver.find_element(By.ID, "audio-file").send_keys(str(path)))


def subtitle_text(subtitles: str) -> str:
    """The words of an srt or WebVTT file: no header, numbers or timings."""
    lines = [line.strip() for line in subtitles.splitlines()]
    return " ".join(
        line for line in lines
        if line and line != "WEBVTT" and not line.isdigit() and "-->" not in line
    )  # fmt: skip


def cue_times(subtitles: str) -> list[tuple[float, float]]:
    """(start, end) in seconds of each cue of an srt or WebVTT file."""
    stamp = r"(?:(\d+):)?(\d+):(\d+)[,.](\d+)"

    def seconds(h: str | None, m: str, s: str, ms: str) -> float:
        return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    return [
        (seconds(*match.groups()[:4]), seconds(*match.groups()[4:]))
        for match in re.finditer(rf"{stamp} --> {stamp}", subtitles)
    ]


def test_the_panel_is_labelled_and_reached_by_keyboard(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """Every control has an accessible name, and Tab goes from the file input through the
    panel in reading order."""
    page = open_page(server)
    panel = page.find_element(By.ID, "listen")
    assert panel.is_displayed()
    assert not page.find_element(By.ID, "listen-off").is_displayed()
    # The page loaded the model list: whisper-1 first, then the installed models.
    WebDriverWait(page, 15).until(
        lambda d: len(Select(d.find_element(By.ID, "stt-model")).options) > 1
    )
    models = [
        o.get_attribute("value") for o in Select(page.find_element(By.ID, "stt-model")).options
    ]
    assert models[0] == "whisper-1"
    assert ASR_MODEL in models
    assert not {"tts-1", "voxserve", "gpt-4o-transcribe"} & set(models)
    controls = ("audio-file", "record", "use-spoken", "stt-model", "stt-format", "transcribe")
    names = {c: page.find_element(By.ID, c).accessible_name for c in controls}
    assert names == {
        "audio-file": "Audio file",
        "record": "Record",
        "use-spoken": "Transcribe the speech above",
        "stt-model": "Model",
        "stt-format": "Output",
        "transcribe": "Transcribe again",
    }
    # Nothing to transcribe yet: the round trip and "again" wait for audio.
    assert not page.find_element(By.ID, "use-spoken").is_enabled()
    assert not page.find_element(By.ID, "transcribe").is_enabled()
    page.execute_script("document.getElementById('audio-file').focus()")
    order = []
    for _ in range(3):
        ActionChains(page).send_keys(Keys.TAB).perform()
        order.append(page.switch_to.active_element.get_attribute("id"))
    assert order == ["record", "stt-model", "stt-format"]  # the disabled buttons skipped


def test_an_uploaded_wav_is_transcribed_as_the_text_arrives(
    server: LiveServer,
    open_page: Callable[[LiveServer], WebDriver],
    sample_wav: Path,
) -> None:
    """A WAV of synthesized speech picked in the file input is streamed back as text that
    says the words; the transcript can be downloaded."""
    page = open_page(server)
    page.execute_script(WATCH_TRANSCRIPT_JS)
    console(page)
    upload(page, sample_wav)
    shown = transcribed(page)
    assert word_error_rate(SAMPLE_TEXT, shown.text) <= WER_BOUND, shown.text
    assert shown.source == "speech-sample.wav"
    assert shown.model == ASR_MODEL
    assert 0 < shown.first_ms <= shown.total_ms
    assert 2.0 < shown.duration_s < 10.0
    assert shown.rtf == pytest.approx(shown.total_ms / 1000 / shown.duration_s, rel=0.01, abs=0.002)
    assert text_of(page, "listen-status") == "Done."

    # The text appeared while the request was still streaming, and only grew.
    texts = page.execute_script("return window.shownTranscripts")
    streaming = [t["text"] for t in texts if t["busy"] and t["text"]]
    assert streaming, texts
    assert all(b.startswith(a) for a, b in itertools.pairwise(streaming)), texts
    assert shown.text.startswith(streaming[0])

    download = page.find_element(By.ID, "transcript-download")
    assert download.get_attribute("download") == "speech-sample.txt"
    assert download.text == "Download speech-sample.txt"
    saved = page.execute_async_script(READ_DOWNLOAD_JS)
    assert saved == {"type": "text/plain", "text": shown.text + "\n"}
    source = page.find_element(By.ID, "source-player").get_attribute("src") or ""
    assert source.startswith(f"blob:{server.url}/")
    assert page.find_element(By.ID, "transcribe").is_enabled()  # it can be sent again
    assert severe_console_entries(page) == []


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_are_shown_as_text_with_a_download_link(
    fmt: str,
    server: LiveServer,
    open_page: Callable[[LiveServer], WebDriver],
    sample_wav: Path,
) -> None:
    page = open_page(server)
    Select(page.find_element(By.ID, "stt-format")).select_by_value(fmt)
    upload(page, sample_wav)
    shown = transcribed(page)
    if fmt == "vtt":
        assert shown.text.startswith("WEBVTT")
    else:
        assert shown.text.startswith("1\n")
    times = cue_times(shown.text)
    assert times, shown.text
    assert all(0 <= start < end <= shown.duration_s + 0.5 for start, end in times), times
    assert word_error_rate(SAMPLE_TEXT, subtitle_text(shown.text)) <= WER_BOUND, shown.text

    download = page.find_element(By.ID, "transcript-download")
    assert download.get_attribute("download") == f"speech-sample.{fmt}"
    saved = page.execute_async_script(READ_DOWNLOAD_JS)
    mime = {"srt": "application/x-subrip", "vtt": "text/vtt"}[fmt]
    assert saved == {"type": mime, "text": shown.text}


def test_the_speech_just_made_is_transcribed_back(
    server: LiveServer, open_page: Callable[[LiveServer], WebDriver]
) -> None:
    """The round trip: Speak (mp3), then "Transcribe the speech above" sends that audio."""
    page = open_page(server)
    text = page.find_element(By.ID, "text")
    text.clear()
    text.send_keys(SAMPLE_TEXT)
    speak(page)
    spoken(page)
    button = page.find_element(By.ID, "use-spoken")
    assert button.is_enabled()
    transcribe(page, button.click)
    shown = transcribed(page)
    assert shown.source == "speech.mp3"
    assert word_error_rate(SAMPLE_TEXT, shown.text) <= WER_BOUND, shown.text
    assert page.find_element(By.ID, "transcript-download").get_attribute("download") == (
        "speech.txt"
    )

    target = os.environ.get("VOXSERVE_WEB_SCREENSHOT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        whole_page_screenshot(page, Path(target), width=1000)


def test_a_file_that_is_not_audio_shows_the_api_error(
    server: LiveServer,
    open_page: Callable[[LiveServer], WebDriver],
    sample_wav: Path,
    tmp_path: Path,
) -> None:
    page = open_page(server)
    notes = tmp_path / "notes.wav"
    notes.write_text("These are notes, not audio.\n")
    upload(page, notes)
    error = page.find_element(By.ID, "listen-error")
    assert error.is_displayed()
    assert error.get_attribute("role") == "alert"
    assert error.text.startswith("The uploaded file is not audio voxserve can read"), error.text
    assert error.text.endswith("[field: file]"), error.text
    assert not page.find_element(By.ID, "transcript-result").is_displayed()
    assert not page.find_element(By.ID, "error").is_displayed()  # the speech form's box

    upload(page, sample_wav)  # a real file afterwards works, and clears the error
    assert word_error_rate(SAMPLE_TEXT, transcribed(page).text) <= WER_BOUND


def test_the_microphone_records_and_the_recording_is_transcribed(
    server: LiveServer, microphone_browser: WebDriver, sample_wav: Path
) -> None:
    """Record, wait while the (fake) microphone plays the sample, Stop: the recording is
    transcribed and says the words."""
    page = load_page(microphone_browser, server)
    allow_microphone(page, server, allowed=True)
    record = page.find_element(By.ID, "record")
    record.click()
    WebDriverWait(page, 15).until(lambda d: text_of(d, "record") == "Stop")
    assert text_of(page, "listen-status") == "Recording: speak, then press Stop."
    assert not page.find_element(By.ID, "audio-file").is_enabled()
    # The sample lasts about 4.5 s; the microphone plays it from the start of recording.
    seconds = len(sample_wav.read_bytes()) / (22050 * 2) + 1

    def recorded(d: WebDriver) -> bool:
        minutes, _, secs = text_of(d, "record-time").partition(":")
        return int(minutes) * 60 + int(secs) >= seconds

    WebDriverWait(page, seconds + 15).until(recorded)
    transcribe(page, record.click)
    shown = transcribed(page)
    assert shown.source == "recording.webm"
    assert word_error_rate(SAMPLE_TEXT, shown.text) <= WER_BOUND, shown.text
    assert shown.duration_s >= seconds - 1
    assert text_of(page, "record") == "Record"
    assert not page.find_element(By.ID, "record-time").is_displayed()


def test_a_refused_or_missing_microphone_says_so(
    server: LiveServer,
    microphone_browser: WebDriver,
    open_page: Callable[[LiveServer], WebDriver],
) -> None:
    """Permission refused, and a browser with no microphone at all: a clear message, and
    Record can be pressed again."""
    page = load_page(microphone_browser, server)
    allow_microphone(page, server, allowed=False)
    page.find_element(By.ID, "record").click()
    error = page.find_element(By.ID, "listen-error")
    WebDriverWait(page, 15).until(lambda d: error.is_displayed())
    assert error.text.startswith("The browser did not allow the microphone."), error.text
    assert text_of(page, "record") == "Record"
    assert page.find_element(By.ID, "record").is_enabled()

    page = open_page(server)  # the main browser has no capture device
    page.find_element(By.ID, "record").click()
    error = page.find_element(By.ID, "listen-error")
    WebDriverWait(page, 15).until(lambda d: error.is_displayed())
    assert error.text.startswith("No microphone was found."), error.text
    assert page.find_element(By.ID, "record").is_enabled()


def test_without_speech_recognition_the_panel_is_off_and_says_why(
    deaf_server: LiveServer, open_page: Callable[[LiveServer], WebDriver], sample_wav: Path
) -> None:
    """/v1/models lists no Whisper model: the panel is greyed out with the reason. A page
    loaded before the server lost it learns it from the route's 404 asr_disabled."""
    page = open_page(deaf_server)
    notice = page.find_element(By.ID, "listen-off")
    WebDriverWait(page, 15).until(lambda d: notice.is_displayed())
    assert "Speech to text is off on this server" in notice.text
    assert "lists no Whisper model" in notice.text
    for element_id in ("audio-file", "record", "stt-model", "stt-format"):
        assert not page.find_element(By.ID, element_id).is_enabled(), element_id

    # As if the page had been loaded while the server still had recognition.
    page.execute_script(
        "document.getElementById('listen-fields').disabled = false;"
        "document.getElementById('listen-off').hidden = true;"
    )
    upload(page, sample_wav)
    WebDriverWait(page, 15).until(lambda d: notice.is_displayed())
    assert notice.text == (
        "Speech to text is off on this server: Speech recognition is turned off on this "
        "server (VOXSERVE_ASR=false)."
    )
    assert not page.find_element(By.ID, "audio-file").is_enabled()
    assert "turned off" in text_of(page, "listen-error")


def test_with_api_keys_the_transcription_sends_the_key(
    keyed_server: LiveServer, open_page: Callable[[LiveServer], WebDriver], sample_wav: Path
) -> None:
    """The transcription is sent with the key from the API key field, like Speak; without
    one the panel says it needs it."""
    page = open_page(keyed_server)
    page.find_element(By.ID, "apikey").clear()
    assert page.find_element(By.ID, "audio-file").is_enabled()  # unknown until a key works
    upload(page, sample_wav)
    error = page.find_element(By.ID, "listen-error")
    assert "needs an API key" in error.text
    assert "Missing API key" in error.text

    apikey = page.find_element(By.ID, "apikey")
    apikey.send_keys(API_KEY, Keys.TAB)  # change: the page reloads voices and models
    WebDriverWait(page, 15).until(
        lambda d: len(Select(d.find_element(By.ID, "stt-model")).options) > 1
    )
    transcribe(page, page.find_element(By.ID, "transcribe").click)  # the same file again
    shown = transcribed(page)
    assert word_error_rate(SAMPLE_TEXT, shown.text) <= WER_BOUND, shown.text
    page.find_element(By.CSS_SELECTOR, "#stt-code summary").click()
    for snippet in ("stt-curl-snippet", "stt-python-snippet"):
        code = page.find_element(By.ID, snippet).get_attribute("textContent") or ""
        assert "VOXSERVE_API_KEY" in code
        assert API_KEY not in code
    page.find_element(By.ID, "apikey").clear()
    page.execute_script("sessionStorage.clear()")


def form_request(curl: str) -> tuple[str, dict[str, str], dict[str, str], str | None]:
    """(url, headers, form fields, output file) of the page's transcription curl command,
    as a shell reads it with VOXSERVE_API_KEY unset."""
    words = shlex.split(curl.replace("\\\n", " ").replace("$VOXSERVE_API_KEY", ""))
    assert words[0] == "curl"
    assert words[1] in ("-s", "-sN")
    headers: dict[str, str] = {}
    fields: dict[str, str] = {}
    output = None
    for i, word in enumerate(words):
        if word == "-H":
            name, _, value = words[i + 1].partition(": ")
            headers[name] = value
        elif word == "-F":
            name, _, value = words[i + 1].partition("=")
            fields[name] = value
        elif word == "-o":
            output = words[i + 1]
    return words[2], headers, fields, output


@pytest.mark.parametrize("fmt", ["text", "srt"])
def test_the_transcription_snippets_repeat_what_the_page_did(
    fmt: str,
    server: LiveServer,
    *,
    open_page: Callable[[LiveServer], WebDriver],
    sample_wav: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run next to the audio file, the curl and openai snippets get the page's transcript."""
    page = open_page(server)
    Select(page.find_element(By.ID, "stt-format")).select_by_value(fmt)
    upload(page, sample_wav)
    shown = transcribed(page)
    curl = page.find_element(By.ID, "stt-curl-snippet").get_attribute("textContent") or ""
    python = page.find_element(By.ID, "stt-python-snippet").get_attribute("textContent") or ""

    url, headers, fields, output = form_request(curl)
    assert url == server.url + "/v1/audio/transcriptions"
    assert headers == {}
    expected = {"file": "@speech-sample.wav", "model": "whisper-1"}
    if fmt == "text":
        assert fields == {**expected, "stream": "true"}
        assert output is None
    else:
        assert fields == {**expected, "response_format": "srt"}
        assert output == "speech-sample.srt"
    response = httpx.post(
        url,
        files={"file": (sample_wav.name, sample_wav.read_bytes())},
        data={k: v for k, v in fields.items() if k != "file"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    if fmt == "srt":
        assert response.text == shown.text

    (tmp_path / sample_wav.name).write_bytes(sample_wav.read_bytes())
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    capsys.readouterr()
    exec(python, namespace)
    namespace["client"].close()
    if fmt == "text":
        assert capsys.readouterr().out == shown.text + "\n"
    else:
        assert (tmp_path / "speech-sample.srt").read_text(encoding="utf-8") == shown.text
