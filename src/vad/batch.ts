/**
 * Batched Silero VAD v5 inference for every live call.
 *
 * One onnxruntime-node session (one intra-op thread) serves all calls: once
 * per 32 ms tick the frames of all streams that have one form a single run
 * with `input [B, 288]` (32 samples of context + 256 new at 8 kHz, the default
 * rate) or `[B, 576]` (64 + 512 at 16 kHz, `VOICE_VAD_RATE=16000`) and
 * `state [2, B, 128]`, gathered from each stream's state slot and scattered
 * back afterwards. A per-stream session would pay the run overhead B times
 * per tick (see `npm run bench -- vad`).
 *
 * Streams join and leave between ticks. A joining stream starts from zero
 * state in a zeroed slot; a leaving stream's slot is freed at once, and the
 * result of a run still in flight for it is discarded (never written into a
 * slot that another stream may have taken). Runs are serialised: a tick that
 * starts while the previous run is in flight waits for it.
 *
 * Two ways in:
 * - `submit(id, window)` per stream, then `runTick()` once per tick (JS-side
 *   framing, tests, benchmarks);
 * - `runBatch(ids, windows)` with the batch already packed (`B × 288` or
 *   `B × 576` float32), the shape the native media thread hands over per tick.
 */
import * as ort from 'onnxruntime-node';
import { existsSync } from 'node:fs';
import { logger } from '../ops/log.ts';
import { SILERO_VAD_MODEL_PATH } from './model.ts';
import { DEFAULT_VAD_SAMPLE_RATE, vadSampleRate, type VadSampleRate } from './rate.ts';

export { DEFAULT_VAD_SAMPLE_RATE, vadSampleRate, type VadSampleRate };

const log = logger('vad');

/** Sample rate of the model input. */
export const VAD_SAMPLE_RATE = 16000;
/** New samples per frame (32 ms at 16 kHz). */
export const VAD_FRAME = 512;
/** Context samples prepended to each frame. */
export const VAD_CONTEXT = 64;
/** Samples per model input row. */
export const VAD_WINDOW = VAD_FRAME + VAD_CONTEXT;
/** Duration of one frame (one tick), ms. */
export const VAD_FRAME_MS = 32;
/** New samples per frame at 8 kHz (32 ms). */
export const VAD_FRAME_8K = 256;
/** Context samples per frame at 8 kHz. */
export const VAD_CONTEXT_8K = 32;
/** Samples per model input row at 8 kHz. */
export const VAD_WINDOW_8K = VAD_FRAME_8K + VAD_CONTEXT_8K;

/** Frame, context and row length at a model rate (32 ms frames at both). */
export function vadGeometry(sr: VadSampleRate): { frame: number; context: number; window: number } {
  return sr === 8000
    ? { frame: VAD_FRAME_8K, context: VAD_CONTEXT_8K, window: VAD_WINDOW_8K }
    : { frame: VAD_FRAME, context: VAD_CONTEXT, window: VAD_WINDOW };
}

/** Recurrent state floats per stream: 2 × 128. */
export const VAD_STATE = 256;
const HALF = 128;

/** Stream identity: the media session id. */
export type StreamId = number;

export interface VadBatcherOptions {
  /**
   * Path of the Silero VAD v5 ONNX model.
   * @defaultValue `models/silero_vad_v5.onnx` (installed by `src/vad/install-model.ts`)
   */
  modelPath: string;
  /**
   * Frames a stream may queue between two ticks via submit(); beyond it the
   * oldest queued frame is dropped (counted in stats().dropped).
   * @defaultValue 4
   */
  maxBacklog: number;
  /**
   * onnxruntime intra-op threads. One keeps the second core free for the
   * media thread and JS; batching, not threads, is what makes VAD cheap.
   * @defaultValue 1
   */
  intraOpNumThreads: number;
  /**
   * A stream's recurrent state is zeroed after this many consecutive quiet frames: rated
   * below {@link QUIET_PROB} by the model and quieter than {@link QUIET_DBFS} (0 = never).
   * Silero v5's state drifts over long non-speech: after 20 s of a silent or hissing line
   * (digital zero to -50 dBFS) slt's "Yes, that is correct." fell from 35 voiced frames to
   * 12-20 and "Yes" from 0.95 to ~0.3, so a caller answering after a long prompt was not
   * heard (src/vad/README.md). After 1-2 s of silence a fresh state loses nothing. Loud
   * non-speech (hold music, tones) keeps its state: a fresh state spikes on it.
   * @defaultValue 32 (about 1 s)
   */
  quietResetFrames: number;
  /**
   * Rate of the windows the model is given: 16000 (rows of 64 + 512 samples) or 8000 (rows of
   * 32 + 256 samples, Silero v5's 8 kHz mode). Both are 32 ms per frame. Must match the
   * windows the media thread cuts, which follow `VOICE_VAD_RATE` as this default does.
   * @defaultValue {@link vadSampleRate}() (`VOICE_VAD_RATE`, else 8000)
   */
  sampleRate: VadSampleRate;
}

