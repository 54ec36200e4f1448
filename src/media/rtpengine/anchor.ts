/**
 * rtpengine anchor mode: the carrier's media lands on rtpengine, which relays it to (and
 * from) our native media session.
 *
 * ```
 * carrier ──RTP──▶ rtpengine A-side ══ relay ══ rtpengine B-side ──RTP──▶ MediaSession
 *          ◀──────  (SDP in our 200 OK)          (SDP our session negotiates against)
 * ```
 *
 * One {@link RtpengineAnchor} per process (one ng control socket). Per call,
 * {@link RtpengineAnchor.begin} gives an {@link AnchoredCall} that turns each SDP crossing
 * the call into the SDP rtpengine wants the other side to see:
 *
 * - initial INVITE with an offer: `offerFromCarrier(offer)` → SDP toward us (negotiate the
 *   media session against it; its `c=`/`m=` is rtpengine's B-side), then
 *   `answerFromUs(ourAnswer)` → SDP toward the carrier (goes into the 200 OK);
 * - INVITE without SDP (delayed offer): `offerFromUs(ourOffer)` → SDP for the 200 OK, then
 *   `answerFromCarrier(ackBody)` → SDP our session applies as the answer;
 * - re-INVITEs from the carrier: the same pair as the initial INVITE;
 * - hang-up, whatever the cause: `release()` — sends `delete` exactly once (later calls
 *   return the same promise), never throws, and is a no-op when no command was ever sent.
 *
 * rtpengine tags: the carrier's SIP From-tag is the carrier's monologue; ours is a label of
 * our own (`localTag`), so no SIP to-tag is needed before the 200 OK is sent.
 */
import { randomBytes } from 'node:crypto';
import { logger, type Logger } from '../../ops/log.ts';
import { RtpengineClient, RtpengineError, type NgParams, type NgReply } from './client.ts';

const log = logger('rtpengine');

/** rtpengine anchor configuration (environment variables in brackets). */
export interface RtpengineConfig {
  /**
   * ng control URL of rtpengine (`listen-ng`), e.g. `udp://127.0.0.1:22222` [`RTPENGINE_URL`].
   * Anchoring is off when unset.
   * @defaultValue unset (off)
   */
  url: string;
  /**
   * Deadline of one ng command, ms [`RTPENGINE_TIMEOUT_MS`]. A call whose offer/answer times
   * out is rejected by the call layer (503), so keep it well under the carrier's INVITE timer.
   * @defaultValue 1500
   */
  timeoutMs: number;
  /**
   * Codecs rtpengine adds to the offer toward us and transcodes to/from, so a carrier that
   * offers only codecs our core lacks (e.g. Opus or G.722) still connects
   * [`RTPENGINE_TRANSCODE`, comma-separated, e.g. `PCMU,PCMA`]. Codecs the carrier already
   * offers are passed through untouched.
   * @defaultValue [] (no transcoding)
   */
  transcode: string[];
  /**
   * rtpengine logical interfaces `[carrier side, our side]` for multi-homed rtpengine
   * (`interface=external/…;internal/…`) [`RTPENGINE_DIRECTION`, e.g. `external,internal`].
   * @defaultValue unset (rtpengine's default interface on both sides)
   */
  direction?: [string, string];
  /**
   * Extra ng `flags` sent with every offer and answer [`RTPENGINE_FLAGS`, comma-separated,
   * e.g. `SIP-source-address`].
   * @defaultValue []
   */
  flags: string[];
}

/** Defaults of {@link RtpengineConfig} (except `url`, which has none: unset = off). */
export const RTPENGINE_DEFAULTS = Object.freeze({ timeoutMs: 1500, transcode: [] as string[], flags: [] as string[] });

