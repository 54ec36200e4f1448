/**
 * One inbound call: owns the SIP dialog, the media session and the supervision timers.
 *
 * Lifecycle: `offered` (INVITE accepted for processing, media session allocated) →
 * `answered` ({@link Call.attachDialog} after the 200 OK) → `ended`. A 2xx is not yet an
 * answered call: the `answered` event, {@link Call.answeredAt}, the greeting / conversation
 * and our outbound RTP wait for the caller's ACK (or the first RTP packet from the address it
 * offered); a 200 never ACKed ends as `no-ack` (no conversation, no tool calls, unanswered in
 * the CDR), and the media session sends nothing meanwhile, so the service cannot be used to
 * aim an RTP stream at someone else's address. Every way out — caller
 * BYE, agent hang-up, max duration, RTP inactivity, CANCEL before answer, errors, shutdown —
 * goes through one private `finish()` that releases the media session, timers and
 * listeners exactly once, writes the CDR line and emits `ended`.
 *
 * JS timers here only supervise (1 s RTP inactivity poll, max-duration deadline); audio
 * pacing belongs to the native media thread.
 *
 * Events: `answered` (), `playout-done` (), `reinvite` (NegotiatedAudio),
 * `ended` ({@link CallEnded}).
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { logger, type Logger } from '../ops/log.ts';
import {
  sameKey, negotiate, processAnswer, createReoffer, parseSdp, SdpError, sdpFromBody, BodyError, SDP_ACCEPT, type CodecName, type MediaCapabilities, type NegotiatedAudio, type Negotiation, type SessionDescription,
} from '../sdp/index.ts';
import type { Tenant, TtsVoice } from '../tenants/index.ts';
import type { RecordingFacts } from '../consent/recording.ts';
import { dtmfInfoBody, INFO_ACCEPT } from './dtmf-info.ts';
import { SessionTimer, type SessionTimerParams } from './session-timer.ts';

/** Why a call ended (CDR `reason`). */
export type EndReason =
  | 'caller-bye' // remote party sent BYE
  | 'agent-hangup' // app called hangup()
  | 'max-duration' // maxCallSeconds reached
  | 'rtp-timeout' // no RTP for rtpTimeoutSeconds
  | 'canceled' // CANCEL before answer
  | 'rejected' // app hung up before answer (final error response sent)
  | 'shutdown' // process stopping
  | 'transferred' // blind transfer (REFER) completed: the caller's leg went to the rep
  | 'rep-bye' // warm transfer: the rep hung up the bridged call
  | 'session-expired' // RFC 4028: the caller's session refreshes stopped (or ours failed)
  | 'no-ack' // our 200 OK was never ACKed (64·T1): the call was never confirmed, so never answered
  | 'error'; // answering failed or an internal error

export interface CallEnded {
  reason: EndReason;
  /** answer → end in ms; 0 if never answered */
  durationMs: number;
}

/** The part of a drachtio-srf Dialog a Call uses (lets tests pass a fake). */
export interface CallDialog {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  destroy(opts?: { headers: Record<string, string> }): Promise<unknown>;
  local: { sdp: string };
  /** in-dialog request (REFER, re-INVITE, UPDATE); resolves with the final response (a 2xx to INVITE is ACKed) */
  request?(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; reason?: string; body?: string; get?(h: string): string | undefined }>;
}

/** The rep's leg of a warm transfer (a UAC dialog + its media session bridged to ours). */
export interface RepLeg {
  dialog: CallDialog;
  /** unbridge and close the rep's media session (called once when the call ends) */
  release(): void;
  /** for the CDR */
  target: string;
}

/** Progress of a blind transfer as NOTIFY sipfrag reports it (RFC 3515). */
export interface ReferProgress {
  /** SIP status of the transferee's INVITE to the target */
  status: number;
  reason: string;
  /** Subscription-State: terminated */
  terminated: boolean;
}

/** In-dialog request/response as delivered with a dialog 'modify' event. */
export interface ReinviteRequest { body: string; get?(h: string): string | undefined }
export interface ReinviteResponse { send(status: number, opts?: { body?: string; headers?: Record<string, string> }): void }

/** Our side's SDP direction as applied to the media session. */
export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

/** Media counters (src/media SessionStats fits); jitter and RTCP feed the CDR's quality fields. */
export interface CallMediaStats {
  packetsIn: number;
  packetsOut: number;
  lastRxAgoMs: number | null;
  jitter?: { expected: number; lost: number; jitterMs: number; late?: number; concealed?: number };
  rtcp?: { remoteReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; rttMs: number | null } | null };
}

