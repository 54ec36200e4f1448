/**
 * {@link VadWorker}: the main thread's handle on one VAD worker thread (src/vad/worker.ts) —
 * the batched Silero model of one native media engine, run off the JS thread.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { VadBatcherOptions, VadBatcherStats } from './batch.ts';
import type { HandoverOptions, HandoverStats } from './handover.ts';

export interface VadWorkerStats {
  /** The model is loaded in the worker. */
  ready: boolean;
  /** Hand-over scheduling in the worker (overload shed, waits); zeros until the first report. */
  handover: HandoverStats;
  /** Model runs in the worker; null until loaded. */
  batcher: VadBatcherStats | null;
}

export interface VadWorkerOptions {
  /** Engine whose hand-overs the worker consumes (`NativeEngine.vadKey()`); 0 = none (runs on request only). */
  engineKey: number;
  handover?: Partial<HandoverOptions>;
  batcher?: Partial<VadBatcherOptions>;
  /** A worker error (load failure, failed run, crash). */
  onError?: (message: string) => void;
  /** The thread ended without {@link VadWorker.close} (a crash). */
  onExit?: () => void;
  /**
   * nice value the worker thread asks for (−20..19; 0 = none). Falls back to normal scheduling
   * when not permitted.
   * @defaultValue {@link vadWorkerNice}() (`VOICE_VAD_NICE`, else −5)
   */
  nice?: number;
}

/**
 * nice value for VAD worker threads from `VOICE_VAD_NICE` (an integer −20..19; 0 = leave
 * it). Throws naming the variable on anything else.
 * @defaultValue -5
 */
export function vadWorkerNice(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.VOICE_VAD_NICE;
  if (raw === undefined || raw.trim() === '') return -5;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < -20 || v > 19) throw new Error(`VOICE_VAD_NICE must be an integer from -20 to 19, got '${raw}'`);
  return v;
}

const EMPTY: HandoverStats = Object.freeze({ handovers: 0, skipped: 0, queued: 0, maxWaitMs: 0, failed: 0 });

export class VadWorker {
  /** Resolves once the worker loaded the model; rejects when it could not. */
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private st: VadWorkerStats = { ready: false, handover: { ...EMPTY }, batcher: null };
  private readonly runs = new Map<number, { resolve: (p: Float32Array) => void; reject: (e: Error) => void }>();
  private seq = 0;
  private closing: Promise<void> | null = null;
  private exited = false;
  private niceValue = 0;
  private loadSettled = false;

  constructor(opts: VadWorkerOptions) {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./worker-boot.mjs', import.meta.url), {
      workerData: {
        entry: new URL('./worker.ts', import.meta.url).href, engineKey: opts.engineKey, control: port2,
        handover: opts.handover, batcher: opts.batcher, nice: opts.nice ?? vadWorkerNice(),
      },
      transferList: [port2],
      name: 'voice-vad',
      // The main thread's flags, less those a worker refuses (`--input-type`, for `node -e` scripts).
      execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')),
    });
    let ready!: () => void, failed!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => { ready = res; failed = rej; });
    this.ready.catch(() => undefined);
    const fail = (e: Error): void => {
      failed(e);
      for (const r of this.runs.values()) r.reject(e);
      this.runs.clear();
    };
    this.port.on('message', (m: { op: string; [k: string]: unknown }) => {
      if (m.op === 'ready') {
        this.st = { ...this.st, ready: true };
        this.niceValue = (m.nice as number | null) ?? 0;
        ready();
      } else if (m.op === 'stats') {
        this.st = { ready: this.st.ready, handover: m.handover as HandoverStats, batcher: m.batcher as VadBatcherStats | null };
      } else if (m.op === 'ran') {
        const r = this.runs.get(m.seq as number);
        this.runs.delete(m.seq as number);
        if (m.error) r?.reject(new Error(String(m.error)));
        else r?.resolve(m.probs as Float32Array);
        this.settleRef();
      } else if (m.op === 'error') {
        opts.onError?.(String(m.message));
        if (m.fatal) fail(new Error(String(m.message)));
      }
    });
    // The worker keeps the process alive only while its model loads or a runBatch is pending
    // (the port's ref); afterwards the engine's own ref does, while calls exist.
    this.worker.unref();
    const settled = (): void => {
      this.loadSettled = true;
      this.settleRef();
    };
    this.ready.then(settled, settled);
    this.worker.on('error', (err) => {
      opts.onError?.(`vad worker crashed: ${err.message}`);
      fail(err);
    });
    this.worker.on('exit', () => {
      if (!this.closing) opts.onExit?.();
      this.exited = true;
      this.st = { ...this.st, ready: false };
      fail(new Error('vad worker exited'));
    });
  }

  /** A session with VAD on (its windows get a model state). */
  addStream(id: number): void {
    if (!this.exited) this.port.postMessage({ op: 'add', id });
  }

  removeStream(id: number): void {
    if (!this.exited) this.port.postMessage({ op: 'remove', id });
  }

  /** nice value the worker thread runs at (0: normal; valid once ready). */
  get nice(): number {
    return this.niceValue;
  }

  /** Latest stats the worker reported (every 250 ms). */
  stats(): VadWorkerStats {
    return { ready: this.st.ready, handover: { ...this.st.handover }, batcher: this.st.batcher ? { ...this.st.batcher } : null };
  }

  /**
   * One batch through the worker's model (ids may repeat: k-th occurrences in the k-th run),
   * with the streams' state carried over as for hand-overs. For tests and tools; the media
   * path does not use it.
   */
  runBatch(ids: Uint32Array, windows: Float32Array): Promise<Float32Array> {
    if (this.exited) return Promise.reject(new Error('vad worker exited'));
    const seq = ++this.seq;
    this.port.ref();
    return new Promise((resolve, reject) => {
      this.runs.set(seq, { resolve, reject });
      this.port.postMessage({ op: 'run', seq, ids, windows });
    });
  }

  /** @internal tests: end the thread abruptly, as a crash would (onExit fires). */
  async terminateForTest(): Promise<void> {
    await this.worker.terminate();
  }

  private settleRef(): void {
    if (this.runs.size === 0 && this.loadSettled) this.port.unref();
  }

  /** Stop consuming hand-overs, release the model and end the thread. Idempotent. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        if (this.exited) return;
        const done = new Promise<void>((res) => {
          this.port.on('message', (m: { op: string }) => { if (m.op === 'closed') res(); });
          this.worker.once('exit', () => res());
        });
        this.port.ref(); // until the worker answered (at most 2 s)
        this.port.postMessage({ op: 'close' });
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([done, new Promise((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
        this.port.unref();
        await this.worker.terminate();
      })();
    }
    return this.closing;
  }
}
