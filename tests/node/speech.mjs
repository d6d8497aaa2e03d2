// The official `openai` npm package, unchanged, against voxserve's /v1/audio/speech.
//
//   OPENAI_BASE_URL=http://127.0.0.1:5002/v1 OPENAI_API_KEY=... node tests/node/speech.mjs VOICE_ID OUT_DIR
//
// The client is configured the SDK's usual way, from OPENAI_BASE_URL and OPENAI_API_KEY.
// VOICE_ID is an installed voice, sent as a custom-voice object ({id}).
// Writes whole.wav, streamed.mp3 and sse.wav (the audio of the SSE deltas) into OUT_DIR
// and prints one JSON object saying what the client saw (and the text it spoke);
// tests/test_node_client.py checks both, and has transcribe.mjs hear whole.wav. Any
// failure exits non-zero with the error on stderr.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

import OpenAI from "openai";
import { Stream } from "openai/streaming";
import { VERSION } from "openai/version";

const [voiceId, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node speech.mjs VOICE_ID OUT_DIR");
  process.exit(2);
}
const client = new OpenAI({ maxRetries: 0, timeout: 120_000 });
const TEXT = "The weather is lovely today. Let us take a walk by the river.";
const report = { version: VERSION, text: TEXT };

// Whole: the body read at once, as the SDK's own example does.
const whole = await client.audio.speech.create({
  model: "gpt-4o-mini-tts",
  voice: "marin",
  input: TEXT,
  instructions: "Speak calmly.",
  response_format: "wav",
});
const wholeBytes = Buffer.from(await whole.arrayBuffer());
await writeFile(join(outDir, "whole.wav"), wholeBytes);
report.whole = {
  status: whole.status,
  contentType: whole.headers.get("content-type"),
  bytes: wholeBytes.length,
};

// Streamed: the body read chunk by chunk as it arrives.
const streamed = await client.audio.speech.create({
  model: "tts-1",
  voice: { id: voiceId },
  input: TEXT,
  response_format: "mp3",
});
const parts = [];
for await (const chunk of streamed.body) {
  parts.push(Buffer.from(chunk));
}
await writeFile(join(outDir, "streamed.mp3"), Buffer.concat(parts));
report.streamed = {
  status: streamed.status,
  contentType: streamed.headers.get("content-type"),
  chunks: parts.length,
  bytes: parts.reduce((n, p) => n + p.length, 0),
};

// SSE: the events parsed by the SDK's own server-sent events reader.
const sse = await client.audio.speech.create({
  model: "gpt-4o-mini-tts",
  voice: "cedar",
  input: TEXT,
  response_format: "wav",
  stream_format: "sse",
});
const events = [];
const audio = [];
for await (const event of Stream.fromSSEResponse(sse, new AbortController())) {
  events.push(event.type);
  if (event.type === "speech.audio.delta") {
    audio.push(Buffer.from(event.audio, "base64"));
  } else {
    report.usage = event.usage;
  }
}
await writeFile(join(outDir, "sse.wav"), Buffer.concat(audio));
report.sse = { status: sse.status, contentType: sse.headers.get("content-type"), events };

// A refusal reaches the client as the SDK's typed error, with OpenAI's error object.
try {
  await client.audio.speech.create({ model: "tts-9000", voice: "alloy", input: TEXT });
  report.error = null;
} catch (error) {
  report.error = {
    notFound: error instanceof OpenAI.NotFoundError,
    status: error.status,
    code: error.code,
    param: error.param,
    type: error.type,
  };
}

console.log(JSON.stringify(report));