/** The part of a MediaSession a Call uses. */
export interface CallMediaSession {
  readonly localAddress: string;
  readonly localPort: number;
  setRemote(address: string, port: number): void;
  /** `fmtp`: the peer's fmtp for the codec (Opus encoder settings). */
  setCodec(codec: 'PCMU' | 'PCMA' | 'opus', payloadType: number, fmtp?: string): void;
  /** Telephone-event payload type after a re-INVITE (undefined: none negotiated). */
  setTelephoneEventPayloadType?(pt: number | undefined): void;
  /** SRTP: the peer re-keyed (same suite); throws otherwise. */
  setSrtpRemote?(suite: 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32', remoteKey: Uint8Array): void;
  /** Stop / resume our outbound RTP (hold): nothing is sent while the direction excludes send. */
  setDirection(direction: MediaDirection): void;
  play(pcm: Int16Array): void;
  flush(): void;
  stats(): CallMediaStats;
  close(): void;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  /** A digit signalled by SIP INFO, delivered as the media's 'dtmfStart' + 'dtmf' (false: the same press came in the media). */
  signalledDtmf?(digit: string, durationMs: number): boolean;
  /** Native stereo WAV recording (src/consent starts it only after consent or the notice). */
  startRecording?(path: string): void;
  stopRecording?(): { path: string; frames: number; dropped: number; sampleRate: number } | null;
}

/** In-dialog INFO as delivered with a dialog 'info' event. */
export interface InfoRequest { body?: string; get?(h: string): string | undefined }

/** Timer source; injectable so tests run on a fake clock. */
export interface CallClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const realClock: CallClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export type Synthesize = (text: string, opts: { voice: TtsVoice }) => Promise<Int16Array>;

/**
 * Rewrites the SDP crossing the call (rtpengine anchor: carrier media lands on rtpengine,
 * which relays it to our media session). `fromCarrier`: SDP received from the carrier →
 * the SDP our media session uses; `toCarrier`: SDP we produced → the SDP sent to the
 * carrier. Rejects when the relay fails.
 */
export interface SdpRelay {
  fromCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string>;
  toCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string>;
}

/** Our side's direction for the media session, from the negotiated audio. */
export function mediaDirectionOf(a: NegotiatedAudio): MediaDirection {
  const recv = a.answerDirection === 'sendrecv' || a.answerDirection === 'recvonly';
  if (a.localSends) return recv ? 'sendrecv' : 'sendonly';
  return recv ? 'recvonly' : 'inactive';
}

/**
 * Caller and dialed-number facts beyond `from`/`to` (src/sip/identity.ts reads them from the
 * INVITE).
 */
export interface CallParties {
  /**
   * Calling number for lookups (the CRM's identify_caller), E.164 when known; may be a
   * network-asserted number the caller asked to withhold — never logged.
   * @defaultValue `from`
   */
  ani?: string;
  /** The caller withheld their number: `from` is `anonymous`. @defaultValue false */
  privacy?: boolean;
  /** Original called number of a forwarded call (History-Info / Diversion). */
  originalCalled?: string;
  /** Trunk the call came in on. */
  trunk?: string;
}

export interface CallOptions {
  callId: string;
  /** calling number as people and logs may see it (`anonymous` when withheld) */
  from: string;
  /** dialed number */
  to: string;
  parties?: CallParties;
  tenant: Tenant;
  session: CallMediaSession;
  /**
   * The answer to the caller's offer. For a delayed-offer INVITE (no SDP) this holds our
   * own offer (`sdp`) with provisional audio parameters, and `delayedOffer` is set.
   */
  negotiation: Negotiation;
  /** Our offer, when the INVITE had no SDP: the caller's answer arrives in the ACK. */
  delayedOffer?: SessionDescription;
  /**
   * The caller's offer as negotiated (after the relay, if any): its `o=` line is the base of
   * the version rules for the caller's later offers. @defaultValue none (delayed offer)
   */
  remoteSdp?: string;
  /**
   * How long to wait for the ACK of our 200 (with the answer to a delayed offer) before
   * hanging up as `no-ack`. The edge (ours, and drachtio-server) gives up after 64·T1 = 32 s
   * and ends the dialog itself; this is the backstop when it does not say so. (Also the wait
   * for the ACK of a 200 carrying our offer to an offerless re-INVITE: 32 s.)
   * @defaultValue 34000 (64·T1 + 2 s)
   */
  ackTimeoutMs?: number;
  /** address advertised in our SDP (public RTP address) */
  advertisedAddress: string;
  /** what the media layer supports (re-INVITEs negotiate with the same set) */
  capabilities: Partial<MediaCapabilities>;
  /** `o=` session id of our SDP (the version is bumped on every changed answer) */
  sdpSessionId: string;
  /** seconds after answer; 0 = no limit (tenant override already applied). @defaultValue 0 */
  maxCallSeconds?: number;
  /** seconds without inbound RTP before hanging up; 0 = off. @defaultValue 0 */
  rtpTimeoutSeconds?: number;
  /**
   * RFC 4028 session timer negotiated on the INVITE (./session-timer.ts): started on answer,
   * refreshed by re-INVITE/UPDATE, `session-expired` when the refreshes stop.
   * @defaultValue none (no session timer)
   */
  sessionTimer?: SessionTimerParams;
  /** text → 8 kHz PCM (flite through the media addon) */
  synthesize: Synthesize;
  /**
   * SDP relay (rtpengine anchor) applied to every SDP of the dialog after the initial
   * INVITE: the ACK's answer, re-INVITE offers and our answers to them.
   * @defaultValue none (SDP goes to the caller as negotiated)
   */
  sdpRelay?: SdpRelay;
  /** where the INVITE came from, `udp/192.0.2.7:5060` (the CDR). @defaultValue unset */
  source?: string;
  /** reject the pending INVITE (hang-up before answer) */
  reject?: (status: number, reason: string) => void;
  /**
   * The conversation (src/dialogue): called once when the call is answered and media can
   * flow (after the ACK's answer for a delayed offer), instead of playing the tenant's
   * plain greeting. @defaultValue none (the greeting is played)
   */
  onConversation?: (call: Call) => void;
  clock?: CallClock;
  log?: Logger;
  /**
   * Longest wait for the BYE transaction when the agent hangs up; the call is released
   * at once either way, this only bounds the promise hangup() returns.
   * @defaultValue 4000
   */
  byeTimeoutMs?: number;
  /**
   * RTP inactivity poll interval (supervision only).
   * @defaultValue 1000
   */
  rtpPollMs?: number;
}

export type CallState = 'offered' | 'answered' | 'ended';

/** No ACK for our 200 after this long: `no-ack` (64·T1 = 32 s, when the edge gives up, + 2 s). */
export const ACK_TIMEOUT_MS = 34_000;

/** The Reason header of our BYE per end reason (the CDR's release cause too). */
export const BYE_REASON: Partial<Record<EndReason, string>> = {
  'agent-hangup': 'Q.850;cause=16;text="normal call clearing"',
  'max-duration': 'Q.850;cause=16;text="maximum call duration reached"',
  'rtp-timeout': 'Q.850;cause=102;text="media timeout: no RTP received"',
  transferred: 'SIP;cause=200;text="call transferred"',
  'rep-bye': 'Q.850;cause=16;text="rep hung up"',
  'session-expired': 'SIP;cause=408;text="session timer expired"',
  'no-ack': 'SIP;cause=408;text="no ACK for the 200 OK"',
  shutdown: 'Q.850;cause=41;text="server shutting down"',
  error: 'Q.850;cause=41;text="internal error"',
};

export class Call extends EventEmitter {
  readonly callId: string;
  readonly from: string;
  readonly to: string;
  /** calling number for lookups (see {@link CallParties.ani}) */
  readonly ani: string;
  /** the caller withheld their number */
  readonly privacy: boolean;
  readonly originalCalled: string | undefined;
  readonly tenant: Tenant;
  readonly session: CallMediaSession;
  readonly startedAt: number;
  answeredAt: number | null = null;
  endedAt: number | null = null;
  endReason: EndReason | null = null;
  /** where the INVITE came from (`udp/192.0.2.7:5060`) */
  readonly source: string | undefined;
  /** the media counters taken as the call ended (the session is closed then); null before */
  mediaStats: CallMediaStats | null = null;
  /**
   * Recording posture, jurisdiction and consent of this call (src/consent sets it at answer
   * and updates it as the caller answers); the CDR and the screen pop read it. null when the
   * tenant has no recording posture.
   */
  recording: RecordingFacts | null = null;
  private _state: CallState = 'offered';
  private _audio: NegotiatedAudio;
  private localSdp: string;
  /** direction applied to the media session (a new session sends: sendrecv) */
  private direction: MediaDirection = 'sendrecv';
  /** highest `o=` version we have sent; a changed SDP of ours gets the next one (RFC 3264 §8) */
  private sdpVersion = 1;
  /** `o=` of the peer's last SDP: the same session id and version again means no change */
  private remoteOrigin: OriginKey | null = null;
  /** the peer's last SDP without its `o=` line */
  private remoteBody: string | null = null;
  /** in-dialog offers of ours in progress (re-INVITE, UPDATE with SDP): a crossing offer gets 491 */
  private offersOut = 0;
  /** an offer of the peer is being answered, or our offer (in a 2xx to an offerless re-INVITE) waits for the ACK */
  private offerIn: 'answering' | 'awaiting-ack' | null = null;
  /** our offer in the 2xx to an offerless re-INVITE, until the ACK brings the answer */
  private pendingOffer: { sdp: string; wire: string; offer: SessionDescription; timer: unknown } | null = null;
  /** wakes a reoffer() that waits out a glare back-off, when the call ends first */
  private glareWake: (() => void) | null = null;
  private glareTimer: unknown = null;
  private ackSeen = false;
  /** the ACK of a delayed-offer call was taken (its answer applied or refused) */
  private ackAnswerTaken = false;
  /** how the caller confirmed the answer (the call is answered from then on) */
  private confirmedBy: 'ack' | 'rtp' | null = null;
  /** RTP came from the offered address (possibly before the 200: early media) */
  private rtpFromOffer = false;
  /** our outbound RTP may flow: ACK seen or RTP from the offered address */
  private sendOpen = false;
  /** the direction the SDP asks for; applied with send removed until {@link sendOpen} */
  private wantedDirection: MediaDirection = 'sendrecv';
  /** the address the caller's offer named for its media (null: delayed offer, or relayed) */
  private readonly offeredAddress: string | null;
  private readonly acked: Promise<void>;
  private resolveAcked!: () => void;
  private dialog: CallDialog | null = null;
  private readonly opts: CallOptions;
  private readonly clock: CallClock;
  private readonly log: Logger;
  private maxTimer: unknown = null;
  private rtpTimer: unknown = null;
  private ackTimer: unknown = null;
  private sessionTimer: SessionTimer | null = null;
  /** start of the current "expect RTP" window (answer, or un-hold) */
  private rtpWatchSince = 0;
  private repLeg: RepLeg | null = null;
  /** what the CDR says about a hand-off */
  private handoffCdr: Record<string, string | number | undefined> | null = null;
  private endedPromise: Promise<CallEnded>;
  private resolveEnded!: (e: CallEnded) => void;

