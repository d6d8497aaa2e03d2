"""The web page at ``/`` in a real headless Chromium against a real server.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/system-deps.sh test``
installs them) and ``selenium`` (the ``dev`` extra). A missing browser fails the module
with that hint rather than skipping it.

Set ``VOXSERVE_WEB_SCREENSHOT=docs/img/web-page.png`` to refresh the documentation's
screenshots, taken after speaking mp3: the whole page on a desktop, and beside it
(``web-page-phone.png``) on a phone's screen.
"""

from __future__ import annotations

import json
import os
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
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from live import LiveServer

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


@dataclass(frozen=True)
class Spoken:
    """What the page shows after one Speak."""

    ttfa_ms: float
    total_ms: float
    duration_s: float
    rtf: float
    voice: str


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module, with a fresh profile and console logging."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Chromium and its driver are needed: run `scripts/system-deps.sh test` "
            "(apt-get install chromium chromium-driver)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[LiveServer]:
    with LiveServer(env={"VOXSERVE_API_KEYS": API_KEY}) as live:
        yield live


@pytest.fixture
def open_page(browser: WebDriver) -> Callable[[LiveServer], WebDriver]:
    """Load ``/`` of a server and wait until the page's script has asked for the voices."""

    def open_(live: LiveServer) -> WebDriver:
        # Via a blank page: loading the same URL again counts as a reload, and Chrome would
        # then restore the form fields the previous test left behind.
        browser.get("about:blank")
        browser.get(live.url + "/")
        WebDriverWait(browser, 15).until(
            lambda d: (
                d.find_element(By.ID, "voice").get_attribute("value") == DEFAULT_VOICE
                or d.find_element(By.ID, "error").is_displayed()
            )
        )
        return browser

    return open_


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
    assert page.title == "voxserve — text to speech"
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
    target = os.environ.get("VOXSERVE_WEB_SCREENSHOT")
    if fmt == "mp3" and target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        whole_page_screenshot(page, Path(target), width=1000)


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
    """At 390 CSS pixels nothing, not even the code snippets, is wider than the screen."""
    page = open_page(server)
    speak(page)
    size = page.get_window_size()
    try:
        page.set_window_size(390, 844)
        widths = page.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1], widths
        for element_id in ("text", "voice-filter", "voice", "format", "speed", "speak",
                           "curl-snippet", "python-snippet"):  # fmt: skip
            right = page.execute_script(
                "return arguments[0].getBoundingClientRect().right",
                page.find_element(By.ID, element_id),
            )
            assert right <= widths[1], element_id
        target = os.environ.get("VOXSERVE_WEB_SCREENSHOT")
        if target:
            phone = Path(target).with_name(Path(target).stem + "-phone.png")
            whole_page_screenshot(page, phone, width=390)
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
