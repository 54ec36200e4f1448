/**
 * One RTP endpoint of the native media core: a {@link MediaSession} is bound to a port of
 * the engine's range; JS pushes 8 kHz PCM with {@link MediaSession.play} and receives
 * decoded inbound PCM in batches ('audio' events) and turn-taking events from the native
 * VAD state machine. JS timers never pace audio. Created by `MediaEngine.createSession`.
 */
import { EventEmitter } from 'node:events';
import { resolveTurnTunables, type TurnTunables } from '../vad/policy.ts';
import {
  native, type NativeEngine, type NativeSessionStats, type NativeOpusParams,
  type NativeJitterStats, type NativeRtcpStats,
} from './native.ts';
import { DtmfMerge, type DtmfPath } from './dtmf-merge.ts';

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

/** SRTP suites the native core implements (RFC 4568 names). */
export type SrtpSuite = 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32';

/** SDES-keyed SRTP of one session: 30-byte master key || salt each way (never logged). */
export interface SrtpKeys {
  suite: SrtpSuite;
  /** ours: protects what we send (the key in our a=crypto) */
  localKey: Uint8Array;
  /** the peer's: unprotects what it sends (the key in its a=crypto) */
  remoteKey: Uint8Array;
}

export interface SessionOptions {
  codec: MediaCodec;
  /** Payload type of the codec (dynamic for Opus, e.g. 111). */
  payloadType: number;
  telephoneEventPayloadType?: number;
  /** Signalled remote (from SDP); outbound RTP goes here until inbound RTP latches another source. */
  remote?: { address: string; port: number };
  /**
   * Address family of the peer's media (its SDP `c=IN IP4` / `IN IP6`): the socket is taken
   * from the engine's address of that family (MediaEngineOptions.bindAddress6 for IPv6 when
   * set). Throws when the engine has none ({@link MediaEngine.serves}).
   * @defaultValue the family of `bindAddress`
   */
  family?: 4 | 6;
  /**
   * SRTP (RTP/SAVP with SDES keys): RTP and RTCP are protected/unprotected in the native
   * core with these keys. @defaultValue undefined (plain RTP)
   */
  srtp?: SrtpKeys;
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
   * Detect DTMF key presses as tones in the inbound audio (native Goertzel detector; see
   * native/dtmf_inband.h) while no telephone-event payload type is negotiated — the peer's
   * SDP offered none, so its keys can only arrive in the audio (or by SIP INFO). The digits
   * are the same 'dtmfStart'/'dtmf' events as RFC 4733 ones. Off: tones stay audio only.
   * @defaultValue true
   */
  inbandDtmf?: boolean;
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

/** @internal the native encoder settings for an Opus fmtp */
export function opusParams(fmtp: string | undefined): NativeOpusParams {
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
  /** SRTP suite of the session; null for plain RTP. */
  srtp?: SrtpSuite | null;
  /** SRTP/SRTCP packets dropped: authentication failed (wrong key, tampered, forged) / replayed (libsrtp's window). */
  srtpAuthFail?: number;
  srtpReplay?: number;
  /** DTMF digits received (RFC 4733 or in-band tones) / sent (RFC 4733). */
  dtmfIn?: number;
  dtmfOut?: number;
  /** The in-band DTMF detector runs (no telephone-event negotiated, `inbandDtmf` not off). */
  inbandDtmf?: boolean;
  /** Inbound jitter buffer and playout. */
  jitter?: JitterStats;
  rtcp?: RtcpStats;
  bridged?: boolean;
  recording?: boolean;
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
    srtp: s.srtp,
    srtpAuthFail: s.srtpAuthFail,
    srtpReplay: s.srtpReplay,
    dtmfIn: s.dtmfIn,
    dtmfOut: s.dtmfOut,
    inbandDtmf: s.inbandDtmf,
    jitter: s.jitter,
    rtcp: s.rtcp,
    bridged: s.bridged,
    recording: s.recording,
  };
}

