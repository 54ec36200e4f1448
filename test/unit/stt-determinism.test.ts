/**
 * The embedded recogniser gives the same answer for the same 8 kHz audio whatever was
 * decoded before it: two separate processes decode the same telephone-band utterances (flite
 * voices through G.711, clean and with seeded noise), one in order one at a time, the other
 * in reverse order all at once (so pooled decoders are reused in another order and on other
 * worker threads), each through the open model and the state grammars. Text, score, frame
 * count and confidence must be identical.
 *
 * Pooled decoders used to carry the front end's channel state (noise estimate and
 * speech/silence tracking) from one utterance to the next, so the same audio decoded
 * differently depending on the decoder's history.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { synthesize, ulawDecode, ulawEncode, type Voice } from '../../src/media/index.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'stt-determinism-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const PHRASES: Array<[string, string]> = [
  ['I need twenty cases of H X four four one zero.', 'open'],
  ['Put me through to billing please.', 'department'],
  ['H X four four one zero.', 'sku'],
  ['Yes, that is right.', 'yesno'],
];
const VOICES: Voice[] = ['kal', 'slt'];

/** Seeded white noise at about `snrDb` below the signal's RMS (mulberry32). */
function withNoise(pcm: Int16Array, snrDb: number, seed: number): Int16Array {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  let e = 0;
  for (const v of pcm) e += v * v;
  const amp = Math.sqrt(e / pcm.length) / 10 ** (snrDb / 20) * Math.sqrt(3);
  const out = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(pcm[i]! + (rnd() * 2 - 1) * amp)));
  return out;
}

const items: Array<{ file: string; expect: string }> = [];
let n = 0;
for (const [text, expect] of PHRASES) {
  for (const voice of VOICES) {
    const clean = ulawDecode(ulawEncode(await synthesize(text, { voice, sampleRate: 8000 })));
    for (const [tag, pcm] of [['clean', clean], ['noisy', ulawDecode(ulawEncode(withNoise(clean, 15, ++n)))]] as const) {
      const file = join(dir, `${items.length}-${voice}-${tag}.raw`);
      writeFileSync(file, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
      items.push({ file, expect });
    }
  }
}
writeFileSync(join(dir, 'items.json'), JSON.stringify(items));

const script = join(dir, 'decode.mts');
writeFileSync(script, `
import { readFileSync } from 'node:fs';
import { CrmErpStore } from ${JSON.stringify(join(ROOT, 'src/crm-erp/store.ts'))};
import { PocketsphinxStt } from ${JSON.stringify(join(ROOT, 'src/stt/pocketsphinx.ts'))};
const [mode, listFile, cacheDir] = process.argv.slice(2);
const items = JSON.parse(readFileSync(listFile, 'utf8'));
const store = new CrmErpStore();
const vocab = store.vocabulary();
store.close();
const stt = new PocketsphinxStt({ cacheDir });
await stt.prepare(vocab);
const one = async (it) => {
  const b = readFileSync(it.file);
  const pcm = new Int16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  const r = await stt.recognize(pcm, 8000, vocab, it.expect === 'open' ? {} : { expect: it.expect });
  return [it.file, { text: r.text, confidence: r.confidence, grammar: r.grammar, score: r.detail?.score, frames: r.detail?.frames, open: r.detail?.open?.score }];
};
let out;
if (mode === 'forward') {
  out = [];
  for (const it of items) out.push(await one(it));
} else {
  out = await Promise.all([...items].reverse().map(one));
}
process.stdout.write(JSON.stringify(Object.fromEntries(out)) + '\\n');
`);

function run(mode: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, mode, join(dir, 'items.json'), join(dir, `cache-${mode}`)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'error' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`decoder process (${mode}) exited ${code}: ${err.trim().slice(-500)}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

t.test('the same 8 kHz audio decodes identically in two processes, in any order and interleaving', async (t) => {
  // two processes each load the models and decode every utterance (two or three decodes each)
  t.setTimeout(600_000);
  const forward = await run('forward');
  const reverse = await run('reverse');
  t.equal(Object.keys(forward).length, items.length, 'every utterance decoded');
  let words = 0;
  for (const { file } of items) {
    t.same(reverse[file], forward[file], `${file.slice(dir.length + 1)}: identical result`);
    if ((forward[file] as { text: string }).text !== '') words++;
  }
  t.ok(words >= items.length / 2, `most utterances produced words (${words}/${items.length})`);
});