  constructor(opts: CallOptions) {
    super();
    this.opts = opts;
    this.callId = opts.callId;
    this.from = opts.from;
    this.to = opts.to;
    this.ani = opts.parties?.ani ?? opts.from;
    this.privacy = opts.parties?.privacy ?? false;
    this.originalCalled = opts.parties?.originalCalled;
    this.source = opts.source;
    this.tenant = opts.tenant;
    this.session = opts.session;
    this._audio = opts.negotiation.audio;
    this.localSdp = opts.negotiation.sdp;
    this.clock = opts.clock ?? realClock;
    this.log = opts.log ?? logger('call', { callId: opts.callId });
    this.startedAt = this.clock.now();
    this.endedPromise = new Promise((r) => (this.resolveEnded = r));
    this.acked = new Promise((r) => (this.resolveAcked = r));
    if (opts.remoteSdp) this.noteRemote(opts.remoteSdp);
    this.session.on('playoutDone', this.onPlayoutDone);
    this.session.on('latched', this.onLatched);
    this.offeredAddress = opts.delayedOffer || opts.sdpRelay ? null : (this._audio.remote?.address ?? null);
    // Nothing goes out before the caller confirms (ACK, or RTP from the offered address);
    // an initial offer that already holds (sendonly/inactive/c=0.0.0.0) keeps it so after.
    if (!opts.delayedOffer) this.wantedDirection = mediaDirectionOf(this._audio);
    this.applyWanted();
  }

  get state(): CallState {
    return this._state;
  }

  /** The audio stream as currently negotiated. */
  get audio(): NegotiatedAudio {
    return this._audio;
  }

  /** Our current SDP answer. */
  get sdp(): string {
    return this.localSdp;
  }

  /** Resolves once the call has ended and everything is released. */
  get ended(): Promise<CallEnded> {
    return this.endedPromise;
  }

  /**
   * The 200 OK went out: take ownership of the dialog, start supervision, play the
   * greeting. If the call already ended (CANCEL raced the answer) the dialog is torn down.
   */
  attachDialog(dialog: CallDialog): void {
    if (this._state === 'ended') {
      this.log.info('dialog arrived after call ended; sending BYE', { reason: this.endReason });
      dialog.destroy({ headers: { Reason: BYE_REASON.error! } }).catch(() => {});
      return;
    }
    if (this._state !== 'offered') throw new Error('Call.attachDialog: dialog already attached');
    this.dialog = dialog;
    this._state = 'answered';
    this.rtpWatchSince = this.clock.now();
    dialog.on('destroy', this.onDialogDestroy);
    dialog.on('modify', this.onModify);
    dialog.on('ack', this.onDialogAck);
    this.trackOffers(dialog);
    dialog.on('info', this.onInfo);
    dialog.on('update', this.onUpdate);
    if (this.opts.delayedOffer) dialog.on('ack', this.onAck);
    this.ackTimer = this.clock.setTimeout(() => {
      this.ackTimer = null;
      if (this.ackSeen) return;
      this.log.warn('no ACK for our 200 OK: the call was never confirmed; hanging up', { waitedMs: this.opts.ackTimeoutMs ?? ACK_TIMEOUT_MS, rtpFromOffer: this.rtpFromOffer || undefined });
      void this.hangup('no-ack');
    }, this.opts.ackTimeoutMs ?? ACK_TIMEOUT_MS);

    const max = this.opts.maxCallSeconds ?? 0;
    if (max > 0) this.maxTimer = this.clock.setTimeout(() => this.onMaxDuration(), max * 1000);
    const rtpTimeout = this.opts.rtpTimeoutSeconds ?? 0;
    if (rtpTimeout > 0) this.rtpTimer = this.clock.setInterval(() => this.checkRtp(), this.opts.rtpPollMs ?? 1000);
    if (this.opts.sessionTimer) this.startSessionTimer(this.opts.sessionTimer);

    this.log.debug('200 OK sent; waiting for the ACK', { rtpFromOffer: this.rtpFromOffer || undefined });
    // RTP from the offered address already flows (early media): that confirms the call too
    if (this.rtpFromOffer) this.confirm('rtp');
  }

  /**
   * The caller confirmed our 200 (its ACK; or RTP from the address it offered): now the call
   * is answered — `answered`, the answer time, the conversation.
   */
  private confirm(by: 'ack' | 'rtp'): void {
    if (this.confirmedBy !== null || this._state !== 'answered') return;
    this.confirmedBy = by;
    this.answeredAt = this.clock.now();
    this.rtpWatchSince = this.answeredAt;
    this.log.info('call answered', {
      from: this.from, to: this.to, tenant: this.tenant.id, codec: this._audio.codec, pt: this._audio.payloadType,
      remote: this._audio.remote ? `${this._audio.remote.address}:${this._audio.remote.port}` : 'none',
      local: `${this.opts.advertisedAddress}:${this.session.localPort}`,
      confirmedBy: by === 'ack' ? undefined : 'rtp (no ACK yet)',
    });
    this.emit('answered');
    this.startConversation();
  }

  /** Let our outbound RTP flow (ACK seen, or RTP from the offered address). */
  private openSend(): void {
    if (this.sendOpen) return;
    this.sendOpen = true;
    this.applyWanted();
  }

  /** ACK of a delayed-offer call: it carries the caller's answer to our offer. */
  private onAck = (req?: { body?: string; get?(h: string): string | undefined }): void => {
    if (this._state !== 'answered' || !this.opts.delayedOffer || this.ackAnswerTaken) return;
    this.ackAnswerTaken = true;
    this.dialog?.removeListener('ack', this.onAck);
    let raw: string;
    try {
      raw = sdpFromBody(req?.get?.('Content-Type'), req?.body)?.sdp ?? '';
    } catch (err) {
      raw = ''; // no usable SDP: the answer check below hangs up
      this.log.debug('ACK body without a usable SDP', { reason: (err as Error).message });
    }
    const relay = this.opts.sdpRelay;
    if (!relay) {
      this.applyAckAnswer(raw);
      return;
    }
    relay.fromCarrier(raw, 'answer').then(
      (body) => {
        if (this._state === 'answered') this.applyAckAnswer(body);
      },
      (err: unknown) => {
        if (this._state !== 'answered') return;
        this.log.error('media relay rejected the SDP answer in ACK; hanging up', { err: err as Error });
        void this.hangup('error');
      },
    );
  };

