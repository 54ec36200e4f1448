/**
 * Caller audio for the recognition benchmarks and tests: espeak-ng voices (the "unseen"
 * voices: en-us, en-us+f3, en-us+m7, en-gb-x-rp at 140–180 words per minute) and flite
 * voices (kal, slt, through the native flite TTS the tests use), resampled to 8 kHz by sox,
 * optionally mixed with pink noise (sox, fixed seed) at a given SNR over the speech, then
 * through a G.711 µ-law round trip as the edge would hear it.
 */
import { execFileSync } from 'node:child_process';
import { synthesize, ulawDecode, ulawEncode, type Voice } from '../../../src/media/index.ts';

export interface CallerVoice {
  /** label in tables */
  name: string;
  engine: 'espeak' | 'flite';
  /** espeak-ng -v value, or the flite voice */
  voice: string;
  /** espeak-ng words per minute */
  speed?: number;
}

/** The unseen voices: espeak-ng variants and speeds. */
export const ESPEAK_VOICES: readonly CallerVoice[] = [
  { name: 'en-us/160', engine: 'espeak', voice: 'en-us', speed: 160 },
  { name: 'en-us+f3/140', engine: 'espeak', voice: 'en-us+f3', speed: 140 },
  { name: 'en-us+m7/180', engine: 'espeak', voice: 'en-us+m7', speed: 180 },
  { name: 'en-gb-x-rp/150', engine: 'espeak', voice: 'en-gb-x-rp', speed: 150 },
];
export const FLITE_VOICES: readonly CallerVoice[] = [
  { name: 'flite-kal', engine: 'flite', voice: 'kal' },
  { name: 'flite-slt', engine: 'flite', voice: 'slt' },
];

export function haveEspeak(): boolean {
  try {
    execFileSync('espeak-ng', ['--version'], { stdio: 'ignore' });
    execFileSync('sox', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function raw16(buf: Buffer): Int16Array {
  const out = new Int16Array(buf.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2);
  return out;
}

/** espeak-ng → 8 kHz 16-bit mono PCM (sox resamples). */
function espeak(text: string, v: CallerVoice): Int16Array {
  const wav = execFileSync('espeak-ng', ['-v', v.voice, '-s', String(v.speed ?? 160), '--stdout', text], { maxBuffer: 64 << 20 });
  const pcm = execFileSync('sox', ['-t', 'wav', '-', '-t', 'raw', '-r', '8000', '-e', 'signed', '-b', '16', '-c', '1', '-'], { input: wav, maxBuffer: 64 << 20 });
  return raw16(pcm);
}

/** Clean caller speech at 8 kHz, with 250 ms of silence either side (the VAD's pre-roll and hang-over). */
export async function speak(text: string, v: CallerVoice): Promise<Int16Array> {
  const speech = v.engine === 'espeak' ? espeak(text, v) : await synthesize(text, { voice: v.voice as Voice, sampleRate: 8000 });
  const pad = 2000;
  const out = new Int16Array(speech.length + 2 * pad);
  out.set(speech, pad);
  return out;
}

const noiseCache = new Map<number, Int16Array>();
/** Pink noise from sox with its default (repeatable) random seed. */
function pinkNoise(samples: number): Int16Array {
  const secs = Math.ceil(samples / 8000) + 1;
  let n = noiseCache.get(secs);
  if (!n) {
    n = raw16(execFileSync('sox', ['-R', '-n', '-t', 'raw', '-r', '8000', '-e', 'signed', '-b', '16', '-c', '1', '-', 'synth', String(secs), 'pinknoise', 'vol', '0.3'], { maxBuffer: 64 << 20 }));
    noiseCache.set(secs, n);
  }
  return n;
}

/** RMS over the samples louder than −40 dB of the peak (the speech, not the padding). */
function speechRms(pcm: Int16Array): number {
  let peak = 1;
  for (const v of pcm) peak = Math.max(peak, Math.abs(v));
  const floor = peak / 100;
  let sum = 0, n = 0;
  for (const v of pcm) if (Math.abs(v) > floor) { sum += v * v; n++; }
  return Math.sqrt(sum / Math.max(1, n));
}

/** What the edge hears: optional noise at `snrDb` below the speech RMS, then G.711 µ-law. */
export function phone(clean: Int16Array, snrDb?: number): Int16Array {
  let x = clean;
  if (snrDb !== undefined) {
    const noise = pinkNoise(clean.length);
    let nr = 0;
    for (let i = 0; i < clean.length; i++) nr += noise[i]! * noise[i]!;
    nr = Math.sqrt(nr / clean.length);
    const gain = speechRms(clean) / 10 ** (snrDb / 20) / Math.max(1, nr);
    x = new Int16Array(clean.length);
    for (let i = 0; i < clean.length; i++) x[i] = Math.max(-32768, Math.min(32767, Math.round(clean[i]! + gain * noise[i]!)));
  }
  return ulawDecode(ulawEncode(x));
}