/** Probability below which a frame counts toward {@link VadBatcherOptions.quietResetFrames}. */
export const QUIET_PROB = 0.15;
/** Level (dBFS of the frame's new samples) below which a frame counts toward quietResetFrames. */
export const QUIET_DBFS = -45;
const QUIET_MEAN_SQUARE = 10 ** (QUIET_DBFS / 10);

export const VAD_BATCHER_DEFAULTS: Readonly<VadBatcherOptions> = Object.freeze({
  modelPath: SILERO_VAD_MODEL_PATH,
  maxBacklog: 4,
  intraOpNumThreads: 1,
  quietResetFrames: 32,
  sampleRate: DEFAULT_VAD_SAMPLE_RATE,
});

export interface VadBatcherStats {
  streams: number;
  /** Model runs so far. */
  runs: number;
  /** Stream-frames inferred so far. */
  frames: number;
  /** Frames dropped because a stream's backlog overflowed. */
  dropped: number;
  /** Duration of the last run (gather + inference + scatter), µs. */
  lastRunUs: number;
  /** Total run time, µs. */
  totalRunUs: number;
  /** Largest batch so far. */
  maxBatch: number;
  /** Stream states zeroed after a quiet stretch (see quietResetFrames). */
  quietResets: number;
}

interface Stream {
  id: StreamId;
  slot: number;
  queue: Float32Array[];
  /** consecutive quiet frames (below QUIET_PROB and QUIET_DBFS) */
  quiet: number;
}

export class VadBatcher {
  readonly options: Readonly<VadBatcherOptions>;
  private session: ort.InferenceSession | null;
  private readonly sr: ort.Tensor;
  /** Row length of a window at the model rate (576 at 16 kHz, 288 at 8 kHz). */
  readonly window: number;
  private readonly frame: number;
  private readonly context: number;
  private readonly streams = new Map<StreamId, Stream>();
  private pool = new Float32Array(64 * VAD_STATE);
  private freeSlots: number[] = [];
  private nextSlot = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private inBuf = new Float32Array(0);
  private stBuf = new Float32Array(0);
  private readonly st: VadBatcherStats = {
    streams: 0, runs: 0, frames: 0, dropped: 0, lastRunUs: 0, totalRunUs: 0, maxBatch: 0, quietResets: 0,
  };

  private constructor(session: ort.InferenceSession, opts: VadBatcherOptions) {
    this.session = session;
    this.options = Object.freeze({ ...opts });
    const g = vadGeometry(opts.sampleRate);
    this.window = g.window;
    this.frame = g.frame;
    this.context = g.context;
    this.sr = new ort.Tensor('int64', BigInt64Array.from([BigInt(opts.sampleRate)]), []);
  }