/** What a session needs from the engine that created it. */
export interface SessionHost {
  /** drop the session from the engine's tables (called once, on close) */
  forget(id: number): void;
}

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
  /**
   * A DTMF digit ended: once per key press, whatever the retransmissions and whichever way it
   * came — RFC 4733 telephone-events, tones in the audio (in-band detector, when no
   * telephone-event was negotiated) or SIP INFO ({@link MediaSession.signalledDtmf}); a press
   * signalled both in the media and by INFO counts once (src/media/dtmf-merge.ts).
   */
  dtmf: [ev: DtmfEvent];
  /** A DTMF digit started (first packet of the event, tone detected, or the INFO): useful to stop prompts at once. */
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
   * `streamMs` is where in the inbound stream the end was decided (ms of audio
   * fed to the VAD since the session's first packet): the end of the 32 ms
   * frame whose result ended the turn, or, when the endpoint timer ended it
   * between frames, the instant its silence was complete. It is media time,
   * not wall time: a VAD result that comes back late does not move it.
   */
  speechEnd: [ev: TurnEventInfo & { audio: Int16Array; streamMs: number }];
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
   * ducked the agent's audio by pauseDuckDb (it keeps playing) or, with
   * pauseDuckDb 0, paused it (queue kept). A 'bargeIn' (turn taken) or a
   * 'resume' follows.
   */
  pause: [ev: TurnEventInfo];
  /** VAD pause-first: the onset that ducked or paused the prompt died (backchannel, cough); the prompt is back at full level (or resumed where it stopped). */
  resume: [ev: TurnEventInfo];
}

export class MediaSession extends EventEmitter<MediaSessionEvents> {
  private closed = false;
  private finalStats: SessionStats | null = null;

  /** @internal use {@link MediaEngine.createSession} */
  constructor(
    private readonly engine: SessionHost,
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
    // 'audio' events only while JS listens for them: without a listener the media thread does not
    // queue the inbound PCM for JS at all (at hundreds of calls one event per session every 40 ms
    // would keep the JS thread busy for nothing). The VAD, bridge, recorder and DTMF are not affected.
    eng.setAudioEvents(id, false);
    const ee = this as EventEmitter;
    ee.on('newListener', (ev: string | symbol) => {
      if (ev === 'audio') this.audioEvents(true);
    });
    ee.on('removeListener', (ev: string | symbol) => {
      if (ev === 'audio' && this.listenerCount('audio') === 0) this.audioEvents(false);
    });
  }

  private turn: TurnTunables | null;

  private audioEvents(on: boolean): void {
    if (this.closed) return;
    try {
      this.eng.setAudioEvents(this.id, on);
    } catch { /* the native session is gone (engine closed): no events either way */ }
  }
  private readonly dtmfMerge = new DtmfMerge();

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

  /**
   * Add `ms` of the inbound audio that preceded each VAD utterance in front of it ('speechEnd'
   * audio), from the media thread's own copy of the last 15 s: soft word onsets start before
   * the first frame the model scores voiced. Consumers need no 'audio' listener for it (which
   * would bring the session's 'audio' events back). No-op without VAD.
   * @defaultValue 0 (off)
   */
  setUtterancePreRoll(ms: number): void {
    if (!Number.isInteger(ms) || ms < 0 || ms > 2000) throw new RangeError(`utterance pre-roll must be an integer of 0..2000 ms, got ${ms}`);
    if (this.turn) this.eng.setUtterancePreRoll(this.liveId(), ms);
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

  /** The peer re-keyed SRTP (re-INVITE with a new a=crypto key, same suite); throws without SRTP. */
  setSrtpRemote(suite: SrtpSuite, remoteKey: Uint8Array): void {
    this.eng.setSrtpRemote(this.liveId(), suite, remoteKey);
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
   * A DTMF digit signalled outside the media (SIP INFO, `application/dtmf-relay` or
   * `application/dtmf`): emitted as 'dtmfStart' then 'dtmf' with the same shapes as an
   * RFC 4733 digit, unless the same press already arrived in the media. Returns whether it
   * was delivered. Throws for anything but 0-9 * # A-D.
   */
  signalledDtmf(digit: string, durationMs: number): boolean {
    const d = digit.toUpperCase();
    if (!/^[0-9*#A-D]$/.test(d)) throw new Error(`invalid DTMF digit '${digit}' (0-9 * # A-D)`);
    if (this.closed) return false;
    const ok = this.deliverDtmf('sip', 'start', d, 0);
    this.deliverDtmf('sip', 'end', d, Math.max(0, Math.round(durationMs)));
    return ok;
  }

  /** @internal a digit event from the media path (native RFC 4733 receiver or in-band detector) or SIP. */
  deliverDtmf(path: DtmfPath, kind: 'start' | 'end', digit: string, durationMs: number): boolean {
    if (kind === 'start') {
      if (!this.dtmfMerge.start(path, digit)) return false;
      this.emit('dtmfStart', { digit });
      return true;
    }
    if (!this.dtmfMerge.end(path, digit)) return false;
    this.emit('dtmf', { digit, durationMs });
    return true;
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
