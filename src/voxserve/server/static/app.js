// voxserve web page: speaks the text through POST /v1/audio/speech and shows how fast,
// and turns audio (a file, the microphone, or the speech just made) back into text through
// POST /v1/audio/transcriptions. No dependencies; everything it needs is served from /static/.
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
/** What the transcription panel can save, by the response_format it asks for. */
const TRANSCRIPT = {
  text: { extension: "txt", type: "text/plain" },
  srt: { extension: "srt", type: "application/x-subrip" },
  vtt: { extension: "vtt", type: "text/vtt" },
};
/** What MediaRecorder is asked to record, best first (all are formats the server reads). */
const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"];
/** Model names of /v1/audio/speech in /v1/models (the rest are for transcriptions). */
const SPEECH_MODEL = /^(tts-|gpt-.*-tts|voxserve$)/;

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
  // speech to text
  listenOff: $("listen-off"),
  listenForm: $("listen-form"),
  listenFields: $("listen-fields"),
  audioFile: $("audio-file"),
  record: $("record"),
  recordTime: $("record-time"),
  useSpoken: $("use-spoken"),
  sttModel: $("stt-model"),
  sttFormat: $("stt-format"),
  transcribe: $("transcribe"),
  listenStatus: $("listen-status"),
  listenError: $("listen-error"),
  transcriptResult: $("transcript-result"),
  transcriptSource: $("transcript-source"),
  sourcePlayer: $("source-player"),
  transcript: $("transcript"),
  transcriptDownload: $("transcript-download"),
  sttFirst: $("stt-first"),
  sttTotal: $("stt-total"),
  sttDuration: $("stt-duration"),
  sttRtf: $("stt-rtf"),
  sttModelUsed: $("stt-model-used"),
  sttCurlSnippet: $("stt-curl-snippet"),
  sttPythonSnippet: $("stt-python-snippet"),
};

let voicesLoaded = false;
/** The voices and the default from /v1/audio/voices, each with its language's name. */
let catalog = { voices: [], default: "" };
let audioUrl = null;
let runs = 0;
/** The audio Speak made last, for the round trip: {blob, name}. */
let spokenAudio = null;
/** The audio transcribed last, for Transcribe again: {blob, name}. */
let lastSource = null;
let sourceUrl = null;
let transcriptUrl = null;
let transcriptions = 0;
let listening = false;
/** The MediaRecorder while the microphone records, else null. */
let recorder = null;

/** An error the API answered with, in OpenAI's shape. */
class ApiError extends Error {
  constructor(status, message, param, code) {
    super(message);
    this.status = status;
    this.param = param;
    this.code = code;
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
  let code = null;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      message = body.error.message;
      param = body.error.param || null;
      code = body.error.code || null;
    }
  } catch (_) {
    // not JSON (a proxy's error page, say): keep the status line
  }
  if (response.status === 429 || response.status === 503) {
    const retry = response.headers.get("Retry-After");
    if (retry) message += ` Try again in ${retry} s.`;
  }
  return new ApiError(response.status, message, param, code);
}

/** Show ``err`` in an error box: the speech form's, or ``box``. */
function showError(err, box = els.error) {
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
  box.textContent = text;
  box.hidden = false;
}

function clearError(box = els.error) {
  box.textContent = "";
  box.hidden = true;
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
  const status = $(button.dataset.status || "status");
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    // no clipboard API (a plain-http address other than localhost): select it instead
    const range = document.createRange();
    range.selectNodeContents($(button.dataset.copy));
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    status.textContent = "Selected: press Ctrl+C to copy.";
    return;
  }
  status.textContent = "Copied.";
}

