/**
 * Local STT on real audio: flite voices (kal, slt, rms, awb) say call phrases at 8 kHz,
 * through a G.711 µ-law round trip, pushed in 20 ms frames into a pocketsphinx stream built
 * from the demo CRM/ERP vocabulary. Prints WER, sentence accuracy, intent-keyword accuracy,
 * off-topic rejection and the real-time factor.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize, ulawDecode, ulawEncode, type Voice } from '../../src/media/index.ts';
import { CrmErpStore } from '../../src/crm-erp/store.ts';
import { PocketsphinxStt } from '../../src/stt/pocketsphinx.ts';
import { buildArpa } from '../../src/stt/lm.ts';
import { domainSentences, spokenCodes } from '../../src/stt/domain.ts';
import type { Vocabulary } from '../../src/stt/types.ts';

const VOICES: Voice[] = ['kal', 'slt', 'rms', 'awb'];

/** [what flite says, expected transcript, intent keywords that must be recognised] */
const CORPUS: Array<[string, string, string[]]> = [
  ['Where is my order?', 'where is my order', ['where', 'order']],
  ['I would like to reorder.', 'i would like to reorder', ['reorder']],
  ['Same as last time.', 'same as last time', ['same', 'last']],
  ['Yes, that is correct.', 'yes that is correct', ['yes']],
  ['No.', 'no', ['no']],
  ['Yes please.', 'yes please', ['yes']],
  ['I want to talk to a representative.', 'i want to talk to a representative', ['representative']],
  ['Agent.', 'agent', ['agent']],
  ['I have a billing question.', 'i have a billing question', ['billing']],
  ['I need to return something.', 'i need to return something', ['return']],
  ['What is the status of my order?', 'what is the status of my order', ['status', 'order']],
  ['My P O number is one two three four five.', 'my p o number is one two three four five', ['one two three four five']],
  ['The P O is seven seven four one zero.', 'the p o is seven seven four one zero', ['seven seven four one zero']],
  ['I need twenty cases of H X four four one zero.', 'i need twenty cases of h x four four one zero', ['twenty', 'four four one zero']],
  ['Part number C P five zero one zero.', 'part number c p five zero one zero', ['five zero one zero']],
  ['I would like to leave a message.', 'i would like to leave a message', ['message']],
  ['Please call me back.', 'please call me back', ['call me back']],
  ['That is all, thank you.', 'that is all thank you', ['that is all']],
  ['Can you transfer me to my sales rep please?', 'can you transfer me to my sales rep please', ['rep']],
  ['Purchase order one two three eight eight.', 'purchase order one two three eight eight', ['one two three eight eight']],
];
const DIGITS = ['one two three four five', 'four seven one two nine', 'eight three zero six', 'five five five one two one two'];
const OFF_TOPIC = [
  'The weather in Paris is lovely this time of year.',
  'My grandmother grows tomatoes in her garden.',
  'The football game went into overtime last night.',
  'Please bring an umbrella because it might rain.',
  'Elephants remember everything for a very long time.',
  'The concert starts at the theater downtown.',
];

function words(s: string): string[] {
  return s.toLowerCase().split(/\s+/).filter((w) => w);
}
function editDistance(a: string[], b: string[]): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

async function phoneAudio(text: string, voice: Voice): Promise<Int16Array> {
  return ulawDecode(ulawEncode(await synthesize(text, { voice, sampleRate: 8000 })));
}

const cacheDir = mkdtempSync(join(tmpdir(), 'stt-test-'));
t.teardown(() => rmSync(cacheDir, { recursive: true, force: true }));
const store = new CrmErpStore();
const vocab: Vocabulary = { ...store.vocabulary(), poNumbers: ['PO12345', 'PO12388', 'PO77410'] };
store.close();
// the open model measured alone: the order reading of reorder-like turns (a second, grammar
// decode) is measured in stt-grammars
const stt = new PocketsphinxStt({ cacheDir, orderReading: false });

