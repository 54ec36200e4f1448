/**
 * The drachtio-srf application: OPTIONS → 200, INVITE → SDP negotiation → tenant →
 * media session → 200 OK → {@link Call}.
 *
 * It talks to whichever edge the config names over the drachtio wire protocol: the built-in
 * src/sip-edge (started by main in-process) or a real drachtio-server. drachtio-srf
 * reconnects on its own when the control connection drops; this module only logs it.
 *
 * An INVITE without SDP (delayed offer) is answered with our offer in the 200 OK; the
 * caller's answer arrives in the ACK and is applied by the Call.
 *
 * rtpengine anchor (when `rtpengine` is given, i.e. `RTPENGINE_URL` is set): the carrier's
 * offer goes through rtpengine first, so our media session negotiates against rtpengine's
 * B-side and the 200 OK carries rtpengine's A-side; the Call relays every later SDP
 * (ACK answer, re-INVITEs) the same way, and the anchored leg is released (`delete`)
 * exactly once when the call ends, whatever the cause. rtpengine failing or not answering
 * → **503** `Retry-After: 2`, `Reason: SIP;cause=503;text="media relay unavailable"` and an
 * error log line.
 *
 * SDP problems are answered **488 Not Acceptable Here** (the SIP request itself is fine, the
 * session description is what we cannot use — also for unparseable SDP, so peers do not
 * retry the same offer as they might after a 400), always with
 * `Reason: SIP;cause=488;text="…"`, a `Warning: 3xx <host> "…"` header and a warn log line
 * that names the offered and supported codecs.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:net';
import { randomInt } from 'node:crypto';
import Srf from 'drachtio-srf';
import { logger } from '../ops/log.ts';
import { Call, type CallMediaSession, type Synthesize, type EndReason } from '../call/call.ts';
import { callDialog, sendProvisional, uacSrf } from './dialogs.ts';
import { negotiateInvite, SESSION_TIMER_DEFAULTS, type InviteTimerDecision } from '../call/session-timer.ts';
import type { Admission } from './admission.ts';
import { metrics, sipMethodLabel, statusClass } from '../ops/metrics.ts';
import type { UacSrf } from '../escalation/handoff.ts';
import type { RtpengineAnchor, AnchoredCall } from '../media/rtpengine/index.ts';
import {
  negotiate, createOffer, SdpError, DEFAULT_CAPABILITIES, OFFER_TELEPHONE_EVENT_PT, sdpFromBody, BodyError, SDP_ACCEPT,
  type SdpBody,
  type MediaCapabilities, type Negotiation, type SessionDescription,
} from '../sdp/index.ts';
import type { TenantDirectory, TtsVoice } from '../tenants/index.ts';
import type { Config } from '../config.ts';
import { mediaAddressFor } from './media-family.ts';
import { srtpPolicyFor } from './srtp-settings.ts';
import { newSrtpKey } from '../sdp/crypto.ts';
import { readCallIdentity, TrunkMatcher } from './identity.ts';
import { TrunkPolicy } from './trunk-policy.ts';
import type { SipGuard } from './sip-guard.ts';
import { DigestAuthenticator } from './digest-auth.ts';
import { takeTrunkSlot, trunkGate } from './trunk-gate.ts';

const log = logger('sip');

/** Outbound connections: how long a finished request's connection stays open for its last in-dialog transaction, ms. */
const OUTBOUND_SESSION_LINGER_MS = 2000;
/** How long shutdown waits after the last call ended before disconnecting from the edge, ms. */
const SHUTDOWN_LINGER_MS = 500;

/** Methods we handle, advertised in `Allow`. */
export const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, NOTIFY, INFO, UPDATE, PRACK';
/**
 * Option tags we implement, advertised in `Supported`: `100rel` (reliable provisionals: the
 * edge — ours or drachtio-server — does RSeq/PRACK), `timer` while session timers are on.
 */
export function supportedTags(config: Pick<Config, 'sessionTimer'>): string {
  return (config.sessionTimer ?? SESSION_TIMER_DEFAULTS).enabled ? '100rel, timer' : '100rel';
}

/** Whether a Supported/Require value names an option tag. */
function hasTag(value: string | undefined, tag: string): boolean {
  return (value ?? '').split(',').some((x) => x.trim().toLowerCase() === tag);
}
/** Bodies we accept, advertised in `Accept`: SDP, bare or as a part of multipart/mixed or /alternative. */
export const ACCEPT = SDP_ACCEPT;

/** Reason header of a 503 caused by rtpengine (anchor mode). */
export const MEDIA_RELAY_UNAVAILABLE = 'SIP;cause=503;text="media relay unavailable"';

/** What the app needs from the media engine (src/media MediaEngine satisfies it). */
export interface MediaEngineLike {
  createSession(opts: {
    codec: 'PCMU' | 'PCMA' | 'opus';
    payloadType: number;
    telephoneEventPayloadType?: number;
    remote?: { address: string; port: number };
    /** the peer's fmtp for the codec (Opus encoder settings) */
    fmtp?: string;
    /** native VAD + turn-taking on the inbound stream (an object: the tenant's tunables) */
    vad?: boolean | Partial<import('../vad/policy.ts').TurnTunables>;
    /** address family of the peer's media (SDP c=IN IP4 / IN IP6) */
    family?: 4 | 6;
    /** SRTP keys (RTP/SAVP with SDES) */
    srtp?: { suite: 'AES_CM_128_HMAC_SHA1_80' | 'AES_CM_128_HMAC_SHA1_32'; localKey: Uint8Array; remoteKey: Uint8Array };
  }): CallMediaSession;
  readonly activeSessions: number;
  /** sessions of this address family can be created (absent: IPv4 only) */
  serves?(family: 4 | 6): boolean;
}

