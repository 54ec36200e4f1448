/**
 * UA core of the built-in SIP edge: what drachtio-server does between the SIP transaction
 * layer and the applications connected over the drachtio wire protocol.
 *
 * - Inbound requests: 416 for a Request-URI scheme other than sip/sips/tel, 480 + Warning
 *   381 for a sips: Request-URI that did not arrive over TLS (RFC 5630, ./sips.ts), 483 when
 *   Max-Forwards is 0 (not OPTIONS), 420 + Unsupported for option tags in Require that are
 *   not in {@link SUPPORTED_OPTION_TAGS} (not CANCEL/ACK, not relayed proxy dialogs); 100
 *   Trying for INVITEs on its own, routing of new requests to an application that
 *   registered the verb, in-dialog requests to the dialog's owner, 481 for unknown dialogs,
 *   edge-answered OPTIONS, 503/405/501 when nobody can take a request. (Syntax errors got
 *   their 400/505 in the transport already.)
 * - App responses: Via/From/To/Call-ID/CSeq copied from the request, To-tag, Contact on 2xx
 *   to INVITE and UPDATE (RFC 3311 §5.2), Content-Type for SDP bodies; dialogs created on 2xx.
 * - CANCEL: 200 to the CANCEL and 487 to the INVITE by the edge, the app is told.
 * - Reliable provisionals (RFC 3262) of app-answered INVITEs: a 1xx the app sends with
 *   `Require: 100rel` (or any non-100 1xx when the INVITE requires 100rel) gets `RSeq` and a
 *   Contact and is retransmitted (T1, doubling) until its PRACK; no PRACK within 64*T1 → 503
 *   `Reliable Response Time-Out` to the INVITE. A second reliable 1xx and the 2xx wait for the
 *   PRACK of the outstanding one. The matching PRACK goes to the app (drachtio-srf answers it
 *   200 and calls the `res.send` PRACK callback); a PRACK matching nothing gets 481.
 * - App requests: new requests completed (Via, Max-Forwards, From, To, Call-ID, CSeq,
 *   Contact), in-dialog requests built from dialog state (`sip:placeholder` → remote target),
 *   ACK for 2xx built by the edge, ACK for non-2xx refused (the transaction layer sent it).
 * - Responses to app requests come back as `sip|network` frames carrying the transaction id
 *   announced in the `Msg sent:` confirmation; timeouts and transport failures produce a
 *   locally generated 408 / 503.
 * - No ACK for a 2xx within 64*T1: BYE to the far end, and the app is told as if by a BYE.
 * - App disconnect: its live dialogs get a BYE, its unanswered INVITEs a 503, its pending
 *   outgoing INVITEs a CANCEL.
 * - `proxy`: handed to the stateful proxy in ./proxy.ts, for which this core is the
 *   {@link ProxyHost}.
 */
import net from 'node:net';
import dns from 'node:dns/promises';
import { logger } from '../ops/log.ts';
import {
  SipMessage, SipParseError, parseSipMessage, parseUri, makeResponse,
  newBranch, newTag, splitHeaderValues, firstUri, setToTag, type Header,
} from './message.ts';
import type { SipTransport, Endpoint, TransportName } from './transport.ts';
import {
  TransactionLayer, type ServerTransaction, type ClientTransaction, type Clock, type TimerConfig,
} from './transaction.ts';
import { EdgeProxy, type ProxyHost, type ProxiedRequest, type ProxyOp } from './proxy.ts';
import { contactForLocalhost, isSips, localUri, requestIsSecure, sipsOverInsecureHop } from './sips.ts';
import {
  newId, wireTime, sipFrame, sentResponseFrame, sentRequestFrame, replyFrame, joinPayload, type WireMeta,
} from './wire.ts';

const log = logger('sip-edge');

/** One authenticated application connection, as the UA core sees it (implemented by the server). */
export interface AppConn {
  /** Short id for logs. */
  readonly id: string;
  /** True once the connection is gone. */
  readonly closed: boolean;
  /** Write one drachtio payload (the server frames it). */
  send(payload: Buffer): void;
}

/** Picks the application for a new request (round-robin among those that registered the verb). */
export interface AppRouter {
  /** An app that registered `verb` (lower-case method), or undefined. */
  pick(verb: string): AppConn | undefined;
  /** Number of authenticated application connections. */
  connectedCount(): number;
}

/** Options of {@link UaCore}. */
export interface UaOptions {
  transport: SipTransport;
  router: AppRouter;
  clock?: Clock;
  timers?: Partial<TimerConfig>;
  /**
   * Host written into Contact, Via and From of what the edge originates. When the edge binds
   * a wildcard address this must be set to a reachable address.
   * @defaultValue the transport's bound address (`127.0.0.1` when it is a wildcard)
   */
  advertisedHost?: string;
}

/**
 * SIP option tags (RFC 3261 §19.2) the edge together with the app really implements: a
 * request whose `Require` names anything else gets 420 Bad Extension with `Unsupported`
 * (§8.2.2.3). `timer` (RFC 4028): the app runs session timers (src/call/session-timer.ts),
 * the edge passes UPDATE and re-INVITE through. Not `replaces`, `norefersub`, ….
 * Add a tag here (lower case) once it is implemented end to end.
 */
export const SUPPORTED_OPTION_TAGS: ReadonlySet<string> = new Set<string>(['100rel', 'timer']);

/** Request-URI schemes the edge accepts (others get 416, §8.2.2.1). */
const URI_SCHEMES = new Set(['sip', 'sips', 'tel']);

/** Methods the edge knows (405 when nobody handles them; anything else gets 501). */
const KNOWN_METHODS = [
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY',
  'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE',
];
/** Allow header of edge-generated responses. */
const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO, UPDATE, MESSAGE';
/** Requests that carry our Contact (target-refresh and dialog-creating). */
const NEEDS_CONTACT = new Set(['INVITE', 'REFER', 'SUBSCRIBE', 'NOTIFY', 'UPDATE']);
/** Headers the edge owns in what it sends; app copies are ignored. */
const OWNED = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'content-length']);
/** NOK text drachtio-server uses when an app ACKs a non-2xx final response. */
const NOK_ACK_NON2XX = 'Server error: ACK for non-success final response is automatically generated by server';

interface Dialog {
  id: string;
  role: 'uas' | 'uac';
  callId: string;
  localTag: string;
  remoteTag: string;
  /** Our From (requests we send) incl. tag. */
  localHdr: string;
  /** Their address incl. tag (our To). */
  remoteHdr: string;
  remoteTarget: string;
  routeSet: string[];
  localSeq: number;
  remoteSeq: number;
  transport: TransportName;
  connId?: string;
  app: AppConn;
  /** CSeq of a 2xx'd INVITE we answered → transaction id to put on its ACK. */
  pendingAcks: Map<number, string>;
  /** Last INVITE we sent in this dialog: its CSeq, final status and the ACK we built. */
  lastInvite?: { cseq: number; status?: number; ack?: SipMessage; dest?: Endpoint };
  terminated: boolean;
  startedAt: number;
}

/** A request from the network handed to an app, awaiting the app's response(s). */
interface Inbound extends ProxiedRequest {
  id: string;
  st: ServerTransaction;
  req: SipMessage;
  bytes: number;
  src: Endpoint;
  app: AppConn;
  /** To-tag we put on responses (requests without one). */
  toTag?: string;
  dialog?: Dialog;
  initialInvite: boolean;
  provisionalSent: boolean;
  finalSent: boolean;
  /** The app handed this request to the edge's proxy (`proxy` command). */
  proxy?: ProxyOp;
  /** Reliable provisional responses of an initial INVITE (RFC 3262). */
  rel?: Reliable;
  /** Run once the final response to this request is on its way (a PRACK: release the held 2xx). */
  afterFinal?: () => void;
}

