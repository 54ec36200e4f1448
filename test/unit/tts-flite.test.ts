/**
 * Local TTS: flite streamed by sentence. Each chunk is checked by transcribing it back
 * through a G.711 µ-law round trip and the local recogniser.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize, ulawDecode, ulawEncode } from '../../src/media/index.ts';
import { FliteTts } from '../../src/tts/flite.ts';
import { speakCodes, spellCode, splitSentences } from '../../src/tts/text.ts';
import { resampleTs } from '../../src/tts/resample.ts';
import { PocketsphinxStt } from '../../src/stt/pocketsphinx.ts';

const cacheDir = mkdtempSync(join(tmpdir(), 'tts-test-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const stt = new PocketsphinxStt({ cacheDir });
const vocab = { poNumbers: ['PO12345'] };

async function hear(pcm: Int16Array): Promise<string> {
  const s = stt.createStream({ sampleRate: 8000, vocabulary: vocab });
  s.push(ulawDecode(ulawEncode(pcm)));
  return (await s.end()).text;
}

t.test('text helpers', async (t) => {
  t.equal(spellCode('PO12345'), 'P O one two three four five');
  t.equal(spellCode('SO-481200'), 'S O four eight one two zero zero');
  t.equal(speakCodes('Your order PO12345 has 24 units.'), 'Your order P O one two three four five has 24 units.');
  t.same(splitSentences('Hi Dana. Order SO-481200 shipped! Anything else?'), ['Hi Dana.', 'Order SO-481200 shipped!', 'Anything else?']);
  t.same(splitSentences('No punctuation here'), ['No punctuation here']);
  t.same(splitSentences('  ...  '), []);
  const long = Array.from({ length: 30 }, (_, i) => `item ${i}`).join(', ') + '.';
  t.ok(splitSentences(long, 80).every((s) => s.length <= 80), 'long sentences cut at commas');
});

t.test('sentences stream in order; the first arrives before the whole text is synthesised', async (t) => {
  const tts = new FliteTts({ voice: 'kal' });
  const text = 'Where is my order? Yes, that is correct. I would like to leave a message. ' +
    'Please call me back. That is all, thank you. Same as last time.';
  const t0 = performance.now();
  const chunks: Int16Array[] = [];
  let firstMs = 0;
  for await (const pcm of tts.synthesize(text, { sampleRate: 8000 })) {
    if (chunks.length === 0) firstMs = performance.now() - t0;
    chunks.push(pcm);
  }
  const allMs = performance.now() - t0;
  const w0 = performance.now();
  await synthesize(text, { voice: 'kal', sampleRate: 8000 });
  const wholeMs = performance.now() - w0;
  t.comment(`flite kal: first sentence after ${firstMs.toFixed(1)} ms, all ${chunks.length} after ${allMs.toFixed(1)} ms; whole text in one call ${wholeMs.toFixed(1)} ms`);
  t.equal(chunks.length, 6, 'one chunk per sentence');
  // Timings are reported above, not asserted (benchmarks own timings).
  const heard = [];
  for (const c of chunks) heard.push(await hear(c));
  t.same(heard, ['where is my order', 'yes that is correct', 'i would like to leave a message', 'please call me back',
    'that is all thank you', 'same as last time'], 'chunks transcribe back in order');
});

t.test('codes are read digit by digit; voices and 16 kHz', async (t) => {
  for (const voice of ['slt', 'rms', 'awb'] as const) {
    const chunks: Int16Array[] = [];
    for await (const c of new FliteTts({ voice }).synthesize('The P O is 12345.', { sampleRate: 8000 })) chunks.push(c);
    t.equal(chunks.length, 1);
    t.equal(await hear(chunks[0]!), 'the p o is one two three four five', `${voice} reads 12345 digit by digit`);
  }
  const c16: Int16Array[] = [];
  for await (const c of new FliteTts().synthesize('Hello.', { sampleRate: 16000, voice: 'slt' })) c16.push(c);
  t.ok(c16[0]!.length > 16000 * 0.3, '16 kHz output');
  t.throws(() => new FliteTts().synthesize('x', { sampleRate: 8000, voice: 'nobody' }), /unknown flite voice/);
});

t.test('abort stops the stream', async (t) => {
  const ctl = new AbortController();
  const got: Int16Array[] = [];
  for await (const c of new FliteTts().synthesize('One. Two. Three. Four. Five.', { sampleRate: 8000, signal: ctl.signal })) {
    got.push(c);
    ctl.abort();
  }
  t.equal(got.length, 1);
});

t.test('TS fallback resampler: 24 kHz tone → 8 kHz keeps the tone, removes the alias', async (t) => {
  const n = 24000;
  const tone = (f: number): Int16Array => Int16Array.from({ length: n }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * f * i) / 24000)));
  const rms = (x: Int16Array): number => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);
  const pass = resampleTs(tone(1000), 24000, 8000);
  const stop = resampleTs(tone(6000), 24000, 8000);
  t.equal(pass.length, 8000);
  t.ok(rms(pass.subarray(200, 7800)) > 8000 / Math.SQRT2 * 0.9, `1 kHz passes (rms ${rms(pass).toFixed(0)})`);
  t.ok(rms(stop.subarray(200, 7800)) < 60, `6 kHz is suppressed (rms ${rms(stop.subarray(200, 7800)).toFixed(1)})`);
});
