/**
 * The media engine: one per process. It owns a small pool of native media engines (shards),
 * each with its own media thread (its RTP sockets from its own port sub-range, its own 20 ms
 * send clock, the decoding of its inbound audio) and its own batched Silero VAD path: a VAD
 * worker thread (src/vad/worker.ts) that takes the shard's 32 ms hand-overs straight from
 * the media thread and answers them there, so the main JS thread only receives events.
 * Sessions are placed on the least-loaded shard ({@link MediaEngine.createSession}; `near`
 * keeps a session on another's shard, as bridging needs) and live in session.ts.
 */
import { availableParallelism } from 'node:os';
import { logger } from '../ops/log.ts';
import { HandoverQueue, type HandoverStats } from '../vad/handover.ts';
import { runGrouped, type VadBatcher, type VadBatcherStats } from '../vad/batch.ts';
import { VadWorker, vadWorkerNice } from '../vad/worker-host.ts';
import { resolveTurnTunables } from '../vad/policy.ts';
import { native, type NativeEngine, type NativeEvent } from './native.ts';
import {
  MediaSession, JITTER_DEFAULTS, opusParams, supportedCodecs, type SessionOptions,
} from './session.ts';

const log = logger('media');

export interface MediaEngineOptions {
  /**
   * Local address the RTP sockets bind to (numeric IPv4/IPv6), and the
   * address put into SDP by the call layer.
   * @defaultValue '127.0.0.1'
   */
  bindAddress: string;
  /**
   * A second local address for IPv6 media (numeric IPv6; sockets with IPV6_V6ONLY, from the
   * same port range): sessions created with `family: 6` bind here. Without it IPv6 media is
   * served only when `bindAddress` is itself IPv6 (`::` serves both families).
   * @defaultValue undefined (none)
   */
  bindAddress6?: string;
  /**
   * Lowest local RTP port. Sessions get even ports (RTP); the odd port above
   * each is left free for RTCP.
   * @defaultValue 40000
   */
  portMin: number;
  /**
   * Highest local RTP port (inclusive).
   * @defaultValue 40999
   */
  portMax: number;
  /**
   * Media threads (native engines, "shards"): sessions are spread over them, each shard with
   * its own clock, sockets (an equal, contiguous part of portMin..portMax) and VAD batch.
   * Fewer are used when the port range is too small to give each four ports.
   * @defaultValue `MEDIA_THREADS` from the environment, else the number of CPU cores
   */
  threads: number;
  /**
   * Run the Silero VAD of each shard on its own worker thread (true), or on the main JS
   * thread as before (false; the old path, kept for comparison).
   * @defaultValue true (`VOICE_VAD_WORKER=0` turns it off)
   */
  vadWorker: boolean;
}

/**
 * Media threads from the environment variable `MEDIA_THREADS` (an integer 1..64); unset or
 * empty: the number of CPU cores. Throws naming the variable on anything else.
 */
export function mediaThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.MEDIA_THREADS;
  if (raw === undefined || raw.trim() === '') return Math.max(1, Math.min(64, availableParallelism()));
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1 || v > 64) throw new Error(`MEDIA_THREADS must be an integer from 1 to 64, got '${raw}'`);
  return v;
}

/** Defaults of {@link MediaEngineOptions} (`threads` and `vadWorker` are read from the environment at create). */
export const MEDIA_ENGINE_DEFAULTS: Readonly<Omit<MediaEngineOptions, 'threads' | 'vadWorker'>> = Object.freeze({
  bindAddress: '127.0.0.1',
  portMin: 40000,
  portMax: 40999,
});

/**
 * SCHED_FIFO priority requested for the media thread, from the environment
 * variable `VOICE_MEDIA_RT_PRIORITY` (0 disables; without permission the
 * thread falls back to nice -10, then to normal scheduling).
 * @defaultValue 20
 */
export function mediaRtPriority(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.VOICE_MEDIA_RT_PRIORITY ?? 20);
  return Number.isInteger(v) && v >= 0 && v <= 99 ? v : 20;
}