export interface VoiceAppOptions {
  config: Config;
  tenants: TenantDirectory;
  engine: MediaEngineLike;
  /** text → 8 kHz PCM; results are cached per voice and text */
  synthesize: Synthesize;
  /**
   * What the media layer can negotiate.
   * @defaultValue PCMU, PCMA, telephone-event; Opus when `supportedCodecs` lists it
   */
  capabilities?: Partial<MediaCapabilities>;
  /**
   * Codecs compiled into the native media core (`supportedCodecs` of src/media). Opus is
   * advertised and negotiated only when it is listed (and `capabilities.opus` is not false).
   * @defaultValue [] (G.711 only)
   */
  supportedCodecs?: readonly string[];
  /**
   * rtpengine anchor: carrier media lands on rtpengine and is relayed to our core.
   * @defaultValue null (media goes straight to the native core)
   */
  rtpengine?: RtpengineAnchor | null;
  /** Supply an Srf instance (tests); one is created otherwise. */
  srf?: Srf;
  /**
   * Trunk rules: source → trunk, allowed DIDs, concurrent calls per trunk, tenant binding
   * (./trunk-policy.ts). @defaultValue built from `config.trunks` and `config.sipGuard`
   */
  trunkPolicy?: TrunkPolicy;
  /**
   * The SIP guard (./sip-guard.ts) as drachtio-srf middleware: for the drachtio-server
   * topology, where no built-in edge ran it before the app. @defaultValue none
   */
  guard?: SipGuard;
  /** Digest authentication of trunks with `auth`. @defaultValue a new DigestAuthenticator */
  digest?: DigestAuthenticator;
  /**
   * Overload admission checked before an INVITE is answered (503 + Retry-After over a
   * limit). @defaultValue none (every INVITE is taken while media ports last)
   */
  admission?: Admission;
  /**
   * The conversation run in each answered call (src/dialogue via main); without it a call
   * plays the tenant's greeting and stays silent. @defaultValue none
   */
  conversation?: (call: Call) => void;
  /**
   * Run the native VAD (Silero + turn-taking, barge-in in the core) on each call's inbound
   * audio; off, the conversation falls back to energy endpointing. @defaultValue false
   */
  vad?: boolean;
  /**
   * How long to wait for the first connection to the edge before failing start-up.
   * drachtio-srf keeps retrying after that; only start-up gives up.
   * @defaultValue 10000
   */
  connectTimeoutMs?: number;
  /**
   * Synthesized prompts kept in memory (greetings are the same for every call of a tenant).
   * @defaultValue 64
   */
  ttsCacheEntries?: number;
}

