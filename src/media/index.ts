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
import { native, type NativeEngine, type NativeEvent, type NativeSessionStats } from './native.ts';

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

export interface SessionOptions {
  codec: 'PCMU' | 'PCMA';
  payloadType: number;
  telephoneEventPayloadType?: number;
  /** Signalled remote (from SDP); outbound RTP goes here until inbound RTP latches another source. */
  remote?: { address: string; port: number };
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
  /** Datagrams rejected: not RTP, malformed, unknown payload type, or from a foreign source while latched. */
  invalidIn: number;
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
    invalidIn: s.invalidIn,
  };
}

export class MediaEngine {
  readonly options: Readonly<MediaEngineOptions>;
  private nativeEngine: NativeEngine | null;
  private readonly sessions = new Map<number, MediaSession>();

  private constructor(opts: MediaEngineOptions) {
    this.options = Object.freeze({ ...opts });
    this.nativeEngine = new native.Engine(
      { ...opts, rtPriority: mediaRtPriority() },
      (events) => this.dispatch(events),
    );
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
    const r = eng.createSession({
      codec: opts.codec,
      payloadType: opts.payloadType,
      telephoneEventPayloadType: opts.telephoneEventPayloadType,
      remoteAddress: opts.remote?.address,
      remotePort: opts.remote?.port,
    });
    const s = new MediaSession(this, eng, r.id, r.localAddress, r.localPort);
    this.sessions.set(r.id, s);
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

  get activeSessions(): number {
    return this.sessions.size;
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
    eng.close();
    this.nativeEngine = null;
    log.info('media engine stopped');
  }

  /** @internal */
  forget(id: number): void {
    this.sessions.delete(id);
  }

  private requireEngine(): NativeEngine {
    if (!this.nativeEngine) throw new Error('media engine is closed');
    return this.nativeEngine;
  }

  private dispatch(events: NativeEvent[]): void {
    for (const ev of events) {
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
      }
    }
  }
}

export interface MediaSessionEvents {
  /** Decoded inbound audio, 8 kHz mono, in arrival order (batched every ~40 ms). */
  audio: [pcm: Int16Array];
  /** The outbound queue drained after audio was played (not emitted after flush()). */
  playoutDone: [];
  /** Symmetric RTP: outbound now goes to the actual source of inbound RTP. */
  latched: [remote: { address: string; port: number }];
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
  ) {
    super();
  }

  /** Signalled remote from SDP (re-INVITE included); re-arms latching. */
  setRemote(address: string, port: number): void {
    this.eng.setRemote(this.liveId(), address, port);
  }

  setCodec(codec: 'PCMU' | 'PCMA', payloadType: number): void {
    this.eng.setCodec(this.liveId(), codec, payloadType);
  }

  /** Queue 8 kHz mono PCM for paced playout (20 ms packets). */
  play(pcm: Int16Array): void {
    this.eng.play(this.liveId(), pcm);
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
