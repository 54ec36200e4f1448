/**
 * Benchmark: Silero VAD cost, batched vs per stream, and false barge-in rate.
 *
 *   npm run bench -- vad [--streams 50,200,400] [--ticks 31] [--sr 16000|8000|8000,16000] [--cost-only]
 *     (VAD_BENCH_DEBUG=1: per-item barge-in times)
 *
 * 1. Cost. B streams of real speech windows (the test corpus, cut by the native FrameCutter).
 *    batched:    one VadBatcher run per 32 ms tick with input [B, 576], state [2, B, 128];
 *    per-stream: B runs of [1, 576] per tick (one session run per stream, each with its own state).
 *    Reported as CPU µs (process.cpuUsage: onnxruntime runs off the JS thread) and wall µs per
 *    stream per second of audio, and the per-stream/batched ratio, in the same run. `core_share`
 *    = wall time per tick / 32 ms: the share of one core the VAD needs at that load.
 *    `--sr` picks the model rate(s) of this part: 16000 (rows of 64 + 512) or 8000 (Silero v5's
 *    8 kHz mode, rows of 32 + 256); with two rates both are measured in the same run,
 *    interleaved per stream count (`by_sr` in the JSON). The 8 kHz windows are the corpus items
 *    resampled to 8 kHz (test/audio/pipeline.ts cutWindows8k).
 *    Part 2 runs at VOICE_VAD_RATE (16000 unless set); `--cost-only` skips it.
 * 2. Barge-in policy on the real-audio corpus with the agent speaking (native TurnState, default
 *    tunables): false_barge_in_rate = noise/backchannel items whose barge-in became a turn (the
 *    agent lost its prompt); pause_rate = items that paused the agent at all (BargeIn, later
 *    recovered by FalseInterruption); speech items' barge-in decision latency from acoustic onset
 *    (VAD + state machine only; no network/jitter buffer). Also a sweep of minInterruptionMs.
 *
 * Last stdout line: {"bench":"vad","batched_us_per_stream_s":{..},"per_stream_us_per_stream_s":{..},
 *   "ratio":{..},"false_barge_in_rate":..,...}
 */
import { parseArgs } from 'node:util';
import { setLogLevel } from '../../../src/ops/log.ts';
import { VAD_FRAME_MS, VadBatcher, type VadSampleRate } from '../../../src/vad/batch.ts';
import { TurnEvent, resolveTurnTunables, type TurnTunables } from '../../../src/vad/policy.ts';
import { buildCorpus, readItem, type CorpusItem } from '../../audio/corpus.ts';
import { cutWindows, cutWindows8k, probabilities, turnEvents } from '../../audio/pipeline.ts';

setLogLevel('warn');
const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '50,200,400' },
    ticks: { type: 'string', default: '31' },
    sr: { type: 'string', default: '16000' },
    'cost-only': { type: 'boolean', default: false },
  },
});
const STREAMS = values.streams.split(',').map(Number);
const TICKS = Number(values.ticks);
const RATES = values.sr.split(',').map((x) => {
  const r = Number(x.trim());
  if (r !== 8000 && r !== 16000) throw new Error(`--sr: 8000 or 16000 (comma-separated), got '${x}'`);
  return r as VadSampleRate;
});

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const r1 = (x: number): number => Math.round(x * 10) / 10;
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

const items = buildCorpus();
const pool16: Float32Array[] = [];
for (const it of items.filter((i) => i.kind === 'speech').slice(0, 24)) pool16.push(...cutWindows(it));
const pool8: Float32Array[] = [];
for (const it of items.filter((i) => i.kind === 'speech').slice(0, 24)) pool8.push(...cutWindows8k(it));
const poolOf = (b: VadBatcher): Float32Array[] => (b.options.sampleRate === 8000 ? pool8 : pool16);

/** Frame for stream s at tick t (streams are offset into the pool so batches mix speech and pauses). */
const frameOf = (b: VadBatcher, s: number, t: number): Float32Array => {
  const pool = poolOf(b);
  return pool[(s * 37 + t) % pool.length]!;
};

