/**
 * Resampling for TTS output: the native polyphase resampler from src/media when the addon
 * is built, else a small TS windowed-sinc polyphase (same idea, lower quality, slower).
 */
type Resample = (pcm: Int16Array, inRate: number, outRate: number) => Int16Array;

let nativeResample: Resample | null | undefined;

async function loadNative(): Promise<Resample | null> {
  if (nativeResample !== undefined) return nativeResample;
  try {
    const m = await import('../media/native.ts');
    nativeResample = (pcm, a, b) => m.native.resample(pcm, a, b);
  } catch {
    nativeResample = null;
  }
  return nativeResample;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Rational L/M resampler with a Hann-windowed sinc low-pass at the lower Nyquist.
 * @param zeroCrossings filter half-length in lower-rate samples. @defaultValue 16
 */
export function resampleTs(pcm: Int16Array, inRate: number, outRate: number, zeroCrossings = 16): Int16Array {
  if (inRate === outRate) return pcm.slice();
  const g = gcd(inRate, outRate);
  const L = outRate / g;
  const M = inRate / g;
  const cutoff = Math.min(1 / L, 1 / M) * 0.9; // normalised to the virtual rate in*L
  const half = Math.ceil(zeroCrossings * Math.max(L, M));
  const h = new Float64Array(2 * half + 1);
  for (let k = -half; k <= half; k++) {
    const x = k * cutoff;
    const sinc = k === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const w = 0.5 + 0.5 * Math.cos((Math.PI * k) / (half + 1));
    h[k + half] = cutoff * sinc * w * L;
  }
  const n = Math.round((pcm.length * L) / M);
  const out = new Int16Array(n);
  for (let j = 0; j < n; j++) {
    const t = j * M; // position at the virtual rate
    let acc = 0;
    const iMin = Math.max(0, Math.ceil((t - half) / L));
    const iMax = Math.min(pcm.length - 1, Math.floor((t + half) / L));
    for (let i = iMin; i <= iMax; i++) acc += pcm[i]! * h[t - i * L + half]!;
    out[j] = Math.max(-32768, Math.min(32767, Math.round(acc)));
  }
  return out;
}

/** Resample with the native resampler if available, else {@link resampleTs}. */
export async function resample(pcm: Int16Array, inRate: number, outRate: number): Promise<Int16Array> {
  if (inRate === outRate) return pcm;
  const n = await loadNative();
  return n ? n(pcm, inRate, outRate) : resampleTs(pcm, inRate, outRate);
}