/**
 * What the VAD path of a {@link MediaEngine} did so far, summed over the shards (worker
 * counts are as of their last report, at most 250 ms old). `maxWaitMs`, `lastRunUs` and
 * `maxBatch` are the largest of any shard.
 */
export interface MediaVadStats extends HandoverStats {
  /** The Silero model is loaded (on every shard). */
  ready: boolean;
  /** Live sessions with VAD on. */
  sessions: number;
  /** Model runs and timing (see VadBatcher). */
  batcher: VadBatcherStats | null;
  /** Where the model runs: one worker thread per shard, or the main JS thread. */
  mode: 'worker' | 'main';
}

export interface PacingStats {
  /** Packets measured since the last reset. */
  samples: number;
  /** Median lateness of a packet against its ideal 20 ms deadline, µs. */
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** One native media engine and what belongs to it. */
interface Shard {
  index: number;
  native: NativeEngine;
  /** Sessions on this shard (JS count). */
  sessions: number;
  portMin: number;
  portMax: number;
  /** Worker mode: the shard's VAD worker (started with the first VAD session). */
  worker: VadWorker | null;
  /**
   * Hand-overs that reach the main thread: all of them in main mode (run by the shared
   * batcher), in worker mode only those the worker did not take (before it attached, after it
   * died), answered unknown (NaN) so the media thread's count stays aligned.
   */
  queue: HandoverQueue;
}

export class MediaEngine {
  readonly options: Readonly<MediaEngineOptions>;
  private readonly shards: Shard[] = [];
  private closed = false;
  private readonly sessions = new Map<number, MediaSession>();
  private readonly shardOf = new Map<number, Shard>();
  private vadBatcher: VadBatcher | null = null;
  private vadLoading: Promise<void> | null = null;
  private readonly vadSessions = new Set<number>();
  private vadSkipWarned = 0;
  /** nice value of the VAD worker threads (`VOICE_VAD_NICE`, checked at start-up). */
  private readonly vadNice: number;

  private constructor(opts: MediaEngineOptions) {
    this.vadNice = opts.vadWorker ? vadWorkerNice() : 0;
    const ranges = splitPorts(opts.portMin, opts.portMax, opts.threads);
    this.options = Object.freeze({ ...opts, threads: ranges.length });
    try {
      ranges.forEach(([lo, hi], k) => {
        const nat = new native.Engine(
          {
            bindAddress: opts.bindAddress, ...(opts.bindAddress6 ? { bindAddress6: opts.bindAddress6 } : {}),
            portMin: lo, portMax: hi, rtPriority: mediaRtPriority(), idFirst: k + 1, idStride: ranges.length,
          },
          (events) => this.dispatch(shard, events),
        );
        const shard: Shard = {
          index: k, native: nat, sessions: 0, portMin: lo, portMax: hi, worker: null,
          queue: new HandoverQueue(null, (ids, probs) => { if (!this.closed) nat.vadResults(ids, probs); }, {},
            (err) => log.warn('vad run failed', { error: err.message })),
        };
        this.shards.push(shard);
      });
    } catch (err) {
      for (const s of this.shards) s.native.close();
      throw err;
    }
    log.info('media engine started', {
      bind: opts.bindAddress,
      bind6: opts.bindAddress6,
      ports: `${opts.portMin}-${opts.portMax}`,
      threads: this.shards.length,
      vad: opts.vadWorker ? 'worker' : 'main',
      scheduling: this.shards[0]!.native.scheduling(),
    });
  }

