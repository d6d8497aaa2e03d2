// voxserve web page: speaks the text through POST /v1/audio/speech and shows how fast.
// No dependencies; everything it needs is served from /static/.
"use strict";

const KEY_STORAGE = "voxserve.apiKey";
const MIME = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  opus: "audio/ogg; codecs=opus",
  aac: "audio/aac",
  flac: "audio/flac",
};
const KEY_NEEDED =
  "This server needs an API key: enter it in the API key field, then try again.";
const KEY_REFUSED = "The server refused this API key: check the API key field.";

const $ = (id) => document.getElementById(id);
const els = {
  form: $("form"),
  text: $("text"),
  voice: $("voice"),
  voiceFilter: $("voice-filter"),
  voiceCount: $("voice-count"),
  format: $("format"),
  speed: $("speed"),
  speedValue: $("speed-value"),
  apikey: $("apikey"),
  speak: $("speak"),
  status: $("status"),
  error: $("error"),
  result: $("result"),
  player: $("player"),
  download: $("download"),
  ttfa: $("ttfa"),
  total: $("total"),
  duration: $("duration"),
  rtf: $("rtf"),
  size: $("size"),
  voiceUsed: $("voice-used"),
  curlSnippet: $("curl-snippet"),
  pythonSnippet: $("python-snippet"),
};

let voicesLoaded = false;
/** The voices and the default from /v1/audio/voices, each with its language's name. */
let catalog = { voices: [], default: "" };
let audioUrl = null;
let runs = 0;

/** An error the API answered with, in OpenAI's shape. */
class ApiError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  const key = els.apikey.value.trim();
  if (key) h.set("Authorization", "Bearer " + key);
  return h;
}

/** Turn a non-2xx response into an ApiError naming the server's own message. */
async function apiError(response) {
  let message = `HTTP ${response.status} ${response.statusText}`.trim();
  let param = null;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      message = body.error.message;
      param = body.error.param || null;
    }
  } catch (_) {
    // not JSON (a proxy's error page, say): keep the status line
  }
  if (response.status === 429 || response.status === 503) {
    const retry = response.headers.get("Retry-After");
    if (retry) message += ` Try again in ${retry} s.`;
  }
  return new ApiError(response.status, message, param);
}

function showError(err) {
  let text;
  if (err instanceof ApiError) {
    if (err.status === 401) {
      const hint = els.apikey.value.trim() ? KEY_REFUSED : KEY_NEEDED;
      text = `${hint} (${err.message})`;
    } else {
      text = err.message;
    }
    if (err.param) text += ` [field: ${err.param}]`;
  } else if (err instanceof TypeError) {
    text = `Could not reach the server: ${err.message}`;
  } else {
    text = String(err && err.message ? err.message : err);
  }
  els.error.textContent = text;
  els.error.hidden = false;
}

function clearError() {
  els.error.textContent = "";
  els.error.hidden = true;
}

function setStatus(text) {
  els.status.textContent = text;
}

function showSpeed() {
  const value = Number(els.speed.value).toFixed(2);
  els.speedValue.textContent = value;
  els.speed.setAttribute("aria-valuetext", `${value} times`);
}

/** "English", "Portuguese"... for a voice's language code ("en_US", "pt_br"). */
function languageName(code) {
  const primary = code.split(/[_-]/)[0].toLowerCase();
  try {
    const names = new Intl.DisplayNames(["en"], { type: "language", fallback: "code" });
    return names.of(primary) || primary;
  } catch (_) {
    return primary;
  }
}

/** Words a filter query is matched against: id, language code, language name. */
function searchWords(voice) {
  return `${voice.id} ${voice.language} ${voice.languageName}`.toLowerCase().split(/[\s_()-]+/);
}

/** Voices whose words start with every word of the query (all of them for no query). */
function matching(query) {
  const terms = query.toLowerCase().split(/[\s_-]+/).filter(Boolean);
  return catalog.voices.filter((v) => {
    const words = searchWords(v);
    return terms.every((t) => words.some((w) => w.startsWith(t)));
  });
}

