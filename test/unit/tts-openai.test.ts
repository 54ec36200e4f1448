/**
 * OpenAI-compatible text-to-speech against an HTTP stub on 127.0.0.1 that implements
 * `/v1/audio/speech` (pcm, 24 kHz s16le) with flite. Each returned sentence is resampled to
 * 8 kHz and transcribed back with the local recogniser. Also: pipelining, timeouts, errors.
 */
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize, ulawDecode, ulawEncode } from '../../src/media/index.ts';
import { native } from '../../src/media/native.ts';
import { OpenAiTts } from '../../src/tts/openai.ts';
import { PocketsphinxStt } from '../../src/stt/pocketsphinx.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'tts-openai-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const stt = new PocketsphinxStt({ cacheDir });

const requests: Array<{ model: string; voice: string; input: string; response_format: string; at: number }> = [];
/** Per-request latency of the stub, ms. */
const DELAY_MS = 150;
const server = createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', async () => {
    if (req.url !== '/v1/audio/speech') {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.parse(Buffer.concat(parts).toString()) as (typeof requests)[number];
    requests.push({ ...body, at: performance.now() });
    if (body.model === 'slow') return; // never answers
    if (body.model === 'broken') {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'overloaded' } }));
      return;
    }
    const pcm16 = await synthesize(body.input, { voice: 'slt', sampleRate: 16000 });
    const pcm24 = native.resample(pcm16, 16000, 24000);
    await new Promise((r) => setTimeout(r, DELAY_MS));
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(pcm24.buffer, pcm24.byteOffset, pcm24.byteLength));
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;

async function hear(pcm: Int16Array): Promise<string> {
  const s = stt.createStream({ sampleRate: 8000 });
  s.push(ulawDecode(ulawEncode(pcm)));
  return (await s.end()).text;
}

t.test('speech round trip: sentences in order, pcm 24 kHz → 8 kHz streamed, pipelined', async (t) => {
  const tts = new OpenAiTts({ baseURL, apiKey: 'test', model: 'tts-1', voice: 'nova' });
  const sentences = ['Where is my order?', 'Yes, that is correct.', 'Please call me back.', 'Same as last time.'];
  const t0 = performance.now();
  const chunks: Int16Array[] = [];
  const times: number[] = [];
  for await (const c of tts.synthesize(sentences.join(' '), { sampleRate: 8000 })) {
    chunks.push(c);
    times.push(performance.now() - t0);
  }
  t.comment(`openai-compatible TTS (stub ${DELAY_MS} ms/request): chunks at ${times.map((x) => x.toFixed(0)).join(', ')} ms`);
  // Timings are reported above, not asserted. Requests overlap (lookahead), so they may
  // reach the stub in any order; the audio must still come out in sentence order (below).
  const recent = requests.slice(-4);
  t.same(recent.map((r) => r.input).sort(), [...sentences].sort(), 'one request per sentence');
  t.ok(recent.every((r) => r.response_format === 'pcm' && r.model === 'tts-1' && r.voice === 'nova'));
  // 8 kHz length matches the 24 kHz source, sentence by sentence (the streamed pieces of one
  // sentence concatenate to the whole sentence)
  const refs = await Promise.all(sentences.map((s) => synthesize(s, { voice: 'slt', sampleRate: 8000 })));
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const expected = refs.reduce((n, r) => n + r.length, 0);
  t.ok(Math.abs(total - expected) <= 8, `length ${total} ≈ ${expected}`);
  let off = 0;
  const all = new Int16Array(total);
  for (const c of chunks) { all.set(c, off); off += c.length; }
  const heard = [];
  off = 0;
  for (const r of refs) {
    heard.push(await hear(all.subarray(off, off + r.length)));
    off += r.length;
  }
  t.same(heard, ['where is my order', 'yes that is correct', 'please call me back', 'same as last time'], 'in sentence order');
});

t.test('codes are read character by character', async (t) => {
  const tts = new OpenAiTts({ baseURL, apiKey: 'test' });
  for await (const _ of tts.synthesize('Your order is PO12345.', { sampleRate: 8000 })) void _;
  t.equal(requests[requests.length - 1]!.input, 'Your order is P O one two three four five.');
});

t.test('timeout and HTTP errors are clear', async (t) => {
  const slow = new OpenAiTts({ baseURL, apiKey: 'test', model: 'slow', timeoutMs: 300 });
  const t0 = performance.now();
  await t.rejects(async () => { for await (const _ of slow.synthesize('Hello.', { sampleRate: 8000 })) void _; }, /timed out after 300 ms/);
  t.ok(performance.now() - t0 < 2000);
  const broken = new OpenAiTts({ baseURL, apiKey: 'test', model: 'broken' });
  await t.rejects(async () => { for await (const _ of broken.synthesize('Hello.', { sampleRate: 8000 })) void _; }, /HTTP 503.*overloaded/);
});

t.test('abort mid-stream ends quietly', async (t) => {
  const ctl = new AbortController();
  const tts = new OpenAiTts({ baseURL, apiKey: 'test' });
  let n = 0;
  for await (const _ of tts.synthesize('One. Two. Three. Four.', { sampleRate: 8000, signal: ctl.signal })) {
    void _;
    n++;
    ctl.abort();
  }
  t.equal(n, 1);
});