function list(v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * Read the anchor configuration from the environment. Returns null when `RTPENGINE_URL` is
 * unset or empty (anchoring off); throws an Error naming the variable for a bad value.
 */
export function rtpengineConfigFromEnv(env: NodeJS.ProcessEnv = process.env): RtpengineConfig | null {
  const url = (env.RTPENGINE_URL ?? '').trim();
  if (url === '') return null;
  const cfg: RtpengineConfig = { url, ...RTPENGINE_DEFAULTS, transcode: [], flags: [] };
  if (env.RTPENGINE_TIMEOUT_MS !== undefined && env.RTPENGINE_TIMEOUT_MS.trim() !== '') {
    const t = Number(env.RTPENGINE_TIMEOUT_MS);
    if (!Number.isInteger(t) || t < 1 || t > 60000) {
      throw new Error(`RTPENGINE_TIMEOUT_MS: must be an integer 1-60000 (ms), got ${JSON.stringify(env.RTPENGINE_TIMEOUT_MS)}`);
    }
    cfg.timeoutMs = t;
  }
  cfg.transcode = list(env.RTPENGINE_TRANSCODE);
  for (const c of cfg.transcode) {
    if (!/^[A-Za-z0-9.\-/]+$/.test(c)) throw new Error(`RTPENGINE_TRANSCODE: bad codec name ${JSON.stringify(c)}`);
  }
  const dir = list(env.RTPENGINE_DIRECTION);
  if (dir.length > 0) {
    if (dir.length !== 2) throw new Error(`RTPENGINE_DIRECTION: expected two interface names "carrier,ours", got ${JSON.stringify(env.RTPENGINE_DIRECTION)}`);
    cfg.direction = [dir[0]!, dir[1]!];
  }
  cfg.flags = list(env.RTPENGINE_FLAGS);
  return cfg;
}

/** Per-call counters of what the anchor did (for logs and tests). */
export interface AnchoredCallState {
  callId: string;
  carrierTag: string;
  localTag: string;
  /** ng commands sent for this call (offer/answer), in order. */
  commands: string[];
  released: boolean;
}

/** One call anchored on rtpengine; see the module comment for the order of calls. */
export class AnchoredCall {
  readonly callId: string;
  /** The carrier's SIP From-tag (rtpengine's tag of the carrier side). */
  readonly carrierTag: string;
  /** Our side's rtpengine tag (a label of ours, not a SIP tag). */
  readonly localTag: string;
  private readonly anchor: RtpengineAnchor;
  private readonly log: Logger;
  private readonly sent: string[] = [];
  private releasing: Promise<void> | null = null;

  /** @internal use {@link RtpengineAnchor.begin} */
  constructor(anchor: RtpengineAnchor, callId: string, carrierTag: string) {
    this.anchor = anchor;
    this.callId = callId;
    this.carrierTag = carrierTag;
    this.localTag = `va-${randomBytes(6).toString('hex')}`;
    this.log = log.child({ callId });
  }

  /** Carrier's offer in → SDP toward our media session (rtpengine's B-side address). */
  offerFromCarrier(sdp: string): Promise<string> {
    return this.offer(sdp, this.carrierTag, 'ours');
  }

  /** Our answer in → SDP for the carrier (the 200 OK body). */
  answerFromUs(sdp: string): Promise<string> {
    return this.answer(sdp, this.carrierTag, this.localTag);
  }

  /** Delayed offer: our offer in → SDP for the carrier (the 200 OK body). */
  offerFromUs(sdp: string): Promise<string> {
    return this.offer(sdp, this.localTag, 'carrier');
  }

  /** Delayed offer: the carrier's answer (ACK body) in → SDP our media session applies. */
  answerFromCarrier(sdp: string): Promise<string> {
    return this.answer(sdp, this.localTag, this.carrierTag);
  }

  /**
   * Call-layer adapter: SDP that arrived from the carrier (`offer` in an INVITE/re-INVITE,
   * `answer` in an ACK) → the SDP our media session uses.
   */
  fromCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    return kind === 'offer' ? this.offerFromCarrier(sdp) : this.answerFromCarrier(sdp);
  }

  /** Call-layer adapter: SDP we produced (`answer` for a 200 OK, `offer` for a delayed-offer 200 OK) → the SDP sent to the carrier. */
  toCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    return kind === 'answer' ? this.answerFromUs(sdp) : this.offerFromUs(sdp);
  }

  /** `query` for this call (packet counters per stream, endpoints rtpengine learnt). */
  query(): Promise<NgReply> {
    return this.anchor.client.query({ 'call-id': this.callId });
  }

  get state(): AnchoredCallState {
    return { callId: this.callId, carrierTag: this.carrierTag, localTag: this.localTag, commands: [...this.sent], released: this.releasing !== null };
  }

  get released(): boolean {
    return this.releasing !== null;
  }

  /**
   * Tear the call down on rtpengine (`delete`). Exactly once: later calls return the same
   * promise. Never rejects (a failure is logged; rtpengine's own timeout reaps the call).
   * Sends nothing when no offer was ever sent.
   */
  release(reason = 'hangup'): Promise<void> {
    if (this.releasing) return this.releasing;
    this.anchor.forget(this);
    if (this.sent.length === 0) {
      this.releasing = Promise.resolve();
      return this.releasing;
    }
    this.releasing = this.anchor.client.delete({ 'call-id': this.callId }).then(
      (r) => this.log.debug('rtpengine call deleted', { reason, warning: r.warning }),
      (err: unknown) => this.log.warn('rtpengine delete failed; rtpengine will time the call out itself', { reason, err: err as Error }),
    );
    this.anchor.track(this.releasing);
    return this.releasing;
  }

  private check(cmd: string): void {
    if (this.releasing) throw new RtpengineError('closed', cmd, `rtpengine call ${this.callId} was already released`);
  }

  private async offer(sdp: string, fromTag: string, toward: 'ours' | 'carrier'): Promise<string> {
    this.check('offer');
    const cfg = this.anchor.config;
    const p: NgParams = {
      'call-id': this.callId,
      'from-tag': fromTag,
      sdp,
      replace: ['origin', 'session-connection'],
      ...(cfg.flags.length ? { flags: [...cfg.flags] } : {}),
    };
    if (toward === 'ours') {
      // Our core speaks plain RTP/AVP without ICE; rtpengine terminates SRTP/ICE/rtcp-mux
      // on the carrier side and transcodes when asked.
      p['transport-protocol'] = 'RTP/AVP';
      p.ICE = 'remove';
      p['rtcp-mux'] = ['demux'];
      if (cfg.transcode.length) p.codec = { transcode: [...cfg.transcode] };
      if (cfg.direction) p.direction = [cfg.direction[0], cfg.direction[1]];
    } else if (cfg.direction) {
      p.direction = [cfg.direction[1], cfg.direction[0]];
    }
    this.sent.push('offer');
    const r = await this.anchor.client.offer(p as NgParams & { 'call-id': string; 'from-tag': string; sdp: string });
    this.log.debug('rtpengine offer', { toward, sdp: r.sdp.length });
    return r.sdp;
  }

  private async answer(sdp: string, fromTag: string, toTag: string): Promise<string> {
    this.check('answer');
    const cfg = this.anchor.config;
    const p: NgParams = {
      'call-id': this.callId,
      'from-tag': fromTag,
      'to-tag': toTag,
      sdp,
      replace: ['origin', 'session-connection'],
      ...(cfg.flags.length ? { flags: [...cfg.flags] } : {}),
    };
    this.sent.push('answer');
    const r = await this.anchor.client.answer(p as NgParams & { 'call-id': string; 'from-tag': string; 'to-tag': string; sdp: string });
    return r.sdp;
  }
}