/** RFC 3262 state of one INVITE we answer: RSeq, the unacknowledged 1xx, what waits for its PRACK. */
interface Reliable {
  /** RSeq of the next reliable provisional. */
  nextRSeq: number;
  /** The reliable provisional sent and not yet PRACKed. */
  pending?: { rseq: number; stop: () => void };
  /** App responses held until that PRACK (§3: a second reliable 1xx, the 2xx), in order. */
  held: { msgId: string; app: AppConn; run: () => void }[];
}

/** Whether Require/Supported values (any number of headers, comma lists) name an option tag. */
function hasOptionTag(values: string[], tag: string): boolean {
  return values.some((v) => v.split(',').some((x) => x.trim().toLowerCase() === tag));
}

/** `RAck: <rseq> <cseq> <method>` (RFC 3262 §7.2). */
function parseRAck(v: string | undefined): { rseq: number; cseq: number; method: string } | undefined {
  const m = /^\s*(\d{1,10})\s+(\d{1,10})\s+([A-Za-z]+)\s*$/.exec(v ?? '');
  return m ? { rseq: Number(m[1]), cseq: Number(m[2]), method: m[3]!.toUpperCase() } : undefined;
}

/** A request an app sent, whose responses go back to it. */
interface Outbound {
  id: string;
  ct: ClientTransaction;
  req: SipMessage;
  app: AppConn;
  dialog?: Dialog;
  /** dialogId put on responses ('' for out-of-dialog non-INVITE requests). */
  dialogId: string;
  initialInvite: boolean;
  finalStatus?: number;
  /** The app went away while this INVITE was pending: tear down whatever it yields. */
  orphan: boolean;
}

