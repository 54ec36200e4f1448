/**
 * Test audio: synthesise speech with Debian's flite (8 kHz, 16-bit mono), read/write WAV,
 * split into 20 ms frames, make tones and measure how much of a signal is one tone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pcmToWav } from '../../src/stt/wav.ts';

/** Parse a 16-bit PCM mono WAV (any rate); returns samples and rate. */
export function readWav(buf: Buffer): { pcm: Int16Array; rate: number } {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12;
  let rate = 8000;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    if (id === 'fmt ') rate = buf.readUInt32LE(off + 12);
    if (id === 'data') {
      const data = buf.subarray(off + 8, off + 8 + size);
      const pcm = new Int16Array(data.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = data.readInt16LE(i * 2);
      return { pcm, rate };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error('WAV has no data chunk');
}

/** Serialise PCM as a 16-bit mono WAV. */
export const wavBuffer = pcmToWav;

/** Speak `text` with flite (`voice` kal/slt/awb/rms) and return 8 kHz PCM (resampled by sox). */
export function fliteSay(text: string, voice = 'slt'): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'va-flite-'));
  try {
    const raw = join(dir, 'say.wav');
    const out = join(dir, 'say8k.wav');
    execFileSync('flite', ['-voice', voice, '-t', text, '-o', raw]);
    execFileSync('sox', [raw, '-r', '8000', '-c', '1', '-b', '16', '-e', 'signed-integer', out]);
    return readWav(readFileSync(out)).pcm;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Split PCM into frames of `size` samples (the last one zero-padded). */
export function frames(pcm: Int16Array, size = 160): Int16Array[] {
  const out: Int16Array[] = [];
  for (let i = 0; i < pcm.length; i += size) {
    const f = new Int16Array(size);
    f.set(pcm.subarray(i, Math.min(i + size, pcm.length)));
    out.push(f);
  }
  return out;
}

/** Tone of `hz` at 8 kHz, `ms` long, −12 dBFS. */
export function tone(hz: number, ms: number): Int16Array {
  const n = (ms * 8) | 0;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / 8000));
  return out;
}

/** Goertzel power ratio of `hz` in `pcm` (0..1 of the total energy). */
export function toneShare(pcm: Int16Array, hz: number): number {
  if (pcm.length === 0) return 0;
  const k = 2 * Math.cos((2 * Math.PI * hz) / 8000);
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (let i = 0; i < pcm.length; i++) {
    const x = pcm[i]! / 32768;
    total += x * x;
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return total > 0 ? (2 * power) / (pcm.length * total) : 0;
}

/** `n` samples of a tone of `hz` sampled at `rate`, amplitude `amp`. */
export function toneAt(n: number, rate: number, hz: number, amp = 8000): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));
}

/**
 * Share of the signal's power at `hz` (0..1; 1 = a pure tone): Goertzel per 100 ms block,
 * summed. Per block, so that a time-scale step of a jitter buffer (a frame dropped or
 * stretched under load breaks the tone's phase) costs one block, not the coherence of the
 * whole buffer as in toneShare().
 */
export function blockToneShare(pcm: Int16Array, rate: number, hz: number): number {
  const c = 2 * Math.cos((2 * Math.PI * hz) / rate);
  const block = Math.round(rate / 10);
  let tonal = 0, energy = 0;
  for (let b = 0; b + block <= pcm.length; b += block) {
    let s1 = 0, s2 = 0;
    for (let i = b; i < b + block; i++) {
      const x = pcm[i]!;
      energy += x * x;
      const s0 = x + c * s1 - s2;
      s2 = s1; s1 = s0;
    }
    tonal += (2 * (s1 * s1 + s2 * s2 - c * s1 * s2)) / block; // |X(k)|² → this block's power at hz
  }
  return energy === 0 ? 0 : tonal / energy;
}
