// HandoverQueue: the media thread's 32 ms VAD hand-overs onto the real Silero model.
// A burst (what a stalled JS thread receives when it wakes) is run in full and delivered in
// order; sustained overload sheds hand-overs that waited too long, so results stay timely.
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { VadBatcher, vadGeometry } from '../../src/vad/batch.ts';
import { HandoverQueue } from '../../src/vad/handover.ts';

setLogLevel('silent');

// at the default model rate (VOICE_VAD_RATE, else 8 kHz): rows as the media thread cuts them
const batcher = await VadBatcher.create();
const SR = batcher.options.sampleRate;
const { window: VAD_WINDOW, frame: FRAME } = vadGeometry(SR);
t.teardown(() => batcher.close());
for (const id of [1, 2, 3]) batcher.addStream(id);
const run = (ids: Uint32Array, w: Float32Array): Promise<Float32Array> => batcher.runBatch(ids, w);

/** One hand-over of the three streams: a loud tone for stream 2, silence for the others. */
function handover(seq: number): { ids: Uint32Array; windows: Float32Array; seq: number } {
  const ids = Uint32Array.from([1, 2, 3]);
  const windows = new Float32Array(3 * VAD_WINDOW);
  for (let i = 0; i < VAD_WINDOW; i++) windows[VAD_WINDOW + i] = 0.3 * Math.sin((2 * Math.PI * 440 * (seq * FRAME + i)) / SR);
  return { ids, windows, seq };
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('a burst after a stall: every hand-over is run and delivered in order', async (t) => {
  const got: { ids: Uint32Array; probs: Float32Array }[] = [];
  const sent: Uint32Array[] = [];
  const q = new HandoverQueue(run, (ids, probs) => got.push({ ids, probs }));
  for (let k = 0; k < 12; k++) {
    const h = handover(k);
    sent.push(h.ids);
    q.push(h.ids, h.windows);
  }
  while (q.backlog > 0) await sleep(5);
  t.equal(got.length, 12, 'all twelve delivered');
  t.ok(got.every((g, k) => g.ids === sent[k]), 'in hand-over order');
  t.ok(got.every((g) => g.probs.every((p) => Number.isFinite(p))), 'every row has a real probability');
  const st = q.stats();
  t.equal(st.skipped, 0, 'none answered unknown');
  t.equal(st.queued, 10, 'ten waited for a run slot (two in flight at once)');
});

t.test('sustained overload: old hand-overs are answered NaN, latency stays bounded', async (t) => {
  // A model that needs 70 ms per run against a 32 ms tick (hundreds of calls on a slow box).
  // Runs are serial, like the one model session.
  let chain: Promise<unknown> = Promise.resolve();
  const slow = (ids: Uint32Array, w: Float32Array): Promise<Float32Array> => {
    const p = chain.then(async () => {
      const r = await run(ids, w);
      await sleep(70);
      return r;
    });
    chain = p;
    return p;
  };
  const lat: number[] = [];
  const at = new Map<Uint32Array, number>();
  let nan = 0;
  const q = new HandoverQueue(slow, (ids, probs) => {
    lat.push(performance.now() - at.get(ids)!);
    if (probs.some((p) => Number.isNaN(p))) nan++;
  }, { maxWaitMs: 96 });
  for (let k = 0; k < 40; k++) {
    const h = handover(k);
    at.set(h.ids, performance.now());
    q.push(h.ids, h.windows);
    await sleep(32);
  }
  while (q.backlog > 0) await sleep(10);
  const st = q.stats();
  t.equal(lat.length, 40, 'every hand-over answered (the media thread needs one result per window)');
  t.ok(st.skipped > 0 && nan === st.skipped, `overload shed ${st.skipped} of 40 as unknown`);
  t.ok(st.skipped < 40, 'but still ran what it could');
  const worst = Math.max(...lat);
  t.ok(worst < 96 + 3 * 70 + 150, `worst arrival → result ${worst.toFixed(0)} ms (bounded, no growing backlog)`);
});

t.test('before the model loads, and when a run fails: NaN, in order, and the queue keeps going', async (t) => {
  const got: Float32Array[] = [];
  const errors: string[] = [];
  const q = new HandoverQueue(null, (_ids, probs) => got.push(probs), {}, (e) => errors.push(e.message));
  q.push(Uint32Array.from([1]), new Float32Array(VAD_WINDOW));
  t.equal(got.length, 1, 'answered at once while not loaded');
  t.ok(Number.isNaN(got[0]![0]!));
  let calls = 0;
  q.setRun(async (ids, w) => {
    if (calls++ === 0) throw new Error('model blew up');
    return run(ids, w);
  });
  q.push(Uint32Array.from([1]), new Float32Array(VAD_WINDOW));
  q.push(Uint32Array.from([1]), new Float32Array(VAD_WINDOW));
  while (q.backlog > 0) await sleep(5);
  t.equal(got.length, 3);
  t.ok(Number.isNaN(got[1]![0]!), 'the failed run is answered NaN');
  t.ok(Number.isFinite(got[2]![0]!), 'the next one runs');
  t.same(errors, ['model blew up'], 'the failure is reported');
  t.equal(q.stats().failed, 1);
  t.throws(() => new HandoverQueue(run, () => undefined, { maxInFlight: 0 }), /maxInFlight/);
});
