/**
 * G.711 µ-law / A-law reference codecs for tests (ITU-T G.711 with the rounding of the
 * ITU-T G.191 reference code; segments computed, not looked up). Deliberately independent of the product's native codec so that tests
 * compare two implementations.
 */

const BIAS = 0x84;
const CLIP = 32635;

/** Encode one 16-bit linear sample to µ-law. */
export function ulawEncodeSample(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  // ITU-T G.191 reference: negative inputs use the one's complement magnitude (~x = -x - 1).
  if (s < 0) s = -s - 1;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decode one µ-law byte to a 16-bit linear sample. */
export function ulawDecodeSample(byte: number): number {
  const u = ~byte & 0xff;
  const sign = u & 0x80;
  const exponent = (u >> 4) & 0x07;
  const mantissa = u & 0x0f;
  const magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
  return sign ? -magnitude : magnitude;
}

/** Encode one 16-bit linear sample to A-law. */
export function alawEncodeSample(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  if (s > 32767) s = 32767;
  let out: number;
  if (s < 256) {
    out = s >> 4;
  } else {
    let exponent = 1;
    for (let v = s >> 8; v > 1; v >>= 1) exponent++;
    out = (exponent << 4) | ((s >> (exponent + 3)) & 0x0f);
  }
  return (out | sign) ^ 0x55;
}

/** Decode one A-law byte to a 16-bit linear sample. */
export function alawDecodeSample(byte: number): number {
  const a = byte ^ 0x55;
  const sign = a & 0x80;
  const exponent = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  let magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return sign ? magnitude : -magnitude;
}

/** Decode a µ-law payload to PCM. */
export function ulawDecode(buf: Uint8Array): Int16Array {
  const out = new Int16Array(buf.length);
  for (let i = 0; i < buf.length; i++) out[i] = ulawDecodeSample(buf[i]!);
  return out;
}

/** Decode an A-law payload to PCM. */
export function alawDecode(buf: Uint8Array): Int16Array {
  const out = new Int16Array(buf.length);
  for (let i = 0; i < buf.length; i++) out[i] = alawDecodeSample(buf[i]!);
  return out;
}

/** Encode PCM to µ-law. */
export function ulawEncode(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = ulawEncodeSample(pcm[i]!);
  return out;
}

/** Encode PCM to A-law. */
export function alawEncode(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = alawEncodeSample(pcm[i]!);
  return out;
}

/** Root-mean-square level of PCM samples (0 for an empty array). */
export function rms(pcm: Int16Array): number {
  if (pcm.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += pcm[i]! * pcm[i]!;
  return Math.sqrt(sum / pcm.length);
}