async function recognise(pcm: Int16Array, v: Vocabulary = vocab) {
  const s = stt.createStream({ sampleRate: 8000, vocabulary: v });
  for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
  const r = await s.end();
  return { ...r, spf: s.lastDetail?.scorePerFrame ?? NaN };
}

t.test('ARPA builder: valid header, probabilities normalised', async (t) => {
  const arpa = buildArpa([['yes'], ['no'], ['yes', 'please'], ['no', 'thanks']]);
  t.match(arpa, /\\data\\\nngram 1=\d+\nngram 2=\d+\nngram 3=\d+/);
  t.match(arpa, /\\end\\/);
  // unigram probabilities (excluding <s>) sum to 1
  const uni = arpa.split('\\1-grams:')[1]!.split('\\2-grams:')[0]!.trim().split('\n')
    .map((l) => l.split('\t')).filter((p) => p[1] !== '<s>');
  const sum = uni.reduce((a, p) => a + 10 ** Number(p[0]), 0);
  t.ok(Math.abs(sum - 1) < 1e-4, `unigrams sum to ${sum}`);
  t.same(spokenCodes('HX-4410'), ['h x four four one zero', 'h x four four one oh', 'h x forty four ten']);
  t.ok(domainSentences(vocab).includes('where is my order'));
});

t.test('call phrases, 4 flite voices, G.711: accuracy and RTF', async (t) => {
  await stt.prepare(vocab);
  let errors = 0, refWords = 0, exact = 0, n = 0, intentOk = 0, audioMs = 0, decodeMs = 0, inDomainOk = 0;
  const misses: string[] = [];
  for (const voice of VOICES) {
    for (const [say, ref, keys] of CORPUS) {
      const pcm = await phoneAudio(say, voice);
      const r = await recognise(pcm);
      n++;
      audioMs += pcm.length / 8;
      decodeMs += r.ms;
      const e = editDistance(words(ref), words(r.text));
      errors += e;
      refWords += words(ref).length;
      if (e === 0) exact++;
      else misses.push(`${voice}: "${ref}" → "${r.text}"`);
      const hyp = ` ${r.text} `;
      if (keys.every((k) => hyp.includes(` ${k} `) || hyp.includes(` ${k}`))) intentOk++;
      if (r.inDomain) inDomainOk++;
      else misses.push(`${voice}: "${ref}" flagged off-topic (score/frame ${r.spf.toFixed(1)})`);
    }
  }
  const wer = errors / refWords, acc = exact / n, intent = intentOk / n, rtf = decodeMs / audioMs;
  t.comment(`pocketsphinx domain LM, ${n} utterances (${VOICES.join(', ')}; 8 kHz µ-law): WER ${(wer * 100).toFixed(1)} %, ` +
    `sentence accuracy ${(acc * 100).toFixed(1)} %, intent keywords ${(intent * 100).toFixed(1)} %, RTF ${rtf.toFixed(3)} ` +
    `(${(decodeMs / n).toFixed(0)} ms per utterance after end of speech)`);
  for (const m of misses) t.comment(`miss ${m}`);
  t.ok(acc >= 0.6, `sentence accuracy ${(acc * 100).toFixed(1)} % ≥ 60 %`);
  t.ok(intent >= 0.8, `intent keywords ${(intent * 100).toFixed(1)} % ≥ 80 %`);
  t.ok(wer <= 0.2, `WER ${(wer * 100).toFixed(1)} % ≤ 20 %`);
  t.ok(rtf < 0.5, `RTF ${rtf.toFixed(3)} < 0.5`);
  t.ok(inDomainOk / n >= 0.9, `in-domain utterances accepted ${inDomainOk}/${n} ≥ 90 %`);
});

/** White noise at `snrDb` below the signal's RMS (deterministic). */
function addNoise(pcm: Int16Array, snrDb: number): Int16Array {
  const rms = Math.sqrt(pcm.reduce((a, v) => a + v * v, 0) / pcm.length);
  const sigma = rms / 10 ** (snrDb / 20);
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  return pcm.map((v) => {
    const g = Math.sqrt(-2 * Math.log(rnd() || 1e-9)) * Math.cos(2 * Math.PI * rnd());
    return Math.max(-32768, Math.min(32767, Math.round(v + g * sigma)));
  });
}

