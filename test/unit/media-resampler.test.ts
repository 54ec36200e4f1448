// Native resampler quality: SNR of tones against the ideal signal, alias rejection.
import t from 'tap';
import { native } from '../../src/media/native.ts';

const sine = (n: number, hz: number, rate: number, amp = 10000) =>
  Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / rate)));

function snrDb(got: Int16Array, ideal: Int16Array, skip: number): number {
  let s = 0, e = 0;
  for (let i = skip; i < Math.min(got.length, ideal.length) - skip; i++) { s += ideal[i] ** 2; e += (got[i] - ideal[i]) ** 2; }
  return 10 * Math.log10(s / Math.max(e, 1e-9));
}
const rms = (x: Int16Array, skip: number) => Math.sqrt(x.subarray(skip, x.length - skip).reduce((a, v) => a + v * v, 0) / (x.length - 2 * skip));

for (const [inRate, outRate] of [[8000, 16000], [16000, 8000], [8000, 48000], [48000, 8000], [16000, 48000]]) {
  t.test(`${inRate} → ${outRate}: in-band tones survive (SNR ≥ 40 dB), length and delay right`, async (t) => {
    for (const hz of [300, 1000, 3000]) {
      const x = sine(inRate, hz, inRate);
      const y = native.resample(x, inRate, outRate);
      t.equal(y.length, outRate, 'length scales with the rate');
      const snr = snrDb(y, sine(outRate, hz, outRate), outRate / 50);
      t.ok(snr >= 40, `${hz} Hz SNR ${snr.toFixed(1)} dB`);
    }
  });
}

t.test('16 kHz → 8 kHz rejects content above 4 kHz (anti-alias ≥ 50 dB)', async (t) => {
  for (const hz of [4500, 5000, 7000]) {
    const y = native.resample(sine(16000, hz, 16000), 16000, 8000);
    const att = 20 * Math.log10(10000 / Math.SQRT2 / Math.max(rms(y, 400), 1e-3));
    t.ok(att >= 50, `${hz} Hz attenuated ${att.toFixed(1)} dB`);
  }
});

t.test('same rate is a copy', async (t) => {
  const x = sine(100, 440, 8000);
  t.same([...native.resample(x, 8000, 8000)], [...x]);
});

t.test('swept sine (100 Hz → 0.9 × Nyquist of the lower rate): SNR against the ideal sweep', async (t) => {
  const sweep = (n: number, rate: number, f0: number, f1: number) => {
    const T = n / rate;
    return Int16Array.from({ length: n }, (_, i) => { const tt = i / rate; return Math.round(10000 * Math.sin(2 * Math.PI * (f0 * tt + ((f1 - f0) * tt * tt) / (2 * T)))); });
  };
  for (const [inRate, outRate, bound] of [[8000, 16000, 35], [16000, 8000, 35], [8000, 48000, 35], [48000, 16000, 35]]) {
    const f1 = 0.45 * Math.min(inRate, outRate) * 0.8;  // stay inside the pass band
    const x = sweep(inRate * 2, inRate, 100, f1);
    const y = native.resample(x, inRate, outRate);
    const snr = snrDb(y, sweep(outRate * 2, outRate, 100, f1), outRate / 20);
    t.ok(snr >= bound, `${inRate} → ${outRate}: sweep 100–${f1.toFixed(0)} Hz SNR ${snr.toFixed(1)} dB (bound ${bound} dB)`);
  }
});
