/**
 * The OpenAI-compatible speech providers against a real HTTP stub, inside the per-call local
 * fallback: TTS audio streams out before the endpoint has finished the sentence; a 5xx, a
 * hang, a stalled stream or a refused connection switches the call to the local providers
 * (the failed sentence said again locally, the failed utterance recognised locally from the
 * same audio), counted once per call and kind; a barge-in abort is not a failure.
 */
import t from 'tap';
import { createServer } from 'node:net';
import { EventEmitter } from 'node:events';
import { OpenAiTts } from '../../src/tts/openai.ts';
import { OpenAiStt } from '../../src/stt/openai.ts';
import { SpeechFallback } from '../../src/speech/fallback.ts';
import { metrics } from '../../src/ops/metrics.ts';
import type { TtsOptions, TtsProvider } from '../../src/tts/types.ts';
import type { SttProvider, SttResult, SttStream } from '../../src/stt/types.ts';
import { startSpeechStub } from '../helpers/speech-stub.ts';
import { toneShare } from '../helpers/audio.ts';

const stub = await startSpeechStub();
t.teardown(() => stub.close());

/** Local TTS stand-in: one 100 ms block of the constant 777 per sentence; records what it said. */
class LocalTts implements TtsProvider {
  readonly name = 'flite';
  said: Array<{ text: string; voice?: string }> = [];
  async *synthesize(text: string, opts: TtsOptions): AsyncGenerator<Int16Array> {
    this.said.push({ text, ...(opts.voice ? { voice: opts.voice } : {}) });
    yield new Int16Array(800).fill(777);
  }
}
/** Local STT stand-in: keeps the audio it was given, answers "local". */
class LocalStt implements SttProvider {
  readonly name = 'pocketsphinx';
  heard: Int16Array[] = [];
  createStream(): SttStream {
    const parts: Int16Array[] = [];
    const s = Object.assign(new EventEmitter(), {
      push: (p: Int16Array) => void parts.push(p.slice()),
      end: async (): Promise<SttResult> => {
        this.heard.push(Int16Array.from(parts.flatMap((p) => [...p])));
        return { text: 'local', confidence: 0.9, inDomain: true, ms: 1 };
      },
      abort: () => {},
    });
    return s as unknown as SttStream;
  }
}

