/**
 * OpenAI-compatible speech-to-text against an HTTP stub on 127.0.0.1 that implements
 * `/v1/audio/transcriptions` by running the local recogniser on the uploaded WAV — so the
 * round trip is real audio end to end. Also: timeouts, HTTP errors, abort.
 */
import t from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize, ulawDecode, ulawEncode } from '../../src/media/index.ts';
import { OpenAiStt, vocabularyPrompt } from '../../src/stt/openai.ts';
import { PocketsphinxStt } from '../../src/stt/pocketsphinx.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'stt-openai-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const local = new PocketsphinxStt({ cacheDir });

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** multipart/form-data → fields (strings) and the first file. */
function parseMultipart(body: Buffer, contentType: string): { fields: Record<string, string>; file?: Buffer } {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const b = Buffer.from(`--${boundary![1] ?? boundary![2]}`);
  const out: { fields: Record<string, string>; file?: Buffer } = { fields: {} };
  let pos = body.indexOf(b);
  while (pos >= 0) {
    const start = pos + b.length + 2;
    const next = body.indexOf(b, start);
    if (next < 0) break;
    const part = body.subarray(start, next - 2);
    const hdrEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, hdrEnd).toString();
    const value = part.subarray(hdrEnd + 4);
    const name = /name="([^"]+)"/.exec(headers)?.[1] ?? '';
    if (/filename=/.test(headers)) out.file = value;
    else out.fields[name] = value.toString();
    pos = next;
  }
  return out;
}

function wavPcm(wav: Buffer): { pcm: Int16Array; rate: number } {
  const rate = wav.readUInt32LE(24);
  const data = wav.subarray(44);
  const pcm = new Int16Array(data.length >> 1);
  for (let i = 0; i < pcm.length; i++) pcm[i] = data.readInt16LE(i * 2);
  return { pcm, rate };
}

const seen: Array<Record<string, string>> = [];
const server = createServer(async (req, res) => {
  const body = await readBody(req);
  if (req.method !== 'POST' || req.url !== '/v1/audio/transcriptions') {
    res.writeHead(404).end();
    return;
  }
  const { fields, file } = parseMultipart(body, req.headers['content-type'] ?? '');
  seen.push(fields);
  if (fields.model === 'slow') return; // never answers: the client must time out
  if (fields.model === 'broken') {
    res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'model exploded' } }));
    return;
  }
  const { pcm, rate } = wavPcm(file!);
  const r = await local.recognize(pcm, rate as 8000 | 16000, { poNumbers: ['PO12345'] });
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ text: r.text }));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;

async function say(text: string): Promise<Int16Array> {
  return ulawDecode(ulawEncode(await synthesize(text, { voice: 'slt', sampleRate: 8000 })));
}

t.test('transcription round trip: streamed 20 ms frames → WAV → text', async (t) => {
  const stt = new OpenAiStt({ baseURL, apiKey: 'test', model: 'whisper-1' });
  const pcm = await say('Where is my order?');
  const s = stt.createStream({ sampleRate: 8000, language: 'en-US', vocabulary: { skus: [{ sku: 'HX-4410' }], poNumbers: ['PO12345'] } });
  for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
  const r = await s.end();
  t.equal(r.text, 'where is my order');
  t.equal(r.inDomain, true);
  t.equal(r.confidence, 1);
  t.ok(r.ms > 0);
  t.comment(`openai-compatible STT round trip (stub running pocketsphinx): ${r.ms.toFixed(0)} ms`);
  const f = seen[seen.length - 1]!;
  t.equal(f.model, 'whisper-1');
  t.equal(f.language, 'en');
  t.equal(f.prompt, 'HX-4410, PO12345', 'vocabulary sent as the prompt');
});

t.test('empty utterance is not sent', async (t) => {
  const n = seen.length;
  const r = await new OpenAiStt({ baseURL, apiKey: 'test' }).createStream({ sampleRate: 8000 }).end();
  t.match(r, { text: '', inDomain: false });
  t.equal(seen.length, n);
});

t.test('timeout and HTTP errors are clear', async (t) => {
  const slow = new OpenAiStt({ baseURL, apiKey: 'test', model: 'slow', timeoutMs: 300 });
  const s = slow.createStream({ sampleRate: 8000 });
  s.push(new Int16Array(8000));
  const t0 = performance.now();
  await t.rejects(s.end(), /timed out after 300 ms/);
  t.ok(performance.now() - t0 < 2000, 'gave up on time');
  const broken = new OpenAiStt({ baseURL, apiKey: 'test', model: 'broken' });
  const b = broken.createStream({ sampleRate: 16000 });
  b.push(new Int16Array(1600));
  await t.rejects(b.end(), /HTTP 500.*model exploded/);
  const down = new OpenAiStt({ baseURL: 'http://127.0.0.1:9/v1', apiKey: 'test', timeoutMs: 1000 });
  const d = down.createStream({ sampleRate: 8000 });
  d.push(new Int16Array(800));
  await t.rejects(d.end(), /speech-to-text .* failed/);
});

t.test('abort cancels the request', async (t) => {
  const slow = new OpenAiStt({ baseURL, apiKey: 'test', model: 'slow', timeoutMs: 5000 });
  const s = slow.createStream({ sampleRate: 8000 });
  s.push(new Int16Array(8000));
  const p = s.end();
  setTimeout(() => s.abort(), 50);
  await t.rejects(p, { name: 'AbortError' });
});

t.test('vocabulary prompt is bounded', async (t) => {
  const skus = Array.from({ length: 200 }, (_, i) => ({ sku: `AB-${1000 + i}` }));
  t.ok(vocabularyPrompt({ skus }, 100)!.length <= 100);
  t.equal(vocabularyPrompt(undefined), undefined);
});
