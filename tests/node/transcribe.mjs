// The official `openai` npm package, unchanged, against voxserve's /v1/audio/transcriptions.
//
//   OPENAI_BASE_URL=http://127.0.0.1:5002/v1 OPENAI_API_KEY=... node tests/node/transcribe.mjs AUDIO_FILE
//
// The client is configured the SDK's usual way, from OPENAI_BASE_URL and OPENAI_API_KEY.
// Transcribes AUDIO_FILE twice, each upload the way the SDK's documentation shows: as JSON
// from a file stream (fs.createReadStream), and streamed (stream: true, the events read
// by the SDK's own reader) from bytes in memory (toFile). Prints one JSON object saying
// what the client saw; tests/test_node_client.py checks it. Any failure exits non-zero
// with the error on stderr.
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";

import OpenAI, { toFile } from "openai";

const [audioPath] = process.argv.slice(2);
if (!audioPath) {
  console.error("usage: node transcribe.mjs AUDIO_FILE");
  process.exit(2);
}
const client = new OpenAI({ maxRetries: 0, timeout: 120_000 });
const report = {};

// JSON: the transcription object, with its usage.
const json = await client.audio.transcriptions.create({
  file: createReadStream(audioPath),
  model: "whisper-1",
});
report.json = { text: json.text, usage: json.usage };

// Streamed: transcript.text.delta events as the audio is heard, then transcript.text.done.
const stream = await client.audio.transcriptions.create({
  file: await toFile(await readFile(audioPath), basename(audioPath), { type: "audio/wav" }),
  model: "gpt-4o-mini-transcribe",
  stream: true,
});
const events = [];
let deltas = "";
let done = null;
for await (const event of stream) {
  events.push(event.type);
  if (event.type === "transcript.text.delta") {
    deltas += event.delta;
  } else if (event.type === "transcript.text.done") {
    done = event.text;
  }
}
report.stream = { events, deltas, text: done };

console.log(JSON.stringify(report));