  /** Start the media threads. */
  static create(opts: Partial<MediaEngineOptions> = {}): MediaEngine {
    const o = { ...MEDIA_ENGINE_DEFAULTS } as MediaEngineOptions;
    for (const k of Object.keys(MEDIA_ENGINE_DEFAULTS) as (keyof typeof MEDIA_ENGINE_DEFAULTS)[]) {
      if (opts[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = opts[k];
    }
    if (opts.bindAddress6) o.bindAddress6 = opts.bindAddress6;
    o.threads = opts.threads ?? mediaThreads();
    if (!Number.isInteger(o.threads) || o.threads < 1 || o.threads > 64) throw new Error(`media engine: threads must be an integer from 1 to 64, got ${o.threads}`);
    o.vadWorker = opts.vadWorker ?? process.env.VOICE_VAD_WORKER !== '0';
    return new MediaEngine(o);
  }

  /**
   * Bind a new RTP session on the least-loaded media thread (or, with `near`, on that
   * session's thread: sessions to be bridged must share one); throws a clear Error when no
   * port is free or the engine is closed.
   */
  createSession(opts: SessionOptions & { near?: MediaSession }): MediaSession {
    if (this.closed) throw new Error('media engine is closed');
    if (!supportedCodecs.includes(opts.codec)) throw new Error(`codec ${opts.codec} is not compiled into the media addon`);
    const turn = opts.vad ? resolveTurnTunables(opts.vad === true ? {} : opts.vad) : null;
    const args = {
      codec: opts.codec,
      payloadType: opts.payloadType,
      telephoneEventPayloadType: opts.telephoneEventPayloadType,
      remoteAddress: opts.remote?.address,
      remotePort: opts.remote?.port,
      ...(opts.family ? { family: opts.family } : {}),
      rate: opts.deliverRate ?? 8000,
      jitter: { ...JITTER_DEFAULTS, ...opts.jitter },
      ...(opts.codec === 'opus' ? { opus: opusParams(opts.fmtp) } : {}),
      ...(opts.rtcpIntervalMs !== undefined ? { rtcpIntervalMs: opts.rtcpIntervalMs } : {}),
      ...(turn ? { vad: turn } : {}),
      ...(opts.inbandDtmf === false ? { inbandDtmf: false } : {}),
      ...(opts.srtp ? { srtp: opts.srtp } : {}),
    };
    let candidates: Shard[];
    if (opts.near) {
      const home = this.shardOf.get(opts.near.id);
      if (!home || this.sessions.get(opts.near.id) !== opts.near) throw new Error(`media session ${opts.near.id} (near) is closed`);
      candidates = [home];
    } else {
      candidates = [...this.shards].sort((a, b) => a.sessions - b.sessions || a.index - b.index);
    }
    let r: ReturnType<NativeEngine['createSession']> | null = null;
    let shard: Shard | null = null;
    let firstErr: unknown = null;
    for (const c of candidates) {
      try {
        r = c.native.createSession(args);
        shard = c;
        break;
      } catch (err) {
        firstErr ??= err; // e.g. this shard's port sub-range is full: try the next one
      }
    }
    if (!r || !shard) throw firstErr as Error;
    const s = new MediaSession(this, shard.native, r.id, r.localAddress, r.localPort, r.rtcpPort, opts.deliverRate ?? 8000, turn);
    this.sessions.set(r.id, s);
    this.shardOf.set(r.id, shard);
    shard.sessions++;
    if (turn) {
      this.vadSessions.add(r.id);
      if (this.options.vadWorker) {
        if (!shard.worker) this.startWorker(shard);
        shard.worker!.addStream(r.id);
      } else if (this.vadBatcher) {
        this.vadBatcher.addStream(r.id);
      } else {
        void this.vadReady().catch(() => undefined);
      }
    }
    log.debug('media session created', { session: r.id, thread: shard.index, local: `${r.localAddress}:${r.localPort}`, codec: opts.codec });
    return s;
  }

  /**
   * Outbound pacing error (send instant minus ideal deadline) since the last reset, all
   * sessions: samples summed, p50 the sample-weighted mean of the shards' p50, p99 and max the
   * worst shard's (a conservative bound; the exact merged distribution is {@link pacingHistogram}).
   */
  pacingStats(): PacingStats {
    const all = this.shards.map((s) => s.native.pacingStats());
    const samples = all.reduce((a, p) => a + p.samples, 0);
    if (samples === 0 || this.closed) return { samples: 0, p50Us: 0, p99Us: 0, maxUs: 0 };
    return {
      samples,
      p50Us: all.reduce((a, p) => a + p.p50Us * p.samples, 0) / samples,
      p99Us: Math.max(...all.map((p) => (p.samples > 0 ? p.p99Us : 0))),
      maxUs: Math.max(...all.map((p) => p.maxUs)),
    };
  }

  /** Pacing per media thread (same fields as {@link pacingStats}), shard order. */
  pacingStatsPerThread(): PacingStats[] {
    return this.closed ? [] : this.shards.map((s) => s.native.pacingStats());
  }

  resetPacingStats(): void {
    if (!this.closed) for (const s of this.shards) s.native.resetPacingStats();
  }

  /**
   * Never-reset histogram of outbound send lateness since the engine started, all media
   * threads (for Prometheus; `resetPacingStats` does not touch it). Per-bucket counts, µs
   * bounds; the last count is above every bound. undefined once closed.
   */
  pacingHistogram(): { boundsUs: number[]; counts: number[]; count: number; sumUs: number } | undefined {
    if (this.closed) return undefined;
    const hs = this.shards.map((s) => s.native.pacingHistogram());
    const out = { boundsUs: hs[0]!.boundsUs, counts: hs[0]!.counts.map(() => 0), count: 0, sumUs: 0 };
    for (const h of hs) {
      h.counts.forEach((c, i) => (out.counts[i]! += c));
      out.count += h.count;
      out.sumUs += h.sumUs;
    }
    return out;
  }

  /**
   * Are the media threads alive? Wakes their loops and resolves true when every loop ran
   * within `timeoutMs` (false when one is stuck or the engine is closed). Cheap: one eventfd
   * write per thread.
   */
  async alive(timeoutMs = 500): Promise<boolean> {
    if (this.closed) return false;
    const before = this.shards.map((s) => s.native.heartbeat());
    const pending = new Set(this.shards.map((_, k) => k));
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
      if (this.closed) return false;
      for (const k of [...pending]) if (this.shards[k]!.native.heartbeat() > before[k]!) pending.delete(k);
      if (pending.size === 0) return true;
    }
    return false;
  }

  /**
   * Connect two sessions natively: each one's jitter-buffered inbound audio is
   * encoded into the other's outbound stream (transcoding when the codecs
   * differ), on the media thread. While bridged, `play()` on either session
   * still works and is **mixed** into the bridged audio (announcements,
   * whisper); `flush()` drops only the JS-queued part. 'audio' events keep
   * flowing for both. Both must be on one media thread (create the second with
   * `near: first`). Throws if either session is closed or already bridged.
   */
  bridge(a: MediaSession, b: MediaSession): void {
    if (this.closed) throw new Error('media engine is closed');
    const sa = this.shardOf.get(a.id), sb = this.shardOf.get(b.id);
    if (sa && sb && sa !== sb) {
      throw new Error(`bridge: sessions ${a.id} and ${b.id} are on different media threads (create the second session with { near: first })`);
    }
    (sa ?? this.shards[0]!).native.bridge(a.id, b.id);
    log.debug('sessions bridged', { a: a.id, b: b.id });
  }

  /** Undo {@link bridge} for `a` and its peer. Returns false if `a` was not bridged. */
  unbridge(a: MediaSession): boolean {
    const sh = this.shardOf.get(a.id);
    if (this.closed || a.isClosed || !sh) return false;
    return sh.native.unbridge(a.id);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Sessions per media thread, shard order (placement is least-loaded first). */
  get sessionsPerThread(): number[] {
    return this.shards.map((s) => s.sessions);
  }

  /** Sessions of this address family (the peer's SDP `c=IN IP4` / `IN IP6`) can be created. */
  serves(family: 4 | 6): boolean {
    return !this.closed && this.shards[0]!.native.serves(family);
  }

  /**
   * Load the Silero VAD model (once; done lazily by the first session with `vad` on): in
   * worker mode, start every shard's VAD worker and wait until each loaded its model. Until
   * then VAD frames count as silence. Rejects when the model is missing (run `make`).
   */
  vadReady(): Promise<void> {
    if (!this.vadLoading) {
      if (this.options.vadWorker) {
        this.vadLoading = Promise.all(this.shards.map((s) => (s.worker ?? this.startWorker(s)).ready)).then(() => undefined);
      } else {
        this.vadLoading = import('../vad/batch.ts').then(async ({ VadBatcher }) => {
          const b = await VadBatcher.create();
          if (this.closed) {
            await b.close();
            throw new Error('media engine is closed');
          }
          this.vadBatcher = b;
          for (const id of this.vadSessions) if (!b.hasStream(id)) b.addStream(id);
          for (const s of this.shards) s.queue.setRun((ids, windows) => runGrouped(b, ids, windows));
        });
      }
      this.vadLoading.catch((err: Error) => log.error('vad model failed to load', { error: err.message }));
    }
    return this.vadLoading;
  }

  vadStats(): MediaVadStats {
    const hs: HandoverStats[] = [];
    const bs: VadBatcherStats[] = [];
    let ready = this.shards.length > 0;
    for (const s of this.shards) {
      hs.push(s.queue.stats());
      if (this.options.vadWorker) {
        const w = s.worker?.stats();
        ready &&= w?.ready ?? false;
        if (w) {
          hs.push(w.handover);
          if (w.batcher) bs.push(w.batcher);
        }
      }
    }
    if (!this.options.vadWorker) {
      ready = this.vadBatcher !== null;
      if (this.vadBatcher) bs.push(this.vadBatcher.stats());
    }
    const sum = (k: keyof HandoverStats) => hs.reduce((a, h) => a + h[k], 0);
    return {
      ready, sessions: this.vadSessions.size, mode: this.options.vadWorker ? 'worker' : 'main',
      handovers: sum('handovers'), skipped: sum('skipped'), queued: sum('queued'), failed: sum('failed'),
      maxWaitMs: Math.max(0, ...hs.map((h) => h.maxWaitMs)),
      batcher: bs.length === 0 ? null : {
        streams: bs.reduce((a, b) => a + b.streams, 0), runs: bs.reduce((a, b) => a + b.runs, 0),
        frames: bs.reduce((a, b) => a + b.frames, 0), dropped: bs.reduce((a, b) => a + b.dropped, 0),
        lastRunUs: Math.max(...bs.map((b) => b.lastRunUs)), totalRunUs: bs.reduce((a, b) => a + b.totalRunUs, 0),
        maxBatch: Math.max(...bs.map((b) => b.maxBatch)), quietResets: bs.reduce((a, b) => a + b.quietResets, 0),
      },
    };
  }

  /** Scheduling the media threads obtained ("fifo", "nice" or "normal"; the first thread's). */
  get scheduling(): string {
    return this.closed ? 'normal' : this.shards[0]!.native.scheduling();
  }

  /**
   * Stop the media threads and close every session, then end the VAD workers (a hand-over in a
   * worker at that moment is answered into nothing: the engine is unregistered first). The
   * process can exit afterwards. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.sessions.values()]) s.markClosed();
    this.sessions.clear();
    this.shardOf.clear();
    this.vadSessions.clear();
    for (const s of this.shards) {
      s.native.close();
      s.queue.setRun(null);
      if (s.worker) void s.worker.close();
    }
    const b = this.vadBatcher;
    this.vadBatcher = null;
    if (b) void b.close();
    log.info('media engine stopped');
  }

  /** @internal */
  forget(id: number): void {
    this.sessions.delete(id);
    const sh = this.shardOf.get(id);
    this.shardOf.delete(id);
    if (sh) sh.sessions--;
    if (this.vadSessions.delete(id)) {
      if (this.options.vadWorker) sh?.worker?.removeStream(id);
      else this.vadBatcher?.removeStream(id);
    }
  }

  private startWorker(shard: Shard): VadWorker {
    const w = new VadWorker({
      engineKey: shard.native.vadKey(),
      nice: this.vadNice,
      onError: (message) => log.error('vad worker', { thread: shard.index, error: message }),
      onExit: () => {
        // A crash: until a new worker attaches, the thread's hand-overs reach this thread and
        // are answered unknown. Start one with this thread's VAD sessions (fresh model state).
        if (this.closed || shard.worker !== w) return;
        log.error('vad worker ended unexpectedly; starting a new one', { thread: shard.index });
        const next = this.startWorker(shard);
        for (const id of this.vadSessions) if (this.shardOf.get(id) === shard) next.addStream(id);
      },
    });
    shard.worker = w;
    return w;
  }

  /** @internal tests: end a media thread's VAD worker as a crash would. */
  async crashVadWorker(thread: number): Promise<void> {
    await this.shards[thread]?.worker?.terminateForTest();
  }

  /**
   * A 32 ms hand-over of VAD windows that reached the main thread: in main mode run the
   * model over it and send the probabilities back, in hand-over order (see
   * {@link HandoverQueue}: a burst after a JS stall is run, an overload backlog older than
   * three ticks is answered NaN); in worker mode (the worker not attached) answered NaN.
   */
  private onVad(shard: Shard, ids: Uint32Array, windows: Float32Array): void {
    const q = shard.queue;
    const before = q.skipped;
    q.push(ids, windows);
    if (q.skipped > before && this.vadBatcher && performance.now() - this.vadSkipWarned > 5000) {
      this.vadSkipWarned = performance.now();
      const st = q.stats();
      log.warn('vad hand-overs answered unknown (model overloaded: runs slower than the 32 ms tick)', {
        skipped: st.skipped, handovers: st.handovers, sessions: this.vadSessions.size,
        lastRunMs: +(this.vadBatcher.stats().lastRunUs / 1000).toFixed(1),
      });
    }
  }

  private dispatch(shard: Shard, events: NativeEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'vad') {
        this.onVad(shard, ev.ids, ev.windows);
        continue;
      }
      const s = this.sessions.get(ev.id);
      if (!s) continue;
      switch (ev.type) {
        case 'audio':
          s.emit('audio', ev.pcm);
          break;
        case 'playoutDone':
          s.emit('playoutDone');
          break;
        case 'latched':
          log.debug('rtp latched', { session: ev.id, remote: `${ev.address}:${ev.port}` });
          s.emit('latched', { address: ev.address, port: ev.port });
          break;
        case 'dtmfStart':
          s.deliverDtmf('media', 'start', ev.digit, 0);
          break;
        case 'dtmf': {
          const ok = s.deliverDtmf('media', 'end', ev.digit, ev.durationMs);
          log.debug(ok ? 'dtmf received' : 'dtmf received, already signalled by SIP INFO', { session: ev.id, digit: ev.digit, durationMs: ev.durationMs });
          break;
        }
        case 'speechEnd':
          s.emit('speechEnd', { audio: ev.pcm, voicedMs: ev.voicedMs, streamMs: ev.streamMs });
          break;
        case 'speechStart':
        case 'bargeIn':
        case 'falseInterruption':
        case 'backchannel':
        case 'pause':
        case 'resume':
          if (ev.type === 'bargeIn') log.debug('barge-in', { session: ev.id, voicedMs: ev.voicedMs });
          s.emit(ev.type, { voicedMs: ev.voicedMs });
          break;
      }
    }
  }
}

/**
 * Split portMin..portMax into `n` contiguous sub-ranges of an even length (the RTP/RTCP
 * pairs keep their parity), fewer when the range cannot give each at least four ports.
 */
export function splitPorts(portMin: number, portMax: number, n: number): [number, number][] {
  const total = portMax - portMin + 1;
  const k = Math.max(1, Math.min(n, Math.floor(total / 4)));
  if (k === 1) return [[portMin, portMax]];
  const per = Math.floor(total / k / 2) * 2;
  const out: [number, number][] = [];
  for (let i = 0; i < k; i++) out.push([portMin + i * per, i === k - 1 ? portMax : portMin + (i + 1) * per - 1]);
  return out;
}