async function fallbacks(kind: string, reason: string): Promise<number> {
  const m = await metrics.speechFallbacks.get();
  return m.values.filter((v) => v.labels.kind === kind && v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
}

function call(o: { tts?: Partial<ConstructorParameters<typeof OpenAiTts>[0]>; stt?: Partial<ConstructorParameters<typeof OpenAiStt>[0]> } = {}) {
  const local = { tts: new LocalTts(), stt: new LocalStt() };
  const primary = {
    tts: new OpenAiTts({ baseURL: stub.baseURL, apiKey: 'k-tts', model: 'tts-stub', voice: 'nova', firstAudioMs: 400, timeoutMs: 5000, ...o.tts }),
    stt: new OpenAiStt({ baseURL: stub.baseURL, apiKey: 'k-stt', model: 'whisper-stub', timeoutMs: 500, ...o.stt }),
  };
  const events: string[] = [];
  const fb = new SpeechFallback(primary, local, { localVoice: 'kal', onFallback: (e) => events.push(`${e.kind}:${e.reason}`) });
  return { fb, local, events };
}

/** Collect a synthesis: chunks, when each arrived, and which were local (the 777 block). */
async function speak(tts: TtsProvider, text: string, signal?: AbortSignal) {
  const t0 = Date.now();
  const out: Array<{ pcm: Int16Array; at: number; local: boolean }> = [];
  for await (const pcm of tts.synthesize(text, { sampleRate: 8000, voice: 'nova', ...(signal ? { signal } : {}) })) {
    out.push({ pcm, at: Date.now(), local: pcm.length === 800 && pcm[0] === 777 && pcm[799] === 777 });
  }
  return { out, ms: Date.now() - t0, t0 };
}

t.test('TTS streams: the first PCM is out before the endpoint has sent the whole sentence', async (t) => {
  stub.tts = { hz: 1000, pieces: 5, pieceDelayMs: 150 };
  const { fb, local } = call({ tts: { firstAudioMs: 3000 } }); // the first request of the process is slow on a busy box
  const before = stub.speech.length;
  const r = await speak(fb.tts, 'Your order shipped yesterday with the ground service.');
  const req = stub.speech[before]!;
  t.same(req.body, { model: 'tts-stub', voice: 'nova', input: 'Your order shipped yesterday with the ground service.', response_format: 'pcm' });
  t.equal(req.authorization, 'Bearer k-tts');
  t.ok(r.out.length >= 4, `streamed in pieces (${r.out.length})`);
  t.ok(r.out[0]!.at < req.lastPieceAt!, `first audio ${r.out[0]!.at - r.t0} ms, the stub's last piece at ${req.lastPieceAt! - r.t0} ms`);
  const all = Int16Array.from(r.out.flatMap((c) => [...c.pcm]));
  t.ok(toneShare(all, 1000) > 0.9, 'the stub\'s tone, resampled to 8 kHz');
  const expected = Math.round(('Your order shipped yesterday with the ground service.'.length * 60 * 24) / 3);
  t.ok(Math.abs(all.length - expected) <= 2, `${all.length} samples at 8 kHz ≈ ${expected}`);
  t.same(local.tts.said, [], 'nothing local');
  t.equal(fb.fellBack.size, 0);
});

t.test('TTS 5xx on a later sentence: earlier sentences from the endpoint, the failed one and the rest local, then local for the call', async (t) => {
  stub.tts = { hz: 1000, pieces: 2, pieceDelayMs: 20 };
  const { fb, local, events } = call({ tts: { lookahead: 1, firstAudioMs: 3000 } });
  const n0 = await fallbacks('tts', 'http_5xx');
  t.equal(fb.tts.name, 'openai');
  const gen = fb.tts.synthesize('First sentence here. Second one. Third one.', { sampleRate: 8000 })[Symbol.asyncIterator]();
  const first = await gen.next(); // sentence 1 streaming from the endpoint
  t.notOk(first.done);
  stub.tts = { status: 500 }; // sentence 2's request (not yet made: lookahead 1) fails
  const rest: Int16Array[] = [];
  for (let n = await gen.next(); !n.done; n = await gen.next()) rest.push(n.value);
  t.same(local.tts.said, [{ text: 'Second one. Third one.', voice: 'kal' }], 'the failed sentence and the rest, locally, in the flite voice');
  t.ok(rest.some((p) => p[0] === 777), 'local audio followed');
  t.same(events, ['tts:http_5xx']);
  t.equal(fb.tts.name, 'flite', 'the wrapper now names the engine that speaks');
  t.equal(await fallbacks('tts', 'http_5xx'), n0 + 1, 'counted');
  const reqs = stub.speech.length;
  stub.tts = { hz: 1000 };
  const again = await speak(fb.tts, 'Anything else?');
  t.equal(stub.speech.length, reqs, 'the rest of the call does not ask the endpoint again');
  t.ok(again.out.every((c) => c.local));
  t.equal(await fallbacks('tts', 'http_5xx'), n0 + 1, 'counted once per call');
});

t.test('TTS hang: local audio within the first-audio deadline', async (t) => {
  stub.tts = { hang: true };
  const { fb, local, events } = call();
  const r = await speak(fb.tts, 'Let me check that for you.');
  t.ok(r.out.length >= 1 && r.out.every((c) => c.local), 'local audio');
  t.ok(r.out[0]!.at - r.t0 < 1400, `first (local) audio after ${r.out[0]!.at - r.t0} ms (deadline 400 ms)`);
  t.same(local.tts.said.map((s) => s.text), ['Let me check that for you.']);
  t.same(events, ['tts:timeout']);
});

t.test('TTS stream stalls mid-sentence: the sentence is said again locally from its start', async (t) => {
  stub.tts = { hz: 1000, pieces: 4, stallAfter: 1 };
  const { fb, local, events } = call();
  const r = await speak(fb.tts, 'Your order number is S O four eight.');
  t.ok(!r.out[0]!.local, 'the endpoint\'s first piece played');
  t.ok(r.out[r.out.length - 1]!.local, 'then local');
  const gap = r.out.find((c) => c.local)!.at - r.out[0]!.at;
  t.ok(gap < 1400, `stall → local audio ${gap} ms (deadline 400 ms)`);
  t.same(local.tts.said.map((s) => s.text), ['Your order number is S O four eight.']);
  t.same(events, ['tts:timeout']);
});

t.test('TTS connection refused', async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const { fb, events } = call({ tts: { baseURL: `http://127.0.0.1:${port}/v1` } });
  const r = await speak(fb.tts, 'Hello.');
  t.ok(r.out.length === 1 && r.out[0]!.local);
  t.same(events, ['tts:connection']);
});