/** Fill the voice list with ``voices`` in groups by language, the default's group first. */
function showVoices(voices) {
  const selected = els.voice.value || catalog.default;
  const groups = new Map();
  for (const v of voices) {
    if (!groups.has(v.languageName)) groups.set(v.languageName, []);
    groups.get(v.languageName).push(v);
  }
  const defaultVoice = catalog.voices.find((v) => v.id === catalog.default);
  const first = defaultVoice ? defaultVoice.languageName : "";
  const names = [...groups.keys()].sort((a, b) =>
    a === first ? -1 : b === first ? 1 : a.localeCompare(b),
  );
  els.voice.replaceChildren();
  for (const name of names) {
    const group = document.createElement("optgroup");
    group.label = name;
    for (const v of groups.get(name)) group.append(new Option(`${v.id} (${v.language})`, v.id));
    els.voice.append(group);
  }
  els.voice.value = voices.some((v) => v.id === selected) ? selected : voices[0].id;
}

function filterVoices() {
  const query = els.voiceFilter.value.trim();
  const found = matching(query);
  if (found.length === 0) {
    els.voiceCount.textContent = `No voice matches “${query}”.`;
    return;
  }
  showVoices(found);
  els.voiceCount.textContent = query
    ? `${found.length} of ${catalog.voices.length} voices match.`
    : `${catalog.voices.length} voices.`;
}

async function loadVoices() {
  const response = await fetch("/v1/audio/voices", { headers: headers() });
  if (!response.ok) throw await apiError(response);
  const list = await response.json();
  catalog = {
    voices: list.voices.map((v) => ({ ...v, languageName: languageName(v.language) })),
    default: list.default,
  };
  els.voice.value = "";
  filterVoices();
  voicesLoaded = true;
}

async function refreshVoices() {
  try {
    await loadVoices();
    clearError();
  } catch (err) {
    els.voice.replaceChildren(new Option("Default voice", ""));
    showError(err);
  }
}