function quoteText(s: string, max = 200): string {
  const t = s.length > max ? s.slice(0, max - 1) + '…' : s;
  return t.replace(/[\r\n]+/g, ' ').replace(/["\\]/g, "'");
}

function warnCode(err: SdpError): number {
  switch (err.kind) {
    case 'no-common-codec': return 305; // Incompatible media format
    case 'no-audio': return 304; // Media type not available
    case 'unsupported': return 301; // Incompatible network address formats
    case 'srtp': return 302; // Incompatible transport protocol (RTP/AVP vs RTP/SAVP, or no usable a=crypto)
    default: return 399; // Miscellaneous warning
  }
}

/**
 * Provisional call parameters while our delayed offer is outstanding: the session starts
 * with our first codec, sending nothing (no remote) until the ACK's answer arrives.
 */
function delayedOfferNegotiation(o: { offer: SessionDescription; sdp: string }, caps: Partial<MediaCapabilities>): Negotiation {
  const c = { ...DEFAULT_CAPABILITIES, ...caps };
  const pcmu = c.pcmu;
  return {
    answer: o.offer,
    sdp: o.sdp,
    audio: {
      codec: pcmu ? 'PCMU' : 'PCMA', payloadType: pcmu ? 0 : 8, clockRate: 8000, channels: 1,
      ...(c.telephoneEvent ? { telephoneEvent: { payloadType: OFFER_TELEPHONE_EVENT_PT, clockRate: 8000, fmtp: '0-16' } } : {}),
      remote: null, offerDirection: 'sendrecv', answerDirection: 'sendrecv',
      localSends: false, remoteSends: false, hold: false, mediaIndex: 0,
    },
  };
}

/**
 * The call-length limit that applies: the global limit is a ceiling the operator sets;
 * a tenant may only lower it (0 = no limit on that level).
 */
export function effectiveMaxCallSeconds(global: number, tenant: number | undefined): number {
  if (tenant === undefined || tenant === 0) return global;
  if (global === 0) return tenant;
  return Math.min(global, tenant);
}

export class VoiceApp extends EventEmitter {
  readonly srf: Srf;
  /** drachtio-srf's UAC side as the hand-off uses it (rep legs). */
  get uac(): UacSrf {
    return uacSrf(this.srf);
  }
  /** Live calls by Call-ID. */
  readonly calls = new Map<string, Call>();
  private readonly opts: VoiceAppOptions;
  private readonly capabilities: Partial<MediaCapabilities>;
  private readonly ttsCache = new Map<string, Promise<Int16Array>>();
  private stopping = false;
  private _draining = false;
  /** performance.now() of the last call end: shutdown lingers after it so the final response (the 200 to the caller's BYE) leaves. */
  private lastCallEndedAt = -Infinity;
  private readonly tenantCalls = new Map<string, number>();
  /** why an INVITE was refused, when the status alone does not say (503: overload, draining, media) */
  private readonly refusals = new WeakMap<Srf.SrfResponse, string>();
  private connected = false;
  /** The listener drachtio-server connects to (outbound connections). */
  private outboundServer: Server | undefined;
  private everConnected = false;
  private reconnectLogged = false;
  /** Host named in Warning headers. */
  private readonly warnAgent: string;
  /** Trunks by source address: trust for identity headers, country for national numbers. */
  private readonly trunks: TrunkMatcher;
  /** Trunk access rules (DIDs, calls per trunk, tenant binding). */
  readonly policy: TrunkPolicy;

  constructor(opts: VoiceAppOptions) {
    super();
    this.opts = opts;
    this.capabilities = { opus: (opts.supportedCodecs ?? []).includes('opus'), ...opts.capabilities };
    this.srf = opts.srf ?? new Srf();
    this.trunks = new TrunkMatcher(opts.config.trunks ?? [], opts.config.defaultCountry ?? 'US');
    this.warnAgent = opts.config.sip.address === '0.0.0.0' || opts.config.sip.address === '::' ? 'voice-agent' : opts.config.sip.address;
    // Trunk rules first (./trunk-gate.ts): the guard when drachtio-server is the edge, digest
    // authentication, allowed DIDs, calls per trunk; what it refuses goes no further.
    this.policy = opts.trunkPolicy ?? new TrunkPolicy({ trunks: opts.config.trunks ?? [], unknownSources: opts.config.sipGuard?.unknownSources });
    for (const t of this.policy.trunks) {
      if (t.tenant && !opts.tenants.tenants.some((x) => x.id === t.tenant)) throw new Error(`trunk ${t.name}: tenant "${t.tenant}" is not in the tenants file`);
    }
    // outbound connections: every request's connection is closed once it is done, refusals of the trunk gate included
    this.srf.use((req, res, next) => {
      if (this.outbound) this.watchOutboundSession(req, res);
      next();
    });
    for (const mw of trunkGate({
      policy: this.policy, digest: opts.digest ?? new DigestAuthenticator(), defaultCountry: opts.config.defaultCountry ?? 'US',
      logIntervalSeconds: opts.config.sipGuard?.logIntervalSeconds, ...(opts.guard ? { guard: opts.guard } : {}),
    })) this.srf.use(mw as never);
    this.srf.use((req, res, next) => {
      this.countSip(req, res);
      next();
    });
    this.srf.use('options', (req, res) => this.onOptions(req, res));
    this.srf.invite((req, res) => this.onInvite(req, res));
    this.srf.on('error', (err: Error) => {
      if (this.connected || !this.reconnectLogged) log.warn('edge connection error', { err });
    });
    (this.srf as EventEmitter).on('close', () => {
      // outbound connections: one connection per request closes all the time; the listener stays
      if (!this.outbound) this.connected = false;
    });
    (this.srf as EventEmitter).on('reconnecting', (o: { delay: number; attempt: number }) => {
      if (!this.reconnectLogged && !this.stopping) {
        const { host, port } = this.opts.config.drachtio;
        log.warn(this.everConnected ? 'lost connection to the SIP edge; reconnecting' : 'SIP edge not reachable yet; retrying',
          { edge: `${host}:${port}`, attempt: o?.attempt, delayMs: o?.delay });
      }
      this.reconnectLogged = true;
    });
    this.srf.on('connect', (err: Error | null, hostport: string) => {
      if (err) {
        log.error('edge rejected the connection', { err });
        return;
      }
      if (this.reconnectLogged) log.info('reconnected to the SIP edge', { hostport });
      this.connected = true;
      this.everConnected = true;
      this.reconnectLogged = false;
    });
  }

  /** Number of live calls. */
  get activeCalls(): number {
    return this.calls.size;
  }

  /** Live calls of one tenant. */
  callsOf(tenantId: string): number {
    return this.tenantCalls.get(tenantId) ?? 0;
  }

  /** Connected to the edge (built-in or drachtio-server) right now. */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Draining: OPTIONS and new INVITEs get 503; live calls go on. */
  get draining(): boolean {
    return this._draining;
  }

  /** Start draining (SIGTERM): a dispatcher probing OPTIONS takes this node out; calls in progress continue. */
  startDrain(): void {
    if (this._draining) return;
    this._draining = true;
    metrics.draining.set(1);
    log.info('draining: OPTIONS and new INVITEs get 503; live calls go on', { calls: this.calls.size });
  }

  /**
   * App-side SIP counters: every request the app receives and every response it sends
   * (provisional and final), and for INVITEs the setup time and the refusal reason.
   */
  private countSip(req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    const method = sipMethodLabel(req.method);
    metrics.sipRequests.inc({ layer: 'app', direction: 'in', method });
    const t0 = performance.now();
    const send = res.send.bind(res) as (...a: unknown[]) => unknown;
    (res as { send: (...a: unknown[]) => unknown }).send = (...a: unknown[]): unknown => {
      const status = typeof a[0] === 'number' ? a[0] : 0;
      if (status >= 100 && !res.finalResponseSent) {
        metrics.sipResponses.inc({ layer: 'app', direction: 'out', method, status_class: statusClass(status) });
        if (method === 'INVITE' && status >= 200) {
          if (status < 300) metrics.callSetup.observe((performance.now() - t0) / 1000);
          else metrics.invitesRejected.inc({ reason: this.refusals.get(res) ?? refusalReason(status) });
        }
      }
      return send(...a);
    };
  }

  /** Outbound connections: end the session after a final response that leaves no dialog (any non-INVITE, an INVITE refused). */
  private watchOutboundSession(req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    const send = res.send.bind(res) as (...a: unknown[]) => unknown;
    let ended = false;
    (res as unknown as { send: (...a: unknown[]) => unknown }).send = (...a: unknown[]) => {
      const status = typeof a[0] === 'number' ? a[0] : 0;
      if (!ended && status >= 200 && (req.method !== 'INVITE' || status >= 300)) {
        ended = true;
        this.endOutboundSession(req);
      }
      return send(...a);
    };
  }

  /** Refuse an INVITE with 503 + Retry-After for a counted reason. */
  private refuse503(res: Srf.SrfResponse, reason: string, retryAfter: number, text: string): void {
    this.refusals.set(res, reason);
    res.send(503, { headers: { 'Retry-After': String(retryAfter), Reason: `SIP;cause=503;text="${quoteText(text)}"` } });
  }

  /** drachtio-server opens the control connections (outbound connections, one per new request). */
  private get outbound(): boolean {
    return this.opts.config.edge === 'drachtio' && this.opts.config.drachtio.mode === 'outbound';
  }

  /**
   * Outbound connections: drachtio-server opened a TCP connection for one request. Close it
   * once that request is done — after the final response of an OPTIONS or a refused INVITE, or
   * when the call an answered INVITE started has ended — a little later, so the last in-dialog
   * transaction (the 200 to a BYE, or the 200 to our own BYE) still passes. In-dialog requests
   * of a live call come over the same connection. No-op on inbound connections.
   */
  private endOutboundSession(req: Srf.SrfRequest, afterMs = OUTBOUND_SESSION_LINGER_MS): void {
    if (!this.outbound) return;
    const t = setTimeout(() => {
      try {
        (this.srf as unknown as { endSession(m: Srf.SrfRequest): void }).endSession(req);
      } catch { /* already closed */ }
    }, afterMs);
    t.unref();
  }

  /** Connect drachtio-srf to the edge (inbound), or listen for drachtio-server (outbound); resolves with where. */
  connect(): Promise<string> {
    if (this.outbound) return this.listen();
    const { host, port, secret } = this.opts.config.drachtio;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`could not connect to the SIP edge at ${host}:${port} within ${this.opts.connectTimeoutMs ?? 10000} ms`));
      }, this.opts.connectTimeoutMs ?? 10000);
      const onConnect = (err: Error | null, hostport: string): void => {
        cleanup();
        if (err) reject(new Error(`SIP edge at ${host}:${port} rejected the connection: ${err.message} (check drachtio secret)`));
        else resolve(hostport);
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        this.srf.removeListener('connect', onConnect);
      };
      this.srf.on('connect', onConnect);
      this.srf.connect({ host, port, secret });
    });
  }

  /** Outbound connections: listen where drachtio-server (its request handler) sends new requests. */
  private async listen(): Promise<string> {
    const { listenAddress = '127.0.0.1', listenPort = 9023, secret } = this.opts.config.drachtio;
    const where = `${listenAddress}:${listenPort}`;
    // our own listening socket, handed to drachtio-srf once bound: a bind error is then ours to report
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: Error) => reject(new Error(`could not listen for drachtio-server outbound connections on ${where}: ${err.message}`)));
      server.listen(listenPort, listenAddress, () => resolve());
    });
    server.on('error', (err: Error) => log.warn('drachtio outbound listener error', { listen: where, err }));
    (this.srf as unknown as { listen(o: { server: Server; secret: string }): unknown }).listen({ server, secret });
    this.outboundServer = server;
    this.connected = true;
    this.everConnected = true;
    log.info('listening for drachtio-server outbound connections', { listen: where });
    return where;
  }

  /** Synthesize every tenant's greeting once so the first caller hears no extra delay. */
  async prewarm(): Promise<void> {
    await Promise.all(this.opts.tenants.tenants.map((t) =>
      this.synthesize(t.greeting, { voice: t.voice }).catch((err: unknown) => {
        log.warn('could not synthesize greeting', { tenant: t.id, err: err as Error });
      })));
  }

  /** Cached text-to-speech. */
  readonly synthesize: Synthesize = (text: string, o: { voice: TtsVoice }) => {
    const key = `${o.voice}\u0000${text}`;
    let p = this.ttsCache.get(key);
    if (!p) {
      p = this.opts.synthesize(text, o);
      this.ttsCache.set(key, p);
      p.catch(() => this.ttsCache.delete(key));
      const max = this.opts.ttsCacheEntries ?? 64;
      while (this.ttsCache.size > max) this.ttsCache.delete(this.ttsCache.keys().next().value!);
    }
    return p;
  };

  /** Hang up every live call (BYE), wait up to `timeoutMs`, then disconnect from the edge. */
  async shutdown(timeoutMs = 3000): Promise<void> {
    this.stopping = true;
    const calls = [...this.calls.values()];
    if (calls.length > 0) log.info('hanging up live calls', { count: calls.length });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(calls.map((c) => c.hangup('shutdown'))),
      new Promise((r) => { timer = setTimeout(r, timeoutMs); }),
    ]);
    clearTimeout(timer);
    // A call that just ended on the caller's BYE has its 200 still on the way to the edge (and,
    // behind a dispatcher, to the front): a drain that ends with that call must not cut it off.
    const linger = SHUTDOWN_LINGER_MS - (performance.now() - this.lastCallEndedAt);
    if (linger > 0) await new Promise((r) => setTimeout(r, linger));
    try {
      if (this.outbound) {
        // no new connections; the ones of calls just ended close on their own (endOutboundSession)
        this.connected = false;
        this.outboundServer?.close();
        this.outboundServer = undefined;
      }
      else this.srf.disconnect();
    } catch { /* not connected */ }
  }

  private onOptions(_req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    if (this._draining || this.stopping) {
      res.send(503, { headers: { 'Retry-After': '30', Reason: 'SIP;cause=503;text="draining"' } });
      return;
    }
    const supported = supportedTags(this.opts.config);
    res.send(200, { headers: { Allow: ALLOW, Accept: ACCEPT, ...(supported ? { Supported: supported } : {}) } });
  }

  private reject488(res: Srf.SrfResponse, code: number, text: string): void {
    const t = quoteText(text);
    res.send(488, {
      headers: {
        Reason: `SIP;cause=488;text="${t}"`,
        Warning: `${code} ${this.warnAgent} "${t}"`,
        Accept: ACCEPT,
      },
    });
  }

  private onInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): void {
    this.handleInvite(req, res).catch((err: unknown) => {
      log.error('INVITE handling failed', { callId: req.get('Call-ID'), err: err as Error });
      try {
        if (!res.finalResponseSent) res.send(500);
      } catch { /* connection gone */ }
    }).finally(() => takeTrunkSlot(req)?.()); // the INVITE's trunk slot, unless a call took it
  }

  private rejectRelay(res: Srf.SrfResponse): void {
    if (!res.finalResponseSent) res.send(503, { headers: { 'Retry-After': '2', Reason: MEDIA_RELAY_UNAVAILABLE } });
  }

  private async handleInvite(req: Srf.SrfRequest, res: Srf.SrfResponse): Promise<void> {
    const callId = req.get('Call-ID');
    // Caller and dialed number as carriers send them (./identity.ts): `from` is what people
    // and logs may see (`anonymous` when withheld), `id.ani` what the CRM looks up.
    const id = readCallIdentity(req, this.trunks);
    const from = id.presentation;
    const to = id.dnis || req.uri;
    const clog = log.child({ callId });
    const source = `${req.protocol ?? 'udp'}/${req.source_address}:${req.source_port}`;
    if (id.ignored.length > 0) {
      clog.debug('identity headers from an untrusted source ignored', { source, headers: id.ignored.join(','), trunk: id.trunk });
    }

    if (this.stopping || this._draining) {
      clog.info('rejecting INVITE: 503, draining', { from, to, source });
      this.refuse503(res, 'draining', 30, 'node is draining');
      return;
    }
    const admitted = this.opts.admission?.admit();
    if (admitted && !admitted.ok) {
      clog.warn('rejecting INVITE: 503, overloaded', { from, to, source, reason: admitted.reason, detail: admitted.detail, retryAfter: admitted.retryAfter });
      this.refuse503(res, `overload-${admitted.reason}`, admitted.retryAfter, `overloaded: ${admitted.detail}`);
      return;
    }

    // Session timer (RFC 4028): a too short Session-Expires gets 422 before anything is allocated.
    const timer: InviteTimerDecision = negotiateInvite(req, this.opts.config.sessionTimer ?? SESSION_TIMER_DEFAULTS);
    if (timer.action === 'reject') {
      clog.warn(`rejecting INVITE: ${timer.status}`, { from, to, source, why: timer.why, ...timer.headers });
      res.send(timer.status, { headers: { ...timer.headers, Warning: `399 ${this.warnAgent} "${quoteText(timer.why)}"` } });
      return;
    }

    // Offer: application/sdp, or the SDP part of a multipart body (SIP-I/SIP-T: SDP + ISUP)
    let offered: SdpBody | null;
    try {
      offered = sdpFromBody(req.get('Content-Type'), typeof req.body === 'string' ? req.body : '');
    } catch (err) {
      if (!(err instanceof BodyError)) throw err;
      if (err.kind === 'malformed') {
        clog.warn('rejecting INVITE: 400, malformed body', { from, to, source, contentType: err.type, reason: err.message });
        res.send(400, { headers: { Warning: `399 ${this.warnAgent} "${quoteText(err.message)}"` } });
        return;
      }
      clog.warn('rejecting INVITE: 415', { from, to, source, contentType: err.type, reason: err.message });
      res.send(415, { headers: { Accept: ACCEPT } });
      return;
    }
    const body = offered?.sdp ?? '';
    // No body = delayed offer: we offer in the 200 OK, the caller answers in the ACK.
    const delayed = offered === null;
    if (offered && offered.others.length > 0) {
      clog.debug('INVITE body parts besides the SDP (kept for the record, not used)', {
        container: offered.container,
        parts: offered.others.map((p) => `${p.contentType} (${p.bytes} bytes${p.disposition ? `, ${p.disposition}` : ''})`).join('; '),
      });
    }

    // Tenant
    // a trunk bound to a tenant sends every call there; else the number the carrier delivered
    // (Request-URI, To) first, then the original called number
    const trunk = this.policy.classify(req.source_address).trunk;
    const bound = trunk?.tenant ? this.opts.tenants.tenants.find((t) => t.id === trunk.tenant) : undefined;
    const match = bound ? { tenant: bound, matched: `trunk:${trunk!.name}` } : this.opts.tenants.lookup(...id.tenantCandidates);
    if (!match) {
      clog.warn('rejecting INVITE: no tenant for dialed number and no default tenant', { from, to, source });
      res.send(404, { headers: { Reason: 'SIP;cause=404;text="number not served here"' } });
      return;
    }
    const tenant = match.tenant;
    const tenantAdmitted = this.opts.admission?.admit(tenant.id);
    if (tenantAdmitted && !tenantAdmitted.ok) {
      clog.warn('rejecting INVITE: 503, overloaded', { from, to, source, tenant: tenant.id, reason: tenantAdmitted.reason, detail: tenantAdmitted.detail, retryAfter: tenantAdmitted.retryAfter });
      this.refuse503(res, `overload-${tenantAdmitted.reason}`, tenantAdmitted.retryAfter, `overloaded: ${tenantAdmitted.detail}`);
      return;
    }

    // CANCEL may arrive while we wait for rtpengine; the edge has already answered 487.
    let canceledEarly = false;
    const onEarlyCancel = (): void => { canceledEarly = true; };
    req.on('cancel', onEarlyCancel);
    const canceled = (): boolean => canceledEarly || (req as unknown as { canceled?: boolean }).canceled === true;

    // rtpengine anchor: the carrier's offer → the SDP our media session negotiates against.
    let leg: AnchoredCall | null = null;
    let offerSdp = body;
    const rtpengine = this.opts.rtpengine ?? null;
    if (rtpengine) {
      const fromTag = /;\s*tag=([^;>\s]+)/i.exec(req.get('From') ?? '')?.[1] ?? '';
      try {
        leg = rtpengine.begin(callId, fromTag);
        if (!delayed) offerSdp = await leg.fromCarrier(body, 'offer');
      } catch (err) {
        if (leg) void leg.release('error');
        clog.error('rejecting INVITE: 503, media relay unavailable', {
          from, to, source, tenant: tenant.id, rtpengine: rtpengine.config.url, err: err as Error,
        });
        this.rejectRelay(res);
        return;
      }
      if (canceled()) {
        void leg.release('canceled');
        clog.info('caller canceled before answer');
        return;
      }
    }
    /** Every early return from here on releases the anchored leg. */
    const releaseLeg = (why: string): void => {
      if (leg) void leg.release(why);
    };

    // Negotiate (first with a placeholder port: fail fast before allocating media)
    const cfg = this.opts.config;
    const sdpSessionId = String(randomInt(1, 2 ** 31));
    const origin = { sessionId: sdpSessionId, sessionVersion: 1 };
    let advertised = cfg.rtp.publicAddress; // replaced by the address of the offer's family below
    // SRTP policy of the trunk (src/sip/srtp-settings.ts); one key of ours per call, drawn here so
    // both negotiations below (placeholder port, real port) answer with the key the session runs.
    const srtp = { policy: srtpPolicyFor(cfg.srtp, this.trunks.match(req.source_address).trunk), localKey: newSrtpKey() };
    if (delayed && srtp.policy === 'required') {
      releaseLeg('rejected');
      const why = 'SRTP required on this trunk: an INVITE without SDP (delayed offer) is not supported with SRTP';
      clog.warn('rejecting INVITE: 488', { from, to, source, tenant: tenant.id, reason: why });
      this.reject488(res, 302, why);
      return;
    }
    const local = (port: number) => ({ address: advertised, port });
    const negotiateWith = (port: number): Negotiation => delayed
      ? delayedOfferNegotiation(createOffer({ local: local(port), capabilities: this.capabilities, origin }), this.capabilities)
      : negotiate(offerSdp, { local: local(port), capabilities: this.capabilities, origin, srtp });
    let negotiation: Negotiation;
    try {
      negotiation = negotiateWith(9);
    } catch (err) {
      releaseLeg('rejected');
      if (err instanceof SdpError) {
        clog.warn('rejecting INVITE: 488', {
          from, to, source, tenant: tenant.id, reason: err.message,
          offered: err.offered, supported: err.supported,
        });
        this.reject488(res, warnCode(err), err.message);
      } else {
        clog.error('SDP negotiation crashed', { err: err as Error });
        res.send(500);
      }
      return;
    }
    const audio = negotiation.audio;

    // IPv4 or IPv6: our media socket and the answer's c= take the family of the offer's c=;
    // one we cannot serve is 488, never a 200 whose audio cannot flow.
    const media = mediaAddressFor(cfg.rtp, (f) => this.opts.engine.serves?.(f) ?? f === 4,
      delayed ? undefined : audio.remoteAddrType === 'IP6' ? 6 : 4, req.source_address);
    if ('reason' in media) {
      releaseLeg('rejected');
      clog.warn('rejecting INVITE: 488', { from, to, source, tenant: tenant.id, reason: media.reason, remote: audio.remote?.address });
      this.reject488(res, 301, media.reason);
      return;
    }
    advertised = media.address;

    // Media
    let session: CallMediaSession;
    try {
      session = this.opts.engine.createSession({
        codec: audio.codec,
        payloadType: audio.payloadType,
        ...(audio.telephoneEvent ? { telephoneEventPayloadType: audio.telephoneEvent.payloadType } : {}),
        ...(audio.remote ? { remote: audio.remote } : {}),
        ...(audio.codec === 'opus' && audio.remoteFmtp !== undefined ? { fmtp: audio.remoteFmtp } : {}),
        ...(this.opts.vad ? { vad: Object.keys(tenant.turnTaking).length ? tenant.turnTaking : true } : {}),
        ...(media.family === 6 ? { family: 6 as const } : {}),
        ...(audio.srtp ? { srtp: { suite: audio.srtp.suite, localKey: audio.srtp.localKey, remoteKey: audio.srtp.remoteKey } } : {}),
      });
    } catch (err) {
      releaseLeg('error');
      clog.error('rejecting INVITE: 503, no media session', { err: err as Error, activeSessions: this.opts.engine.activeSessions });
      res.send(503, { headers: { 'Retry-After': '2', Reason: 'SIP;cause=503;text="no RTP port available"' } });
      return;
    }
    try {
      negotiation = negotiateWith(session.localPort);
    } catch (err) {
      session.close();
      releaseLeg('error');
      clog.error('SDP renegotiation failed', { err: err as Error });
      res.send(500);
      return;
    }

    const call = new Call({
      callId, from, to, source, tenant, session, negotiation,
      parties: {
        ani: id.ani, privacy: id.privacy,
        ...(id.originalCalled ? { originalCalled: id.originalCalled } : {}),
        ...(id.trunk ? { trunk: id.trunk } : {}),
      },
      ...(delayed ? { delayedOffer: negotiation.answer } : { remoteSdp: offerSdp }),
      ...(leg ? { sdpRelay: leg } : {}),
      advertisedAddress: advertised,
      // the edge gives up on the ACK after 64·T1; the call's backstop follows 2 s later
      ...(cfg.edge === 'builtin' && cfg.sip.t1Ms !== 500 ? { ackTimeoutMs: 64 * cfg.sip.t1Ms + 2000 } : {}),
      capabilities: this.capabilities,
      sdpSessionId,
      maxCallSeconds: effectiveMaxCallSeconds(cfg.maxCallSeconds, tenant.maxCallSeconds),
      rtpTimeoutSeconds: cfg.rtpTimeoutSeconds,
      ...(timer.action === 'run' ? { sessionTimer: timer.params } : {}),
      synthesize: this.synthesize,
      reject: (status, reason) => {
        if (!res.finalResponseSent) res.send(status, reason, {});
      },
      log: logger('call', { callId }),
      ...(this.opts.conversation ? { onConversation: this.opts.conversation } : {}),
    });
    this.calls.set(callId, call);
    const trunkSlot = takeTrunkSlot(req); // the call holds its trunk's slot until it ends
    if (trunkSlot) call.once('ended', trunkSlot);
    this.tenantCalls.set(tenant.id, (this.tenantCalls.get(tenant.id) ?? 0) + 1);
    let answeredAt = 0;
    call.once('answered', () => {
      answeredAt = performance.now();
      metrics.callsActive.inc({ tenant: tenant.id });
    });
    call.once('ended', (e: { reason: EndReason; durationMs: number }) => {
      this.calls.delete(callId);
      this.endOutboundSession(req);
      this.lastCallEndedAt = performance.now();
      const n = (this.tenantCalls.get(tenant.id) ?? 1) - 1;
      if (n > 0) this.tenantCalls.set(tenant.id, n);
      else this.tenantCalls.delete(tenant.id);
      if (answeredAt) {
        metrics.callsActive.dec({ tenant: tenant.id });
        metrics.callDuration.observe((performance.now() - answeredAt) / 1000);
      }
      if (leg) void leg.release(e.reason);
      this.emit('call-ended', call, e);
    });
    clog.info('call start', {
      from, to, source, tenant: tenant.id, matched: match.matched ?? 'default',
      aniFrom: id.aniSource, privacy: id.privacy || undefined, originalCalled: id.originalCalled,
      trunk: id.trunk, trusted: id.trusted,
      codec: delayed ? 'pending' : audio.codec, pt: delayed ? undefined : audio.payloadType, dtmfPt: audio.telephoneEvent?.payloadType,
      direction: audio.answerDirection, rtp: `${advertised}:${session.localPort}`, srtp: audio.srtp?.suite,
      anchor: leg ? 'rtpengine' : undefined,
      offer: delayed ? 'delayed (we offer in 200, answer in ACK)' : undefined,
      body: offered && offered.container !== 'application/sdp' ? `${offered.container} (+${offered.others.map((p) => p.type).join(', ')})` : undefined,
      sessionTimer: timer.action === 'run' ? `${timer.params.interval}s/${timer.params.refresher === 'us' ? 'we refresh' : 'caller refreshes'}` : undefined,
    });
    this.emit('call', call);

    req.on('cancel', () => {
      clog.info('caller canceled before answer');
      call.cancel();
    });
    if (canceled()) call.cancel();
    /** Our SDP as the carrier gets it (rtpengine's side when anchored), once; null when the call is gone or the relay failed (then answered 503). */
    let carrierSdp: Promise<string | null> | null = null;
    const wireSdp = (): Promise<string | null> => (carrierSdp ??= (async () => {
      if (!leg) return call.sdp;
      try {
        const sdp = await leg.toCarrier(call.sdp, delayed ? 'offer' : 'answer');
        return call.state === 'offered' ? sdp : null;
      } catch (err) {
        if (call.state !== 'offered') return null;
        clog.error('rejecting INVITE: 503, media relay unavailable', { rtpengine: rtpengine!.config.url, err: err as Error });
        this.rejectRelay(res);
        call.fail(err);
        return null;
      }
    })());
    const answer = async (): Promise<void> => {
      if (call.state !== 'offered') return; // canceled or shut down while ringing
      const localSdp = await wireSdp();
      if (localSdp === null || call.state !== 'offered') return;
      try {
        const supported = supportedTags(cfg);
        const dialog = await this.srf.createUAS(req, res, {
          localSdp,
          headers: {
            Allow: ALLOW, 'Content-Type': 'application/sdp', ...(supported ? { Supported: supported } : {}),
            ...(timer.action === 'run' ? timer.headers : {}),
          },
        });
        call.attachDialog(callDialog(dialog));
      } catch (e) {
        const err = e as { status?: number; message?: string };
        if (err?.status === 487 || canceled()) call.cancel();
        else call.fail(err instanceof Error ? err : new Error(String(err?.message ?? err)));
      }
    };
    // Before the 200: early media (183 with our SDP; per trunk, for carriers that want it) or,
    // with answerDelayMs, 180 Ringing. A provisional goes reliably (RFC 3262) when the caller
    // requires 100rel, and the 183 whenever it supports it; then the 200 waits for the caller's
    // PRACK here, so that over either edge the app sees the PRACK before its dialog exists
    // (drachtio-srf would hand a later PRACK to the dialog, which answers 501).
    const rel100 = { supported: hasTag(req.get('Supported'), '100rel') || hasTag(req.get('Require'), '100rel'), required: hasTag(req.get('Require'), '100rel') };
    const earlyMedia = !delayed && (this.trunks.match(req.source_address).trunk?.earlyMedia ?? cfg.earlyMedia ?? false);
    const delay = cfg.answerDelayMs;
    let wait = delay;
    if (earlyMedia) {
      const sdp = await wireSdp();
      if (sdp === null || call.state !== 'offered') return;
      let pracked: () => void = () => undefined;
      const prack = new Promise<void>((resolve) => { pracked = resolve; });
      const t0 = performance.now();
      sendProvisional(res, 183, 'Session Progress', {
        body: sdp,
        headers: { 'Content-Type': 'application/sdp', Supported: supportedTags(cfg), ...(rel100.supported ? { Require: '100rel' } : {}) },
      }, (err) => {
        if (!err) return;
        clog.warn('183 Session Progress not sent', { err: String(err) });
        pracked(); // nothing to wait for
      }, rel100.supported ? () => pracked() : undefined);
      clog.info('early media: 183 with our SDP', { reliable: rel100.supported, answerInMs: delay });
      if (rel100.supported) {
        // The edge gives up (503) after 64*T1 = 32 s without a PRACK; answering then fails and releases the call.
        let guard: NodeJS.Timeout | undefined;
        const ended = new Promise<void>((resolve) => call.once('ended', () => resolve()));
        await Promise.race([prack, ended, new Promise<void>((resolve) => { guard = setTimeout(resolve, 34_000); })]);
        clearTimeout(guard);
        if (call.state !== 'offered') return;
        wait = Math.max(0, delay - (performance.now() - t0));
      }
    } else if (delay > 0) {
      if (rel100.required) res.send(180, { headers: { Require: '100rel' } });
      else res.send(180);
    }
    if (wait > 0) {
      const timer = setTimeout(() => void answer(), wait);
      call.once('ended', () => clearTimeout(timer));
    } else {
      await answer();
    }
  }
}

/** The counted reason of an INVITE refusal from its status, when the site did not name one. */
function refusalReason(status: number): string {
  switch (status) {
    case 400: return 'malformed';
    case 401: case 407: return 'auth';
    case 403: return 'acl';
    case 404: return 'no-tenant';
    case 415: return 'body';
    case 420: return 'extension';
    case 422: return 'session-interval';
    case 480: return 'unavailable';
    case 486: return 'busy';
    case 487: return 'canceled';
    case 488: return 'codec';
    case 500: return 'error';
    case 503: return 'media';
    default: return String(status);
  }
}