async function costBatched(b: VadBatcher, B: number): Promise<{ cpu: number; wall: number }> {
  const ids = Array.from({ length: B }, (_, i) => i + 1);
  ids.forEach((id) => b.addStream(id));
  const W = b.window;
  const packed = new Float32Array(B * W);
  const fill = (t: number): void => ids.forEach((_, s) => packed.set(frameOf(b, s, t), s * W));
  fill(0);
  await b.runBatch(ids, packed); // warm-up
  let wall = 0;
  const c0 = process.cpuUsage();
  for (let t = 0; t < TICKS; t++) {
    fill(t); // packing is the native side's job; not timed
    const w0 = performance.now();
    await b.runBatch(ids, packed);
    wall += performance.now() - w0;
  }
  const c = process.cpuUsage(c0);
  ids.forEach((id) => b.removeStream(id));
  return { cpu: c.user + c.system, wall: wall * 1000 };
}

async function costPerStream(b: VadBatcher, B: number): Promise<{ cpu: number; wall: number }> {
  const ids = Array.from({ length: B }, (_, i) => i + 1);
  ids.forEach((id) => b.addStream(id));
  await b.runBatch([1], frameOf(b, 0, 0));
  let wall = 0;
  const c0 = process.cpuUsage();
  for (let t = 0; t < TICKS; t++) {
    const w0 = performance.now();
    for (let s = 0; s < B; s++) await b.runBatch([ids[s]!], frameOf(b, s, t));
    wall += performance.now() - w0;
  }
  const c = process.cpuUsage(c0);
  ids.forEach((id) => b.removeStream(id));
  return { cpu: c.user + c.system, wall: wall * 1000 };
}

const audioS = (TICKS * VAD_FRAME_MS) / 1000;
interface Cost {
  batched: Record<string, number>;
  perStream: Record<string, number>;
  ratio: Record<string, number>;
  wallBatched: Record<string, number>;
  wallPer: Record<string, number>;
  coreShare: Record<string, number>;
}
const bySr = new Map<VadSampleRate, Cost>();
const batchers = new Map<VadSampleRate, VadBatcher>();
for (const sr of RATES) {
  batchers.set(sr, await VadBatcher.create({ sampleRate: sr }));
  bySr.set(sr, { batched: {}, perStream: {}, ratio: {}, wallBatched: {}, wallPer: {}, coreShare: {} });
}
console.log(`VAD cost, ${TICKS} ticks (${audioS.toFixed(2)} s of audio) per stream`);
console.log('   sr  streams  batched cpu µs/stream/s  per-stream cpu µs/stream/s  ratio  batched wall/tick  core share');
for (const B of STREAMS) {
  for (const sr of RATES) {
    const b = batchers.get(sr)!;
    const c = bySr.get(sr)!;
    const bt = await costBatched(b, B);
    const ps = await costPerStream(b, B);
    const k = String(B);
    c.batched[k] = r1(bt.cpu / (B * audioS));
    c.perStream[k] = r1(ps.cpu / (B * audioS));
    c.ratio[k] = r1(ps.cpu / bt.cpu);
    c.wallBatched[k] = r1(bt.wall / (B * audioS));
    c.wallPer[k] = r1(ps.wall / (B * audioS));
    c.coreShare[k] = r3(bt.wall / TICKS / 1000 / VAD_FRAME_MS);
    console.log(
      `${String(sr).padStart(5)}  ${k.padStart(7)}  ${String(c.batched[k]).padStart(23)}  ${String(c.perStream[k]).padStart(26)}  ${String(c.ratio[k]).padStart(5)}x` +
        `  ${(bt.wall / TICKS / 1000).toFixed(2).padStart(14)} ms  ${(c.coreShare[k]! * 100).toFixed(0).padStart(8)} %`,
    );
  }
}
for (const b of batchers.values()) await b.close();
const head = bySr.get(RATES.includes(16000) ? 16000 : RATES[0]!)!;
const { batched, perStream, ratio, wallBatched, wallPer, coreShare } = head;
const costJson = {
  bench: 'vad',
  ticks: TICKS,
  sample_rates: RATES,
  batched_us_per_stream_s: batched,
  per_stream_us_per_stream_s: perStream,
  ratio,
  wall_batched_us_per_stream_s: wallBatched,
  wall_per_stream_us_per_stream_s: wallPer,
  core_share_batched: coreShare,
  by_sr: Object.fromEntries([...bySr].map(([sr, c]) => [String(sr), {
    batched_us_per_stream_s: c.batched, per_stream_us_per_stream_s: c.perStream, ratio: c.ratio,
    wall_batched_us_per_stream_s: c.wallBatched, core_share_batched: c.coreShare,
  }])),
};
if (values['cost-only']) {
  console.log(JSON.stringify(costJson));
  process.exit(0);
}