  private applyAckAnswer(body: string): void {
    let a: NegotiatedAudio;
    try {
      a = processAnswer(body, this.opts.delayedOffer!);
      if (a.codec !== this._audio.codec || a.payloadType !== this._audio.payloadType || a.codec === 'opus') {
        this.session.setCodec(a.codec, a.payloadType, a.remoteFmtp);
      }
      if (a.remote) this.session.setRemote(a.remote.address, a.remote.port);
      this.applyDirection(a);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      this.log.warn('unusable SDP answer in ACK; hanging up', { reason: text });
      void this.hangup('error');
      return;
    }
    this._audio = a;
    this.noteRemote(body);
    this.rtpWatchSince = this.clock.now();
    this.log.info('SDP answer received in ACK', {
      codec: a.codec, pt: a.payloadType, remote: a.remote ? `${a.remote.address}:${a.remote.port}` : 'none',
    });
    this.confirm('ack');
  }

  /** Media can flow: hand the call to the conversation, or play the plain greeting. */
  private startConversation(): void {
    const conv = this.opts.onConversation;
    if (!conv) {
      void this.say(this.tenant.greeting);
      return;
    }
    try {
      conv(this);
    } catch (err) {
      this.log.error('conversation failed to start; hanging up', { err: err as Error });
      void this.hangup('error');
    }
  }

  /** Tell the media session our direction when it changed (hold / un-hold). */
  private applyDirection(a: NegotiatedAudio): void {
    this.wantedDirection = mediaDirectionOf(a);
    this.applyWanted();
  }

  /** The wanted direction, without send until the caller confirmed (see {@link sendOpen}). */
  private applyWanted(): void {
    const w = this.wantedDirection;
    const d: MediaDirection = this.sendOpen ? w : w === 'sendrecv' || w === 'recvonly' ? 'recvonly' : 'inactive';
    if (d === this.direction) return;
    this.session.setDirection(d);
    this.log.debug('media direction', { from: this.direction, to: d, ...(this.sendOpen ? {} : { held: 'until the ACK' }) });
    this.direction = d;
  }

  /**
   * Speak `text` into the call (synthesize, then queue on the media session). Resolves when
   * the audio is queued; `playout-done` fires when it has been sent. No-op once ended or
   * while the peer holds the call.
   */
  async say(text: string, voice: TtsVoice = this.tenant.voice): Promise<void> {
    if (this._state !== 'answered') return;
    let pcm: Int16Array;
    const t0 = this.clock.now();
    try {
      pcm = await this.opts.synthesize(text, { voice });
    } catch (err) {
      this.log.warn('speech synthesis failed', { err: err as Error, voice });
      return;
    }
    if (this._state !== 'answered') return;
    if (!this._audio.localSends) {
      this.log.debug('not playing: call on hold', { direction: this._audio.answerDirection });
      return;
    }
    this.session.play(pcm);
    this.log.debug('playing', { ms: Math.round(pcm.length / 8), synthMs: this.clock.now() - t0 });
  }

  /**
   * Warm transfer connected: the rep's leg is bridged to ours and owned by this call from
   * now on. Rep BYE → BYE to the caller (`rep-bye`); caller BYE (or any other end) → BYE to
   * the rep; both media sessions released once.
   */
  attachRepLeg(leg: RepLeg): void {
    if (this._state !== 'answered') {
      leg.dialog.destroy().catch(() => {});
      leg.release();
      return;
    }
    this.repLeg = leg;
    leg.dialog.on('destroy', this.onRepBye);
    this.log.info('rep leg bridged', { target: leg.target });
  }

  /** Record hand-off facts for the CDR line (mode, target, trigger, outcome). */
  noteHandoff(info: Record<string, string | number | undefined>): void {
    this.handoffCdr = { ...this.handoffCdr, ...info };
  }

  /** What {@link noteHandoff} recorded (null without a hand-off). */
  get handoffInfo(): Readonly<Record<string, string | number | undefined>> | null {
    return this.handoffCdr;
  }

  /**
   * Blind transfer: REFER the caller's leg to `referTo` (RFC 3515). Resolves with the REFER's
   * final status (202 = accepted); progress arrives as `refer-progress` events
   * ({@link ReferProgress}) from the NOTIFYs, each answered 200.
   */
  async refer(referTo: string, headers: Record<string, string> = {}): Promise<number> {
    const d = this.dialog;
    if (this._state !== 'answered' || !d) throw new Error('refer: call not answered');
    if (!d.request) throw new Error('refer: the dialog cannot send requests');
    d.removeListener('notify', this.onNotify);
    d.on('notify', this.onNotify);
    const res = await d.request({ method: 'REFER', headers: { 'Refer-To': referTo, ...headers } });
    return res.status;
  }

  private onNotify = (req: { body?: string; get?(h: string): string | undefined }, res: ReinviteResponse): void => {
    try {
      res.send(200);
    } catch { /* already answered */ }
    const body = typeof req.body === 'string' ? req.body : '';
    const m = /^SIP\/2\.0\s+(\d{3})\s*([^\r\n]*)/m.exec(body);
    const state = req.get?.('Subscription-State') ?? '';
    if (!m) {
      this.log.debug('NOTIFY without a sipfrag status', { state });
      return;
    }
    const progress: ReferProgress = { status: Number(m[1]), reason: m[2]!.trim(), terminated: /^\s*terminated/i.test(state) };
    this.log.info('transfer progress', { status: progress.status, reason: progress.reason, terminated: progress.terminated });
    this.emit('refer-progress', progress);
  };

  /**
   * In-dialog INFO: DTMF (`application/dtmf-relay`, `application/dtmf`) → 200 and the digit
   * goes to the media session's 'dtmf' events like an RFC 4733 one; an empty INFO
   * (keep-alive probe) → 200; another body → 415 with Accept; a DTMF body without a key → 400.
   */
  private onInfo = (req: InfoRequest, res: ReinviteResponse): void => {
    const info = dtmfInfoBody(req.get?.('Content-Type'), typeof req.body === 'string' ? req.body : '');
    try {
      switch (info.kind) {
        case 'digit': {
          res.send(200);
          const delivered = this._state === 'answered' && this.session.signalledDtmf?.(info.digit, info.durationMs);
          this.log.debug(delivered ? 'DTMF by SIP INFO' : 'DTMF by SIP INFO, already received in the media', { digit: info.digit, durationMs: info.durationMs });
          break;
        }
        case 'empty':
          res.send(200);
          break;
        case 'ignored':
          res.send(200);
          this.log.debug('SIP INFO ignored', { why: info.why });
          break;
        case 'malformed':
          res.send(400, { headers: { Warning: `399 voice-agent "${info.why}"` } });
          this.log.warn('SIP INFO rejected: 400', { why: info.why });
          break;
        case 'unsupported':
          res.send(415, { headers: { Accept: INFO_ACCEPT } });
          this.log.info('SIP INFO rejected: 415', { contentType: info.contentType });
          break;
      }
    } catch (err) {
      this.log.debug('INFO response failed', { err: err as Error });
    }
  };

  private onRepBye = (): void => {
    if (this._state === 'ended' || !this.repLeg) return;
    this.log.info('rep hung up');
    const leg = this.repLeg;
    leg.dialog.removeListener('destroy', this.onRepBye);
    this.repLeg = null;
    leg.release();
    void this.hangup('rep-bye');
  };