function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}\u0000${localTag}\u0000${remoteTag}`;
}

function withTag(value: string, tag: string): string {
  return /;\s*tag=/i.test(value) ? value : `${value};tag=${tag}`;
}

function isAppParseable(e: unknown): SipMessage | undefined {
  return e instanceof SipParseError ? e.partial : undefined;
}

/** Parse what an app sent: srf leaves out Via/From/… (the edge fills them), so be lenient. */
function parseAppSip(sip: Buffer): SipMessage | undefined {
  // Most app messages "fail" validation (no Via/From/…): skip the stack capture of that error.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return parseSipMessage(sip);
  } catch (e) {
    const partial = isAppParseable(e);
    if (partial && (partial.isRequest ? partial.method !== 'UNKNOWN' && !!partial.uri : !!partial.status)) return partial;
    return undefined;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The UA core: one per edge. */
export class UaCore {
  readonly layer: TransactionLayer;
  private readonly transport: SipTransport;
  private readonly router: AppRouter;
  private readonly clock?: Clock;
  private readonly T1: number;
  private readonly advertisedHost: string;
  /** Wire size of received messages (the transaction layer does not pass it on). */
  private readonly sizes = new WeakMap<SipMessage, number>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly dialogsById = new Map<string, Dialog>();
  private readonly inbound = new Map<string, Inbound>();
  private readonly inboundBySt = new Map<ServerTransaction, Inbound>();
  /** Initial INVITEs with an early dialog (a tagged provisional sent), by dialog key. */
  private readonly early = new Map<string, Inbound>();
  private readonly outbound = new Map<string, Outbound>();
  /** dialogIds of outgoing INVITEs that failed: the app's ACK for them gets NOK. */
  private readonly failedInvites = new Set<string>();
  /** Stateful proxy for the apps' `proxy` commands. */
  private readonly proxy: EdgeProxy;
  private closed = false;

  constructor(opts: UaOptions) {
    this.transport = opts.transport;
    this.router = opts.router;
    this.clock = opts.clock;
    this.T1 = opts.timers?.T1 ?? 500;
    const bound = opts.transport.address;
    this.advertisedHost = opts.advertisedHost
      ?? (bound === '0.0.0.0' || bound === '::' || bound === '' ? '127.0.0.1' : bound);
    // Registered before the transaction layer's own listener, so sizes are known when it emits.
    this.transport.on('message', (msg: SipMessage, _src: Endpoint, bytes: number) => this.sizes.set(msg, bytes));
    this.layer = new TransactionLayer(this.transport, { clock: opts.clock, timers: opts.timers });
    this.layer.on('request', (req: SipMessage, st: ServerTransaction | null, src: Endpoint) => {
      try {
        this.onRequest(req, st, src);
      } catch (e) {
        log.error('request handling failed', { err: e, sip: req.summary(), callId: req.callId });
      }
    });
    this.layer.on('response', (res: SipMessage, src: Endpoint) => this.onStrayResponse(res, src));
    this.proxy = new EdgeProxy(this.proxyHost());
  }

  /** Live dialogs (for tests and metrics). */
  get dialogCount(): number {
    return this.dialogsById.size;
  }

  private get localPort(): number {
    return this.transport.port;
  }

  private size(msg: SipMessage): number {
    return this.sizes.get(msg) ?? msg.toBuffer().length;
  }

  /** Our Contact for `transport`; `secure`: a SIPS request/dialog (sips: over TLS, ./sips.ts). */
  private contactFor(transport: TransportName, secure = false): string {
    return localUri(this.advertisedHost, this.transport.portOf(transport), transport, secure);
  }

  private viaFor(transport: TransportName): string {
    return `SIP/2.0/${transport.toUpperCase()} ${this.advertisedHost}:${this.transport.portOf(transport)};rport;branch=${newBranch()}`;
  }

  private setTimer(fn: () => void, ms: number): void {
    if (this.clock) this.clock.setTimeout(fn, ms);
    else setTimeout(fn, ms).unref();
  }

  // ───────────────────────────── network → edge ─────────────────────────────

  private onRequest(req: SipMessage, st: ServerTransaction | null, src: Endpoint): void {
    if (this.closed) return;
    const method = req.method ?? '';
    if (method === 'ACK') return this.onAck(req, src);
    if (!st) {
      log.debug('request without server transaction ignored', { sip: req.summary() });
      return;
    }
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(req.uri ?? '')?.[1]?.toLowerCase() ?? '';
    if (!URI_SCHEMES.has(scheme)) {
      this.reject(st, req, 416, undefined, `Request-URI scheme "${scheme}" not supported (sip, sips, tel)`, 'warning');
      return;
    }
    const insecure = sipsOverInsecureHop(req, src.transport); // RFC 5630: sips: only over TLS
    if (insecure) {
      this.reject(st, req, 480, undefined, insecure, false, undefined, [
        { name: 'Warning', value: `381 ${this.advertisedHost} "SIPS Required"` },
        { name: 'Warning', value: `399 ${this.advertisedHost} "${insecure}"` },
      ]);
      return;
    }
    if (method === 'CANCEL') return this.onCancel(req, st, src);
    const mf = req.get('Max-Forwards');
    if (mf !== undefined && Number(mf) <= 0 && method !== 'OPTIONS') {
      this.reject(st, req, 483, undefined, 'Max-Forwards reached 0', 'warning');
      return;
    }
    if (method === 'PRACK') return this.onPrack(req, st, src);
    const toTag = req.toTag;
    if (toTag) return this.onInDialogRequest(req, st, src, toTag);

    // ── outside any dialog
    if (this.rejectUnsupportedRequire(req, st)) return;
    if (method === 'INVITE') st.respond(makeResponse(req, 100));
    const verb = method.toLowerCase();
    const app = this.router.pick(verb);
    if (!app) {
      if (method === 'OPTIONS') {
        const res = makeResponse(req, 200);
        this.tagResponse(res, newTag());
        res.add('Allow', ALLOW);
        res.add('Accept', 'application/sdp');
        st.respond(res);
        log.debug('OPTIONS answered by the edge', { from: `${src.address}:${src.port}` });
        return;
      }
      if (method === 'INVITE') {
        const none = this.router.connectedCount() === 0;
        const why = none ? 'no application is connected' : 'no application handles INVITE';
        this.reject(st, req, 503, undefined, why, true);
        return;
      }
      if (method === 'BYE' || method === 'PRACK' || method === 'UPDATE') {
        this.reject(st, req, 481, undefined, `${method} outside any dialog`);
        return;
      }
      if (KNOWN_METHODS.includes(method)) {
        this.reject(st, req, 405, undefined, `no application handles ${method}`);
        return;
      }
      this.reject(st, req, 501, undefined, `method ${method} not implemented`);
      return;
    }
    const ib: Inbound = {
      id: newId(), st, req, bytes: this.size(req), src, app, toTag: newTag(),
      initialInvite: method === 'INVITE', provisionalSent: false, finalSent: false,
    };
    this.track(ib);
    this.guardUnanswered(ib);
    const meta = this.netMeta(req, src, ib.id, '', ib.bytes);
    app.send(sipFrame(meta, req.toBuffer(), { address: this.advertisedHost, port: this.localPort }));
    log.debug('request delivered to app', { sip: req.summary(), callId: req.callId, app: app.id, txn: ib.id });
  }

  private onInDialogRequest(req: SipMessage, st: ServerTransaction, src: Endpoint, toTag: string): void {
    const method = req.method ?? '';
    const d = this.dialogs.get(dialogKey(req.callId, toTag, req.fromTag ?? ''));
    if ((!d || d.terminated) && this.proxy.relays(req.callId)) {
      void this.proxy.relayInDialog(req, st); // a proxy ignores Require (§16.3)
      return;
    }
    if (this.rejectUnsupportedRequire(req, st)) return;
    if ((!d || d.terminated) && method === 'UPDATE') {
      // UPDATE in an early dialog (RFC 3311 §5): to the app that owns the INVITE
      const inv = this.early.get(dialogKey(req.callId, toTag, req.fromTag ?? ''));
      if (inv && !inv.finalSent && !inv.app.closed) {
        const ib: Inbound = {
          id: newId(), st, req, bytes: this.size(req), src, app: inv.app,
          initialInvite: false, provisionalSent: false, finalSent: false,
        };
        this.track(ib);
        this.guardUnanswered(ib);
        inv.app.send(sipFrame(this.netMeta(req, src, ib.id, this.uasDialogId(inv.req), ib.bytes), req.toBuffer()));
        return;
      }
    }
    if (!d || d.terminated) {
      this.reject(st, req, 481, undefined, 'unknown dialog');
      return;
    }
    const seq = req.cseq.seq;
    if (seq <= d.remoteSeq) {
      this.reject(st, req, 500, 'Server Internal Error', `CSeq ${seq} out of order (last ${d.remoteSeq})`);
      return;
    }
    d.remoteSeq = seq;
    if (method === 'INVITE') st.respond(makeResponse(req, 100));
    if (d.app.closed) {
      this.reject(st, req, 481, undefined, 'dialog owner gone');
      return;
    }
    const ib: Inbound = {
      id: newId(), st, req, bytes: this.size(req), src, app: d.app, dialog: d,
      initialInvite: false, provisionalSent: false, finalSent: false,
    };
    this.track(ib);
    this.guardUnanswered(ib);
    const dialogId = d.id;
    if (method === 'BYE') this.endDialog(d, 'BYE from network');
    d.app.send(sipFrame(this.netMeta(req, src, ib.id, dialogId, ib.bytes), req.toBuffer()));
  }

  /**
   * §8.2.2.3: option tags in `Require` that are not in {@link SUPPORTED_OPTION_TAGS} → 420
   * Bad Extension listing them in `Unsupported`. Not for CANCEL / ACK, whose Require is to be
   * ignored (the caller never passes those). Returns true when the request was rejected.
   */
  private rejectUnsupportedRequire(req: SipMessage, st: ServerTransaction): boolean {
    const tags = req.getAll('Require').flatMap((v) => v.split(',')).map((x) => x.trim()).filter(Boolean);
    const unknown = [...new Set(tags.filter((x) => !SUPPORTED_OPTION_TAGS.has(x.toLowerCase())))];
    if (unknown.length === 0) return false;
    this.reject(st, req, 420, undefined, `unsupported option tag(s) in Require: ${unknown.join(', ')}`, 'warning', undefined,
      [{ name: 'Unsupported', value: unknown.join(', ') }]);
    return true;
  }

  private onAck(req: SipMessage, src: Endpoint): void {
    const d = this.dialogs.get(dialogKey(req.callId, req.toTag ?? '', req.fromTag ?? ''));
    if (!d && this.proxy.relays(req.callId)) {
      void this.proxy.relayInDialog(req, null);
      return;
    }
    if (!d) {
      log.debug('ACK for unknown dialog dropped', { callId: req.callId });
      return;
    }
    const txnId = d.pendingAcks.get(req.cseq.seq);
    if (txnId === undefined) {
      log.debug('ACK without a pending 2xx dropped (retransmission?)', { callId: req.callId, cseq: req.cseq.seq });
      return;
    }
    d.pendingAcks.delete(req.cseq.seq);
    if (d.app.closed) return;
    const meta = this.netMeta(req, src, txnId, d.id, this.size(req));
    meta.transport = ''; // drachtio-server leaves the transport empty on ACKs
    d.app.send(sipFrame(meta, req.toBuffer()));
  }

  private onCancel(cancel: SipMessage, st: ServerTransaction, src: Endpoint): void {
    const inv = this.layer.findInviteForCancel(cancel);
    if (!inv) {
      this.reject(st, cancel, 481, undefined, 'CANCEL matches no INVITE');
      return;
    }
    const ib = this.inboundBySt.get(inv);
    const ok = makeResponse(cancel, 200);
    this.tagResponse(ok, ib?.toTag ?? newTag());
    st.respond(ok);
    if (!ib || ib.finalSent) return; // final already sent: the CANCEL has no effect
    if (ib.proxy) {
      this.proxy.cancel(ib.proxy);
      return;
    }
    // Tell the app (it owns the INVITE), with the INVITE's transaction id.
    const dialogId = ib.provisionalSent ? this.uasDialogId(ib.req) : '';
    const bytes = ib.provisionalSent ? ib.bytes : this.size(cancel);
    if (!ib.app.closed) ib.app.send(sipFrame(this.netMeta(cancel, src, ib.id, dialogId, bytes), cancel.toBuffer()));
    const res = makeResponse(ib.req, 487);
    this.tagResponse(res, ib.toTag ?? newTag());
    ib.finalSent = true;
    ib.st.respond(res);
    this.untrack(ib);
    log.info('call canceled by caller', { callId: ib.req.callId, from: ib.req.get('From'), status: 487 });
  }

  /** A 2xx retransmission after the INVITE client transaction ended: re-send our ACK. */
  private onStrayResponse(res: SipMessage, _src: Endpoint): void {
    if ((res.status ?? 0) < 200 || (res.status ?? 0) >= 300 || res.cseq.method !== 'INVITE') return;
    const d = this.dialogs.get(dialogKey(res.callId, res.fromTag ?? '', res.toTag ?? ''));
    const li = d?.lastInvite;
    if (d && li?.ack && li.dest && li.cseq === res.cseq.seq) {
      this.transport.send(li.ack, li.dest).catch((e) => log.debug('ACK re-send failed', { err: e }));
    } else {
      log.debug('stray response dropped', { sip: res.summary(), callId: res.callId });
    }
  }

  // ───────────────────────────── app → edge ─────────────────────────────

  /**
   * An app's `sip` message: `tokens` = `[msgId, 'sip', txnId, dialogId, proxy?]`.
   * Always answers the app with exactly one `response` frame.
   */
  async handleAppSip(app: AppConn, tokens: string[], sip: Buffer | undefined): Promise<void> {
    const msgId = tokens[0] ?? '';
    const txnTok = tokens[2] ?? '';
    const dialogTok = tokens[3] ?? '';
    const proxyTok = tokens[4] ?? '';
    const msg = sip ? parseAppSip(sip) : undefined;
    if (!msg) {
      app.send(replyFrame(msgId, 'NOK', 'Server error: unparsable SIP message'));
      return;
    }
    try {
      if (!msg.isRequest) {
        this.appResponse(app, msgId, txnTok, msg);
        return;
      }
      if (msg.method === 'ACK') {
        await this.appAck(app, msgId, dialogTok, msg);
      } else if (msg.method === 'CANCEL' && txnTok) {
        this.appCancel(app, msgId, txnTok, msg);
      } else if (dialogTok) {
        await this.appInDialogRequest(app, msgId, dialogTok, msg);
      } else {
        await this.appNewRequest(app, msgId, proxyTok, msg);
      }
    } catch (e) {
      log.warn('app request failed', { err: e, sip: msg.summary(), app: app.id });
      app.send(replyFrame(msgId, 'NOK', `Server error: ${(e as Error).message}`));
    }
  }

  /** The app answers a request we delivered. */
  private appResponse(app: AppConn, msgId: string, txnId: string, appRes: SipMessage): void {
    const ib = this.inbound.get(txnId);
    if (!ib) {
      app.send(replyFrame(msgId, 'NOK', 'Server error: unknown transaction id or transaction already completed'));
      return;
    }
    const status = appRes.status ?? 500;
    if (ib.finalSent || ib.proxy) {
      app.send(replyFrame(msgId, 'NOK', ib.proxy ? 'Server error: request is being proxied' : 'Server error: final response already sent'));
      return;
    }
    const req = ib.req;
    const method = req.method ?? '';
    // RFC 3262: reliable when the app asks (Require: 100rel on its 1xx) or the INVITE requires it
    const reliable = ib.initialInvite && status > 100 && status < 200
      && (hasOptionTag(appRes.getAll('Require'), '100rel') || hasOptionTag(req.getAll('Require'), '100rel'));
    if (reliable && !hasOptionTag([...req.getAll('Supported'), ...req.getAll('Require')], '100rel')) {
      app.send(replyFrame(msgId, 'NOK', 'Remote endpoint does not support 100rel'));
      return;
    }
    // §3: a second reliable provisional, and the 2xx, wait for the PRACK of the one outstanding
    if (ib.rel?.pending && (reliable || (status >= 200 && status < 300))) {
      ib.rel.held.push({ msgId, app, run: () => this.appResponse(app, msgId, txnId, appRes) });
      log.debug('response held until the PRACK', { callId: req.callId, status, rseq: ib.rel.pending.rseq });
      return;
    }
    const res = makeResponse(req, status, appRes.reason);
    res.remove('Content-Length');
    if (status > 100 && !req.toTag) this.tagResponse(res, ib.toTag ?? newTag());
    // §12.1.1: dialog-creating responses carry the request's Record-Route.
    if (ib.initialInvite && status > 100 && status < 300 && !appRes.has('Record-Route')) {
      for (const rr of req.getAll('Record-Route')) res.add('Record-Route', rr);
    }
    const appContact = appRes.get('Contact');
    if (appContact !== undefined) res.add('Contact', appContact);
    else if ((status >= 200 && status < 300 && (method === 'INVITE' || method === 'SUBSCRIBE' || method === 'UPDATE')) || reliable) {
      // a reliable 1xx creates the early dialog its PRACK is sent in (RFC 3262 §3)
      res.add('Contact', this.contactFor(ib.src.transport, requestIsSecure(req)));
    }
    for (const h of appRes.headers) {
      const n = h.name.toLowerCase();
      if (OWNED.has(n) || n === 'contact' || (reliable && n === 'rseq')) continue;
      res.add(h.name, h.value);
    }
    let rseq = 0;
    if (reliable) {
      if (!hasOptionTag(res.getAll('Require'), '100rel')) res.add('Require', '100rel');
      ib.rel ??= { nextRSeq: 1 + Math.floor(Math.random() * 0x7ffffffe), held: [] };
      rseq = ib.rel.nextRSeq++;
      res.add('RSeq', String(rseq));
    }
    res.body = appRes.body;
    if (res.body.length > 0 && !res.has('Content-Type')) res.add('Content-Type', 'application/sdp');
    res.add('Content-Length', String(res.body.length));

    let dialogId = '';
    if (ib.initialInvite) {
      dialogId = this.uasDialogId(req);
      if (status > 100 && status < 200) {
        ib.provisionalSent = true;
        if (ib.toTag) this.early.set(dialogKey(req.callId, ib.toTag, req.fromTag ?? ''), ib);
      }
      if (status >= 200 && status < 300) {
        const d = this.createUasDialog(ib, res);
        d.pendingAcks.set(req.cseq.seq, ib.id);
        this.watchAck(ib.st, d);
      }
    } else if (ib.dialog) {
      const d = ib.dialog;
      if (!d.terminated) dialogId = d.id;
      if (method === 'INVITE' && status >= 200 && status < 300 && !d.terminated) {
        const c = req.get('Contact');
        if (c) d.remoteTarget = firstUri(c);
        d.pendingAcks.set(req.cseq.seq, newId()); // a re-INVITE's ACK gets a fresh transaction id
        this.watchAck(ib.st, d);
      }
      if (method === 'UPDATE' && status >= 200 && status < 300 && !d.terminated) {
        const c = req.get('Contact'); // UPDATE is a target refresh request (RFC 3311 §5.2)
        if (c) d.remoteTarget = firstUri(c);
      }
    }
    if (status >= 200) {
      ib.finalSent = true;
      this.untrack(ib);
    }
    ib.st.respond(res);
    if (reliable) this.retransmitReliable(ib, res, rseq);
    const wire = res.toBuffer();
    const meta: WireMeta = {
      source: 'application', bytes: wire.length, transport: method === 'INVITE' ? ib.src.transport : '',
      address: ib.src.address, port: ib.src.port, time: wireTime(), transactionId: ib.id, dialogId,
    };
    app.send(sentResponseFrame(msgId, meta, wire));
    if (status >= 200) ib.afterFinal?.();
    if (ib.initialInvite && status >= 300) {
      log.info('call rejected by app', {
        callId: req.callId, status, reason: res.reason, why: appRes.get('Reason') ?? appRes.get('Warning'),
      });
    }
  }

  /**
   * RFC 3262 §3: retransmit a reliable provisional at T1, 2·T1, 4·T1 … (every transport: this
   * is the UA core's reliability, not the transaction layer's) until its PRACK; none within
   * 64·T1 → 503 Reliable Response Time-Out to the INVITE (what sofia-sip, under
   * drachtio-server, answers too).
   */
  private retransmitReliable(ib: Inbound, res: SipMessage, rseq: number): void {
    const rel = ib.rel!;
    let interval = this.T1;
    let stopRetransmit = (): void => undefined;
    const again = (): void => {
      if (rel.pending?.rseq !== rseq || ib.finalSent) return;
      ib.st.respond(res);
      interval *= 2;
      stopRetransmit = this.cancellableTimer(again, interval);
    };
    stopRetransmit = this.cancellableTimer(again, interval);
    const stopTimeout = this.cancellableTimer(() => {
      if (rel.pending?.rseq !== rseq || ib.finalSent) return;
      stopRetransmit();
      rel.pending = undefined;
      log.warn('no PRACK for a reliable provisional response: INVITE answered 503', { callId: ib.req.callId, status: res.status, rseq });
      this.reject(ib.st, ib.req, 503, 'Reliable Response Time-Out', 'no PRACK for the reliable provisional response', 'warning', ib.toTag);
      ib.finalSent = true;
      this.untrack(ib);
    }, 64 * this.T1);
    rel.pending = { rseq, stop: () => { stopRetransmit(); stopTimeout(); } };
  }

  /**
   * PRACK (RFC 3262 §3, §7.2): it must match the outstanding reliable provisional of an
   * INVITE we are answering (dialog, RAck = its RSeq, the INVITE's CSeq and method); else
   * 481. A match stops the retransmissions and goes to the app (which answers it;
   * drachtio-srf always does, 200). Once that answer is sent, what the app sent meanwhile (the
   * 2xx, a next reliable 1xx) goes out: the caller gets 200 (PRACK) before 200 (INVITE), and
   * the app sees the PRACK before its 200 is confirmed.
   */
  private onPrack(req: SipMessage, st: ServerTransaction, src: Endpoint): void {
    if (this.rejectUnsupportedRequire(req, st)) return;
    const toTag = req.toTag ?? '';
    const inv = toTag ? this.early.get(dialogKey(req.callId, toTag, req.fromTag ?? '')) : undefined;
    const rack = parseRAck(req.get('RAck'));
    const pending = inv?.rel?.pending;
    if (!inv || !pending || inv.finalSent || !rack || rack.rseq !== pending.rseq
      || rack.cseq !== inv.req.cseq.seq || rack.method !== 'INVITE') {
      this.reject(st, req, 481, undefined, rack ? `PRACK (RAck ${rack.rseq} ${rack.cseq} ${rack.method}) matches no unacknowledged reliable provisional response` : 'PRACK without a valid RAck', 'warning');
      return;
    }
    pending.stop();
    inv.rel!.pending = undefined;
    const ib: Inbound = {
      id: newId(), st, req, bytes: this.size(req), src, app: inv.app,
      initialInvite: false, provisionalSent: false, finalSent: false,
    };
    const release = (): void => {
      for (const h of inv.rel!.held.splice(0)) h.run();
    };
    log.debug('PRACK', { callId: req.callId, rseq: rack.rseq });
    if (inv.app.closed) {
      st.respond(makeResponse(req, 200));
      release();
      return;
    }
    ib.afterFinal = release;
    this.track(ib);
    this.guardUnanswered(ib);
    inv.app.send(sipFrame(this.netMeta(req, src, ib.id, this.uasDialogId(inv.req), ib.bytes), req.toBuffer()));
  }

  private createUasDialog(ib: Inbound, res: SipMessage): Dialog {
    const req = ib.req;
    const contact = req.get('Contact');
    const d: Dialog = {
      id: this.uasDialogId(req), role: 'uas', callId: req.callId, localTag: ib.toTag ?? res.toTag ?? '',
      remoteTag: req.fromTag ?? '', localHdr: res.get('To') ?? '', remoteHdr: req.get('From') ?? '',
      remoteTarget: contact ? firstUri(contact) : req.uri ?? '',
      routeSet: req.getAll('Record-Route').flatMap((v) => splitHeaderValues(v)),
      localSeq: req.cseq.seq, remoteSeq: req.cseq.seq,
      transport: ib.src.transport, connId: ib.src.connId, app: ib.app,
      pendingAcks: new Map(), terminated: false, startedAt: Date.now(),
    };
    this.addDialog(d);
    log.info('dialog started', { dialog: d.id, role: 'uas', from: req.get('From'), to: req.uri, app: ib.app.id });
    return d;
  }

  private watchAck(st: ServerTransaction, d: Dialog): void {
    st.once('ackTimeout', () => {
      if (d.terminated) return;
      log.info('dialog ended: no ACK for 2xx', { dialog: d.id, waitedMs: 64 * this.T1 });
      const bye = this.buildInDialog(d, 'BYE', []);
      bye.add('Reason', 'SIP;cause=408;text="ACK timeout"');
      this.endDialog(d, 'ACK timeout', false);
      const dest = this.dialogDest(d);
      void dest.then((ep) => {
        this.layer.sendRequest(bye, ep);
        if (!d.app.closed) {
          const meta: WireMeta = {
            source: 'application', bytes: bye.toBuffer().length, transport: ep.transport,
            address: this.advertisedHost, port: this.localPort, time: wireTime(),
            transactionId: 'unsolicited', dialogId: d.id,
          };
          d.app.send(sipFrame(meta, bye.toBuffer()));
        }
      }).catch((e) => log.warn('BYE after ACK timeout not sent', { err: e, dialog: d.id }));
    });
  }

  /** App ACK for a 2xx to an INVITE it sent (initial or re-INVITE). */
  private async appAck(app: AppConn, msgId: string, dialogId: string, appAck: SipMessage): Promise<void> {
    const d = this.dialogsById.get(dialogId);
    if (!d) {
      app.send(replyFrame(msgId, 'NOK', this.failedInvites.has(dialogId) ? NOK_ACK_NON2XX : 'Server error: unable to find dialog'));
      return;
    }
    const li = d.lastInvite;
    if (!li || li.status === undefined || li.status >= 300) {
      app.send(replyFrame(msgId, 'NOK', li && (li.status ?? 0) >= 300 ? NOK_ACK_NON2XX : 'Server error: no 2xx to acknowledge'));
      return;
    }
    const dest = await this.dialogDest(d);
    const ack = SipMessage.request('ACK', d.remoteTarget);
    ack.add('Via', this.viaFor(dest.transport));
    ack.add('Max-Forwards', '70');
    ack.add('From', d.localHdr);
    ack.add('To', d.remoteHdr);
    ack.add('Call-ID', d.callId);
    ack.add('CSeq', `${li.cseq} ACK`);
    for (const r of d.routeSet) ack.add('Route', r);
    this.copyAppHeaders(ack, appAck, new Set(['route', 'max-forwards', 'contact']));
    ack.body = appAck.body;
    if (ack.body.length > 0 && !ack.has('Content-Type')) ack.add('Content-Type', 'application/sdp');
    ack.add('Content-Length', String(ack.body.length));
    li.ack = ack;
    li.dest = dest;
    const wire = ack.toBuffer();
    this.confirmRequest(app, msgId, newId(), dest, wire);
    await this.transport.send(ack, dest).catch((e) => log.warn('ACK send failed', { err: e, dialog: d.id }));
  }

  /** App cancels an INVITE it sent. */
  private appCancel(app: AppConn, msgId: string, txnId: string, _appCancel: SipMessage): void {
    const ob = this.outbound.get(txnId);
    if (!ob || ob.req.method !== 'INVITE' || ob.finalStatus !== undefined) {
      app.send(replyFrame(msgId, 'NOK', 'Server error: no pending INVITE for that transaction'));
      return;
    }
    const cancel = this.layer.makeCancel(ob.ct);
    this.layer.sendRequest(cancel, ob.ct.dest);
    this.confirmRequest(app, msgId, newId(), ob.ct.dest, cancel.toBuffer());
    log.info('outgoing call canceled by app', { callId: ob.req.callId });
  }

  private async appInDialogRequest(app: AppConn, msgId: string, dialogId: string, appReq: SipMessage): Promise<void> {
    const d = this.dialogsById.get(dialogId);
    if (!d || d.terminated) {
      app.send(replyFrame(msgId, 'NOK', 'Server error: unable to find dialog'));
      return;
    }
    const method = appReq.method ?? '';
    const req = this.buildInDialog(d, method, appReq.headers, appReq.body);
    const dest = await this.dialogDest(d);
    this.setVia(req, dest.transport);
    if (method === 'INVITE') d.lastInvite = { cseq: req.cseq.seq };
    if (method === 'BYE') this.endDialog(d, 'BYE from app');
    this.startClient(app, msgId, req, dest, { dialog: d, dialogId: d.id, initialInvite: false });
  }

  private async appNewRequest(app: AppConn, msgId: string, proxy: string, appReq: SipMessage): Promise<void> {
    const method = appReq.method ?? '';
    const ruri = appReq.uri ?? '';
    const topRoute = appReq.get('Route');
    const target = proxy || (topRoute && /;\s*lr\b/i.test(topRoute) ? firstUri(topRoute) : ruri);
    const dest = await this.resolve(target);
    const req = SipMessage.request(method, ruri);
    req.add('Via', this.viaFor(dest.transport));
    req.add('Max-Forwards', appReq.get('Max-Forwards') ?? '70');
    const localTag = newTag();
    const from = appReq.get('From');
    req.add('From', from ? withTag(from, localTag) : `<sip:${this.advertisedHost}:${this.localPort}>;tag=${localTag}`);
    req.add('To', appReq.get('To') ?? `<${ruri}>`);
    req.add('Call-ID', appReq.get('Call-ID') ?? newId());
    const appCseq = appReq.cseq;
    const seq = Number.isFinite(appCseq.seq) && appCseq.seq > 0 ? appCseq.seq : 1 + Math.floor(Math.random() * 0x7fffffff / 2);
    req.add('CSeq', `${seq} ${method}`);
    const contact = appReq.get('Contact');
    if (contact !== undefined) {
      // srf's `callingNumber` Contact is `sip[s]:<number>@localhost`: our address, as drachtio-server does
      req.add('Contact', contactForLocalhost(contact, this.advertisedHost, this.transport.portOf(dest.transport), dest.transport));
    } else if (NEEDS_CONTACT.has(method) || method === 'REGISTER') req.add('Contact', this.contactFor(dest.transport, isSips(ruri) || isSips(target)));
    this.copyAppHeaders(req, appReq, new Set(['max-forwards', 'contact']));
    req.body = appReq.body;
    if (req.body.length > 0 && !req.has('Content-Type')) req.add('Content-Type', 'application/sdp');
    req.add('Content-Length', String(req.body.length));
    const realFromTag = req.fromTag ?? localTag;
    const dialogId = method === 'INVITE' ? `${req.callId};from-tag=${realFromTag}` : '';
    this.startClient(app, msgId, req, dest, { dialogId, initialInvite: method === 'INVITE' });
    if (method === 'INVITE') log.debug('outgoing INVITE', { callId: req.callId, to: ruri, via: `${dest.address}:${dest.port}` });
  }

  /** Hand a request to the transaction layer, confirm it to the app, relay its responses. */
  private startClient(
    app: AppConn, msgId: string, req: SipMessage, dest: Endpoint,
    o: { dialog?: Dialog; dialogId: string; initialInvite: boolean },
  ): void {
    const ct = this.layer.sendRequest(req, dest);
    const ob: Outbound = {
      id: newId(), ct, req, app, dialog: o.dialog, dialogId: o.dialogId, initialInvite: o.initialInvite, orphan: false,
    };
    this.outbound.set(ob.id, ob);
    this.confirmRequest(app, msgId, ob.id, dest, req.toBuffer());
    ct.on('response', (res: SipMessage, src: Endpoint) => this.onClientResponse(ob, res, src));
    ct.on('timeout', () => this.localFailure(ob, 408, 'no response (timeout)'));
    ct.on('transportError', (err?: unknown) => this.localFailure(ob, 503, `destination unreachable${err ? `: ${(err as Error).message ?? err}` : ''}`));
    ct.on('terminated', () => {
      if (this.outbound.get(ob.id) === ob) this.outbound.delete(ob.id);
    });
  }

  private onClientResponse(ob: Outbound, res: SipMessage, src: Endpoint): void {
    const status = res.status ?? 0;
    if (status === 100) return; // drachtio-server does not pass 100 Trying up
    const method = ob.req.method;
    if (ob.finalStatus !== undefined) {
      // 2xx retransmission (or a forked 2xx): re-ACK, never bother the app again.
      if (method === 'INVITE' && status >= 200 && status < 300) {
        const li = (ob.dialog ?? this.dialogsById.get(ob.dialogId))?.lastInvite;
        if (li?.ack && li.dest && li.cseq === res.cseq.seq) {
          this.transport.send(li.ack, li.dest).catch((e) => log.debug('ACK re-send failed', { err: e }));
        }
      }
      return;
    }
    if (status >= 200) ob.finalStatus = status;
    let dialogId = ob.dialogId;
    if (ob.initialInvite) {
      if (status >= 200 && status < 300) {
        const d = this.createUacDialog(ob, res, src);
        if (ob.orphan || ob.app.closed) {
          this.abandonUacDialog(d);
          return;
        }
      } else if (status >= 300) {
        this.rememberFailed(ob.dialogId);
        log.info('outgoing call failed', { callId: ob.req.callId, status, reason: res.reason, to: ob.req.uri });
      }
    } else if (ob.dialog) {
      const d = ob.dialog;
      if (method === 'INVITE' && status >= 200 && d.lastInvite && d.lastInvite.cseq === res.cseq.seq) {
        d.lastInvite.status = status;
        if (status < 300) {
          const c = res.get('Contact');
          if (c) d.remoteTarget = firstUri(c);
        }
      }
      if (method === 'UPDATE' && status >= 200 && status < 300) {
        const c = res.get('Contact'); // target refresh (RFC 3311 §5.1)
        if (c) d.remoteTarget = firstUri(c);
      }
      if ((status === 481 || status === 408) && !d.terminated && method !== 'BYE') {
        this.endDialog(d, `${status} to in-dialog ${method}`);
        this.notifyAppDialogGone(d, status);
      }
      dialogId = d.id;
    }
    if (ob.app.closed) return;
    const meta = this.netMeta(res, src, ob.id, dialogId, this.size(res));
    ob.app.send(sipFrame(meta, res.toBuffer()));
    if (status >= 200 && method !== 'INVITE') this.outbound.delete(ob.id);
  }

  private createUacDialog(ob: Outbound, res: SipMessage, src: Endpoint): Dialog {
    const req = ob.req;
    const contact = res.get('Contact');
    const rr = res.getAll('Record-Route').flatMap((v) => splitHeaderValues(v)).reverse();
    const d: Dialog = {
      id: ob.dialogId, role: 'uac', callId: req.callId, localTag: req.fromTag ?? '', remoteTag: res.toTag ?? '',
      localHdr: req.get('From') ?? '', remoteHdr: res.get('To') ?? '',
      remoteTarget: contact ? firstUri(contact) : req.uri ?? '', routeSet: rr,
      localSeq: req.cseq.seq, remoteSeq: 0, transport: ob.ct.dest.transport, connId: src.connId ?? ob.ct.dest.connId,
      app: ob.app, pendingAcks: new Map(), lastInvite: { cseq: req.cseq.seq, status: res.status },
      terminated: false, startedAt: Date.now(),
    };
    this.addDialog(d);
    ob.dialog = d;
    log.info('dialog started', { dialog: d.id, role: 'uac', to: req.uri, app: ob.app.id });
    return d;
  }

  /** 2xx for an INVITE whose app is gone: ACK it and hang up at once. */
  private abandonUacDialog(d: Dialog): void {
    void this.dialogDest(d).then((dest) => {
      const ack = this.buildInDialog(d, 'ACK', []);
      ack.set('CSeq', `${d.lastInvite?.cseq ?? d.localSeq} ACK`);
      this.setVia(ack, dest.transport);
      void this.transport.send(ack, dest).catch(() => undefined);
      this.byeAndForget(d, 'application disconnected');
    });
  }

  /** Locally generated final response for an app request (408 timeout, 503 unreachable). */
  private localFailure(ob: Outbound, status: number, why: string): void {
    if (ob.finalStatus !== undefined) return;
    ob.finalStatus = status;
    const res = makeResponse(ob.req, status);
    if (!res.toTag) this.tagResponse(res, newTag());
    log.info('request failed locally', { sip: ob.req.summary(), callId: ob.req.callId, status, why });
    if (ob.initialInvite) this.rememberFailed(ob.dialogId);
    let dialogId = ob.dialogId;
    if (ob.dialog) {
      const d = ob.dialog;
      if (d.lastInvite && ob.req.method === 'INVITE' && d.lastInvite.cseq === ob.req.cseq.seq) d.lastInvite.status = status;
      if (!d.terminated && ob.req.method !== 'BYE') {
        this.endDialog(d, `${status} ${why} on in-dialog ${ob.req.method}`);
        this.notifyAppDialogGone(d, status);
      }
      dialogId = d.id;
    }
    this.outbound.delete(ob.id);
    if (ob.app.closed) return;
    const meta: WireMeta = {
      source: 'network', bytes: 0, transport: ob.ct.dest.transport, address: '', port: 0, time: wireTime(),
      transactionId: ob.id, dialogId,
    };
    ob.app.send(sipFrame(meta, res.toBuffer()));
  }

  /** The far end is gone (481/408 to an in-dialog request): tell the app as a BYE would. */
  private notifyAppDialogGone(d: Dialog, status: number): void {
    if (d.app.closed) return;
    const bye = this.buildInDialog(d, 'BYE', []);
    bye.add('Reason', `SIP;cause=${status};text="dialog ended by the edge"`);
    const meta: WireMeta = {
      source: 'application', bytes: 0, transport: d.transport, address: this.advertisedHost, port: this.localPort,
      time: wireTime(), transactionId: 'unsolicited', dialogId: d.id,
    };
    d.app.send(sipFrame(meta, bye.toBuffer()));
  }

  private rememberFailed(dialogId: string): void {
    if (!dialogId) return;
    this.failedInvites.add(dialogId);
    this.setTimer(() => this.failedInvites.delete(dialogId), 64 * this.T1);
  }

  // ───────────────────────────── proxy ─────────────────────────────

  /** The app's `proxy` command (see {@link EdgeProxy.handleAppProxy}). */
  handleAppProxy(app: AppConn, tokens: string[], sip: Buffer | undefined): void {
    this.proxy.handleAppProxy(app, tokens, sip);
  }

  /** What the proxy may use of this core. */
  private proxyHost(): ProxyHost {
    return {
      transactions: this.layer,
      sendStateless: (msg, dest) => this.transport.send(msg, dest),
      resolve: (uri) => this.resolve(uri),
      viaFor: (transport) => this.viaFor(transport),
      recordRoute: (transport, secure) => localUri(this.advertisedHost, this.transport.portOf(transport), transport, secure ?? false, true),
      isOwnUri: (uri) => this.isOwnUri(uri),
      inbound: (txnId) => this.inbound.get(txnId),
      finished: (ib) => {
        const known = this.inboundBySt.get(ib.st);
        if (known) this.untrack(known);
      },
      stubHeaders: (sip) => {
        const stub = sip ? parseAppSip(sip) : undefined;
        return (stub?.headers ?? []).filter((h) => !OWNED.has(h.name.toLowerCase()));
      },
      reject: (st, req, status, why) => this.reject(st, req, status, undefined, why),
      size: (msg) => this.size(msg),
      timer: (fn, ms) => this.cancellableTimer(fn, ms),
    };
  }

  private isOwnUri(uri: string): boolean {
    try {
      const u = parseUri(uri);
      const tls = u.scheme === 'sips' || (u.params.get('transport') ?? '').toLowerCase() === 'tls';
      const port = u.port ?? (tls ? 5061 : 5060);
      return (u.host === this.advertisedHost || u.host === this.transport.address)
        && (port === this.localPort || (this.transport.tlsEnabled && port === this.transport.tlsPort));
    } catch {
      return false;
    }
  }

  private cancellableTimer(fn: () => void, ms: number): () => void {
    if (this.clock) {
      const h = this.clock.setTimeout(fn, ms);
      return () => this.clock!.clearTimeout(h);
    }
    const h = setTimeout(fn, ms);
    h.unref();
    return () => clearTimeout(h);
  }

  // ───────────────────────────── app connection lifecycle ─────────────────────────────

  /** An app connection closed: release everything it owned. */
  appGone(app: AppConn): void {
    for (const ib of [...this.inbound.values()]) {
      if (ib.app !== app || ib.finalSent || ib.proxy) continue;
      this.reject(ib.st, ib.req, 503, undefined, 'application disconnected', true, ib.toTag);
      ib.finalSent = true;
      this.untrack(ib);
    }
    for (const ob of this.outbound.values()) {
      if (ob.app !== app) continue;
      ob.orphan = true;
      if (ob.initialInvite && ob.finalStatus === undefined) {
        try {
          this.layer.sendRequest(this.layer.makeCancel(ob.ct), ob.ct.dest);
        } catch (e) {
          log.debug('CANCEL after app disconnect failed', { err: e });
        }
      }
    }
    for (const d of [...this.dialogsById.values()]) {
      if (d.app === app && !d.terminated) this.byeAndForget(d, 'application disconnected');
    }
  }

  /** Release everything (edge shutting down): live dialogs get a BYE (best effort). */
  async shutdown(): Promise<void> {
    const byes: Promise<void>[] = [];
    for (const d of [...this.dialogsById.values()]) {
      if (d.terminated) continue;
      this.endDialog(d, 'edge shutting down');
      byes.push(this.dialogDest(d).then((dest) => {
        const bye = this.buildInDialog(d, 'BYE', []);
        this.setVia(bye, dest.transport);
        return this.transport.send(bye, dest);
      }).catch(() => undefined));
    }
    await Promise.all(byes);
    this.closed = true;
    this.layer.close();
    this.inbound.clear();
    this.inboundBySt.clear();
    this.outbound.clear();
  }

  private byeAndForget(d: Dialog, why: string): void {
    this.endDialog(d, why);
    void this.dialogDest(d).then((dest) => {
      const bye = this.buildInDialog(d, 'BYE', []);
      this.setVia(bye, dest.transport);
      this.layer.sendRequest(bye, dest);
    }).catch((e) => log.warn('BYE not sent', { err: e, dialog: d.id }));
  }

  // ───────────────────────────── helpers ─────────────────────────────

  /**
   * A non-INVITE request the app leaves unanswered for 64*T1 gets a 408 from the edge, so
   * neither the peer nor the edge's tables wait forever. (INVITEs may ring indefinitely; the
   * caller CANCELs.)
   */
  private guardUnanswered(ib: Inbound): void {
    if (ib.req.method === 'INVITE') return;
    this.setTimer(() => {
      if (ib.finalSent || ib.proxy || this.closed) return;
      ib.finalSent = true;
      this.untrack(ib);
      this.reject(ib.st, ib.req, 408, undefined, 'application did not answer in time', false, ib.toTag);
      ib.afterFinal?.();
    }, 64 * this.T1);
  }

  private track(ib: Inbound): void {
    this.inbound.set(ib.id, ib);
    this.inboundBySt.set(ib.st, ib);
  }

  private untrack(ib: Inbound): void {
    this.inbound.delete(ib.id);
    if (ib.initialInvite) {
      if (ib.toTag) this.early.delete(dialogKey(ib.req.callId, ib.toTag, ib.req.fromTag ?? ''));
      if (ib.rel) {
        ib.rel.pending?.stop();
        ib.rel.pending = undefined;
        for (const h of ib.rel.held.splice(0)) h.app.send(replyFrame(h.msgId, 'NOK', 'Server error: final response already sent'));
      }
    }
    // Keep the INVITE mapping until its transaction ends, so a late CANCEL gets a 200.
    if (ib.req.method === 'INVITE') ib.st.once('terminated', () => this.inboundBySt.delete(ib.st));
    else this.inboundBySt.delete(ib.st);
  }

  private addDialog(d: Dialog): void {
    this.dialogs.set(dialogKey(d.callId, d.localTag, d.remoteTag), d);
    this.dialogsById.set(d.id, d);
  }

  private endDialog(d: Dialog, why: string, logIt = true): void {
    if (d.terminated) return;
    d.terminated = true;
    this.dialogs.delete(dialogKey(d.callId, d.localTag, d.remoteTag));
    if (this.dialogsById.get(d.id) === d) this.dialogsById.delete(d.id);
    if (logIt) log.info('dialog ended', { dialog: d.id, why, durationMs: Date.now() - d.startedAt });
  }

  private uasDialogId(req: SipMessage): string {
    return `${req.callId};from-tag=${req.fromTag ?? ''}`;
  }

  private tagResponse(res: SipMessage, tag: string): void {
    setToTag(res, tag);
  }

  /**
   * Final response by the edge itself (To tag added), with a log line saying why.
   * `explain`: `true` adds `Reason` and `Warning: 399`, `'warning'` only the Warning.
   */
  private reject(
    st: ServerTransaction, req: SipMessage, status: number, reason: string | undefined, why: string,
    explain: boolean | 'warning' = false, tag?: string, extra: Header[] = [],
  ): void {
    const res = makeResponse(req, status, reason);
    if (!req.toTag) this.tagResponse(res, tag ?? newTag());
    if (status === 405) res.add('Allow', ALLOW);
    for (const h of extra) res.add(h.name, h.value);
    if (explain === true) res.add('Reason', `SIP;cause=${status};text="${why.replace(/["\\]/g, "'")}"`);
    if (explain) res.add('Warning', `399 ${this.advertisedHost} "${why.replace(/["\\]/g, "'")}"`);
    st.respond(res);
    log.info('request rejected', { sip: req.summary(), callId: req.callId, status, why });
  }

  private netMeta(msg: SipMessage, src: Endpoint, txnId: string, dialogId: string, bytes: number): WireMeta {
    return {
      source: 'network', bytes, transport: src.transport, address: src.address, port: src.port,
      time: wireTime(), transactionId: txnId, dialogId,
    };
  }

  private confirmRequest(app: AppConn, msgId: string, txnId: string, dest: Endpoint, wire: Buffer): void {
    const meta: WireMeta = {
      source: 'application', bytes: wire.length, transport: dest.transport, address: this.advertisedHost,
      port: this.localPort, time: wireTime(), transactionId: txnId, dialogId: '',
    };
    app.send(sentRequestFrame(msgId, meta, wire));
  }

  /** Copy the app's headers except those the edge owns (and `skip`). */
  private copyAppHeaders(to: SipMessage, from: SipMessage, skip: Set<string>): void {
    for (const h of from.headers) {
      const n = h.name.toLowerCase();
      if (OWNED.has(n) || skip.has(n)) continue;
      to.add(h.name, h.value);
    }
  }

  /** An in-dialog request from dialog state (Request-URI = remote target, §12.2.1.1). */
  private buildInDialog(d: Dialog, method: string, appHeaders: Header[], body?: Buffer): SipMessage {
    const req = SipMessage.request(method, d.remoteTarget);
    req.add('Via', this.viaFor(d.transport));
    const mf = appHeaders.find((h) => h.name.toLowerCase() === 'max-forwards');
    req.add('Max-Forwards', mf?.value ?? '70');
    req.add('From', d.localHdr);
    req.add('To', d.remoteHdr);
    req.add('Call-ID', d.callId);
    const seq = method === 'ACK' ? d.localSeq : ++d.localSeq;
    req.add('CSeq', `${seq} ${method}`);
    for (const r of d.routeSet) req.add('Route', r);
    const appContact = appHeaders.find((h) => h.name.toLowerCase() === 'contact');
    if (appContact) req.add('Contact', appContact.value);
    else if (NEEDS_CONTACT.has(method)) req.add('Contact', this.contactFor(d.transport, isSips(d.remoteTarget) || isSips(d.routeSet[0])));
    for (const h of appHeaders) {
      const n = h.name.toLowerCase();
      if (OWNED.has(n) || n === 'max-forwards' || n === 'contact' || n === 'route') continue;
      req.add(h.name, h.value);
    }
    req.body = body ?? Buffer.alloc(0);
    if (req.body.length > 0 && !req.has('Content-Type')) req.add('Content-Type', 'application/sdp');
    req.add('Content-Length', String(req.body.length));
    return req;
  }

  private setVia(req: SipMessage, transport: TransportName): void {
    req.set('Via', this.viaFor(transport));
  }

  /** Where in-dialog requests go: first Route, else the remote target; same flow for TCP. */
  private async dialogDest(d: Dialog): Promise<Endpoint> {
    const target = d.routeSet.length > 0 ? firstUri(d.routeSet[0]!) : d.remoteTarget;
    const ep = await this.resolve(target, d.transport);
    if (ep.transport !== 'udp' && ep.transport === d.transport && d.connId) ep.connId = d.connId;
    return ep;
  }

  /**
   * URI → endpoint: host (resolved), transport param (udp default; sips: → TLS), port (5060
   * default, 5061 for TLS). TLS endpoints keep the URI's host name for the certificate check.
   */
  private async resolve(uri: string, preferred?: TransportName): Promise<Endpoint> {
    const u = parseUri(uri);
    const tp = (u.params.get('transport') ?? '').toLowerCase();
    let transport: TransportName = tp === 'tcp' || tp === 'udp' || tp === 'tls' ? tp : preferred ?? 'udp';
    const name = u.host.replace(/^\[|\]$/g, '');
    let host = name;
    if (!net.isIP(host)) {
      const r = await dns.lookup(host, { family: 4 }).catch(() => dns.lookup(host));
      host = r.address;
    }
    if (u.scheme === 'sips') transport = 'tls';
    if (transport !== 'tls') return { transport, address: host, port: u.port ?? 5060 };
    return { transport, address: host, port: u.port ?? 5061, ...(net.isIP(name) ? {} : { servername: name }) };
  }
}
