/**
 * The media engine: one per process, it owns the native media thread (every RTP socket,
 * the 20 ms send clock, the decoding of inbound audio) and the batched Silero VAD path
 * (hand-overs from the media thread → {@link VadBatcher} → results back to the thread).
 * Sessions are created here ({@link MediaEngine.createSession}) and live in session.ts.
 */
import { logger } from '../ops/log.ts';
import { HandoverQueue, type HandoverStats } from '../vad/handover.ts';
import type { VadBatcher, VadBatcherStats } from '../vad/batch.ts';
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
}

/** Defaults of {@link MediaEngineOptions}. */
export const MEDIA_ENGINE_DEFAULTS: Readonly<MediaEngineOptions> = Object.freeze({
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


/** What the VAD path of a {@link MediaEngine} did so far. */
export interface MediaVadStats extends HandoverStats {
  /** The Silero model is loaded. */
  ready: boolean;
  /** Live sessions with VAD on. */
  sessions: number;
  /** Model runs and timing (see VadBatcher). */
  batcher: VadBatcherStats | null;
}

export interface PacingStats {
  /** Packets measured since the last reset. */
  samples: number;
  /** Median lateness of a packet against its ideal 20 ms deadline, µs. */
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export class MediaEngine {
  readonly options: Readonly<MediaEngineOptions>;
  private nativeEngine: NativeEngine | null;
  private readonly sessions = new Map<number, MediaSession>();
  private vadBatcher: VadBatcher | null = null;
  private vadLoading: Promise<VadBatcher> | null = null;
  private readonly vadSessions = new Set<number>();
  private readonly vadQueue: HandoverQueue;
  private vadSkipWarned = 0;

  private constructor(opts: MediaEngineOptions) {
    this.options = Object.freeze({ ...opts });
    this.nativeEngine = new native.Engine(
      { ...opts, rtPriority: mediaRtPriority() },
      (events) => this.dispatch(events),
    );
    this.vadQueue = new HandoverQueue(null, (ids, probs) => this.nativeEngine?.vadResults(ids, probs), {},
      (err) => log.warn('vad run failed', { error: err.message }));
    log.info('media engine started', {
      bind: opts.bindAddress,
      bind6: opts.bindAddress6,
      ports: `${opts.portMin}-${opts.portMax}`,
      scheduling: this.nativeEngine.scheduling(),
    });
  }

  /** Start the media thread. */
  static create(opts: Partial<MediaEngineOptions> = {}): MediaEngine {
    const o: MediaEngineOptions = { ...MEDIA_ENGINE_DEFAULTS };
    for (const k of Object.keys(MEDIA_ENGINE_DEFAULTS) as (keyof MediaEngineOptions)[]) {
      if (opts[k] !== undefined) (o as unknown as Record<string, unknown>)[k] = opts[k];
    }
    if (opts.bindAddress6) o.bindAddress6 = opts.bindAddress6;
    return new MediaEngine(o);
  }

  /** Bind a new RTP session; throws a clear Error when no port is free or the engine is closed. */
  createSession(opts: SessionOptions): MediaSession {
    const eng = this.requireEngine();
    if (!supportedCodecs.includes(opts.codec)) throw new Error(`codec ${opts.codec} is not compiled into the media addon`);
    const turn = opts.vad ? resolveTurnTunables(opts.vad === true ? {} : opts.vad) : null;
    const r = eng.createSession({
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
    });
    const s = new MediaSession(this, eng, r.id, r.localAddress, r.localPort, r.rtcpPort, opts.deliverRate ?? 8000, turn);
    this.sessions.set(r.id, s);
    if (turn) {
      this.vadSessions.add(r.id);
      if (this.vadBatcher) this.vadBatcher.addStream(r.id);
      else void this.vadReady().catch(() => undefined);
    }
    log.debug('media session created', { session: r.id, local: `${r.localAddress}:${r.localPort}`, codec: opts.codec });
    return s;
  }

  /** Outbound pacing error (send instant minus ideal deadline) since the last reset, all sessions. */
  pacingStats(): PacingStats {
    return this.nativeEngine ? this.nativeEngine.pacingStats() : { samples: 0, p50Us: 0, p99Us: 0, maxUs: 0 };
  }

  resetPacingStats(): void {
    this.nativeEngine?.resetPacingStats();
  }

  /**
   * Never-reset histogram of outbound send lateness since the engine started (for
   * Prometheus; `resetPacingStats` does not touch it). Per-bucket counts, µs bounds; the last
   * count is above every bound. undefined once closed.
   */
  pacingHistogram(): { boundsUs: number[]; counts: number[]; count: number; sumUs: number } | undefined {
    return this.nativeEngine?.pacingHistogram();
  }

  /**
   * Is the media thread alive? Wakes its loop and resolves true when the loop ran within
   * `timeoutMs` (false when stuck or closed). Cheap: one eventfd write.
   */
  async alive(timeoutMs = 500): Promise<boolean> {
    const eng = this.nativeEngine;
    if (!eng) return false;
    const before = eng.heartbeat();
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 10));
      if (!this.nativeEngine) return false;
      if (eng.heartbeat() > before) return true;
    }
    return false;
  }

  /**
   * Connect two sessions natively: each one's jitter-buffered inbound audio is
   * encoded into the other's outbound stream (transcoding when the codecs
   * differ), on the media thread. While bridged, `play()` on either session
   * still works and is **mixed** into the bridged audio (announcements,
   * whisper); `flush()` drops only the JS-queued part. 'audio' events keep
   * flowing for both. Throws if either session is closed or already bridged.
   */
  bridge(a: MediaSession, b: MediaSession): void {
    this.requireEngine().bridge(a.id, b.id);
    log.debug('sessions bridged', { a: a.id, b: b.id });
  }

  /** Undo {@link bridge} for `a` and its peer. Returns false if `a` was not bridged. */
  unbridge(a: MediaSession): boolean {
    if (!this.nativeEngine || a.isClosed) return false;
    return this.nativeEngine.unbridge(a.id);
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Sessions of this address family (the peer's SDP `c=IN IP4` / `IN IP6`) can be created. */
  serves(family: 4 | 6): boolean {
    return this.nativeEngine?.serves(family) ?? false;
  }

  /**
   * Load the Silero VAD model (once; done lazily by the first session with
   * `vad` on). Until it resolves, VAD frames count as silence. Rejects when
   * the model is missing (run `make`).
   */
  vadReady(): Promise<void> {
    if (!this.vadLoading) {
      this.vadLoading = import('../vad/batch.ts').then(async ({ VadBatcher }) => {
        const b = await VadBatcher.create();
        if (!this.nativeEngine) {
          await b.close();
          throw new Error('media engine is closed');
        }
        this.vadBatcher = b;
        for (const id of this.vadSessions) if (!b.hasStream(id)) b.addStream(id);
        this.vadQueue.setRun((ids, windows) => runGrouped(b, ids, windows));
        return b;
      });
      this.vadLoading.catch((err: Error) => log.error('vad model failed to load', { error: err.message }));
    }
    return this.vadLoading.then(() => undefined);
  }

  vadStats(): MediaVadStats {
    return {
      ready: this.vadBatcher !== null, sessions: this.vadSessions.size, ...this.vadQueue.stats(),
      batcher: this.vadBatcher?.stats() ?? null,
    };
  }

  /** Scheduling the media thread obtained ("fifo", "nice" or "normal"). */
  get scheduling(): string {
    return this.nativeEngine?.scheduling() ?? 'normal';
  }

  /** Stop the media thread and close every session. The process can exit afterwards. Idempotent. */
  close(): void {
    const eng = this.nativeEngine;
    if (!eng) return;
    for (const s of [...this.sessions.values()]) s.markClosed();
    this.sessions.clear();
    this.vadSessions.clear();
    eng.close();
    this.nativeEngine = null;
    const b = this.vadBatcher;
    this.vadBatcher = null;
    this.vadQueue.setRun(null);
    if (b) void b.close();
    log.info('media engine stopped');
  }

  /** @internal */
  forget(id: number): void {
    this.sessions.delete(id);
    if (this.vadSessions.delete(id)) this.vadBatcher?.removeStream(id);
  }

  /**
   * One 32 ms hand-over of VAD windows: run the model over them and send the
   * probabilities back to the media thread, in hand-over order (see
   * {@link HandoverQueue}: a burst after a JS stall is run, an overload backlog
   * older than three ticks is answered NaN). An id appears twice when a session
   * cut two frames in one tick: its rows then go into successive runs.
   */
  private onVad(ids: Uint32Array, windows: Float32Array): void {
    const before = this.vadQueue.skipped;
    this.vadQueue.push(ids, windows);
    if (this.vadQueue.skipped > before && this.vadBatcher && performance.now() - this.vadSkipWarned > 5000) {
      this.vadSkipWarned = performance.now();
      const st = this.vadQueue.stats();
      log.warn('vad hand-overs answered unknown (model overloaded: runs slower than the 32 ms tick)', {
        skipped: st.skipped, handovers: st.handovers, sessions: this.vadSessions.size,
        lastRunMs: +(this.vadBatcher.stats().lastRunUs / 1000).toFixed(1),
      });
    }
  }

  private requireEngine(): NativeEngine {
    if (!this.nativeEngine) throw new Error('media engine is closed');
    return this.nativeEngine;
  }

  private dispatch(events: NativeEvent[]): void {
    for (const ev of events) {
      if (ev.type === 'vad') {
        this.onVad(ev.ids, ev.windows);
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
          s.emit('speechEnd', { audio: ev.pcm, voicedMs: ev.voicedMs });
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

/** Run a hand-over whose ids may repeat: k-th occurrences go into the k-th run; probabilities in row order. */
async function runGrouped(b: VadBatcher, ids: Uint32Array, windows: Float32Array): Promise<Float32Array> {
  const seen = new Map<number, number>();
  const groups: number[][] = [];
  for (let i = 0; i < ids.length; i++) {
    const k = seen.get(ids[i]!) ?? 0;
    seen.set(ids[i]!, k + 1);
    (groups[k] ??= []).push(i);
  }
  if (groups.length === 1) return b.runBatch(ids, windows);
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