  /** CANCEL arrived before answer (the edge already answered 487). */
  cancel(): void {
    if (this._state !== 'offered') return;
    this.finish('canceled');
  }

  /** Answering failed; release everything. */
  fail(err: unknown): void {
    if (this._state === 'ended') return;
    this.log.warn('call failed', { err: err instanceof Error ? err : String(err) });
    this.finish('error');
  }

  /**
   * Agent-initiated end: BYE when answered (with a Reason header), else reject the
   * INVITE with 480. Resolves when the BYE transaction completes (bounded by
   * `byeTimeoutMs`); resources are released immediately.
   */
  async hangup(reason: EndReason = 'agent-hangup'): Promise<void> {
    if (this._state === 'ended') return;
    if (this._state === 'offered') {
      try {
        this.opts.reject?.(reason === 'shutdown' ? 503 : 480, reason === 'shutdown' ? 'Service Unavailable' : 'Temporarily Unavailable');
      } catch (err) {
        this.log.debug('reject failed', { err: err as Error });
      }
      this.finish(reason === 'agent-hangup' ? 'rejected' : reason);
      return;
    }
    const dialog = this.dialog!;
    this.finish(reason);
    const bye = dialog.destroy({ headers: { Reason: BYE_REASON[reason] ?? BYE_REASON['agent-hangup']! } }).then(
      () => undefined,
      (err: unknown) => this.log.debug('BYE failed', { err: err as Error }),
    );
    let timer: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((r) => {
      timer = setTimeout(r, this.opts.byeTimeoutMs ?? 4000);
      timer.unref();
    });
    await Promise.race([bye, cap]);
    clearTimeout(timer);
  }

  private onDialogDestroy = (_req?: unknown, why?: string): void => {
    if (this._state === 'ended') return;
    if (!this.ackSeen && /\back\b/i.test(why ?? '')) {
      // the edge gave up on the ACK after 64·T1 and ended the dialog: its BYE reaches the app
      // as if from the caller, Reason "ACK timeout" (drachtio-srf passes the text as `why`)
      this.log.warn('dialog ended without an ACK for our 200 OK: the call was never confirmed', { why });
      this.finish('no-ack');
      return;
    }
    // A BYE from the caller means it had our 200 (it knows our tag); drachtio-srf emits a
    // dialog's 'ack' a turn later and drops it when a BYE comes in the same turn, so a call
    // BYEd before its ACK was seen ends as caller-bye, never confirmed (unanswered in the CDR).
    this.log.debug('caller hung up', { why, confirmed: this.confirmedBy !== null });
    this.finish('caller-bye');
  };

  private onMaxDuration(): void {
    this.maxTimer = null;
    if (this._state !== 'answered') return;
    this.log.info('max call duration reached', { maxCallSeconds: this.opts.maxCallSeconds });
    void this.hangup('max-duration');
  }

  private checkRtp(): void {
    // not before the caller confirmed the call: an unACKed 200 ends by the ACK timeout (no-ack)
    if (this._state !== 'answered' || this.confirmedBy === null || !this._audio.remoteSends) return;
    const limitMs = (this.opts.rtpTimeoutSeconds ?? 0) * 1000;
    let ago: number | null;
    try {
      ago = this.session.stats().lastRxAgoMs;
    } catch {
      return;
    }
    const sinceWatch = this.clock.now() - this.rtpWatchSince;
    const silentFor = ago === null ? sinceWatch : Math.min(ago, sinceWatch);
    if (silentFor >= limitMs) {
      this.log.info('RTP timeout', { silentMs: silentFor, rtpTimeoutSeconds: this.opts.rtpTimeoutSeconds });
      void this.hangup('rtp-timeout');
    }
  }

  private onModify = (req: ReinviteRequest, res: ReinviteResponse): void => {
    if (this._state !== 'answered') {
      res.send(481);
      return;
    }
    const gated = this.refreshGate(req, res, 're-INVITE');
    if (!gated) return;
    res = gated;
    // the SDP, bare or as the SDP part of a multipart body (SIP-I/SIP-T re-INVITEs carry ISUP too)
    let raw: string;
    try {
      raw = sdpFromBody(req.get?.('Content-Type'), typeof req.body === 'string' ? req.body : '')?.sdp ?? '';
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      this.log.warn(`re-INVITE rejected: ${err.kind === 'malformed' ? 400 : 415}`, { reason: err.message });
      res.send(err.kind === 'malformed' ? 400 : 415, { headers: { Accept: SDP_ACCEPT } });
      return;
    }
    // Without a relay this runs to completion synchronously (no await is reached).
    this.handleModify(raw, res).catch((err: unknown) => {
      this.log.error('re-INVITE handling failed', { err: err as Error });
      try {
        res.send(500);
      } catch { /* already answered */ }
    });
  };

  /**
   * An offer from the peer (re-INVITE, UPDATE with SDP), or an offerless re-INVITE.
   * Glare (RFC 3261 §14.2, RFC 3311 §5.2): while an offer of ours is out → 491 (the peer retries
   * after its random back-off); while we are still answering an earlier one → 500 with
   * Retry-After 0-10 s.
   */
  private handleModify(raw: string, res: ReinviteResponse): Promise<void> {
    if (this.offersOut > 0 || this.offerIn === 'awaiting-ack') {
      this.log.info('offer crossed one of ours: 491 Request Pending', { ours: this.offersOut > 0 ? 'our re-INVITE/UPDATE' : 'our offer in a 200, ACK pending' });
      res.send(491);
      return Promise.resolve();
    }
    if (this.offerIn === 'answering') {
      this.log.info('second offer before the first was answered: 500 + Retry-After');
      res.send(500, { headers: { 'Retry-After': String(randomInt(0, 11)) } });
      return Promise.resolve();
    }
    this.offerIn = 'answering';
    const done = (): void => {
      if (this.offerIn === 'answering') this.offerIn = null;
    };
    // the exchange is over once the final response is out (or the handling failed)
    const reply: ReinviteResponse = {
      send: (status, o) => {
        done();
        res.send(status, o);
      },
    };
    return (raw.trim() === '' ? this.offerInResponse(reply) : this.answerOffer(raw, reply)).finally(done);
  }

  /**
   * Offerless re-INVITE (RFC 3261 §14.2, RFC 6337 §5.3): we offer every codec we have (the
   * running one first) in the 200; the ACK carries the answer, which may change the codec.
   */
  private async offerInResponse(res: ReinviteResponse): Promise<void> {
    const relay = this.opts.sdpRelay;
    const { sdp, offer } = this.buildOffer(this.allCodecs());
    let wire = sdp;
    if (relay) {
      try {
        wire = await relay.toCarrier(sdp, 'offer');
      } catch (err) {
        this.log.error('media relay failed on an offerless re-INVITE', { err: err as Error });
        res.send(503, { headers: { 'Retry-After': '2', Reason: 'SIP;cause=503;text="media relay unavailable"' } });
        return;
      }
      if (this._state !== 'answered') {
        res.send(481);
        return;
      }
    }
    this.offerIn = 'awaiting-ack';
    const timer = this.clock.setTimeout(() => {
      if (!this.pendingOffer) return;
      this.pendingOffer = null;
      this.offerIn = null;
      this.log.warn('no ACK with an answer to our offer in the re-INVITE 200; media unchanged');
    }, this.opts.ackTimeoutMs ?? 32000);
    this.pendingOffer = { sdp, wire, offer, timer };
    res.send(200, { body: wire, headers: { 'Content-Type': 'application/sdp' } });
    this.log.info('offerless re-INVITE: our offer in the 200', { codecs: offer.media[this._audio.mediaIndex]?.formats.join(' ') });
  }

