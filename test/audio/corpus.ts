/**
 * Real-audio VAD test corpus, generated on demand (never committed) into
 * a cache directory (see cacheDir) and reused while the generator is unchanged.
 *
 * - speech: flite voices kal, slt, rms, awb saying call phrases; clean and
 *   mixed by sox with white/pink noise at 20 and 10 dB SNR;
 * - digits: a PO number read in groups with ~1.1 s pauses;
 * - non-speech: silence, a low noise floor, white/pink/brown noise at several
 *   levels, a 1 kHz tone, two hold-music-like synth melodies (sox);
 * - backchannels: "yeah", "mm-hm", "okay", "uh-huh" (each voice; clean and
 *   at 20 dB SNR).
 * Every item goes through a phone line: 8 kHz, G.711 µ-law encode + decode
 * (sox), then up to 16 kHz (sox) for the VAD. Items are raw s16le 16 kHz mono.
 *
 *   node --import tsx test/audio/corpus.ts      # generate and list
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bump when the generator changes so caches regenerate. */
const VERSION = 'v4';

export type Kind = 'speech' | 'digits' | 'nonspeech' | 'backchannel';

export interface CorpusItem {
  name: string;
  kind: Kind;
  /** Raw s16le mono at 16 kHz. */
  file: string;
  voice?: string;
  text?: string;
  /** 'clean' or e.g. 'white@10dB'. */
  condition: string;
}

export const VOICES = ['kal', 'slt', 'rms', 'awb'] as const;

export const PHRASES = [
  'I would like to reorder twenty cases of part number A B four five seven.',
  'Where is my order? The P O is one two three four five.',
  'Can you transfer me to my sales rep please?',
  'Yes, that is correct, please place the order.',
  'What is the ship date for the rubber gaskets?',
  'Hi, this is Dana from Midwest Supply, calling about an invoice.',
];

/**
 * Backchannels and how flite is asked to say them: flite reads "mm-hm" as the
 * letters "em em aitch em", so that one is given as phones.
 */
export const BACKCHANNELS: { word: string; text?: string; phones?: string }[] = [
  { word: 'yeah', text: 'yeah' },
  { word: 'mm-hm', phones: 'pau m m hh m m pau' },
  { word: 'okay', text: 'okay' },
  { word: 'uh-huh', text: 'uh huh' },
];

/** A PO number read in groups, with these pauses between the groups. */
export const DIGIT_GROUPS = ['my P O number is', 'four seven one', 'two nine', 'eight three'];
export const DIGIT_PAUSE_S = 0.7; // plus flite's own lead-in/out: ~1.1-1.2 s of silence between groups

/**
 * Cache directory: `$VAD_AUDIO_CACHE/<version>` or `<tmpdir>/voice-agent-vad-audio/<version>`
 * (outside build/, which `node-gyp rebuild` wipes).
 */
export function cacheDir(): string {
  return join(process.env.VAD_AUDIO_CACHE ?? join(tmpdir(), 'voice-agent-vad-audio'), VERSION);
}

