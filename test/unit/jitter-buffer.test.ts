// Jitter buffer + playout with scripted arrival patterns (no sockets, no
// threads): native.PlayoutTest takes packets with arrival instants and is
// ticked at 20 ms playout instants, exactly as the media thread does.
import t from 'tap';
import { native } from '../../src/media/native.ts';
import { ulawEncode, ulawDecode } from '../../src/media/index.ts';

function rtp(pt: number, seq: number, ts: number, ssrc: number, payload: Uint8Array, marker = false): Uint8Array {
  const b = new Uint8Array(12 + payload.length);
  const v = new DataView(b.buffer);
  b[0] = 0x80; b[1] = (marker ? 0x80 : 0) | pt;
  v.setUint16(2, seq & 0xffff); v.setUint32(4, ts >>> 0); v.setUint32(8, ssrc >>> 0);
  b.set(payload, 12);
  return b;
}
function rng(seed: number) {
  return () => { seed |= 0; seed = (seed + 0x6d2b79f5) | 0; let x = Math.imul(seed ^ (seed >>> 15), 1 | seed); x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x; return ((x ^ (x >>> 14)) >>> 0) / 4294967296; };
}
/** Speech-like test signal: harmonics of 180 Hz, 1 s on / 0.5 s off when `gaps`. */
function signal(n: number, gaps = false): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => {
    if (gaps && (i % 12000) >= 8000) return 0;
    let v = 0;
    for (let h = 1; h <= 6; h++) v += Math.sin((2 * Math.PI * 180 * h * i) / 8000) / h;
    return Math.round(6000 * v);
  });
}

interface Sent { seq: number; ts: number; at: number; ssrc?: number; payload: Uint8Array }
interface SimResult { out: Int16Array; stats: ReturnType<InstanceType<typeof native.PlayoutTest>['stats']>; firstFrame: number; results: string[] }

/** Deliver packets by arrival time, tick every 20 ms (phase 7 ms), collect the output. */
function simulate(sent: Sent[], durationMs: number, opts: { jitter?: object; tickPeriod?: number } = {}): SimResult {
  const p = new native.PlayoutTest({ codec: 'PCMU', payloadType: 0, jitter: opts.jitter });
  const q = [...sent].sort((a, b) => a.at - b.at);
  const frames: Int16Array[] = [];
  const results: string[] = [];
  let firstFrame = -1;
  let qi = 0;
  let mid: SimResult['stats'] | undefined;
  const lastArrival = q.length ? q[q.length - 1].at : 0;
  const period = opts.tickPeriod ?? 20;
  for (let k = 0, now = 7; now < durationMs; k++, now = 7 + k * period) {
    while (qi < q.length && q[qi].at <= now) {
      const s = q[qi++];
      results.push(p.put(rtp(0, s.seq, s.ts, s.ssrc ?? 0x1111, s.payload), s.at));
    }
    const f = p.tick(now);
    if (f) { if (firstFrame < 0) firstFrame = k; frames.push(f); }
    if (!mid && now >= lastArrival) mid = p.stats();
  }
  const out = new Int16Array(frames.length * 160);
  frames.forEach((f, i) => out.set(f, i * 160));
  // Stats as of the last arrival: after it the stream has ended and every tick is an underrun.
  return { out, stats: mid ?? p.stats(), firstFrame, results };
}

function packetsOf(pcm: Int16Array, opts: { seq0?: number; ts0?: number; period?: number; delay?: (i: number) => number } = {}): Sent[] {
  const n = Math.floor(pcm.length / 160);
  const out: Sent[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      seq: ((opts.seq0 ?? 1000) + i) & 0xffff, ts: (opts.ts0 ?? 5000) + i * 160,
      at: i * (opts.period ?? 20) + (opts.delay ? opts.delay(i) : 1), payload: ulawEncode(pcm.subarray(i * 160, i * 160 + 160)),
    });
  }
  return out;
}
const decoded = (s: Sent[]) => { const o = new Int16Array(s.length * 160); s.forEach((p, i) => o.set(ulawDecode(p.payload), i * 160)); return o; };
/** Best normalised cross-correlation of y against x over lags 0..maxLag samples. */
function bestCorr(x: Int16Array, y: Int16Array, maxLag = 4000): { r: number; lag: number } {
  let best = { r: -1, lag: 0 };
  const n = Math.min(x.length, y.length) - maxLag;
  for (let lag = 0; lag <= maxLag; lag += 1) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = 0; i < n; i += 2) { const a = x[i], b = y[i + lag]; xy += a * b; xx += a * a; yy += b * b; }
    const r = xy / Math.sqrt(xx * yy + 1e-9);
    if (r > best.r) best = { r, lag };
  }
  return best;
}
function indexOfSeq(hay: Int16Array, needle: Int16Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < 64; j++) if (hay[i + j] !== needle[j]) continue outer;
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