  /** ACK of a 200 that carried our offer (offerless re-INVITE): apply the answer. */
  private async takeAnswerInAck(req?: { body?: string; get?(h: string): string | undefined }): Promise<void> {
    const p = this.pendingOffer;
    if (!p) return;
    this.clock.clearTimeout(p.timer);
    this.pendingOffer = null;
    try {
      let body = sdpFromBody(req?.get?.('Content-Type'), req?.body)?.sdp ?? '';
      if (this.opts.sdpRelay) body = await this.opts.sdpRelay.fromCarrier(body, 'answer');
      if (this._state !== 'answered') return;
      const a = processAnswer(body, p.offer, this._audio.mediaIndex);
      this.applyAudio(a);
      this.localSdp = p.sdp;
      if (this.dialog) this.dialog.local.sdp = p.wire;
      this.noteRemote(body);
      this.log.info('answer in ACK to our re-INVITE offer applied', { codec: a.codec, pt: a.payloadType, direction: a.answerDirection });
      this.emit('reinvite', a);
    } catch (err) {
      this.log.warn('unusable answer in the ACK to our re-INVITE offer; media unchanged', { reason: (err as Error).message });
    } finally {
      if (this.offerIn === 'awaiting-ack') this.offerIn = null;
    }
  }

  /** A re-INVITE / UPDATE offer: negotiate, switch the media session, answer. */
  private async answerOffer(raw: string, res: ReinviteResponse): Promise<void> {
    const relay = this.opts.sdpRelay;
    let body = raw;
    if (relay) {
      try {
        body = await relay.fromCarrier(raw, 'offer');
      } catch (err) {
        this.log.error('media relay rejected the re-INVITE offer', { err: err as Error });
        res.send(488, { headers: { Reason: 'SIP;cause=488;text="media relay rejected the offer"' } });
        return;
      }
      if (this._state !== 'answered') {
        res.send(481);
        return;
      }
    }
    // o= rules (RFC 3264 §8): the same session id and version as the peer's last SDP means
    // nothing changed — answer with our SDP as it is, touch nothing. A changed SDP must carry
    // the next version; a peer that changes it without (a known carrier bug) is taken at its
    // word on the content, with a warning.
    const origin = originOf(body);
    const prevOrigin = this.remoteOrigin;
    const sameVersion = !!origin && !!prevOrigin && origin.id === prevOrigin.id && origin.version === prevOrigin.version;
    let n: Negotiation | null = null;
    if (sameVersion && stripOrigin(body) === this.remoteBody) {
      this.log.debug('re-INVITE offer without change (same o= version): our SDP unchanged', { version: String(origin!.version) });
    } else {
      if (sameVersion) {
        this.log.warn('re-INVITE offer changes the SDP but not its o= version (RFC 3264 §8); taking the change', { version: String(origin!.version) });
      } else if (origin && prevOrigin && origin.id === prevOrigin.id && origin.version !== prevOrigin.version + 1n) {
        this.log.debug('re-INVITE offer o= version did not go up by one', { from: String(prevOrigin.version), to: String(origin.version) });
      }
      try {
        n = negotiate(body, {
          local: { address: this.opts.advertisedAddress, port: this.session.localPort },
          capabilities: this.opts.capabilities,
          origin: { sessionId: this.opts.sdpSessionId, sessionVersion: this.sdpVersion },
          preferCodec: this._audio.codec,
          // SRTP stays as the call was answered: an SRTP call keeps our key and suite (the peer
          // may re-key), a plain one stays plain — the media session cannot switch mid-call.
          srtp: this._audio.srtp
            ? { policy: 'required', localKey: this._audio.srtp.localKey, preferSuite: this._audio.srtp.suite, scope: 'in this call (it was answered with SRTP)' }
            : { policy: 'off', scope: 'in this call (it was answered with plain RTP)' },
        });
      } catch (err) {
        const text = err instanceof SdpError ? err.message : 'internal error';
        this.log.warn('re-INVITE rejected: 488; the call goes on as before', { reason: text, codec: this._audio.codec });
        res.send(488, { headers: { Reason: `SIP;cause=488;text="${text.replace(/"/g, "'")}"` } });
        return;
      }
    }
    // Our answer: the same SDP (and o= version) when nothing changed for us, else the next version.
    const sdp = n ? this.stamp(n.sdp) : this.localSdp;
    // What the carrier sees: rtpengine's side of the relay. Without this a carrier
    // re-INVITE would move the carrier's media off rtpengine onto our core directly.
    let wire = sdp;
    if (relay) {
      try {
        wire = await relay.toCarrier(sdp, 'answer');
      } catch (err) {
        this.log.error('media relay failed on the re-INVITE answer', { err: err as Error });
        res.send(503, { headers: { 'Retry-After': '2', Reason: 'SIP;cause=503;text="media relay unavailable"' } });
        return;
      }
      if (this._state !== 'answered') {
        res.send(481);
        return;
      }
    }
    const prev = this._audio;
    const a = n ? n.audio : prev;
    if (n) {
      try {
        this.applyAudio(a);
      } catch (err) {
        this.log.warn('re-INVITE could not be applied', { err: err as Error });
        res.send(488, { headers: { Reason: 'SIP;cause=488;text="cannot apply new media parameters"' } });
        return;
      }
    }
    if (sdp !== this.localSdp) this.sdpVersion = versionOf(sdp) ?? this.sdpVersion;
    this.localSdp = sdp;
    this.noteRemote(body);
    if (this.dialog) this.dialog.local.sdp = wire;
    res.send(200, { body: wire, headers: { 'Content-Type': 'application/sdp' } });
    this.log.info('re-INVITE answered', {
      codec: a.codec, pt: a.payloadType, ...(a.codec !== prev.codec ? { codecWas: prev.codec } : {}),
      direction: a.answerDirection, hold: a.hold, change: n ? undefined : 'none',
      remote: a.remote ? `${a.remote.address}:${a.remote.port}` : 'none',
    });
    if (n) this.emit('reinvite', a);
  }

  /** Switch the media session to newly negotiated audio (codec, telephone-event, remote, direction). */
  private applyAudio(a: NegotiatedAudio): void {
    const prev = this._audio;
    // SRTP first (it may refuse): same suite, the peer's key may change (RFC 4568 §7.1.4 re-key).
    if (!!a.srtp !== !!prev.srtp) throw new Error('cannot switch between RTP and SRTP in a running call');
    if (a.srtp && prev.srtp) {
      if (a.srtp.suite !== prev.srtp.suite) throw new Error(`SRTP suite change (${prev.srtp.suite} → ${a.srtp.suite}) needs a new call`);
      if (!sameKey(a.srtp.remoteKey, prev.srtp.remoteKey)) {
        this.session.setSrtpRemote?.(a.srtp.suite, a.srtp.remoteKey);
        this.log.info('SRTP: the peer re-keyed', { suite: a.srtp.suite });
      }
    }
    if (a.codec !== prev.codec || a.payloadType !== prev.payloadType || (a.codec === 'opus' && a.remoteFmtp !== prev.remoteFmtp)) {
      this.session.setCodec(a.codec, a.payloadType, a.remoteFmtp);
      this.log.info('media codec switched', { from: `${prev.codec}/${prev.payloadType}`, to: `${a.codec}/${a.payloadType}` });
    }
    if (a.telephoneEvent?.payloadType !== prev.telephoneEvent?.payloadType) {
      this.session.setTelephoneEventPayloadType?.(a.telephoneEvent?.payloadType);
    }
    if (a.remote && (!prev.remote || a.remote.address !== prev.remote.address || a.remote.port !== prev.remote.port)) {
      this.session.setRemote(a.remote.address, a.remote.port);
    }
    if (!a.localSends && prev.localSends) this.session.flush();
    this.applyDirection(a);
    if (a.remoteSends && !prev.remoteSends) this.rtpWatchSince = this.clock.now();
    this._audio = a;
  }

