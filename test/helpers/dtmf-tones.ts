/**
 * DTMF key presses as audio (8 kHz, 16-bit), the way a phone puts them in the voice path:
 * two sines per key (ITU-T Q.23 frequencies), a tone then a pause per key.
 */

const ROWS = [697, 770, 852, 941];
const COLS = [1209, 1336, 1477, 1633];
const KEYS = ['123A', '456B', '789C', '*0#D'];

export interface DtmfToneOptions {
  /** tone length per key (ms). @defaultValue 100 */
  toneMs?: number;
  /** pause after each key (ms). @defaultValue 100 */
  gapMs?: number;
  /** level of the low (row) tone in dBm0 (0 dBm0 = a sine 3.17 dB below G.711 full scale). @defaultValue -9 */
  lowDbm0?: number;
  /** high (column) tone minus low tone, dB. @defaultValue 2 */
  twistDb?: number;
  /** relative frequency error of both tones (0.015 = +1.5 %). @defaultValue 0 */
  freqError?: number;
  /** silence before the first key (ms). @defaultValue 0 */
  leadMs?: number;
}

/** Amplitude (of a 16-bit sample) of a sine at `dbm0`. */
export function dbm0Amplitude(dbm0: number): number {
  return 32636 * 10 ** ((dbm0 - 3.17) / 20);
}

/** The two frequencies of a key (0-9 * # A-D). */
export function dtmfFrequencies(key: string): [number, number] {
  const k = key.toUpperCase();
  for (let r = 0; r < 4; r++) {
    const c = KEYS[r]!.indexOf(k);
    if (c >= 0) return [ROWS[r]!, COLS[c]!];
  }
  throw new Error(`not a DTMF key: ${key}`);
}

/** Key presses as 8 kHz PCM. */
export function dtmfTones(keys: string, o: DtmfToneOptions = {}): Int16Array {
  const toneN = Math.round(((o.toneMs ?? 100) * 8000) / 1000);
  const gapN = Math.round(((o.gapMs ?? 100) * 8000) / 1000);
  const leadN = Math.round(((o.leadMs ?? 0) * 8000) / 1000);
  const lo = dbm0Amplitude(o.lowDbm0 ?? -9);
  const hi = lo * 10 ** ((o.twistDb ?? 2) / 20);
  const f = 1 + (o.freqError ?? 0);
  const out = new Int16Array(leadN + keys.length * (toneN + gapN));
  let at = leadN;
  for (const key of keys) {
    const [fl, fh] = dtmfFrequencies(key);
    for (let i = 0; i < toneN; i++) {
      const t = i / 8000;
      out[at + i] = Math.round(lo * Math.sin(2 * Math.PI * fl * f * t) + hi * Math.sin(2 * Math.PI * fh * f * t));
    }
    at += toneN + gapN;
  }
  return out;
}

/** Mix b into a at offset (clipped), in place; returns a. */
export function mixInto(a: Int16Array, b: Int16Array, offset = 0): Int16Array {
  for (let i = 0; i < b.length && offset + i < a.length; i++) {
    a[offset + i] = Math.max(-32768, Math.min(32767, a[offset + i]! + b[i]!));
  }
  return a;
}