t.test('steady stream: bit-exact output after the start delay, no concealment', async (t) => {
  const src = signal(8000 * 3);
  const sent = packetsOf(src);
  const r = simulate(sent, 3300);
  const want = decoded(sent);
  t.equal(indexOfSeq(r.out, want), 0, 'output = decoded input from the first frame on');
  t.ok(r.firstFrame * 20 >= 40 && r.firstFrame * 20 <= 80, `first frame after ${r.firstFrame * 20} ms (start target 60 ms)`);
  t.equal(r.stats.lost, 0); t.equal(r.stats.concealed, 0); t.equal(r.stats.late, 0);
  t.ok(r.stats.jitterMs < 1, `RFC 3550 jitter ${r.stats.jitterMs.toFixed(2)} ms`);
  t.ok(r.stats.targetDelayMs <= 40, `target decays towards the minimum on a clean path (${r.stats.targetDelayMs.toFixed(1)} ms)`);
});

t.test('reordering and duplicates: output identical, duplicates counted', async (t) => {
  const src = signal(8000 * 2);
  const sent = packetsOf(src);
  for (let i = 10; i + 1 < sent.length; i += 7) { const a = sent[i].at; sent[i].at = sent[i + 1].at + 1; sent[i + 1].at = a; }
  const dups = sent.filter((_, i) => i % 5 === 0).map((s) => ({ ...s, at: s.at + 15 }));
  const r = simulate([...sent, ...dups], 2400);
  t.equal(indexOfSeq(r.out, decoded(sent)), 0, 'in-order, bit-exact');
  t.equal(r.stats.duplicates, dups.length, `${dups.length} duplicates dropped`);
  t.equal(r.stats.concealed, 0, 'nothing concealed');
  t.equal(r.stats.lost, 0, 'RFC 3550 loss 0 (duplicates do not hide loss)');
});

t.test('sequence wrap-around', async (t) => {
  const sent = packetsOf(signal(8000), { seq0: 65500, ts0: 0xffffff00 });
  const r = simulate(sent, 1300);
  t.equal(indexOfSeq(r.out, decoded(sent)), 0, 'seq and timestamp wrap transparently');
  t.equal(r.stats.lost, 0); t.equal(r.stats.expected, sent.length);
});

t.test('burst loss of 3 packets: concealed, counted, no clicks', async (t) => {
  const src = signal(8000 * 2);
  const sent = packetsOf(src);
  const kept = sent.filter((_, i) => i < 40 || i > 42);
  const r = simulate(kept, 2300);
  t.equal(r.stats.lost, 3, 'RFC 3550 loss = 3');
  t.equal(r.stats.concealed, 3, '3 frames concealed');
  const ref = decoded(sent);
  // The joins: largest step between neighbouring samples around the gap vs the signal's own largest step.
  let maxStepSig = 0; for (let i = 1; i < ref.length; i++) maxStepSig = Math.max(maxStepSig, Math.abs(ref[i] - ref[i - 1]));
  const at = indexOfSeq(r.out, ref.subarray(0, 40 * 160));
  t.equal(at, 0);
  let maxStep = 0; for (let i = 40 * 160 - 10; i < 44 * 160 + 10; i++) maxStep = Math.max(maxStep, Math.abs(r.out[i] - r.out[i - 1]));
  t.ok(maxStep <= 1.5 * maxStepSig, `no click: max step at the joins ${maxStep} vs signal ${maxStepSig}`);
  t.equal(indexOfSeq(r.out.subarray(43 * 160 + 32), ref.subarray(43 * 160 + 32, 60 * 160)), 0, 'real audio resumes after a 4 ms cross-fade');
});

t.test('80 ms jitter: target adapts, few concealments, audio intact', async (t) => {
  const rand = rng(7);
  const src = signal(8000 * 20);
  const sent = packetsOf(src, { delay: () => rand() * 80 });
  const r = simulate(sent, 20500);
  const cf = r.stats.concealed / (sent.length);
  t.comment(`80 ms jitter: jitter ${r.stats.jitterMs.toFixed(1)} ms, target ${r.stats.targetDelayMs.toFixed(1)} ms, buffer ${r.stats.bufferDelayMs.toFixed(1)} ms, concealed ${r.stats.concealed} (${(cf * 100).toFixed(2)} %), late ${r.stats.late}, underruns ${r.stats.underruns}, shrinks ${r.stats.shrinks}, stretches ${r.stats.stretches}`);
  t.ok(r.stats.jitterMs > 15 && r.stats.jitterMs < 40, 'RFC 3550 jitter reflects the 80 ms spread');
  t.ok(r.stats.targetDelayMs >= 70 && r.stats.targetDelayMs <= 100, 'target ≈ p95 lateness + margin');
  t.ok(cf < 0.03, 'under 3 % of frames concealed');
  const c = bestCorr(decoded(sent).subarray(8000, 8000 * 15), r.out.subarray(8000, 8000 * 16), 2000);
  t.ok(c.r > 0.95, `correlation with the source ${c.r.toFixed(3)}`);
});