  /** The SDP we send: the current one when the content is unchanged, else the next `o=` version. */
  private stamp(sdp: string): string {
    if (stripOrigin(sdp) === stripOrigin(this.localSdp)) return this.localSdp;
    return withVersion(sdp, this.sdpVersion + 1);
  }

  /** Remember the peer's SDP (`o=` and content) for the version rules. */
  private noteRemote(sdp: string): void {
    this.remoteOrigin = originOf(sdp);
    this.remoteBody = stripOrigin(sdp);
  }

  /** Every codec we can use, the running one first. */
  private allCodecs(): CodecName[] {
    const caps = { pcmu: true, pcma: true, opus: false, ...this.opts.capabilities };
    const all: CodecName[] = [this._audio.codec];
    for (const c of ['PCMU', 'PCMA', 'opus'] as const) {
      if (!all.includes(c) && (c === 'PCMU' ? caps.pcmu : c === 'PCMA' ? caps.pcma : caps.opus)) all.push(c);
    }
    return all;
  }

  /** Our offer for this dialog (m= lines of our current SDP), stamped with the right `o=` version. */
  private buildOffer(codecs: readonly CodecName[]): { sdp: string; offer: SessionDescription } {
    const a = this._audio;
    const { sdp: fresh } = createReoffer({
      current: this.localSdp, mediaIndex: a.mediaIndex, codecs, capabilities: this.opts.capabilities,
      payloadTypes: {
        ...(a.codec === 'opus' ? { opus: a.payloadType } : {}),
        ...(a.telephoneEvent ? { telephoneEvent: a.telephoneEvent.payloadType } : {}),
      },
      sessionVersion: this.sdpVersion + 1,
    });
    const sdp = this.stamp(fresh);
    if (sdp !== this.localSdp) this.sdpVersion += 1;
    return { sdp, offer: parseSdp(sdp) };
  }

  /**
   * Send our own offer in a re-INVITE. `codecs` (most preferred first) changes the codec;
   * without it our current SDP goes out unchanged (same `o=` version: nothing changes).
   * Waits for the ACK of the initial INVITE. Glare: a 491 — or an offer exchange of the peer's
   * in progress here — is retried after RFC 3261 §14.1's random wait (0-2 s in 10 ms steps: the
   * caller, not we, owns the Call-ID) with a freshly built offer, at most 3 times. Resolves with
   * the final status: 2xx → the answer is applied; otherwise the session is unchanged (§14.1).
   */
  async reoffer(opts: { codecs?: readonly CodecName[] } = {}): Promise<number> {
    await Promise.race([this.acked, this.endedPromise]);
    for (let attempt = 0; ; attempt++) {
      if (this._state !== 'answered' || !this.dialog?.request) throw new Error('reoffer: the call is not answered');
      const busy = this.offersOut > 0 || this.offerIn !== null;
      const status = busy ? 491 : await this.sendOffer(opts.codecs);
      if (status !== 491 || attempt >= 3) return status;
      const waitMs = randomInt(0, 201) * 10;
      this.log.info('our re-INVITE met one of the peer\'s (491): retrying', { waitMs, attempt: attempt + 1, local: busy });
      await new Promise<void>((resolve) => {
        this.glareWake = resolve;
        this.glareTimer = this.clock.setTimeout(() => {
          this.glareTimer = null;
          this.glareWake = null;
          resolve();
        }, waitMs);
      });
    }
  }

  private async sendOffer(codecs: readonly CodecName[] | undefined): Promise<number> {
    const d = this.dialog!;
    const relay = this.opts.sdpRelay;
    const { sdp, offer } = codecs ? this.buildOffer(codecs) : { sdp: this.localSdp, offer: parseSdp(this.localSdp) };
    const wire = relay ? await relay.toCarrier(sdp, 'offer') : sdp;
    const res = await d.request!({ method: 'INVITE', headers: { 'Content-Type': 'application/sdp' }, body: wire });
    if (res.status < 200 || res.status >= 300) {
      if (res.status !== 491) this.log.info('our re-INVITE was refused; the session is unchanged', { status: res.status });
      return res.status;
    }
    if (this._state !== 'answered') return res.status;
    try {
      let body = sdpFromBody(res.get?.('Content-Type'), res.body)?.sdp ?? '';
      if (relay) body = await relay.fromCarrier(body, 'answer');
      const a = processAnswer(body, offer, this._audio.mediaIndex);
      this.applyAudio(a);
      this.localSdp = sdp;
      d.local.sdp = wire;
      this.noteRemote(body);
      this.log.info('our re-INVITE accepted', { codec: a.codec, pt: a.payloadType, direction: a.answerDirection });
      this.emit('reinvite', a);
    } catch (err) {
      this.log.warn('unusable answer to our re-INVITE; media unchanged', { reason: (err as Error).message });
    }
    return res.status;
  }

  /** Count our in-dialog offers (ours and the session timer's refreshes) so a crossing offer gets 491. */
  private trackOffers(d: CallDialog): void {
    const send = d.request?.bind(d);
    if (!send) return;
    d.request = async (o) => {
      const m = o.method.toUpperCase();
      const offer = m === 'INVITE' || (m === 'UPDATE' && !!o.body);
      if (offer) this.offersOut += 1;
      try {
        return await send(o);
      } finally {
        if (offer) this.offersOut -= 1;
      }
    };
  }

  private onDialogAck = (req?: { body?: string; get?(h: string): string | undefined }): void => {
    if (!this.ackSeen) {
      this.ackSeen = true;
      this.resolveAcked();
      if (this.ackTimer !== null) this.clock.clearTimeout(this.ackTimer);
      this.ackTimer = null;
      this.openSend();
      // a delayed offer's ACK carries the answer: confirmed once it is applied (onAck)
      if (!this.opts.delayedOffer) this.confirm('ack');
    }
    if (this.offerIn === 'awaiting-ack' && this.pendingOffer) void this.takeAnswerInAck(req);
  };

  // ── session timer (RFC 4028) and UPDATE (RFC 3311) ──

  private startSessionTimer(params: SessionTimerParams): void {
    this.sessionTimer = new SessionTimer(params, {
      refresh: (method, headers) => this.sendRefresh(method, headers),
      expired: () => {
        if (this._state === 'answered') void this.hangup('session-expired');
      },
    }, this.clock, this.log);
    this.sessionTimer.start();
    this.log.debug('session timer started', {
      interval: params.interval, refresher: params.refresher, method: this.sessionTimer.method,
    });
  }