/** ``text`` inside single quotes for a POSIX shell. */
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** curl and Python (openai) code that sends ``body`` as this page just did. */
function showSnippets(body, keyed) {
  const origin = window.location.origin;
  const file = `speech.${body.response_format}`;
  els.curlSnippet.textContent = [
    `curl -s ${origin}/v1/audio/speech`,
    `  -H 'Content-Type: application/json'`,
    ...(keyed ? [`  -H "Authorization: Bearer $VOXSERVE_API_KEY"`] : []),
    `  -d ${shellQuote(JSON.stringify(body))}`,
    `  -o ${file}`,
  ].join(" \\\n");
  const python = (value) => JSON.stringify(value); // a JSON string or number is Python too
  els.pythonSnippet.textContent = [
    ...(keyed ? ["import os", ""] : []),
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${python(origin + "/v1")}, ` +
      `api_key=${keyed ? 'os.environ["VOXSERVE_API_KEY"]' : '"unused"'})`,
    "with client.audio.speech.with_streaming_response.create(",
    `    model=${python(body.model)},`,
    `    voice=${python(body.voice || catalog.default)},`,
    `    input=${python(body.input)},`,
    `    response_format=${python(body.response_format)},`,
    `    speed=${body.speed},`,
    ") as response:",
    `    response.stream_to_file(${python(file)})`,
  ].join("\n");
}

async function copySnippet(button) {
  const text = $(button.dataset.copy).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // no clipboard API (a plain-http address other than localhost): select it instead
    const range = document.createRange();
    range.selectNodeContents($(button.dataset.copy));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    setStatus("Selected: press Ctrl+C to copy.");
    return;
  }
  setStatus("Copied.");
}

/** Duration in seconds: WebAudio's decoder first, the audio element's as a fallback. */
async function audioDuration(blob) {
  try {
    const Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    const context = new Offline(1, 1, 48000);
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    if (decoded.duration > 0) return decoded.duration;
  } catch (_) {
    // this browser cannot decode the format with WebAudio; ask the player instead
  }
  if (Number.isFinite(els.player.duration) && els.player.duration > 0) return els.player.duration;
  return new Promise((resolve) => {
    const done = () => resolve(Number.isFinite(els.player.duration) ? els.player.duration : NaN);
    els.player.addEventListener("loadedmetadata", done, { once: true });
    els.player.addEventListener("error", done, { once: true });
    setTimeout(done, 5000);
  });
}

async function speak() {
  clearError();
  if (!voicesLoaded) await refreshVoices();
  clearError();
  const format = els.format.value;
  const body = {
    model: "tts-1",
    input: els.text.value,
    response_format: format,
    speed: Number(els.speed.value),
  };
  if (els.voice.value) body.voice = els.voice.value;

  els.speak.disabled = true;
  els.form.setAttribute("aria-busy", "true");
  setStatus("Synthesizing…");
  const started = performance.now();
  try {
    const response = await fetch("/v1/audio/speech", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await apiError(response);
    const reader = response.body.getReader();
    const chunks = [];
    let firstByte = null;
    let received = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.length === 0) continue;
      if (firstByte === null) firstByte = performance.now() - started;
      chunks.push(value);
      received += value.length;
      setStatus(`Receiving… ${(received / 1024).toFixed(1)} kB`);
    }
    const total = performance.now() - started;
    if (received === 0) throw new Error("The server sent no audio.");
    const type = MIME[format] || response.headers.get("Content-Type") || "application/octet-stream";
    const blob = new Blob(chunks, { type });

    if (audioUrl) URL.revokeObjectURL(audioUrl);
    audioUrl = URL.createObjectURL(blob);
    els.player.src = audioUrl;
    els.download.href = audioUrl;
    els.download.download = `voxserve.${format}`;
    els.download.textContent = `Download voxserve.${format}`;
    els.ttfa.textContent = firstByte.toFixed(0);
    els.total.textContent = total.toFixed(0);
    els.size.textContent = (received / 1024).toFixed(1);
    els.voiceUsed.textContent = response.headers.get("X-Voice") || body.voice || "default";
    els.duration.textContent = "–";
    els.rtf.textContent = "–";
    showSnippets(body, Boolean(els.apikey.value.trim()));
    els.result.hidden = false;
    setStatus("Playing.");
    els.player.play().catch((err) => setStatus(`Ready; press play (${err.name}).`));

    const seconds = await audioDuration(blob);
    if (Number.isFinite(seconds) && seconds > 0) {
      els.duration.textContent = seconds.toFixed(2);
      els.rtf.textContent = (total / 1000 / seconds).toFixed(3);
    }
  } catch (err) {
    setStatus("");
    showError(err);
  } finally {
    els.speak.disabled = false;
    els.form.removeAttribute("aria-busy");
    // Tells scripts (and the page's own test) that this Speak has finished.
    document.body.dataset.runs = String(++runs);
  }
}

function init() {
  els.apikey.value = sessionStorage.getItem(KEY_STORAGE) || "";
  els.apikey.addEventListener("input", () => {
    const key = els.apikey.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    voicesLoaded = false;
  });
  els.apikey.addEventListener("change", () => {
    if (!voicesLoaded) refreshVoices();
  });
  els.speed.addEventListener("input", showSpeed);
  els.voiceFilter.addEventListener("input", filterVoices);
  els.voiceFilter.addEventListener("keydown", (event) => {
    // Enter or the down arrow goes on to the list, rather than speaking
    if (event.key === "Enter" || event.key === "ArrowDown") {
      event.preventDefault();
      els.voice.focus();
    }
  });
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copySnippet(button));
  }
  els.player.addEventListener("ended", () => setStatus("Done."));
  showSpeed();
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!els.speak.disabled) speak();
  });
  els.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });
  refreshVoices();
}

init();