/** The process-wide rtpengine anchor (one ng control socket). */
export class RtpengineAnchor {
  readonly config: Readonly<RtpengineConfig>;
  readonly client: RtpengineClient;
  private readonly live = new Set<AnchoredCall>();
  private readonly deleting = new Set<Promise<void>>();

  constructor(config: Partial<RtpengineConfig> & { url: string }) {
    this.config = Object.freeze({ ...RTPENGINE_DEFAULTS, ...config, transcode: [...(config.transcode ?? [])], flags: [...(config.flags ?? [])] });
    this.client = new RtpengineClient({ url: this.config.url, timeoutMs: this.config.timeoutMs });
  }

  /** Start anchoring one call. `carrierTag` is the From-tag of the carrier's INVITE. */
  begin(callId: string, carrierTag: string): AnchoredCall {
    if (this.client.closed) throw new RtpengineError('closed', 'offer', `rtpengine anchor for ${this.config.url} is closed`);
    const c = new AnchoredCall(this, callId, carrierTag);
    this.live.add(c);
    return c;
  }

  /** Resolves when rtpengine answers `ping` (start-up check; rejects with a clear RtpengineError). */
  ping(): Promise<void> {
    return this.client.ping();
  }

  /** Calls begun and not yet released. */
  get activeCalls(): number {
    return this.live.size;
  }

  /**
   * Release every live call (bounded by the ng timeout), then close the control socket.
   * Idempotent.
   */
  async close(): Promise<void> {
    if (this.client.closed) return;
    for (const c of [...this.live]) void c.release('shutdown');
    await Promise.all([...this.deleting]);
    this.client.close();
  }

  /** @internal */
  forget(c: AnchoredCall): void {
    this.live.delete(c);
  }

  /** @internal */
  track(p: Promise<void>): void {
    this.deleting.add(p);
    void p.finally(() => this.deleting.delete(p));
  }
}

/**
 * The call app's entry point: an anchor when `RTPENGINE_URL` is set, else null (media goes
 * straight to the native core). Throws for invalid `RTPENGINE_*` values.
 */
export function createRtpengineAnchor(env: NodeJS.ProcessEnv = process.env): RtpengineAnchor | null {
  const cfg = rtpengineConfigFromEnv(env);
  if (!cfg) return null;
  const a = new RtpengineAnchor(cfg);
  log.info('rtpengine anchoring on', { url: cfg.url, timeoutMs: cfg.timeoutMs, transcode: cfg.transcode.join(',') || undefined });
  return a;
}