/** `-R`: repeatable — sox seeds its noise generators with a fixed number, so every machine builds the same corpus. */
function sox(args: string[]): void {
  execFileSync('sox', ['-q', '-R', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function readRaw(file: string): Int16Array {
  const b = readFileSync(file);
  return new Int16Array(b.buffer, b.byteOffset, b.length >> 1).slice();
}

function writeRaw(file: string, pcm: Int16Array): void {
  writeFileSync(file, Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
}

const RAW8 = ['-t', 'raw', '-r', '8000', '-e', 'signed-integer', '-b', '16', '-c', '1'];
const RAW16 = ['-t', 'raw', '-r', '16000', '-e', 'signed-integer', '-b', '16', '-c', '1'];

/** flite → 8 kHz s16 (band-limited by sox's resampler). */
function say(text: string, voice: string, tmp: string, phones = false): Int16Array {
  const wav = join(tmp, 'say.wav');
  const raw = join(tmp, 'say.raw');
  execFileSync('flite', ['-voice', voice, phones ? '-p' : '-t', text, '-o', wav], { stdio: ['ignore', 'ignore', 'ignore'] });
  sox([wav, ...RAW8, raw]);
  return readRaw(raw);
}

/** sox-synthesised 8 kHz signal, `seconds` long. */
function synth(seconds: number, spec: string[], tmp: string): Int16Array {
  const raw = join(tmp, 'synth.raw');
  sox(['-n', ...RAW8, raw, 'synth', String(seconds), ...spec]);
  return readRaw(raw);
}

function rms(pcm: Int16Array): number {
  let s = 0;
  for (const v of pcm) s += v * v;
  return Math.sqrt(s / Math.max(1, pcm.length));
}

/** RMS over the active part (20 ms blocks within 35 dB of the loudest block). */
function activeRms(pcm: Int16Array): number {
  const blocks: number[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) blocks.push(rms(pcm.subarray(i, i + 160)));
  const peak = Math.max(...blocks, 1);
  const act = blocks.filter((b) => b > peak * 10 ** (-35 / 20));
  return Math.sqrt(act.reduce((a, b) => a + b * b, 0) / Math.max(1, act.length));
}

function silence(seconds: number): Int16Array {
  return new Int16Array(Math.round(seconds * 8000));
}

function concat(parts: Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Mix noise of the same length under `speech` at `snrDb` (sox -m with computed volumes). */
function mixNoise(speech: Int16Array, noiseKind: string, snrDb: number, tmp: string): Int16Array {
  const noise = synth(speech.length / 8000, [noiseKind], tmp);
  const k = activeRms(speech) / (rms(noise) * 10 ** (snrDb / 20));
  const a = join(tmp, 'a.raw');
  const b = join(tmp, 'b.raw');
  const o = join(tmp, 'mix.raw');
  writeRaw(a, speech);
  writeRaw(b, noise.subarray(0, speech.length));
  sox(['-m', '-v', '1', ...RAW8, a, '-v', k.toFixed(6), ...RAW8, b, ...RAW8, o]);
  return readRaw(o);
}

/** Scale to an RMS level in dBFS. */
function atLevel(pcm: Int16Array, dbfs: number): Int16Array {
  const k = (32768 * 10 ** (dbfs / 20)) / Math.max(1, rms(pcm));
  return Int16Array.from(pcm, (v) => Math.max(-32768, Math.min(32767, Math.round(v * k))));
}

/** Phone line: µ-law encode/decode at 8 kHz, then up to 16 kHz; writes `file`. */
function phoneLine(pcm: Int16Array, file: string, tmp: string): void {
  const a = join(tmp, 'line.raw');
  const u = join(tmp, 'line.ul');
  const d = join(tmp, 'line-dec.raw');
  writeRaw(a, pcm);
  sox([...RAW8, a, '-t', 'raw', '-r', '8000', '-e', 'mu-law', '-b', '8', '-c', '1', u]);
  sox(['-t', 'raw', '-r', '8000', '-e', 'mu-law', '-b', '8', '-c', '1', u, ...RAW8, d]);
  sox([...RAW8, d, ...RAW16, `${file}.tmp`, 'rate', '-v', '16000']);
  renameSync(`${file}.tmp`, file);
}

function holdMusic(kind: 'pluck' | 'organ', seconds: number, tmp: string): Int16Array {
  const melody = [262, 330, 392, 523, 392, 330, 294, 349, 440, 349, 294, 247];
  const notes: Int16Array[] = [];
  let total = 0;
  for (let i = 0; total < seconds * 8000; i++) {
    const f = melody[i % melody.length]!;
    const spec = kind === 'pluck' ? ['pluck', String(f)] : ['square', String(f), 'lowpass', '1200', 'tremolo', '5', '40'];
    const n = synth(0.3, spec, tmp);
    notes.push(n);
    total += n.length;
  }
  return atLevel(concat(notes).subarray(0, seconds * 8000), -20);
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 24);
}

/** Generate (or reuse) the corpus; returns its items. Needs flite and sox on PATH. */
export function buildCorpus(): CorpusItem[] {
  const dir = cacheDir();
  const manifest = join(dir, 'manifest.json');
  if (existsSync(manifest)) return JSON.parse(readFileSync(manifest, 'utf8')) as CorpusItem[];
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `tmp-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  const items: CorpusItem[] = [];
  const add = (name: string, kind: Kind, pcm: Int16Array, extra: Omit<CorpusItem, 'name' | 'kind' | 'file'>): void => {
    const file = join(dir, `${name}.s16`);
    phoneLine(pcm, file, tmp);
    items.push({ name, kind, file, ...extra });
  };
  try {
    const pad = silence(0.5);
    const tail = silence(1.5); // longer than the 700 ms endpointing silence
    PHRASES.forEach((text, pi) => {
      for (const voice of VOICES) {
        const s = concat([pad, atLevel(say(text, voice, tmp), -22), tail]);
        const noise = (pi + VOICES.indexOf(voice)) % 2 === 0 ? 'whitenoise' : 'pinknoise';
        add(`speech-${voice}-${pi}-clean`, 'speech', s, { voice, text, condition: 'clean' });
        for (const snr of [20, 10]) {
          add(`speech-${voice}-${pi}-${noise}${snr}`, 'speech', mixNoise(s, noise, snr, tmp), {
            voice, text, condition: `${noise}@${snr}dB`,
          });
        }
      }
    });
    for (const voice of VOICES) {
      const parts: Int16Array[] = [pad];
      DIGIT_GROUPS.forEach((g, i) => {
        if (i > 0) parts.push(silence(DIGIT_PAUSE_S));
        parts.push(atLevel(say(g, voice, tmp), -22));
      });
      parts.push(silence(2.0));
      add(`digits-${voice}`, 'digits', concat(parts), { voice, text: DIGIT_GROUPS.join(' … '), condition: 'clean' });
    }
    const secs = 4;
    add('ns-silence', 'nonspeech', silence(secs), { condition: 'digital silence' });
    add('ns-floor', 'nonspeech', atLevel(synth(secs, ['whitenoise'], tmp), -60), { condition: 'white@-60dBFS' });
    for (const [noise, levels] of [['whitenoise', [-40, -30, -20]], ['pinknoise', [-35, -25]], ['brownnoise', [-25]]] as const) {
      for (const l of levels) {
        add(`ns-${noise}${-l}`, 'nonspeech', atLevel(synth(secs, [noise], tmp), l), { condition: `${noise}@${l}dBFS` });
      }
    }
    add('ns-tone1k', 'nonspeech', atLevel(synth(secs, ['sine', '1000'], tmp), -13), { condition: '1 kHz sine @-13dBFS' });
    add('ns-tone1k-quiet', 'nonspeech', atLevel(synth(secs, ['sine', '1000'], tmp), -30), { condition: '1 kHz sine @-30dBFS' });
    add('ns-hold-pluck', 'nonspeech', holdMusic('pluck', 6, tmp), { condition: 'hold music (pluck melody)' });
    add('ns-hold-organ', 'nonspeech', holdMusic('organ', 6, tmp), { condition: 'hold music (square + tremolo)' });
    for (const { word, text, phones } of BACKCHANNELS) {
      for (const voice of VOICES) {
        const s = concat([pad, atLevel(say(phones ?? text!, voice, tmp, phones !== undefined), -22), tail]);
        add(`bc-${slug(word)}-${voice}-clean`, 'backchannel', s, { voice, text: word, condition: 'clean' });
        add(`bc-${slug(word)}-${voice}-pink20`, 'backchannel', mixNoise(s, 'pinknoise', 20, tmp), {
          voice, text: word, condition: 'pinknoise@20dB',
        });
      }
    }
    writeFileSync(`${manifest}.tmp`, JSON.stringify(items, null, 1));
    renameSync(`${manifest}.tmp`, manifest);
    return items;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** 16 kHz PCM of an item. */
export function readItem(item: CorpusItem): Int16Array {
  return readRaw(item.file);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const t0 = Date.now();
  const items = buildCorpus();
  for (const it of items) console.log(`${it.kind.padEnd(11)} ${it.name.padEnd(36)} ${(readItem(it).length / 16000).toFixed(2)} s  ${it.condition}`);
  console.log(`${items.length} items in ${cacheDir()} (${Date.now() - t0} ms)`);
}
