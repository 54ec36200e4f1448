/**
 * Test-side references for espeak-ng speech: the Debian `espeak-ng` command (not the
 * product's addon) speaks a text to a WAV, resampled to 8 kHz by sox; `envelopeMatch` finds
 * how well a reference utterance matches somewhere inside a longer recording (Pearson
 * correlation of 10 ms log-energy envelopes, best lag) — robust to G.711 and to the
 * product's own resampler, and far apart for different words or a different voice.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWav } from './audio.ts';

/** Speak `text` with the espeak-ng command (voice, words per minute, pitch) → 8 kHz PCM. */
export function espeakSay(text: string, voice = 'es-419', wpm = 160, pitch = 50): Int16Array {
  const dir = mkdtempSync(join(tmpdir(), 'va-espeak-'));
  try {
    const raw = join(dir, 'say.wav');
    const out = join(dir, 'say8k.wav');
    execFileSync('espeak-ng', ['-v', voice, '-s', String(wpm), '-p', String(pitch), '-w', raw, text]);
    execFileSync('sox', [raw, '-r', '8000', '-c', '1', '-b', '16', '-e', 'signed-integer', out]);
    return readWav(readFileSync(out)).pcm;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * 10 ms log-energy envelope (dB) of 8 kHz PCM, floored at `floorDb` (30 dB ≈ RMS 32) so
 * digital silence in a reference and G.711's idle noise on the line count as the same quiet.
 */
export function envelope(pcm: Int16Array, frame = 80, floorDb = 30): Float64Array {
  const n = Math.floor(pcm.length / frame);
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < frame; j++) { const x = pcm[i * frame + j]!; s += x * x; }
    e[i] = Math.max(floorDb, 10 * Math.log10(s / frame + 1));
  }
  return e;
}

/** Trim leading/trailing frames more than 40 dB under the loudest. */
function trimEnv(e: Float64Array): Float64Array {
  let max = 0;
  for (const x of e) max = Math.max(max, x);
  let a = 0;
  let b = e.length;
  while (a < b && e[a]! < max - 40) a++;
  while (b > a && e[b - 1]! < max - 40) b--;
  return e.subarray(a, b);
}

/**
 * Pauses squeezed to one frame each: espeak-ng's pause lengths (after a comma, between
 * sentences) vary with what it spoke before, the sounds between them do not. Returns the
 * squeezed envelope and, per kept frame, its frame index in the original.
 */
function squeeze(e: Float64Array, quietDb = 33): { env: Float64Array; at: number[] } {
  const out: number[] = [];
  const at: number[] = [];
  let quiet = false;
  for (let i = 0; i < e.length; i++) {
    const q = e[i]! < quietDb;
    if (q && quiet) continue;
    quiet = q;
    out.push(e[i]!);
    at.push(i);
  }
  return { env: Float64Array.from(out), at };
}

/**
 * Best correlation (−1..1) of the reference's envelope against every position in `heard`
 * (pauses squeezed in both), and where (seconds into `heard`). ≥ 0.8 means the same
 * utterance from the same engine and voice; other words or another engine score far lower.
 */
export function envelopeMatch(heard: Int16Array, reference: Int16Array): { score: number; atSec: number } {
  const r = squeeze(trimEnv(envelope(reference))).env;
  const m = r.length;
  // pad the recording with its own floor so a reference a little longer than it still fits
  const sq = squeeze(envelope(heard));
  const e = sq.env;
  let floor = Infinity;
  for (const x of e) floor = Math.min(floor, x);
  const h = new Float64Array(Math.max(e.length, m)).fill(Number.isFinite(floor) ? floor : 0);
  h.set(e);
  if (m < 10) return { score: -1, atSec: 0 };
  let rMean = 0;
  for (const x of r) rMean += x;
  rMean /= m;
  let rVar = 0;
  for (const x of r) rVar += (x - rMean) ** 2;
  let best = -1;
  let at = 0;
  for (let lag = 0; lag + m <= h.length; lag++) {
    let hMean = 0;
    for (let i = 0; i < m; i++) hMean += h[lag + i]!;
    hMean /= m;
    let cov = 0;
    let hVar = 0;
    for (let i = 0; i < m; i++) {
      const d = h[lag + i]! - hMean;
      cov += d * (r[i]! - rMean);
      hVar += d * d;
    }
    const c = hVar > 0 && rVar > 0 ? cov / Math.sqrt(hVar * rVar) : -1;
    if (c > best) { best = c; at = lag; }
  }
  return { score: best, atSec: (sq.at[at] ?? 0) / 100 };
}
