/**
 * The simplified E-model (src/cdr/emodel.ts) against points worked out by hand from the
 * formula (Le = RTT + 2·jitter + 10; R = 93.2 − Le/40 below 160 ms, 93.2 − (Le − 120)/10 above;
 * R −= 2.5·loss%; MOS = 1 + 0.035R + 7·10⁻⁶·R(R − 60)(100 − R)).
 */
import t from 'tap';
import { estimateQuality, mosFromR, rFactor } from '../../src/cdr/index.ts';

const near = (t: { ok(v: boolean, m: string): unknown }, got: number, want: number, eps: number, what: string): void => {
  t.ok(Math.abs(got - want) <= eps, `${what}: ${got} ≈ ${want}`);
};

t.test('R factor at known points', async (t) => {
  near(t, rFactor({ lossPct: 0, jitterMs: 0, rttMs: 0 }), 92.95, 1e-9, 'perfect line (Le 10 ms)');
  near(t, rFactor({ lossPct: 0, jitterMs: 0, rttMs: null }), 92.95, 1e-9, 'no RTT known counts as 0');
  near(t, rFactor({ lossPct: 0, jitterMs: 0, rttMs: 500 }), 54.2, 1e-9, 'RTT 500 ms (Le 510: the steep branch)');
  near(t, rFactor({ lossPct: 0, jitterMs: 100, rttMs: 0 }), 84.2, 1e-9, 'jitter 100 ms (Le 210)');
  near(t, rFactor({ lossPct: 0, jitterMs: 200, rttMs: 0 }), 64.2, 1e-9, 'jitter 200 ms (Le 410)');
  near(t, rFactor({ lossPct: 1, jitterMs: 0, rttMs: 0 }), 90.45, 1e-9, '1 % loss');
  near(t, rFactor({ lossPct: 5, jitterMs: 20, rttMs: 80 }), 93.2 - 130 / 40 - 12.5, 1e-9, 'mixed: Le 130, 5 % loss');
  near(t, rFactor({ lossPct: 0, jitterMs: 0, rttMs: 149 }), 89.225, 1e-9, 'Le 159: gentle branch');
  near(t, rFactor({ lossPct: 0, jitterMs: 0, rttMs: 150 }), 89.2, 1e-9, 'Le 160: the branches meet');
  t.equal(rFactor({ lossPct: 50, jitterMs: 0, rttMs: 0 }), 0, 'heavy loss clamps at 0');
  t.equal(rFactor({ lossPct: 0, jitterMs: 0, rttMs: 5000 }), 0, 'huge delay clamps at 0');
  t.equal(rFactor({ lossPct: Number.NaN, jitterMs: -5, rttMs: 0 }), 92.95, 'garbage in counts as nothing lost');
});

t.test('MOS from R (G.107 Annex B)', async (t) => {
  near(t, mosFromR(92.95), 4.4044, 5e-4, 'R 92.95');
  near(t, mosFromR(93.2), 4.4092, 5e-4, 'R 93.2');
  near(t, mosFromR(80), 4.024, 1e-9, 'R 80');
  near(t, mosFromR(54.2), 2.7962, 5e-4, 'R 54.2');
  near(t, mosFromR(50), 2.575, 1e-9, 'R 50');
  near(t, mosFromR(84.2), 4.1724, 5e-4, 'R 84.2');
  t.equal(mosFromR(0), 1, 'R 0 → 1');
  t.equal(mosFromR(-3), 1, 'R below 0 → 1');
  t.equal(mosFromR(3), 1, 'the cubic dips under 1 near 0: clamped');
  t.equal(mosFromR(100), 4.5, 'R 100 → 4.5');
  t.equal(mosFromR(120), 4.5, 'R above 100 → 4.5');
  let prev = 0;
  for (let r = 0; r <= 100; r += 0.5) {
    const m = mosFromR(r);
    if (m < prev - 1e-12) t.fail(`MOS not monotonic at R ${r}`);
    prev = m;
  }
  t.pass('monotonic over 0…100');
});

t.test('estimateQuality rounds R to 0.1 and MOS to 0.01', async (t) => {
  t.same(estimateQuality({ lossPct: 0, jitterMs: 0, rttMs: 0 }), { r: 93, mos: 4.4 });
  t.same(estimateQuality({ lossPct: 0, jitterMs: 0, rttMs: 500 }), { r: 54.2, mos: 2.8 });
  t.same(estimateQuality({ lossPct: 1, jitterMs: 0, rttMs: 0 }), { r: 90.5, mos: 4.35 });
});