t.test('a barge-in abort is not a failure', async (t) => {
  stub.tts = { hz: 1000, pieces: 6, pieceDelayMs: 100 };
  const { fb, local, events } = call({ tts: { firstAudioMs: 3000 } });
  const ac = new AbortController();
  let n = 0;
  for await (const _ of fb.tts.synthesize('One two three four five. Six seven.', { sampleRate: 8000, signal: ac.signal })) {
    void _;
    if (++n === 2) ac.abort();
  }
  t.equal(n, 2, 'the stream ended at the abort');
  t.same(local.tts.said, []);
  t.same(events, []);
  t.equal(fb.fellBack.size, 0);
});

const utterance = Int16Array.from({ length: 8000 }, (_, i) => Math.round(6000 * Math.sin(i / 3)));

async function recognise(stt: SttProvider): Promise<SttResult> {
  const s = stt.createStream({ sampleRate: 8000, language: 'en-US' });
  for (let i = 0; i < utterance.length; i += 160) s.push(utterance.subarray(i, i + 160));
  return s.end();
}

t.test('STT: the endpoint gets the utterance as WAV and its text comes back', async (t) => {
  stub.stt = { text: 'where is my order' };
  const { fb, local } = call();
  const r = await recognise(fb.stt);
  t.equal(r.text, 'where is my order');
  const req = stub.transcriptions[stub.transcriptions.length - 1]!;
  t.equal(req.model, 'whisper-stub');
  t.equal(req.language, 'en');
  t.equal(req.authorization, 'Bearer k-stt');
  t.equal(req.wav.subarray(0, 4).toString(), 'RIFF');
  t.equal(req.wav.readUInt32LE(24), 8000, '8 kHz WAV');
  const pcm = new Int16Array(req.wav.buffer.slice(req.wav.byteOffset + 44, req.wav.byteOffset + req.wav.length));
  t.same([...pcm], [...utterance], 'the exact audio');
  t.same(local.stt.heard, []);
});

t.test('STT 5xx: the same audio recognised locally, then local for the rest of the call', async (t) => {
  stub.stt = { status: 503 };
  const { fb, local, events } = call();
  const n0 = await fallbacks('stt', 'http_5xx');
  const r = await recognise(fb.stt);
  t.equal(r.text, 'local');
  t.same([...local.stt.heard[0]!], [...utterance], 'the local recogniser got the same audio');
  t.same(events, ['stt:http_5xx']);
  t.equal(fb.stt.name, 'pocketsphinx', 'the wrapper now names the engine that recognises');
  t.equal(await fallbacks('stt', 'http_5xx'), n0 + 1);
  const reqs = stub.transcriptions.length;
  stub.stt = { text: 'cloud again' };
  t.equal((await recognise(fb.stt)).text, 'local');
  t.equal(stub.transcriptions.length, reqs, 'no more requests this call');
  // a new call tries the endpoint again
  t.equal((await recognise(call().fb.stt)).text, 'cloud again');
});

t.test('STT hang: local after the timeout', async (t) => {
  stub.stt = { hang: true };
  const { fb, events } = call();
  const t0 = Date.now();
  const r = await recognise(fb.stt);
  t.equal(r.text, 'local');
  t.ok(Date.now() - t0 < 1500, `${Date.now() - t0} ms (timeout 500 ms)`);
  t.same(events, ['stt:timeout']);
});
