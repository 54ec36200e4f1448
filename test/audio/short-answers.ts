// The short-answer corpus of vad-short-answers (and the VAD rate sweep): "Yes." / "No." / "Yep."
// in six flite and espeak-ng voices, under seeded pink noise at 15 dB below the active speech,
// through a µ-law phone line, as 16 kHz s16le corpus items; and the same noise alone.
// Needs flite, espeak-ng and sox on PATH (the callers check them).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../../src/media/native.ts';
import type { CorpusItem } from './corpus.ts';

export const VOICES = ['flite:kal', 'flite:slt', 'flite:awb', 'flite:rms', 'espeak:en-us@150', 'espeak:en-us+f3@170'];
export const WORDS = ['Yes.', 'No.', 'Yep.'];
export const SNR_DB = 15;

export function wavPcm(file: string): Int16Array {
  // sox → raw s16le 8 kHz mono
  const raw = execFileSync('sox', [file, '-t', 'raw', '-r', '8000', '-e', 'signed-integer', '-b', '16', '-c', '1', '-', 'gain', '-n', '-3']);
  return new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}

export function say(voice: string, text: string, dir: string): Int16Array {
  const wav = join(dir, 'say.wav');
  const [engine, spec] = voice.split(':') as [string, string];
  if (engine === 'flite') execFileSync('flite', ['-voice', spec, '-t', text, '-o', wav], { stdio: 'ignore' });
  else {
    const [v, wpm] = spec.split('@') as [string, string];
    execFileSync('espeak-ng', ['-v', v, '-s', wpm, '-w', wav, text], { stdio: 'ignore' });
  }
  const w = wavPcm(wav);
  const out = new Int16Array(w.length + 2 * 960); // 120 ms before and after
  out.set(w, 960);
  return out;
}

/** Seeded pink noise (sox -R), 8 kHz. */
export function pink(seconds: number, dir: string): Int16Array {
  const f = join(dir, 'pink.wav');
  execFileSync('sox', ['-R', '-n', '-r', '8000', '-c', '1', '-b', '16', f, 'synth', String(seconds), 'pinknoise', 'gain', '-n', '-20']);
  return wavPcm(f);
}

/** Noise at `snrDb` under the active speech (20 ms frames within 30 dB of the loudest); returns [noisy, noise alone]. */
export function mix(pcm: Int16Array, noise: Int16Array, off: number, snrDb: number): [Int16Array, Int16Array] {
  const e: number[] = [];
  for (let i = 0; i + 160 <= pcm.length; i += 160) {
    let s = 0;
    for (let j = i; j < i + 160; j++) s += pcm[j]! * pcm[j]!;
    e.push(s / 160);
  }
  const max = Math.max(...e, 1);
  const act = e.filter((x) => x > max / 1000);
  const sig = act.reduce((a, b) => a + b, 0) / Math.max(1, act.length);
  let ne = 0;
  for (const v of noise) ne += v * v;
  ne /= noise.length;
  const g = Math.sqrt(sig / (ne * 10 ** (snrDb / 10)));
  const noisy = new Int16Array(pcm.length);
  const alone = new Int16Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) {
    const n = Math.round(noise[(off + i) % noise.length]! * g);
    alone[i] = Math.max(-32768, Math.min(32767, n));
    noisy[i] = Math.max(-32768, Math.min(32767, pcm[i]! + n));
  }
  return [noisy, alone];
}

/** 1 s of line silence, the clip, 1.5 s of silence; µ-law phone line, up to 16 kHz; written as s16le. */
export function lineItem(name: string, pcm8: Int16Array, dir: string): CorpusItem {
  const all = new Int16Array(8000 + pcm8.length + 12000);
  all.set(pcm8, 8000);
  const line = native.ulawDecode(native.ulawEncode(all));
  const up = native.resample(line, 8000, 16000);
  const file = join(dir, `${name.replace(/[^a-z0-9]+/gi, '-')}.s16`);
  writeFileSync(file, Buffer.from(up.buffer, up.byteOffset, up.byteLength));
  return { name, kind: 'speech', file, condition: `pink@${SNR_DB}dB` };
}

/** Every voice × word in 15 dB pink noise (`answers`) and its noise alone (`alone`), written under `dir`. */
export function buildShortAnswers(dir: string): { answers: CorpusItem[]; alone: CorpusItem[] } {
  const noise = pink(20, dir);
  const answers: CorpusItem[] = [];
  const alone: CorpusItem[] = [];
  let k = 0;
  for (const voice of VOICES) {
    for (const word of WORDS) {
      const [noisy, n] = mix(say(voice, word, dir), noise, (k++ * 7919) % (noise.length - 16000), SNR_DB);
      answers.push(lineItem(`${voice} ${word}`, noisy, dir));
      alone.push(lineItem(`${voice} ${word} noise alone`, n, dir));
    }
  }
  return { answers, alone };
}