// ---- barge-in policy on the corpus ----
const b = await VadBatcher.create();
const probs = await probabilities(b, items);
await b.close();
const idx = new Map(items.map((it, i) => [it.name, i] as const));

/**
 * Acoustic onset of an item's speech (ms): start of the first run of three 10 ms blocks of its
 * clean twin above -40 dBFS (a lone click at the start of a flite clip does not count).
 */
function onsetMs(it: CorpusItem): number {
  const clean = items[idx.get(it.name.replace(/-[a-z]+noise\d+$/, '-clean'))!]!;
  const pcm = readItem(clean);
  const thr = 32768 * 10 ** (-40 / 20);
  let run = 0;
  for (let i = 0; i + 160 <= pcm.length; i += 160) {
    let e = 0;
    for (let j = i; j < i + 160; j++) e += pcm[j]! * pcm[j]!;
    run = Math.sqrt(e / 160) > thr ? run + 1 : 0;
    if (run === 3) return ((i - 320) / 16000) * 1000;
  }
  return NaN;
}

function policy(tun: Partial<TurnTunables>): Record<string, number> {
  const neg = items.map((it, i) => [it, i] as const).filter(([it]) => it.kind === 'nonspeech' || it.kind === 'backchannel');
  let paused = 0;
  let lost = 0;
  for (const [, i] of neg) {
    const ev = turnEvents(probs[i]!, { agent: true }, tun);
    if (ev.some((e) => e.events & TurnEvent.BargeIn)) paused++;
    if (ev.some((e) => e.events & TurnEvent.SpeechEnd)) lost++;
  }
  const lat: number[] = [];
  let missed = 0;
  let wronglyResumed = 0;
  const speech = items.map((it, i) => [it, i] as const).filter(([it]) => it.kind === 'speech');
  for (const [it, i] of speech) {
    const ev = turnEvents(probs[i]!, { agent: true }, tun);
    const bi = ev.find((e) => e.events & TurnEvent.BargeIn);
    if (!bi) {
      missed++;
      continue;
    }
    if (ev.some((e) => e.events & TurnEvent.FalseInterruption)) wronglyResumed++;
    lat.push((bi.frame + 1) * VAD_FRAME_MS - onsetMs(it));
    if (process.env.VAD_BENCH_DEBUG) console.log(it.name, Math.round(onsetMs(it)), (bi.frame + 1) * VAD_FRAME_MS);
  }
  return {
    negatives: neg.length,
    false_barge_in_rate: r3(lost / neg.length),
    pause_rate: r3(paused / neg.length),
    speech_items: speech.length,
    missed_barge_in_rate: r3(missed / speech.length),
    speech_wrongly_resumed_rate: r3(wronglyResumed / speech.length),
    decision_latency_p50_ms: Math.round(pct(lat, 50)),
    decision_latency_p95_ms: Math.round(pct(lat, 95)),
  };
}

const main = policy({});
const dflt = resolveTurnTunables({}, b.options.sampleRate);
console.log(`\nBarge-in policy at ${b.options.sampleRate} Hz, default tunables (minInterruptionMs=${dflt.minInterruptionMs}, falseInterruptionMinSpeechMs=${dflt.falseInterruptionMinSpeechMs}, deactivationThreshold=${dflt.deactivationThreshold}):`);
console.log(main);
const sweep: Record<string, Record<string, number>> = {};
console.log('\nminInterruptionMs  false barge-in  pause rate  missed  latency p50/p95 ms');
for (const m of [150, 200, 300, 400, 500]) {
  const r = policy({ minInterruptionMs: m });
  sweep[String(m)] = r;
  console.log(`${String(m).padStart(17)}  ${String(r.false_barge_in_rate).padStart(14)}  ${String(r.pause_rate).padStart(10)}  ${String(r.missed_barge_in_rate).padStart(6)}  ${r.decision_latency_p50_ms}/${r.decision_latency_p95_ms}`);
}

console.log(JSON.stringify({
  ...costJson,
  policy_sample_rate: b.options.sampleRate,
  false_barge_in_rate: main.false_barge_in_rate,
  pause_rate: main.pause_rate,
  missed_barge_in_rate: main.missed_barge_in_rate,
  barge_in_decision_latency_ms: { p50: main.decision_latency_p50_ms, p95: main.decision_latency_p95_ms },
  negatives: main.negatives,
  sweep_min_interruption_ms: sweep,
}));
