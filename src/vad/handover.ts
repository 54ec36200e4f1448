/**
 * Scheduling of the media thread's 32 ms VAD hand-overs onto the model.
 *
 * The media thread ships one hand-over (ids + windows) per VAD tick whatever JS
 * is doing, and expects the probabilities back in hand-over order (its frame
 * count must stay aligned with the audio). Two very different situations make
 * hand-overs pile up on the JS side:
 *
 * - **a JS stall** (GC, a synchronous SQLite write, the process descheduled on a
 *   loaded box): several hand-overs are queued in the thread-safe function and
 *   arrive together when the thread wakes. Each one is cheap to run; they must
 *   all be run, or a whole utterance can be answered "unknown" and no turn forms.
 * - **overload** (a run takes longer than a tick, e.g. hundreds of calls on a
 *   slow box): running everything would make the results later and later.
 *
 * So at most `maxInFlight` runs are queued on the model at once; further
 * hand-overs wait here, and one that has waited longer than `maxWaitMs` since it
 * *reached JS* is answered NaN (unknown, counted in `skipped`) instead of run.
 * A burst after a stall arrives fresh and is run; under overload the backlog
 * ages and is shed, so result latency stays bounded.
 */

/** Runs the model over one hand-over; one probability per row. */
export type HandoverRun = (ids: Uint32Array, windows: Float32Array) => Promise<Float32Array>;
/** Receives each hand-over's probabilities, in hand-over order. */
export type HandoverDeliver = (ids: Uint32Array, probs: Float32Array) => void;

export interface HandoverOptions {
  /**
   * Hand-overs queued on the model at once (the model serialises runs anyway).
   * @defaultValue 2
   */
  maxInFlight: number;
  /**
   * A hand-over that waited this long in JS before its run could start is answered
   * NaN (unknown = silence) instead: the overload shed. Three ticks.
   * @defaultValue 96
   */
  maxWaitMs: number;
}

export const HANDOVER_DEFAULTS: Readonly<HandoverOptions> = Object.freeze({ maxInFlight: 2, maxWaitMs: 96 });

export interface HandoverStats {
  /** Hand-overs received. */
  handovers: number;
  /** Hand-overs answered NaN: model not loaded yet, or shed under overload. */
  skipped: number;
  /** Hand-overs that had to wait for a run slot (a burst or overload). */
  queued: number;
  /** Longest wait from arrival to the start of a run, ms. */
  maxWaitMs: number;
  /** Hand-overs whose run failed (answered NaN). */
  failed: number;
}

interface Entry {
  ids: Uint32Array;
  windows: Float32Array;
  at: number;
  probs: Float32Array | null;
}

export class HandoverQueue {
  private readonly opts: HandoverOptions;
  /** Every hand-over not yet delivered, in arrival order. */
  private readonly order: Entry[] = [];
  /** Hand-overs waiting for a run slot, in arrival order. */
  private readonly waiting: Entry[] = [];
  private inFlight = 0;
  private readonly st: HandoverStats = { handovers: 0, skipped: 0, queued: 0, maxWaitMs: 0, failed: 0 };

  /**
   * @param run the model, or null while it is not loaded (hand-overs are then answered NaN)
   * @param deliver where the results go (the media thread), in hand-over order
   */
  constructor(
    private run: HandoverRun | null,
    private readonly deliver: HandoverDeliver,
    opts: Partial<HandoverOptions> = {},
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.opts = { ...HANDOVER_DEFAULTS, ...opts };
    if (!(this.opts.maxInFlight >= 1)) throw new Error('HandoverQueue: maxInFlight must be ≥ 1');
    if (!(this.opts.maxWaitMs >= 0)) throw new Error('HandoverQueue: maxWaitMs must be ≥ 0');
  }

  /** Set (or clear) the model once it has loaded. */
  setRun(run: HandoverRun | null): void {
    this.run = run;
  }

  /** One hand-over from the media thread. */
  push(ids: Uint32Array, windows: Float32Array): void {
    this.st.handovers++;
    const e: Entry = { ids, windows, at: performance.now(), probs: null };
    this.order.push(e);
    if (!this.run) {
      this.st.skipped++;
      e.probs = nanFor(ids);
      this.flush();
      return;
    }
    if (this.inFlight >= this.opts.maxInFlight || this.waiting.length > 0) this.st.queued++;
    this.waiting.push(e);
    this.pump();
  }

  stats(): HandoverStats {
    return { ...this.st };
  }

  /** Hand-overs answered NaN so far (see {@link HandoverStats.skipped}). */
  get skipped(): number {
    return this.st.skipped;
  }

  /** Hand-overs received and not yet delivered. */
  get backlog(): number {
    return this.order.length;
  }

  private pump(): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting.length > 0) {
      const e = this.waiting.shift()!;
      const waited = performance.now() - e.at;
      if (waited > this.st.maxWaitMs) this.st.maxWaitMs = waited;
      const run = this.run;
      if (!run || waited > this.opts.maxWaitMs) {
        this.st.skipped++;
        e.probs = nanFor(e.ids);
        continue;
      }
      this.inFlight++;
      let p: Promise<Float32Array>;
      try {
        p = run(e.ids, e.windows);
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then((probs) => {
        e.probs = probs.length === e.ids.length ? probs : nanFor(e.ids);
      }, (err: Error) => {
        this.st.failed++;
        e.probs = nanFor(e.ids);
        this.onError(err);
      }).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    this.flush();
  }

  /** Deliver every finished hand-over at the head of the arrival order. */
  private flush(): void {
    while (this.order.length > 0 && this.order[0]!.probs) {
      const e = this.order.shift()!;
      try {
        this.deliver(e.ids, e.probs!);
      } catch (err) {
        this.onError(err as Error);
      }
    }
  }
}

function nanFor(ids: Uint32Array): Float32Array {
  return new Float32Array(ids.length).fill(Number.NaN);
}