  /** Load the model; throws a clear Error when it is missing (run src/vad/install-model.ts). */
  static async create(opts: Partial<VadBatcherOptions> = {}): Promise<VadBatcher> {
    const o: VadBatcherOptions = { ...VAD_BATCHER_DEFAULTS, sampleRate: opts.sampleRate ?? vadSampleRate() };
    for (const k of Object.keys(VAD_BATCHER_DEFAULTS) as (keyof VadBatcherOptions)[]) {
      if (opts[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = opts[k];
    }
    if (!Number.isInteger(o.maxBacklog) || o.maxBacklog < 1) throw new Error('VadBatcher: maxBacklog must be an integer >= 1');
    if (!Number.isInteger(o.quietResetFrames) || o.quietResetFrames < 0) throw new Error('VadBatcher: quietResetFrames must be an integer >= 0');
    if (o.sampleRate !== 8000 && o.sampleRate !== 16000) throw new Error(`VadBatcher: sampleRate must be 8000 or 16000, got ${String(o.sampleRate)}`);
    if (!existsSync(o.modelPath)) {
      throw new Error(`VAD model ${o.modelPath} is missing; install it with: node --import tsx src/vad/install-model.ts`);
    }
    const session = await ort.InferenceSession.create(o.modelPath, {
      intraOpNumThreads: o.intraOpNumThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    log.info('vad model loaded', { model: o.modelPath, threads: o.intraOpNumThreads });
    return new VadBatcher(session, o);
  }

  get size(): number {
    return this.streams.size;
  }

  hasStream(id: StreamId): boolean {
    return this.streams.has(id);
  }

  /** Start a stream with zero state. Throws if `id` is already live. */
  addStream(id: StreamId): void {
    if (this.streams.has(id)) throw new Error(`VAD stream ${id} already exists`);
    const slot = this.allocSlot();
    this.streams.set(id, { id, slot, queue: [], quiet: 0 });
    this.st.streams = this.streams.size;
  }

  /** Drop a stream and free its slot; a run in flight for it is discarded. Returns false if unknown. */
  removeStream(id: StreamId): boolean {
    const s = this.streams.get(id);
    if (!s) return false;
    this.streams.delete(id);
    this.freeSlots.push(s.slot);
    this.st.streams = this.streams.size;
    return true;
  }

  /** Zero a stream's state and queued frames (e.g. after hold, or a long gap in inbound audio). */
  resetStream(id: StreamId): void {
    const s = this.require(id);
    s.queue.length = 0;
    this.pool.fill(0, s.slot * VAD_STATE, (s.slot + 1) * VAD_STATE);
  }

  /** Queue one window (576 samples at 16 kHz, 288 at 8 kHz; copied) for the next tick. */
  submit(id: StreamId, window: Float32Array): void {
    if (window.length !== this.window) throw new Error(`VAD window must have ${this.window} samples, got ${window.length}`);
    const s = this.require(id);
    if (s.queue.length >= this.options.maxBacklog) {
      s.queue.shift();
      this.st.dropped++;
    }
    s.queue.push(Float32Array.from(window));
  }

  /** Frames waiting for a tick, all streams. */
  get backlog(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.queue.length;
    return n;
  }

  /**
   * One model run over the oldest queued frame of every stream that has one.
   * Resolves to each such stream's speech probability. Streams removed while
   * the run was in flight are left out.
   */
  runTick(): Promise<Map<StreamId, number>> {
    return this.enqueue(async () => {
      const picked: Stream[] = [];
      for (const s of this.streams.values()) if (s.queue.length > 0) picked.push(s);
      const out = new Map<StreamId, number>();
      if (picked.length === 0) return out;
      const B = picked.length;
      const W = this.window;
      const input = this.buffer('in', B * W);
      for (let i = 0; i < B; i++) input.set(picked[i]!.queue.shift()!, i * W);
      const probs = await this.infer(picked, input);
      for (let i = 0; i < B; i++) if (this.streams.get(picked[i]!.id) === picked[i]) out.set(picked[i]!.id, probs[i]!);
      return out;
    });
  }

  /**
   * One model run over a packed batch: `windows` holds `ids.length` rows of
   * {@link window} floats (576 at 16 kHz, 288 at 8 kHz), row i belonging to stream ids[i]. Resolves to one probability
   * per row, NaN for ids that are not live (never added, or removed before the
   * run). An id may appear once per batch.
   */
  runBatch(ids: ArrayLike<StreamId>, windows: Float32Array): Promise<Float32Array> {
    const B = ids.length;
    const W = this.window;
    if (windows.length !== B * W) {
      return Promise.reject(new Error(`runBatch: expected ${B}×${W} floats, got ${windows.length}`));
    }
    const seen = new Set<StreamId>();
    for (let i = 0; i < B; i++) {
      if (seen.has(ids[i]!)) return Promise.reject(new Error(`runBatch: stream ${ids[i]} appears twice`));
      seen.add(ids[i]!);
    }
    return this.enqueue(async () => {
      const result = new Float32Array(B).fill(Number.NaN);
      const rows: number[] = [];
      const picked: Stream[] = [];
      for (let i = 0; i < B; i++) {
        const s = this.streams.get(ids[i]!);
        if (s) {
          rows.push(i);
          picked.push(s);
        }
      }
      if (picked.length === 0) return result;
      let input: Float32Array;
      if (picked.length === B) input = windows;
      else {
        input = this.buffer('in', picked.length * W);
        rows.forEach((r, j) => input.set(windows.subarray(r * W, (r + 1) * W), j * W));
      }
      const probs = await this.infer(picked, input);
      rows.forEach((r, j) => {
        if (this.streams.get(picked[j]!.id) === picked[j]) result[r] = probs[j]!;
      });
      return result;
    });
  }

  stats(): VadBatcherStats {
    return { ...this.st };
  }

  /** Wait for the run in flight, then release the session. Idempotent. */
  async close(): Promise<void> {
    const s = this.session;
    if (!s) return;
    this.session = null;
    await this.chain.catch(() => undefined);
    this.streams.clear();
    await s.release();
  }

  // ---- internals ----

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private require(id: StreamId): Stream {
    const s = this.streams.get(id);
    if (!s) throw new Error(`VAD stream ${id} does not exist`);
    return s;
  }

  private allocSlot(): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.nextSlot++;
      if (slot * VAD_STATE >= this.pool.length) {
        const grown = new Float32Array(this.pool.length * 2);
        grown.set(this.pool);
        this.pool = grown;
      }
    }
    this.pool.fill(0, slot * VAD_STATE, (slot + 1) * VAD_STATE);
    return slot;
  }

  /** A reusable buffer of exactly n floats (reallocated when the batch size changes). */
  private buffer(which: 'in' | 'st', n: number): Float32Array {
    if (which === 'in') {
      if (this.inBuf.length !== n) this.inBuf = new Float32Array(n);
      return this.inBuf;
    }
    if (this.stBuf.length !== n) this.stBuf = new Float32Array(n);
    return this.stBuf;
  }

  /** Gather state, run, scatter state back to streams that are still live. Returns B probabilities. */
  private async infer(picked: Stream[], input: Float32Array): Promise<Float32Array> {
    const session = this.session;
    if (!session) throw new Error('VadBatcher is closed');
    const t0 = performance.now();
    const B = picked.length;
    const state = this.buffer('st', 2 * B * HALF);
    const pool = this.pool;
    for (let i = 0; i < B; i++) {
      const base = picked[i]!.slot * VAD_STATE;
      state.set(pool.subarray(base, base + HALF), i * HALF);
      state.set(pool.subarray(base + HALF, base + VAD_STATE), (B + i) * HALF);
    }
    const r = await session.run({
      input: new ort.Tensor('float32', input, [B, this.window]),
      state: new ort.Tensor('float32', state, [2, B, HALF]),
      sr: this.sr,
    });
    const probs = Float32Array.from(r.output!.data as Float32Array);
    const stateN = r.stateN!.data as Float32Array;
    const live = this.pool; // may have grown during the run; slots keep their offsets
    const reset = this.options.quietResetFrames;
    for (let i = 0; i < B; i++) {
      const s = picked[i]!;
      if (this.streams.get(s.id) !== s) continue; // left (or replaced) during the run
      const base = s.slot * VAD_STATE;
      if (reset > 0) {
        s.quiet = probs[i]! < QUIET_PROB && quietWindow(input, i, this.window, this.context, this.frame) ? s.quiet + 1 : 0;
        if (s.quiet >= reset) {
          // a quiet stretch: start the next frames from a fresh state (see quietResetFrames)
          live.fill(0, base, base + VAD_STATE);
          s.quiet = 0;
          this.st.quietResets++;
          continue;
        }
      }
      live.set(stateN.subarray(i * HALF, (i + 1) * HALF), base);
      live.set(stateN.subarray((B + i) * HALF, (B + i + 1) * HALF), base + HALF);
    }
    const us = (performance.now() - t0) * 1000;
    this.st.runs++;
    this.st.frames += B;
    this.st.lastRunUs = us;
    this.st.totalRunUs += us;
    if (B > this.st.maxBatch) this.st.maxBatch = B;
    return probs;
  }
}

/** The new samples of row i of a packed batch (rows of `win`) are quieter than {@link QUIET_DBFS}. */
function quietWindow(input: Float32Array, i: number, win: number, context: number, frame: number): boolean {
  const base = i * win + context;
  let e = 0;
  for (let k = 0; k < frame; k++) {
    const v = input[base + k]!;
    e += v * v;
  }
  return e / frame < QUIET_MEAN_SQUARE;
}

/**
 * Run one media-thread hand-over whose ids may repeat (a session two or more windows behind
 * sends a catch-up window): the k-th occurrences go into the k-th run, in order, so every
 * stream's windows meet the model in the order they were cut. Probabilities in row order.
 */
export async function runGrouped(b: VadBatcher, ids: Uint32Array, windows: Float32Array): Promise<Float32Array> {
  const seen = new Map<number, number>();
  const groups: number[][] = [];
  for (let i = 0; i < ids.length; i++) {
    const k = seen.get(ids[i]!) ?? 0;
    seen.set(ids[i]!, k + 1);
    (groups[k] ??= []).push(i);
  }
  if (groups.length <= 1) return b.runBatch(ids, windows);
  const W = windows.length / ids.length;
  const out = new Float32Array(ids.length);
  const runs = groups.map((rows) => {
    const gi = Uint32Array.from(rows, (r) => ids[r]!);
    const gw = new Float32Array(rows.length * W);
    rows.forEach((r, j) => gw.set(windows.subarray(r * W, (r + 1) * W), j * W));
    return b.runBatch(gi, gw).then((p) => rows.forEach((r, j) => (out[r] = p[j]!)));
  });
  await Promise.all(runs);
  return out;
}