/** Duration in seconds: WebAudio's decoder first, ``player``'s as a fallback. */
async function audioDuration(blob, player = els.player) {
  try {
    const Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
    const context = new Offline(1, 1, 48000);
    const decoded = await context.decodeAudioData(await blob.arrayBuffer());
    if (decoded.duration > 0) return decoded.duration;
  } catch (_) {
    // this browser cannot decode the format with WebAudio; ask the player instead
  }
  if (Number.isFinite(player.duration) && player.duration > 0) return player.duration;
  return new Promise((resolve) => {
    const done = () => resolve(Number.isFinite(player.duration) ? player.duration : NaN);
    player.addEventListener("loadedmetadata", done, { once: true });
    player.addEventListener("error", done, { once: true });
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
    spokenAudio = { blob, name: `speech.${format}` };
    refreshListenControls();
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

// ---- Speech to text: a file, the microphone or the speech just made, back to text ----

function setListenStatus(text) {
  els.listenStatus.textContent = text;
}

/** Enable what can be used now: nothing else while a transcription runs or the
 * microphone records (except Stop). */
function refreshListenControls() {
  const recording = recorder !== null;
  els.audioFile.disabled = listening || recording;
  els.record.disabled = listening;
  els.useSpoken.disabled = listening || recording || spokenAudio === null;
  els.transcribe.disabled = listening || recording || lastSource === null;
}

/** The panel greyed out, saying why (the server has no speech recognition). */
function listenOff(reason) {
  if (recorder) recorder.stop();
  els.listenOff.textContent = reason;
  els.listenOff.hidden = false;
  els.listenFields.disabled = true;
}

function listenOn() {
  els.listenOff.hidden = true;
  els.listenOff.textContent = "";
  els.listenFields.disabled = false;
}

/** The models /v1/audio/transcriptions takes: whisper-1 (the server's default), then the
 * installed ones, which /v1/models lists after the speech models and before OpenAI's names. */
function showModels(ids) {
  const end = ids.indexOf("whisper-1");
  const installed = ids.slice(0, end).filter((id) => !SPEECH_MODEL.test(id));
  const chosen = els.sttModel.value;
  els.sttModel.replaceChildren(new Option("whisper-1 (the server's default)", "whisper-1"));
  for (const id of installed) els.sttModel.append(new Option(id, id));
  els.sttModel.value = [...els.sttModel.options].some((o) => o.value === chosen)
    ? chosen
    : "whisper-1";
}

/** Whether the server recognizes speech, from /v1/models; left as it is when the list
 * cannot be read (no key yet: the speech form says so). */
async function checkListening() {
  let ids;
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    if (!response.ok) return;
    ids = (await response.json()).data.map((m) => m.id);
  } catch (_) {
    return;
  }
  if (!ids.includes("whisper-1")) {
    listenOff(
      "Speech to text is off on this server: GET /v1/models lists no Whisper model. " +
        "Its operator turns it on with VOXSERVE_ASR=true and a Whisper model installed.",
    );
    return;
  }
  showModels(ids);
  listenOn();
}

/** What a failure to start the microphone means for the person at the page. */
function microphoneMessage(err) {
  const name = err && err.name;
  if (["NotAllowedError", "SecurityError", "PermissionDeniedError"].includes(name)) {
    return (
      "The browser did not allow the microphone. Allow it for this site (the icon in the " +
      "address bar), then press Record again, or upload a file."
    );
  }
  if (["NotFoundError", "DevicesNotFoundError", "OverconstrainedError"].includes(name)) {
    return "No microphone was found. Connect one and press Record again, or upload a file.";
  }
  if (["NotReadableError", "TrackStartError", "AbortError"].includes(name)) {
    return (
      "The microphone could not be started: is another program using it? Try again, or " +
      "upload a file."
    );
  }
  return `The microphone could not be started (${name}: ${err && err.message}).`;
}

function showRecordTime(started) {
  const seconds = Math.floor((performance.now() - started) / 1000);
  const minutes = Math.floor(seconds / 60);
  els.recordTime.textContent = `${minutes}:${String(seconds % 60).padStart(2, "0")}`;
}

/** Record starts the microphone; pressed again (Stop) it transcribes what was recorded. */
async function toggleRecording() {
  if (recorder) {
    recorder.stop();
    return;
  }
  clearError(els.listenError);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const why = window.isSecureContext
      ? "This browser offers no microphone to web pages."
      : "The microphone needs this page at an https:// address (or at localhost).";
    showError(new Error(`${why} Upload a file instead.`), els.listenError);
    return;
  }
  if (typeof MediaRecorder === "undefined") {
    const why = "This browser cannot record audio. Upload a file instead.";
    showError(new Error(why), els.listenError);
    return;
  }
  els.record.disabled = true;
  setListenStatus("Asking for the microphone…");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (err) {
    setListenStatus("");
    refreshListenControls();
    showError(new Error(microphoneMessage(err)), els.listenError);
    return;
  }
  const type = RECORDING_TYPES.find((t) => MediaRecorder.isTypeSupported(t));
  const chunks = [];
  let rec;
  try {
    rec = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    rec.start();
  } catch (err) {
    for (const track of stream.getTracks()) track.stop();
    setListenStatus("");
    refreshListenControls();
    showError(new Error(`This browser cannot record here (${err.message}).`), els.listenError);
    return;
  }
  recorder = rec;
  const started = performance.now();
  const timer = setInterval(() => showRecordTime(started), 250);
  rec.addEventListener("dataavailable", (event) => {
    if (event.data.size > 0) chunks.push(event.data);
  });
  rec.addEventListener("error", (event) => {
    const why = event.error ? event.error.message : "unknown";
    showError(new Error(`Recording failed: ${why}`), els.listenError);
  });
  rec.addEventListener("stop", () => {
    const mime = rec.mimeType || type || "audio/webm";
    const extension = mime.includes("ogg") ? "ogg" : mime.includes("mp4") ? "m4a" : "webm";
    clearInterval(timer);
    for (const track of stream.getTracks()) track.stop();
    recorder = null;
    els.record.textContent = "Record";
    els.record.classList.remove("recording");
    els.recordTime.hidden = true;
    refreshListenControls();
    const blob = new Blob(chunks, { type: mime });
    if (els.listenFields.disabled) return; // the server turned out to have no recognition
    if (blob.size === 0) {
      setListenStatus("");
      showError(new Error("Nothing was recorded: press Record and speak."), els.listenError);
      return;
    }
    transcribe({ blob, name: `recording.${extension}` });
  });
  els.record.textContent = "Stop";
  els.record.classList.add("recording");
  els.recordTime.textContent = "0:00";
  els.recordTime.hidden = false;
  refreshListenControls();
  setListenStatus("Recording: speak, then press Stop.");
}

/** Read OpenAI's transcription events from ``response``; ``onDelta(text so far)`` after
 * each delta. Returns the whole text (transcript.text.done's). */
async function readTranscriptEvents(response, onDelta) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).replace(/^ /, ""))
        .join("\n");
      if (!data) continue;
      const event = JSON.parse(data);
      if (event.type === "transcript.text.delta") {
        text += event.delta;
        onDelta(text);
      } else if (event.type === "transcript.text.done") {
        return event.text;
      } else if (event.type === "error") {
        const e = event.error || {};
        const message = e.message || "The transcription failed.";
        throw new ApiError(response.status, message, e.param, e.code);
      }
    }
  }
  throw new Error("The transcript ended early: the connection closed before its end.");
}