t.test('late packet beyond the buffer is counted late and concealed', async (t) => {
  const sent = packetsOf(signal(8000 * 2));
  sent[30].at += 400;
  const r = simulate(sent, 2500);
  t.equal(r.stats.late, 1, 'counted late');
  t.ok(r.stats.concealed >= 1, 'its slot concealed');
});

t.test('timestamp jump and SSRC change reset the stream; playout resumes', async (t) => {
  const a = packetsOf(signal(8000));
  const b = packetsOf(signal(8000), { seq0: 1050, ts0: 5000 + 50 * 160 + 8000 * 30 }).map((s) => ({ ...s, at: s.at + 1000 }));
  const c = packetsOf(signal(8000), { seq0: 7, ts0: 99 }).map((s) => ({ ...s, at: s.at + 2000, ssrc: 0x2222 }));
  const r = simulate([...a, ...b, ...c], 3300);
  t.equal(r.stats.resets, 2, 'jump + SSRC change');
  t.equal(r.stats.ssrcChanges, 1);
  t.ok(indexOfSeq(r.out, decoded(b).subarray(160, 4000)) > 0, 'second stream played bit-exact (after the 4 ms fade-in)');
  t.ok(indexOfSeq(r.out, decoded(c).subarray(160, 4000)) > 0, 'third stream played bit-exact (after the 4 ms fade-in)');
  t.equal(r.stats.lost, 0, 'the jump is not loss');
});

for (const [name, period] of [['sender clock 1 % fast', 19.8], ['sender clock 1 % slow', 20.2]] as const) {
  t.test(`clock drift (${name}): delay stays bounded by dropping/stretching in silence`, async (t) => {
    const src = signal(8000 * 60, true);
    const sent = packetsOf(src, { period, delay: () => 2 });
    const r = simulate(sent, 61000);
    t.comment(`${name}: buffer ${r.stats.bufferDelayMs.toFixed(1)} ms target ${r.stats.targetDelayMs.toFixed(1)} ms shrinks ${r.stats.shrinks} stretches ${r.stats.stretches} underruns ${r.stats.underruns} concealed ${r.stats.concealed} overflow ${r.stats.overflow}`);
    t.ok(r.stats.bufferDelayMs < r.stats.targetDelayMs + 45, 'delay bounded');
    t.equal(r.stats.overflow, 0, 'no overflow');
    if (period < 20) t.ok(r.stats.shrinks >= 20, 'frames dropped (30 needed for 0.6 s drift)');
    else t.ok(r.stats.stretches + r.stats.underruns >= 20, 'frames stretched');
  });
}

t.test('G.711 at a 16 kHz delivery rate: frames skipped at 16 kHz leave the next ones exactly as a continuous run', (t) => {
  // The media thread makes the 16 kHz frame only while someone takes it ('audio' events, the
  // recorder); otherwise it keeps the 8 kHz frame and only advances the interpolator. Jitter,
  // two losses and one reordered pair exercise concealment and time-scaling on the way.
  const pcm = signal(8000 * 3, true);
  const sent = packetsOf(pcm, { delay: (i) => (i * 7919) % 37 });
  const dropped = new Set([40, 41, 97]);
  const pkts = sent.filter((_, i) => !dropped.has(i));
  [pkts[60], pkts[61]] = [pkts[61]!, pkts[60]!];
  const run = (rate: 8000 | 16000, skip: (k: number) => boolean): (Int16Array | null)[] => {
    const p = new native.PlayoutTest({ codec: 'PCMU', payloadType: 0, rate });
    const q = [...pkts].sort((a, b) => a.at - b.at);
    const frames: (Int16Array | null)[] = [];
    let qi = 0;
    for (let k = 0, now = 7; now < 3400; k++, now = 7 + k * 20) {
      while (qi < q.length && q[qi]!.at <= now) {
        const s = q[qi++]!;
        p.put(rtp(0, s.seq, s.ts, 0x1111, s.payload), s.at);
      }
      frames.push(p.tick(now, !skip(k)));
    }
    return frames;
  };
  const always = run(16000, () => false);
  const skipped = (k: number): boolean => (k >= 30 && k < 80) || (k >= 120 && k < 121);
  const lazy = run(16000, skipped);
  const at8k = run(8000, () => false);
  let compared = 0, compared8 = 0;
  for (let k = 0; k < always.length; k++) {
    if (skipped(k)) {
      t.same(lazy[k], at8k[k], `tick ${k}: the 8 kHz frame is the 8 kHz playout's`);
      compared8++;
    } else {
      if (always[k] && lazy[k]) compared++;
      t.same(lazy[k], always[k], `tick ${k}: the 16 kHz frame matches the continuous run`);
    }
  }
  t.ok(compared > 100 && compared8 === 51, `compared ${compared} 16 kHz and ${compared8} 8 kHz frames`);
  t.end();
});