  /** Our session refresh: UPDATE without a body, or a re-INVITE offering our current SDP unchanged. */
  private async sendRefresh(method: 'UPDATE' | 'INVITE', headers: Record<string, string>): Promise<{ status: number; get?(h: string): string | undefined }> {
    const d = this.dialog;
    if (this._state !== 'answered' || !d?.request) throw new Error('no dialog to refresh');
    if (method === 'UPDATE') return d.request({ method: 'UPDATE', headers });
    return d.request({ method: 'INVITE', headers: { ...headers, 'Content-Type': 'application/sdp' }, body: d.local.sdp });
  }

  /**
   * A re-INVITE or UPDATE from the caller is a session refresh: 422 (with our Min-SE) when it
   * asks for too short an interval; otherwise the response object to answer with, which adds
   * the session timer headers to a 2xx and restarts the timer once the 2xx is sent.
   * Without a session timer the response is passed through unchanged.
   */
  private refreshGate(req: { get?(h: string): string | undefined }, res: ReinviteResponse, what: string): ReinviteResponse | null {
    const st = this.sessionTimer;
    if (!st) return res;
    const r = st.inbound(req);
    if ('reject' in r) {
      this.log.info(`${what} rejected: 422`, { why: r.reject.why });
      res.send(422, { headers: r.reject.headers });
      return null;
    }
    return {
      send: (status, opts) => {
        if (status < 200 || status >= 300) return res.send(status, opts);
        res.send(status, { ...opts, headers: { ...r.headers, ...(opts?.headers ?? {}) } });
        r.confirm();
      },
    };
  }

  /**
   * In-dialog UPDATE (RFC 3311): without a body it is a session refresh → 200 with the timer
   * headers; with SDP it is an offer, answered like a re-INVITE's.
   */
  private onUpdate = (req: { body?: string; get?(h: string): string | undefined }, res: ReinviteResponse): void => {
    if (this._state !== 'answered') {
      res.send(481);
      return;
    }
    const gated = this.refreshGate(req, res, 'UPDATE');
    if (!gated) return;
    const raw = typeof req.body === 'string' ? req.body : '';
    if (raw.trim() === '') {
      gated.send(200);
      return;
    }
    this.handleModify(raw, gated).catch((err: unknown) => {
      this.log.error('UPDATE handling failed', { err: err as Error });
      try {
        res.send(500);
      } catch { /* already answered */ }
    });
  };

  private onPlayoutDone = (): void => {
    this.emit('playout-done');
  };

  private onLatched = (remote?: { address: string; port: number }): void => {
    this.log.debug('RTP latched', { to: remote ? `${remote.address}:${remote.port}` : undefined });
    // RTP from the address the caller offered proves that address wants our media: send, and
    // (after the 200) take the call as answered even before its ACK
    if (this.rtpFromOffer || !remote || this.offeredAddress === null || !sameAddress(remote.address, this.offeredAddress)) return;
    this.rtpFromOffer = true;
    this.openSend();
    if (this._state === 'answered') this.confirm('rtp');
  };

  /** The single exit: release everything exactly once, write the CDR, emit `ended`. */
  private finish(reason: EndReason): void {
    if (this._state === 'ended') return;
    this._state = 'ended';
    this.endReason = reason;
    this.endedAt = this.clock.now();
    if (this.maxTimer !== null) this.clock.clearTimeout(this.maxTimer);
    if (this.rtpTimer !== null) this.clock.clearInterval(this.rtpTimer);
    if (this.ackTimer !== null) this.clock.clearTimeout(this.ackTimer);
    this.maxTimer = this.rtpTimer = this.ackTimer = null;
    if (this.pendingOffer) this.clock.clearTimeout(this.pendingOffer.timer);
    this.pendingOffer = null;
    if (this.glareTimer !== null) this.clock.clearTimeout(this.glareTimer);
    this.glareTimer = null;
    this.glareWake?.();
    this.glareWake = null;
    this.sessionTimer?.stop();
    if (this.dialog) {
      this.dialog.removeListener('update', this.onUpdate);
      this.dialog.removeListener('destroy', this.onDialogDestroy);
      this.dialog.removeListener('modify', this.onModify);
      this.dialog.removeListener('ack', this.onDialogAck);
      this.dialog.removeListener('ack', this.onAck);
      this.dialog.removeListener('info', this.onInfo);
    }
    this.session.removeListener('playoutDone', this.onPlayoutDone);
    this.session.removeListener('latched', this.onLatched);
    this.dialog?.removeListener('notify', this.onNotify);
    const leg = this.repLeg;
    this.repLeg = null;
    if (leg) {
      leg.dialog.removeListener('destroy', this.onRepBye);
      leg.dialog.destroy({ headers: { Reason: reason === 'caller-bye' ? 'Q.850;cause=16;text="caller hung up"' : (BYE_REASON[reason] ?? BYE_REASON['agent-hangup']!) } })
        .catch((err: unknown) => this.log.debug('BYE to the rep failed', { err: err as Error }));
      try {
        leg.release();
      } catch (err) {
        this.log.warn('rep leg release failed', { err: err as Error });
      }
    }
    let stats: CallMediaStats = { packetsIn: 0, packetsOut: 0, lastRxAgoMs: null };
    try {
      stats = this.session.stats();
    } catch { /* session already gone */ }
    this.mediaStats = stats;
    try {
      this.session.close();
    } catch (err) {
      this.log.warn('media session close failed', { err: err as Error });
    }
    // a call whose 200 was never ACKed was never answered, even if RTP flowed
    if (reason === 'no-ack') this.answeredAt = null;
    const durationMs = this.answeredAt === null ? 0 : this.endedAt - this.answeredAt;
    const iso = (t: number | null): string | undefined => (t === null ? undefined : new Date(t).toISOString());
    this.log.info('cdr', {
      from: this.from, to: this.to, tenant: this.tenant.id,
      originalCalled: this.originalCalled, trunk: this.opts.parties?.trunk, privacy: this.privacy || undefined,
      codec: this._audio.codec,
      start: iso(this.startedAt), answer: iso(this.answeredAt), end: iso(this.endedAt),
      reason, durationMs, packetsIn: stats.packetsIn, packetsOut: stats.packetsOut,
      ...(this.handoffCdr ?? {}),
    });
    const ended: CallEnded = { reason, durationMs };
    this.emit('ended', ended);
    this.resolveEnded(ended);
    this.removeAllListeners();
  }
}

/** Two IP addresses are the same (IPv4-mapped IPv6 seen as IPv4, case-insensitive). */
function sameAddress(a: string, b: string): boolean {
  const n = (x: string): string => x.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  return n(a) === n(b);
}

function stripOrigin(sdp: string): string {
  return sdp.replace(/^o=.*$/m, '');
}

/** Session id and version of an SDP's `o=` line. */
interface OriginKey { id: string; version: bigint }

function originOf(sdp: string): OriginKey | null {
  const m = /^o=\S+ (\S+) (\d{1,30}) /m.exec(sdp);
  return m ? { id: m[1]!, version: BigInt(m[2]!) } : null;
}

function versionOf(sdp: string): number | undefined {
  const v = originOf(sdp)?.version;
  return v === undefined ? undefined : Number(v);
}

function withVersion(sdp: string, version: number): string {
  return sdp.replace(/^o=(\S+ \S+) \d+ /m, `o=$1 ${version} `);
}
