// G.711 against the standard: fixed vectors, the decode formula for every code
// word, and round-trip error bounds over the whole 16-bit range.
import t from 'tap';
import { alawDecode, alawEncode, ulawDecode, ulawEncode } from '../../src/media/index.ts';

const enc = (f: (p: Int16Array) => Uint8Array, xs: number[]) => [...f(Int16Array.from(xs))];
const dec = (f: (b: Uint8Array) => Int16Array, bs: number[]) => [...f(Uint8Array.from(bs))];

// Decode formulas as written in G.711 (magnitudes in 14-bit µ-law / 13-bit A-law
// units, scaled to 16 bits), independent of the native table code.
function ulawFormula(b: number): number {
  const c = ~b & 0xff;  // code words are transmitted inverted
  const e = (c >> 4) & 7;
  const m = c & 0x0f;
  const mag = (((2 * m + 33) << e) - 33) * 4;
  return c & 0x80 ? -mag : mag;
}
function alawFormula(b: number): number {
  const c = b ^ 0x55;  // even bits are inverted on the line
  const e = (c >> 4) & 7;
  const m = c & 0x0f;
  const mag = e === 0 ? (2 * m + 1) * 8 : ((2 * m + 33) << (e - 1)) * 8;
  return c & 0x80 ? mag : -mag;
}

t.test('µ-law known vectors', async (t) => {
  t.same(enc(ulawEncode, [0, -1, 1, -4, -5, 32767, -32768, 1000, -1000, 32124, -32124]),
    [0xff, 0x7f, 0xff, 0x7f, 0x7e, 0x80, 0x00, 0xce, 0x4e, 0x80, 0x00]);
  t.same(dec(ulawDecode, [0xff, 0x7f, 0x80, 0x00, 0xce, 0x4e, 0xfe, 0x7e]),
    [0, 0, 32124, -32124, 988, -988, 8, -8]);
});

t.test('A-law known vectors', async (t) => {
  t.same(enc(alawEncode, [0, -1, 32767, -32768, 1000, -1000, 15, 16]),
    [0xd5, 0x55, 0xaa, 0x2a, 0xfa, 0x7a, 0xd5, 0xd4]);
  t.same(dec(alawDecode, [0xd5, 0x55, 0xaa, 0x2a, 0xfa, 0x7a]), [8, -8, 32256, -32256, 1008, -1008]);
});

t.test('decode of every code word matches the G.711 formula', async (t) => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const u = ulawDecode(all);
  const a = alawDecode(all);
  let bad = 0;
  for (let b = 0; b < 256; b++) {
    if (u[b] !== ulawFormula(b)) bad++;
    if (a[b] !== alawFormula(b)) bad++;
  }
  t.equal(bad, 0, 'all 512 code words');
});

t.test('encode(decode(b)) == b except µ-law negative zero', async (t) => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const u = ulawEncode(ulawDecode(all));
  const a = alawEncode(alawDecode(all));
  const uBad = [...all].filter((b) => u[b] !== b);
  t.same(uBad, [0x7f], 'only 0x7F (-0) maps to 0xFF (+0)');
  t.same([...all].filter((b) => a[b] !== b), [], 'A-law is a bijection on its levels');
});

t.test('round-trip error bounds and monotonicity over all 65536 inputs', async (t) => {
  const x = Int16Array.from({ length: 65536 }, (_, i) => i - 32768);
  for (const [name, e, d, bound] of [
    // Half a quantisation step of the segment plus the dropped low bits (µ-law: 14-bit, A-law: 13-bit input).
    ['µ-law', ulawEncode, ulawDecode, (v: number) => (Math.abs(v) > 32124 ? Math.abs(v) - 32124 + 1 : (Math.abs(v) + 132) / 32 + 4)],
    ['A-law', alawEncode, alawDecode, (v: number) => (Math.abs(v) > 32256 ? Math.abs(v) - 32256 + 1 : Math.max(16, Math.abs(v) / 32 + 16))],
  ] as const) {
    const y = d(e(x));
    let worst = 0, violations = 0, nonMonotonic = 0;
    for (let i = 0; i < x.length; i++) {
      const err = Math.abs(y[i] - x[i]);
      worst = Math.max(worst, err);
      if (err > bound(x[i])) violations++;
      if (i > 0 && y[i] < y[i - 1]) nonMonotonic++;
    }
    t.equal(violations, 0, `${name}: error within the segment bound (worst ${worst})`);
    t.equal(nonMonotonic, 0, `${name}: quantiser is monotonic`);
  }
});

t.test('SNR of a -10 dBFS sine is G.711-like (≥ 35 dB)', async (t) => {
  const n = 8000;
  const x = Int16Array.from({ length: n }, (_, i) => Math.round(10362 * Math.sin((2 * Math.PI * 1004 * i) / 8000)));
  for (const [name, e, d] of [['µ-law', ulawEncode, ulawDecode], ['A-law', alawEncode, alawDecode]] as const) {
    const y = d(e(x));
    let s = 0, noise = 0;
    for (let i = 0; i < n; i++) { s += x[i] ** 2; noise += (y[i] - x[i]) ** 2; }
    const snr = 10 * Math.log10(s / noise);
    t.ok(snr >= 35 && snr <= 45, `${name} SNR ${snr.toFixed(1)} dB`);
  }
});