t.test('call phrases with white noise at 15 dB SNR (measured, loose bound)', async (t) => {
  let errors = 0, refWords = 0, exact = 0, n = 0, intentOk = 0;
  for (const voice of VOICES) {
    for (const [say, ref, keys] of CORPUS) {
      const clean = await synthesize(say, { voice, sampleRate: 8000 });
      const r = await recognise(ulawDecode(ulawEncode(addNoise(clean, 15))));
      n++;
      const e = editDistance(words(ref), words(r.text));
      errors += e;
      refWords += words(ref).length;
      if (e === 0) exact++;
      const hyp = ` ${r.text} `;
      if (keys.every((k) => hyp.includes(` ${k} `) || hyp.includes(` ${k}`))) intentOk++;
    }
  }
  t.comment(`15 dB white noise: WER ${((errors / refWords) * 100).toFixed(1)} %, sentence accuracy ${((exact / n) * 100).toFixed(1)} %, ` +
    `intent keywords ${((intentOk / n) * 100).toFixed(1)} %`);
  t.ok(intentOk / n >= 0.4, 'intent keywords ≥ 40 % in noise');
});

t.test('digit strings', async (t) => {
  let ok = 0, n = 0;
  for (const voice of VOICES) {
    for (const d of DIGITS) {
      const r = await recognise(await phoneAudio(d, voice));
      n++;
      if (r.text === d) ok++;
      else t.comment(`digits ${voice}: "${d}" → "${r.text}"`);
    }
  }
  t.comment(`digit strings exact: ${ok}/${n} (${((ok / n) * 100).toFixed(0)} %)`);
  t.ok(ok / n >= 0.75, `digit strings ${ok}/${n} ≥ 75 %`);
});

t.test('off-topic speech is flagged !inDomain', async (t) => {
  let flagged = 0, n = 0;
  const spfs: string[] = [];
  for (const voice of VOICES) {
    for (const s of OFF_TOPIC) {
      const r = await recognise(await phoneAudio(s, voice));
      n++;
      if (!r.inDomain) flagged++;
      spfs.push(r.spf.toFixed(0));
      t.ok(r.confidence < 0.8 || r.inDomain, 'confidence stays low when off-topic');
    }
  }
  t.comment(`off-topic flagged: ${flagged}/${n} (${((flagged / n) * 100).toFixed(0)} %); score/frame ${spfs.join(' ')}`);
  t.ok(flagged / n >= 0.6, `off-topic flagged ${flagged}/${n} ≥ 60 %`);
});

t.test('16 kHz input, empty and short utterances, abort', async (t) => {
  const pcm16 = await synthesize('Where is my order?', { voice: 'slt', sampleRate: 16000 });
  const s = stt.createStream({ sampleRate: 16000, vocabulary: vocab });
  s.push(pcm16);
  t.equal((await s.end()).text, 'where is my order');
  const e = stt.createStream({ sampleRate: 8000, vocabulary: vocab });
  t.match(await e.end(), { text: '', confidence: 0, inDomain: false }, 'empty utterance');
  const a = stt.createStream({ sampleRate: 8000, vocabulary: vocab });
  a.push(new Int16Array(8000));
  const p = a.end();
  a.abort();
  await t.rejects(p, { name: 'AbortError' });
  await t.rejects(a.end(), { name: 'AbortError' }, 'end() after abort');
});

t.test('missing model gives a clear error', async (t) => {
  const bad = new PocketsphinxStt({ cacheDir, hmm: '/nonexistent/model' });
  const s = bad.createStream({ sampleRate: 8000 });
  s.push(new Int16Array(8000));
  await t.rejects(s.end(), /pocketsphinx-en-us/);
});