/** curl and Python (openai) code that sends what this page just sent, ``name`` being the
 * audio saved as a file. */
function showTranscriptSnippets(name, model, format, keyed) {
  const origin = window.location.origin;
  const stream = format === "text";
  const output = `${name.replace(/\.[^.]*$/, "")}.${TRANSCRIPT[format].extension}`;
  els.sttCurlSnippet.textContent = [
    `curl -s${stream ? "N" : ""} ${origin}/v1/audio/transcriptions`,
    ...(keyed ? [`  -H "Authorization: Bearer $VOXSERVE_API_KEY"`] : []),
    `  -F ${shellQuote(`file=@${name}`)}`,
    `  -F ${shellQuote(`model=${model}`)}`,
    ...(stream
      ? ["  -F stream=true"]
      : [`  -F response_format=${format}`, `  -o ${shellQuote(output)}`]),
  ].join(" \\\n");
  const python = (value) => JSON.stringify(value); // a JSON string is a Python string too
  const lines = [
    ...(keyed ? ["import os", ""] : []),
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${python(origin + "/v1")}, ` +
      `api_key=${keyed ? 'os.environ["VOXSERVE_API_KEY"]' : '"unused"'})`,
    `with open(${python(name)}, "rb") as audio:`,
  ];
  if (stream) {
    lines.push(
      "    stream = client.audio.transcriptions.create(",
      `        model=${python(model)}, file=audio, stream=True`,
      "    )",
      "    for event in stream:",
      '        if event.type == "transcript.text.delta":',
      '            print(event.delta, end="", flush=True)',
      "print()",
    );
  } else {
    lines.push(
      "    subtitles = client.audio.transcriptions.create(",
      `        model=${python(model)}, file=audio, response_format=${python(format)}`,
      "    )",
      `with open(${python(output)}, "w", encoding="utf-8") as out:`,
      "    out.write(subtitles)",
    );
  }
  els.sttPythonSnippet.textContent = lines.join("\n");
}

/** Send ``source`` ({blob, name}) to /v1/audio/transcriptions and show the text: as it is
 * heard (plain text, streamed), or whole (subtitles). */
async function transcribe(source) {
  if (listening) return;
  lastSource = source;
  clearError(els.listenError);
  const format = els.sttFormat.value;
  const model = els.sttModel.value || "whisper-1";
  const stream = format === "text";
  const form = new FormData();
  form.append("file", source.blob, source.name);
  form.append("model", model);
  if (stream) form.append("stream", "true");
  else form.append("response_format", format);

  listening = true;
  refreshListenControls();
  els.listenForm.setAttribute("aria-busy", "true");
  setListenStatus(`Transcribing ${source.name}…`);
  const started = performance.now();
  let first = null;
  const shown = (text) => {
    if (first === null && text) {
      first = performance.now() - started;
      els.sttFirst.textContent = first.toFixed(0);
    }
    els.transcript.textContent = text;
  };
  try {
    const response = await fetch("/v1/audio/transcriptions", {
      method: "POST",
      headers: headers(),
      body: form,
    });
    if (!response.ok) throw await apiError(response);

    if (sourceUrl) URL.revokeObjectURL(sourceUrl);
    sourceUrl = URL.createObjectURL(source.blob);
    els.sourcePlayer.src = sourceUrl;
    els.transcriptSource.textContent = source.name;
    els.transcript.textContent = "";
    els.transcript.dataset.format = format;
    for (const el of [els.sttFirst, els.sttTotal, els.sttDuration, els.sttRtf]) {
      el.textContent = "–";
    }
    els.sttModelUsed.textContent = response.headers.get("X-Model") || model;
    els.transcriptDownload.hidden = true;
    els.transcriptResult.setAttribute("aria-busy", "true");
    els.transcriptResult.hidden = false;

    const streamed = (response.headers.get("Content-Type") || "").startsWith("text/event-stream");
    const text = streamed ? await readTranscriptEvents(response, shown) : await response.text();
    shown(text);
    const total = performance.now() - started;
    els.sttTotal.textContent = total.toFixed(0);

    const saved = TRANSCRIPT[format];
    const file = `${source.name.replace(/\.[^.]*$/, "")}.${saved.extension}`;
    if (transcriptUrl) URL.revokeObjectURL(transcriptUrl);
    const body = format === "text" && text ? `${text}\n` : text;
    transcriptUrl = URL.createObjectURL(new Blob([body], { type: saved.type }));
    els.transcriptDownload.href = transcriptUrl;
    els.transcriptDownload.download = file;
    els.transcriptDownload.textContent = `Download ${file}`;
    els.transcriptDownload.hidden = false;
    showTranscriptSnippets(source.name, model, format, Boolean(els.apikey.value.trim()));
    setListenStatus(text.trim() ? "Done." : "Done: no speech was heard.");

    const seconds = await audioDuration(source.blob, els.sourcePlayer);
    if (Number.isFinite(seconds) && seconds > 0) {
      els.sttDuration.textContent = seconds.toFixed(2);
      els.sttRtf.textContent = (total / 1000 / seconds).toFixed(3);
    }
  } catch (err) {
    setListenStatus("");
    if (first === null) els.transcriptResult.hidden = true; // nothing of this audio to show
    if (err instanceof ApiError && err.code === "asr_disabled") {
      listenOff(`Speech to text is off on this server: ${err.message}`);
    }
    showError(err, els.listenError);
  } finally {
    listening = false;
    refreshListenControls();
    els.listenForm.removeAttribute("aria-busy");
    els.transcriptResult.removeAttribute("aria-busy");
    // Tells scripts (and the page's own test) that this transcription has finished.
    document.body.dataset.transcriptions = String(++transcriptions);
  }
}

function initListening() {
  els.audioFile.addEventListener("change", () => {
    const file = els.audioFile.files[0];
    if (file) transcribe({ blob: file, name: file.name });
  });
  els.record.addEventListener("click", toggleRecording);
  els.useSpoken.addEventListener("click", () => {
    if (spokenAudio) transcribe(spokenAudio);
  });
  els.listenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (lastSource && !els.transcribe.disabled) transcribe(lastSource);
  });
  refreshListenControls();
  checkListening();
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
    if (!voicesLoaded) {
      refreshVoices();
      checkListening();
    }
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
  initListening();
}

init();
