/**
 * TypeScript face of the native media core (`native/`, built to
 * `build/Release/voice_core.node`).
 *
 * One {@link MediaEngine} per process owns the native media thread: every RTP
 * socket, the 20 ms send clock and the decoding of inbound audio live there.
 * JS pushes 8 kHz PCM with {@link MediaSession.play} and receives decoded
 * inbound PCM in batches ('audio' events). JS timers never pace audio.
 */
import { EventEmitter } from 'node:events';
import { logger } from '../ops/log.ts';
import { HandoverQueue, type HandoverStats } from '../vad/handover.ts';
import type { VadBatcher, VadBatcherStats } from '../vad/batch.ts';
import { resolveTurnTunables, type TurnTunables } from '../vad/policy.ts';
import {
  native, type NativeEngine, type NativeEvent, type NativeSessionStats, type NativeOpusParams,
  type NativeJitterStats, type NativeRtcpStats,
} from './native.ts';

const log = logger('media');

export interface MediaEngineOptions {
  /**
   * Local address the RTP sockets bind to (numeric IPv4/IPv6), and the
   * address put into SDP by the call layer.
   * @defaultValue '127.0.0.1'
   */
  bindAddress: string;
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

/** SDP direction of a media session's stream, seen from our side. */
export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** Codecs a media session can run. */
export type MediaCodec = 'PCMU' | 'PCMA' | 'opus';

/** Codecs compiled into the native addon (the SDP layer advertises Opus only when it is listed). */
export const supportedCodecs: readonly MediaCodec[] = Object.freeze([...native.codecs]);

/**
 * Adaptive jitter buffer bounds. The target delay follows the measured p95
 * packet lateness (+10 ms) within [minDelayMs, maxDelayMs]; it rises at once
 * and decays slowly. For comparison: Asterisk's adaptive jitter buffer caps at
 * 200 ms by default; WebRTC's NetEQ starts around 80 ms. Trunk traffic is
 * mostly steadier than the open internet, so we start lower.
 */
export interface JitterOptions {
  /** @defaultValue 20 */
  minDelayMs: number;
  /** @defaultValue 200 */
  maxDelayMs: number;
  /** Target before any jitter has been measured. @defaultValue 60 */
  startDelayMs: number;
}

/** Defaults of {@link JitterOptions}. */
export const JITTER_DEFAULTS: Readonly<JitterOptions> = Object.freeze({ minDelayMs: 20, maxDelayMs: 200, startDelayMs: 60 });

export interface SessionOptions {
  codec: MediaCodec;
  /** Payload type of the codec (dynamic for Opus, e.g. 111). */
  payloadType: number;
  telephoneEventPayloadType?: number;
  /** Signalled remote (from SDP); outbound RTP goes here until inbound RTP latches another source. */
  remote?: { address: string; port: number };
  /**
   * The peer's `a=fmtp` for the codec (Opus: maxplaybackrate, stereo,
   * useinbandfec, maxaveragebitrate, usedtx). See {@link parseOpusFmtp}.
   */
  fmtp?: string;
  /**
   * Rate of the inbound PCM in 'audio' events, the bridge and recordings.
   * @defaultValue 8000
   */
  deliverRate?: 8000 | 16000;
  /** Jitter buffer bounds. @defaultValue {@link JITTER_DEFAULTS} */
  jitter?: Partial<JitterOptions>;
  /**
   * Base RTCP report interval in ms (randomised ×0.5–1.5); 0 disables RTCP sending.
   * @defaultValue 5000
   */
  rtcpIntervalMs?: number;
  /**
   * Voice activity detection and turn-taking on the inbound stream: Silero
   * VAD (batched across all sessions of the engine) feeding the native
   * per-call state machine, which emits 'speechStart', 'speechEnd',
   * 'bargeIn', 'falseInterruption' and 'backchannel' and pauses/drops the
   * outbound queue on barge-in by itself. `true` uses the default tunables
   * ({@link TURN_DEFAULTS} in src/vad/policy.ts); an object overrides some.
   * @defaultValue false
   */
  vad?: boolean | Partial<TurnTunables>;
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

/** Opus encoder settings derived from the peer's fmtp (RFC 7587 §6.1). */
export interface OpusFmtp {
  /** maxaveragebitrate (bit/s); undefined = libopus default. */
  bitrate?: number;
  /** useinbandfec=1: the peer decodes FEC, so we send it. */
  fec: boolean;
  /** usedtx=1 */
  dtx: boolean;
  /** maxplaybackrate (Hz), caps the coded bandwidth. @defaultValue 48000 */
  maxPlaybackRate: number;
  /** stereo=1 (we always send mono, which every receiver must accept). */
  stereo: boolean;
}

/** Parse an Opus fmtp string such as `maxplaybackrate=16000;useinbandfec=1;stereo=0`. */
export function parseOpusFmtp(fmtp: string | undefined): OpusFmtp {
  const out: OpusFmtp = { fec: false, dtx: false, maxPlaybackRate: 48000, stereo: false };
  for (const part of (fmtp ?? '').split(';')) {
    const [k, v] = part.split('=').map((x) => x.trim().toLowerCase());
    if (!k || v === undefined) continue;
    const n = Number(v);
    if (k === 'useinbandfec') out.fec = v === '1';
    else if (k === 'usedtx') out.dtx = v === '1';
    else if (k === 'stereo') out.stereo = v === '1';
    else if (k === 'maxplaybackrate' && Number.isFinite(n) && n >= 8000) out.maxPlaybackRate = Math.min(48000, Math.round(n));
    else if (k === 'maxaveragebitrate' && Number.isFinite(n) && n >= 6000) out.bitrate = Math.min(510000, Math.round(n));
  }
  return out;
}

function opusParams(fmtp: string | undefined): NativeOpusParams {
  const f = parseOpusFmtp(fmtp);
  return { fec: f.fec, dtx: f.dtx, maxPlaybackRate: f.maxPlaybackRate, ...(f.bitrate ? { bitrate: f.bitrate } : {}) };
}

/** Inbound stream statistics (RFC 3550 jitter/loss plus the jitter buffer's own counters). */
export type JitterStats = NativeJitterStats;
/** RTCP counters and the peer's last report about our stream. */
export type RtcpStats = NativeRtcpStats;

export interface DtmfEvent {
  /** '0'-'9', '*', '#', 'A'-'D' */
  digit: string;
  durationMs: number;
}

export interface SessionStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Milliseconds since the last accepted inbound RTP packet; null before the first one. */
  lastRxAgoMs: number | null;
  /** Where outbound RTP goes: the latched source, else the signalled remote. */
  remote: { address: string; port: number } | null;
  latched: boolean;
  ssrcOut: number;
  /** Sequence number of the last packet sent. */
  seqOut: number;
  /** Our direction includes send (false while the peer holds the call). */
  sending?: boolean;
  /** Datagrams rejected: not RTP, malformed, unknown payload type, or from a foreign source while latched. */
  invalidIn: number;
  /** DTMF digits received / sent (RFC 4733). */
  dtmfIn?: number;
  dtmfOut?: number;
  /** Inbound jitter buffer and playout. */
  jitter?: JitterStats;
  rtcp?: RtcpStats;
  bridged?: boolean;
  recording?: boolean;
}

export interface PacingStats {
  /** Packets measured since the last reset. */
  samples: number;
  /** Median lateness of a packet against its ideal 20 ms deadline, µs. */
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

function toStats(s: NativeSessionStats): SessionStats {
  return {
    packetsIn: s.packetsIn,
    packetsOut: s.packetsOut,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    lastRxAgoMs: s.lastRxAgoMs,
    remote: s.remote,
    latched: s.latched,
    ssrcOut: s.ssrcOut,
    seqOut: s.seqOut,
    sending: s.sending,
    invalidIn: s.invalidIn,
    dtmfIn: s.dtmfIn,
    dtmfOut: s.dtmfOut,
    jitter: s.jitter,
    rtcp: s.rtcp,
    bridged: s.bridged,
    recording: s.recording,
  };
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
      rate: opts.deliverRate ?? 8000,
      jitter: { ...JITTER_DEFAULTS, ...opts.jitter },
      ...(opts.codec === 'opus' ? { opus: opusParams(opts.fmtp) } : {}),
      ...(opts.rtcpIntervalMs !== undefined ? { rtcpIntervalMs: opts.rtcpIntervalMs } : {}),
      ...(turn ? { vad: turn } : {}),
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
          s.emit('dtmfStart', { digit: ev.digit });
          break;
        case 'dtmf':
          log.debug('dtmf received', { session: ev.id, digit: ev.digit, durationMs: ev.durationMs });
          s.emit('dtmf', { digit: ev.digit, durationMs: ev.durationMs });
          break;
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

/** Payload of the turn-taking events; `voicedMs` is the voiced time of the caller's utterance so far. */
export interface TurnEventInfo {
  voicedMs: number;
}

export interface MediaSessionEvents {
  /**
   * Inbound audio after the jitter buffer: mono PCM at the session's
   * `deliverRate` (8 kHz by default), 20 ms frames in playout order with gaps
   * concealed, delivered in batches every ~40 ms. Starts with the first
   * packet (after the jitter buffer's start delay) and then runs continuously
   * (silence when the peer stops sending).
   */
  audio: [pcm: Int16Array];
  /** A DTMF digit ended (RFC 4733; once per key press, whatever the retransmissions). */
  dtmf: [ev: DtmfEvent];
  /** A DTMF digit started (first packet of the event): useful to stop prompts at once. */
  dtmfStart: [ev: { digit: string }];
  /** The outbound queue drained after audio was played (not emitted after flush()). */
  playoutDone: [];
  /** Symmetric RTP: outbound now goes to the actual source of inbound RTP. */
  latched: [remote: { address: string; port: number }];
  /** VAD: a caller turn started (with the agent silent, or together with 'bargeIn'). */
  speechStart: [ev: TurnEventInfo];
  /**
   * VAD: the caller's turn ended (endpointing silence passed). `audio` is the
   * utterance as 8 kHz PCM (from two frames before the first voiced frame to
   * one frame after the last; at most the last 15 s) — hand it to STT. If the
   * turn had barged in, the interrupted prompt has already been dropped.
   */
  speechEnd: [ev: TurnEventInfo & { audio: Int16Array }];
  /**
   * VAD: caller speech over an interruptible prompt passed the guards; the
   * media thread has already stopped the agent's audio (paused, queue kept).
   * A 'speechEnd' (queue dropped) or a 'falseInterruption' (queue resumed) follows.
   */
  bargeIn: [ev: TurnEventInfo];
  /** VAD: the turn that barged in was too short; the paused prompt has resumed where it stopped. */
  falseInterruption: [ev: TurnEventInfo];
  /** VAD: a short sound over the agent's prompt ("mm-hm", a cough) was ignored; the agent kept talking. */
  backchannel: [ev: TurnEventInfo];
  /**
   * VAD pause-first (TurnTunables.pauseOnsetMs): an onset over the prompt
   * paused the agent's audio (queue kept). A 'bargeIn' (turn taken) or a
   * 'resume' follows.
   */
  pause: [ev: TurnEventInfo];
  /** VAD pause-first: the onset that paused the prompt died (backchannel, cough); the prompt resumed where it stopped. */
  resume: [ev: TurnEventInfo];
}

export class MediaSession extends EventEmitter<MediaSessionEvents> {
  private closed = false;
  private finalStats: SessionStats | null = null;

  /** @internal use {@link MediaEngine.createSession} */
  constructor(
    private readonly engine: MediaEngine,
    private readonly eng: NativeEngine,
    readonly id: number,
    readonly localAddress: string,
    readonly localPort: number,
    /** Local RTCP port (RTP port + 1), or null when no pair was free and this session sends no RTCP. */
    readonly rtcpPort: number | null = null,
    /** Rate of 'audio' PCM. */
    readonly deliverRate: 8000 | 16000 = 8000,
    turn: TurnTunables | null = null,
  ) {
    super();
    this.turn = turn;
  }

  private turn: TurnTunables | null;

  /** VAD and turn-taking are on for this session (SessionOptions.vad). */
  get vad(): boolean {
    return this.turn !== null;
  }

  /** The session's current turn-taking tunables (null without VAD). */
  get turnTunables(): Readonly<TurnTunables> | null {
    return this.turn;
  }

  /**
   * The caller is reading out a number (the partial transcript ends in digits,
   * see `awaitingDigits()` in src/vad/policy.ts, or the agent just asked for a
   * PO/phone number): endpointing waits `digitsEndpointSilenceMs`. Cleared by
   * the media thread when the caller's turn ends. No-op without VAD.
   */
  setDigitsPending(on: boolean): void {
    if (this.turn) this.eng.setDigitsPending(this.liveId(), on);
  }

  /** Change some turn-taking tunables (e.g. the tenant's); applied from the next VAD frame. Throws when invalid or VAD is off. */
  setTurnTunables(t: Partial<TurnTunables>): void {
    if (!this.turn) throw new Error(`media session ${this.id} has no VAD`);
    const next = resolveTurnTunables({ ...this.turn, ...t });
    this.eng.setTurnTunables(this.liveId(), next);
    this.turn = next;
  }

  /** Signalled remote from SDP (re-INVITE included); re-arms latching. `rtcpPort` from `a=rtcp` (default port + 1). */
  setRemote(address: string, port: number, rtcpPort?: number): void {
    this.eng.setRemote(this.liveId(), address, port, rtcpPort);
  }

  /** Switch codec (re-INVITE); `fmtp` is the peer's Opus fmtp. */
  setCodec(codec: MediaCodec, payloadType: number, fmtp?: string): void {
    const id = this.liveId();
    this.eng.setCodec(id, codec, payloadType);
    if (codec === 'opus') this.eng.setOpusParams(id, opusParams(fmtp));
  }

  /**
   * Our side's SDP direction (hold / un-hold re-INVITE). When it excludes send
   * (`recvonly`, `inactive`) the media thread sends nothing at all — no voice,
   * no keep-alive silence, no DTMF; queued audio waits. When sending resumes,
   * the first packet carries the marker bit and seq/timestamp continue (the
   * timestamp advanced with wall time meanwhile). Inbound RTP is processed in
   * every direction.
   * @defaultValue 'sendrecv' (a new session sends)
   */
  setDirection(direction: MediaDirection): void {
    this.eng.setDirection(this.liveId(), direction);
  }

  /** Telephone-event payload type after a re-INVITE (undefined: not negotiated). */
  setTelephoneEventPayloadType(pt: number | undefined): void {
    this.eng.setTelephoneEvent(this.liveId(), pt ?? null);
  }

  /**
   * Send RFC 4733 DTMF digits (0-9 * # A-D). Queued voice pauses while the
   * digits are sent and resumes afterwards. Throws when telephone-event was
   * not negotiated or a digit is invalid.
   * @param opts.durationMs  tone length per digit @defaultValue 100
   * @param opts.gapMs  pause after each digit @defaultValue 60
   */
  sendDtmf(digits: string, opts: { durationMs?: number; gapMs?: number } = {}): void {
    this.eng.sendDtmf(this.liveId(), digits, opts.durationMs ?? 100, opts.gapMs ?? 60);
  }

  /**
   * Record the call as a stereo 16-bit WAV: left = caller (inbound, after the
   * jitter buffer), right = agent (what this session sends, bridged audio
   * included). Written by a writer thread, never the media thread. Off unless
   * called; the call layer decides consent.
   * @param opts.sampleRate  @defaultValue the session's deliverRate
   */
  startRecording(path: string, opts: { sampleRate?: 8000 | 16000 } = {}): void {
    this.eng.startRecording(this.liveId(), path, opts.sampleRate ?? this.deliverRate);
  }

  /** Finish the WAV (header written, file closed). Null when not recording. Closing the session also finishes it. */
  stopRecording(): { path: string; frames: number; dropped: number; sampleRate: number } | null {
    if (this.closed) return null;
    return this.eng.stopRecording(this.id);
  }

  /**
   * Queue 8 kHz mono PCM for paced playout (20 ms packets).
   * @param opts.uninterruptible  caller speech never barges into this audio
   *   (e.g. a legal recording notice); VAD still tracks the caller's turns.
   *   @defaultValue false
   */
  play(pcm: Int16Array, opts: { uninterruptible?: boolean } = {}): void {
    this.eng.play(this.liveId(), pcm, opts.uninterruptible === true);
  }

  /** Drop all queued audio at once (barge-in). No 'playoutDone' follows. */
  flush(): void {
    if (!this.closed) this.eng.flush(this.id);
  }

  /** Milliseconds of audio waiting in the outbound queue. */
  get queuedMs(): number {
    return this.closed ? 0 : this.eng.queuedSamples(this.id) / 8;
  }

  stats(): SessionStats {
    if (this.closed) {
      return this.finalStats ?? {
        packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, lastRxAgoMs: null, remote: null,
        latched: false, ssrcOut: 0, seqOut: 0, invalidIn: 0,
      };
    }
    return toStats(this.eng.stats(this.id));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Release the socket (synchronously: the port is reusable when this returns). Idempotent. */
  close(): void {
    if (this.closed) return;
    try {
      this.finalStats = toStats(this.eng.stats(this.id));
    } catch {
      /* engine already closed */
    }
    this.eng.closeSession(this.id);
    this.markClosed();
    this.engine.forget(this.id);
  }

  /** @internal */
  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.removeAllListeners();
  }

  private liveId(): number {
    if (this.closed) throw new Error(`media session ${this.id} is closed`);
    return this.id;
  }
}

/**
 * Inbound playout (jitter buffer + decoder + PLC) driven by scripted arrival
 * and playout instants — for tests and offline analysis, not for calls.
 */
export const PlayoutSimulator = native.PlayoutTest;

/** flite voices linked into the addon; kal is 8 kHz, the others 16 kHz. */
export type Voice = 'kal' | 'slt' | 'rms' | 'awb' | 'kal16';

/**
 * Local TTS through flite, off the JS thread. Resolves to mono PCM at
 * `sampleRate` (resampled natively when the voice's rate differs).
 * @param opts.voice  @defaultValue 'kal'
 * @param opts.sampleRate  @defaultValue 8000
 */
export function synthesize(
  text: string,
  opts: { voice?: Voice; sampleRate?: 8000 | 16000 } = {},
): Promise<Int16Array> {
  return native.synthesize(text, opts.voice ?? 'kal', opts.sampleRate ?? 8000);
}

/** ITU-T G.711 µ-law encode (bit-exact with the G.191 reference). */
export function ulawEncode(pcm: Int16Array): Uint8Array {
  return native.ulawEncode(pcm);
}
export function ulawDecode(b: Uint8Array): Int16Array {
  return native.ulawDecode(b);
}
/** ITU-T G.711 A-law encode (bit-exact with the G.191 reference). */
export function alawEncode(pcm: Int16Array): Uint8Array {
  return native.alawEncode(pcm);
}
export function alawDecode(b: Uint8Array): Int16Array {
  return native.alawDecode(b);
}
