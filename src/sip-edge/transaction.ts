/**
 * SIP transaction layer of the built-in SIP edge: RFC 3261 §17 with the RFC 6026
 * "Accepted" states, over a {@link SipTransport}-like object.
 *
 * Server side: new requests get a {@link ServerTransaction} and are emitted as `'request'`;
 * retransmissions are absorbed and the last response re-sent (§17.2.1, §17.2.2); the ACK
 * for a non-2xx final is absorbed by its INVITE transaction (§17.2.1); the ACK for a 2xx
 * (a new transaction, §17.1.1.3) is matched by Call-ID + CSeq number + From tag to stop the
 * 2xx retransmission and emitted with `txn = null`.
 *
 * Client side: {@link TransactionLayer.sendRequest} starts a {@link ClientTransaction}
 * (timers A/B/D for INVITE, E/F/K otherwise; retransmissions on UDP only, §17.1.1.2,
 * §17.1.2.2); responses are matched by top-Via branch + CSeq method (§17.1.3).
 *
 * All timing goes through an injectable {@link Clock} so tests can use a fake one.
 */
import { EventEmitter } from 'node:events';
import { logger } from '../ops/log.ts';
import { SipMessage, makeResponse, parseVia, splitHeaderValues } from './message.ts';
import { type Endpoint, responseEndpoint } from './transport.ts';

const log = logger('sip-txn');

/** Time source and timers (real in production, fake in unit tests). */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(h: unknown): void;
}

/** Wall clock; timers are unref'd so pending transaction timers never keep a process alive. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** RFC 3261 §17.1.1.1 timer values. */
export interface TimerConfig {
  /** RTT estimate. @defaultValue 500 (ms) */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses. @defaultValue 4000 (ms) */
  T2: number;
  /** Maximum duration a message remains in the network. @defaultValue 5000 (ms) */
  T4: number;
}

/** The part of {@link SipTransport} the transaction layer needs. */
export interface TransportLike {
  send(msg: SipMessage, dest: Endpoint): Promise<void>;
  on(event: 'message', fn: (msg: SipMessage, src: Endpoint, bytes: number) => void): unknown;
}

/** Options of {@link TransactionLayer}. */
export interface TransactionLayerOptions {
  /** @defaultValue {@link realClock} */
  clock?: Clock;
  /** @defaultValue `{ T1: 500, T2: 4000, T4: 5000 }` */
  timers?: Partial<TimerConfig>;
  /**
   * Send `100 Trying` for an INVITE the TU has not answered within this many ms
   * (RFC 3261 §17.2.1 says 200 ms); 0 disables.
   * @defaultValue 200
   */
  autoTryingMs?: number;
  /**
   * Timer D: how long an INVITE client transaction absorbs final-response retransmissions
   * on unreliable transports (≥ 32 s per §17.1.1.2).
   * @defaultValue 32000 (ms)
   */
  timerD?: number;
}

const COOKIE = 'z9hG4bK';

function topVia(msg: SipMessage): string {
  return splitHeaderValues(msg.get('Via') ?? '')[0] ?? '';
}

/** Server transaction key, RFC 3261 §17.2.3 (ACK matches its INVITE; CANCEL is distinct). */
function serverKey(req: SipMessage, methodOverride?: string): string {
  const method = methodOverride ?? (req.method === 'ACK' ? 'INVITE' : req.method!);
  const via = parseVia(topVia(req))[0];
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  if (via.branch?.startsWith(COOKIE)) return `${via.branch}|${sentBy}|${method}`;
  // RFC 2543 peers (no magic cookie): Request-URI-independent subset of §17.2.3's rule.
  return `2543|${req.callId}|${req.cseq.seq}|${req.fromTag ?? ''}|${sentBy}|${method}`;
}

/** Client transaction key, RFC 3261 §17.1.3: top-Via branch + CSeq method. */
function clientKey(msg: SipMessage): string | undefined {
  try {
    const br = parseVia(topVia(msg))[0].branch;
    return br ? `${br}|${msg.cseq.method}` : undefined;
  } catch {
    return undefined;
  }
}

/** Key matching an ACK for a 2xx to its INVITE: Call-ID + CSeq number + From tag. */
function dialogAckKey(msg: SipMessage): string {
  return `${msg.callId}|${msg.cseq.seq}|${msg.fromTag ?? ''}`;
}

/** Timer bookkeeping shared by both transaction kinds. */
abstract class TxnBase extends EventEmitter {
  state = '';
  private readonly timers = new Map<string, unknown>();
  constructor(protected readonly layer: TransactionLayer) {
    super();
  }

  protected startTimer(name: string, ms: number, fn: () => void): void {
    this.stopTimer(name);
    const h = this.layer.clock.setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, ms);
    this.timers.set(name, h);
  }

  protected stopTimer(name: string): void {
    const h = this.timers.get(name);
    if (h !== undefined) {
      this.layer.clock.clearTimeout(h);
      this.timers.delete(name);
    }
  }

  /** Move to Terminated: stop timers, forget the transaction, emit `'terminated'` once. */
  terminate(): void {
    if (this.state === 'Terminated') return;
    this.state = 'Terminated';
    for (const h of this.timers.values()) this.layer.clock.clearTimeout(h);
    this.timers.clear();
    this.layer.forget(this);
    this.emit('terminated');
  }
}

/**
 * A server transaction (§17.2). INVITE states: Proceeding → Accepted (2xx, RFC 6026) |
 * Completed (3xx–6xx) → Confirmed → Terminated. Non-INVITE: Trying → Proceeding → Completed
 * → Terminated.
 *
 * Events: `'ack' (ack)`, `'ackTimeout'` (no ACK for a 2xx within 64*T1), `'terminated'`,
 * `'transportError' (err)`.
 */
export class ServerTransaction extends TxnBase {
  readonly id: string;
  readonly request: SipMessage;
  readonly source: Endpoint;
  lastResponse?: SipMessage;
  /** Where responses go (§18.2.2). */
  readonly responseDest: Endpoint;
  readonly isInvite: boolean;
  private acked = false;

  constructor(layer: TransactionLayer, request: SipMessage, source: Endpoint, id: string) {
    super(layer);
    this.id = id;
    this.request = request;
    this.source = source;
    this.responseDest = responseEndpoint(request, source);
    this.isInvite = request.method === 'INVITE';
    this.state = this.isInvite ? 'Proceeding' : 'Trying';
    const trying = layer.autoTryingMs;
    if (this.isInvite && trying > 0) {
      // §17.2.1: a 100 Trying if the TU does not answer within 200 ms.
      this.startTimer('trying', trying, () => {
        if (!this.lastResponse && this.state === 'Proceeding') this.respond(makeResponse(request, 100));
      });
    }
  }

  private get reliable(): boolean {
    return this.source.transport !== 'udp';
  }

  /** Send a response through this transaction (ignored, with a log line, when not allowed in the current state). */
  respond(res: SipMessage): void {
    const status = res.status ?? 0;
    this.stopTimer('trying');
    const { T1, T2 } = this.layer.timers;
    if (this.isInvite) {
      if (this.state === 'Accepted' && status >= 200 && status < 300) {
        this.transmit(res); // further 2xx (RFC 6026 §7.1); retransmission keeps using the first
        return;
      }
      if (this.state !== 'Proceeding') {
        log.warn('response not sent: INVITE transaction already answered', { state: this.state, status, callId: this.request.callId });
        return;
      }
      this.lastResponse = res;
      if (status < 200) {
        this.transmit(res);
      } else if (status < 300) {
        // RFC 6026 §7.1 Accepted; 2xx retransmission per §13.3.1.4 (T1 doubling up to T2,
        // unreliable transports only) until the ACK arrives or 64*T1 passes.
        this.state = 'Accepted';
        this.layer.registerAccepted(this);
        this.transmit(res);
        if (!this.reliable) {
          let interval = T1;
          const retransmit = (): void => {
            if (this.acked) return;
            this.transmit(res);
            interval = Math.min(interval * 2, T2);
            this.startTimer('2xx', interval, retransmit);
          };
          this.startTimer('2xx', interval, retransmit);
        }
        this.startTimer('L', 64 * T1, () => {
          if (!this.acked) {
            log.warn('no ACK for 2xx within 64*T1', { callId: this.request.callId });
            this.emit('ackTimeout');
          }
          this.terminate();
        });
      } else {
        // §17.2.1 Completed: timer G (retransmit, unreliable only), timer H (wait for ACK).
        this.state = 'Completed';
        this.transmit(res);
        if (!this.reliable) {
          let interval = T1;
          const retransmit = (): void => {
            this.transmit(res);
            interval = Math.min(interval * 2, T2);
            this.startTimer('G', interval, retransmit);
          };
          this.startTimer('G', interval, retransmit);
        }
        this.startTimer('H', 64 * T1, () => {
          log.debug('timer H: no ACK for non-2xx final', { callId: this.request.callId, status });
          this.terminate();
        });
      }
      return;
    }
    // Non-INVITE, §17.2.2.
    if (this.state !== 'Trying' && this.state !== 'Proceeding') {
      log.warn('response not sent: transaction already answered', { state: this.state, status, method: this.request.method });
      return;
    }
    this.lastResponse = res;
    this.transmit(res);
    if (status < 200) {
      this.state = 'Proceeding';
    } else {
      this.state = 'Completed';
      if (this.reliable) this.terminate();
      else this.startTimer('J', 64 * T1, () => this.terminate());
    }
  }

  /** A request matching this transaction arrived. Returns true if absorbed (not for the TU). */
  onRequest(req: SipMessage): boolean {
    if (req.method === 'ACK') {
      if (!this.isInvite) return true;
      if (this.state === 'Completed') {
        // §17.2.1: ACK for the non-2xx → Confirmed, timer I absorbs ACK retransmissions.
        this.state = 'Confirmed';
        this.stopTimer('G');
        this.stopTimer('H');
        this.emit('ack', req);
        if (this.reliable) this.terminate();
        else this.startTimer('I', this.layer.timers.T4, () => this.terminate());
        return true;
      }
      if (this.state === 'Accepted') {
        // RFC 6026 §7.1: an ACK matching the transaction in Accepted goes to the TU (a peer
        // that reused the INVITE branch for its 2xx ACK).
        this.ack2xx(req);
        return false;
      }
      return true;
    }
    // §17.2.1/§17.2.2: retransmitted request → re-send the last response (if any).
    if (this.lastResponse && this.state !== 'Confirmed') this.transmit(this.lastResponse);
    return true;
  }

  /**
   * ACK hook of an INVITE answered 2xx: the 2xx counts as acknowledged, so it is no longer
   * retransmitted and no `'ackTimeout'` follows. The layer calls it with the ACK when one
   * matches (then `'ack'` is emitted with it); a stateful proxy calls it without one right
   * after relaying a 2xx, because the ACK goes end to end and 2xx retransmissions are the
   * downstream UAS's to send (RFC 3261 §16.7, §13.3.1.4). Idempotent.
   */
  ack2xx(ack?: SipMessage): void {
    if (this.acked) return;
    this.acked = true;
    this.stopTimer('2xx');
    if (ack) this.emit('ack', ack);
  }

  private transmit(res: SipMessage): void {
    this.layer.transport.send(res, this.responseDest).catch((err: Error) => {
      log.warn('response send failed', { err, callId: this.request.callId, to: `${this.responseDest.address}:${this.responseDest.port}` });
      if (this.state === 'Terminated') return;
      this.emit('transportError', err);
      this.terminate();
    });
  }
}

/**
 * A client transaction (§17.1). INVITE: Calling → Proceeding → Accepted (2xx, RFC 6026) |
 * Completed (3xx–6xx, ACK sent by the transaction) → Terminated. Non-INVITE: Trying →
 * Proceeding → Completed → Terminated.
 *
 * Events: `'response' (res, src)` (provisionals, the final, and 2xx retransmissions in
 * Accepted so the UA can re-ACK), `'timeout'` (timer B/F), `'transportError' (err)`,
 * `'terminated'`.
 */
export class ClientTransaction extends TxnBase {
  readonly id: string;
  readonly request: SipMessage;
  readonly dest: Endpoint;
  readonly isInvite: boolean;
  /** The ACK this transaction generated for a non-2xx final, if any. */
  ack?: SipMessage;

  constructor(layer: TransactionLayer, request: SipMessage, dest: Endpoint, id: string) {
    super(layer);
    this.id = id;
    this.request = request;
    this.dest = dest;
    this.isInvite = request.method === 'INVITE';
  }

  private get reliable(): boolean {
    return this.dest.transport !== 'udp';
  }

  /** @internal */
  start(): void {
    const { T1, T2 } = this.layer.timers;
    if (this.request.method === 'ACK') {
      // An ACK is not a transaction: send once, done.
      this.state = 'Trying';
      this.transmit(this.request);
      this.terminate();
      return;
    }
    this.state = this.isInvite ? 'Calling' : 'Trying';
    this.transmit(this.request);
    if (this.isInvite) {
      // §17.1.1.2: timer A doubles without cap (unreliable only); timer B = 64*T1.
      if (!this.reliable) {
        let interval = T1;
        const retransmit = (): void => {
          this.transmit(this.request);
          interval *= 2;
          this.startTimer('A', interval, retransmit);
        };
        this.startTimer('A', interval, retransmit);
      }
      this.startTimer('B', 64 * T1, () => this.fireTimeout('B'));
    } else {
      // §17.1.2.2: timer E doubles up to T2 (T2 once Proceeding); timer F = 64*T1.
      if (!this.reliable) {
        let interval = T1;
        const retransmit = (): void => {
          this.transmit(this.request);
          interval = this.state === 'Proceeding' ? T2 : Math.min(interval * 2, T2);
          this.startTimer('E', interval, retransmit);
        };
        this.startTimer('E', interval, retransmit);
      }
      this.startTimer('F', 64 * T1, () => this.fireTimeout('F'));
    }
  }

  private fireTimeout(timer: string): void {
    log.debug(`timer ${timer} fired`, { method: this.request.method, callId: this.request.callId });
    this.emit('timeout');
    this.terminate();
  }

  /** @internal A response matched this transaction. */
  onResponse(res: SipMessage, src: Endpoint): void {
    const status = res.status ?? 0;
    if (this.isInvite) {
      switch (this.state) {
        case 'Calling':
        case 'Proceeding':
          this.stopTimer('A');
          if (status < 200) {
            // §17.1.1.2: Proceeding; no more retransmissions, timer B no longer applies.
            this.stopTimer('B');
            this.state = 'Proceeding';
            this.emit('response', res, src);
          } else if (status < 300) {
            // RFC 6026 §7.2 Accepted: timer M (64*T1) absorbs nothing, forwards 2xx retransmissions.
            this.stopTimer('B');
            this.state = 'Accepted';
            this.startTimer('M', 64 * this.layer.timers.T1, () => this.terminate());
            this.emit('response', res, src);
          } else {
            // §17.1.1.3: Completed; the transaction ACKs the non-2xx itself; timer D.
            this.stopTimer('B');
            this.state = 'Completed';
            this.ack = this.buildAck(res);
            this.transmit(this.ack);
            this.emit('response', res, src);
            if (this.reliable) this.terminate();
            else this.startTimer('D', this.layer.timerD, () => this.terminate());
          }
          return;
        case 'Accepted':
          if (status >= 200 && status < 300) this.emit('response', res, src);
          return;
        case 'Completed':
          if (status >= 300 && this.ack) this.transmit(this.ack); // retransmitted final → re-ACK
          return;
        default:
          return;
      }
    }
    if (this.state !== 'Trying' && this.state !== 'Proceeding') return; // final retransmission absorbed
    if (status < 200) {
      this.state = 'Proceeding';
      this.emit('response', res, src);
      return;
    }
    this.stopTimer('E');
    this.stopTimer('F');
    this.state = 'Completed';
    this.emit('response', res, src);
    // §17.1.2.2: timer K = T4 (unreliable) / 0 (reliable).
    if (this.reliable) this.terminate();
    else this.startTimer('K', this.layer.timers.T4, () => this.terminate());
  }

  /** §17.1.1.3: the ACK for a non-2xx final response. */
  private buildAck(res: SipMessage): SipMessage {
    const req = this.request;
    const ack = SipMessage.request('ACK', req.uri!);
    ack.add('Via', topVia(req));
    ack.add('Max-Forwards', '70');
    for (const r of req.getAll('Route')) ack.add('Route', r);
    ack.add('From', req.get('From') ?? '');
    ack.add('To', res.get('To') ?? req.get('To') ?? '');
    ack.add('Call-ID', req.callId);
    ack.add('CSeq', `${req.cseq.seq} ACK`);
    return ack;
  }

  private transmit(msg: SipMessage): void {
    this.layer.transport.send(msg, this.dest).catch((err: Error) => {
      log.warn('request send failed', { err, method: msg.method, to: `${this.dest.transport}:${this.dest.address}:${this.dest.port}` });
      if (this.state === 'Terminated' || msg.method === 'ACK') return;
      this.emit('transportError', err);
      this.terminate();
    });
  }
}

/**
 * The transaction layer. Events:
 * - `'request' (req, txn: ServerTransaction | null, src)` — new requests (txn set) and ACKs
 *   for 2xx (txn = null);
 * - `'response' (res, src)` — responses matching no client transaction (e.g. 2xx
 *   retransmissions after the INVITE client transaction ended).
 */
export class TransactionLayer extends EventEmitter {
  readonly clock: Clock;
  readonly timers: TimerConfig;
  readonly autoTryingMs: number;
  readonly timerD: number;
  readonly transport: TransportLike;
  private servers = new Map<string, ServerTransaction>();
  private clients = new Map<string, ClientTransaction>();
  /** INVITE server transactions in Accepted, by Call-ID|CSeq|From-tag (for 2xx ACKs). */
  private accepted = new Map<string, ServerTransaction>();

  constructor(transport: TransportLike, opts: TransactionLayerOptions = {}) {
    super();
    this.transport = transport;
    this.clock = opts.clock ?? realClock;
    this.timers = { T1: 500, T2: 4000, T4: 5000, ...opts.timers };
    this.autoTryingMs = opts.autoTryingMs ?? 200;
    this.timerD = opts.timerD ?? 32_000;
    transport.on('message', (msg, src) => {
      try {
        if (msg.isRequest) this.onRequest(msg, src);
        else this.onResponse(msg, src);
      } catch (e) {
        // A throwing TU listener must not take the transport down.
        log.error('error handling SIP message', { err: e as Error, msg: msg.summary(), stack: (e as Error)?.stack });
      }
    });
  }

  /** Number of live transactions (for metrics and tests). */
  get counts(): { server: number; client: number } {
    return { server: this.servers.size, client: this.clients.size };
  }

  private onRequest(req: SipMessage, src: Endpoint): void {
    const key = serverKey(req);
    const txn = this.servers.get(key);
    if (txn) {
      if (!txn.onRequest(req)) this.emit('request', req, null, src);
      return;
    }
    if (req.method === 'ACK') {
      // ACK for a 2xx: its own transaction (§17.1.1.3), matched to the INVITE by dialog.
      this.accepted.get(dialogAckKey(req))?.ack2xx(req);
      this.emit('request', req, null, src);
      return;
    }
    const st = new ServerTransaction(this, req, src, key);
    this.servers.set(key, st);
    this.emit('request', req, st, src);
  }

  private onResponse(res: SipMessage, src: Endpoint): void {
    const key = clientKey(res);
    const ct = key ? this.clients.get(key) : undefined;
    if (ct) ct.onResponse(res, src);
    else this.emit('response', res, src);
  }

  /** The INVITE server transaction a CANCEL refers to (§9.2: same branch and sent-by), if any. */
  findInviteForCancel(cancel: SipMessage): ServerTransaction | undefined {
    const st = this.servers.get(serverKey(cancel, 'INVITE'));
    return st?.isInvite ? st : undefined;
  }

  /**
   * Send a request in a new client transaction. The caller supplies the complete top Via
   * (with a `z9hG4bK` branch). An ACK is sent once without a transaction.
   */
  sendRequest(req: SipMessage, dest: Endpoint): ClientTransaction {
    const key = clientKey(req);
    if (!key) throw new Error('sendRequest: request needs a top Via with a branch');
    const ct = new ClientTransaction(this, req, dest, key);
    if (req.method !== 'ACK') this.clients.set(key, ct);
    ct.start();
    return ct;
  }

  /** §9.1: a CANCEL for a pending INVITE client transaction (send it with {@link sendRequest}). */
  makeCancel(invite: ClientTransaction): SipMessage {
    const req = invite.request;
    const c = SipMessage.request('CANCEL', req.uri!);
    c.add('Via', topVia(req));
    c.add('Max-Forwards', '70');
    for (const r of req.getAll('Route')) c.add('Route', r);
    c.add('From', req.get('From') ?? '');
    c.add('To', req.get('To') ?? '');
    c.add('Call-ID', req.callId);
    c.add('CSeq', `${req.cseq.seq} CANCEL`);
    return c;
  }

  /** Terminate every transaction and stop all timers (shutdown). */
  close(): void {
    for (const t of [...this.servers.values(), ...this.clients.values()]) t.terminate();
  }

  /** @internal */
  registerAccepted(st: ServerTransaction): void {
    this.accepted.set(dialogAckKey(st.request), st);
  }

  /** @internal Drop a terminated transaction from the tables. */
  forget(t: ServerTransaction | ClientTransaction | TxnBase): void {
    if (t instanceof ServerTransaction) {
      if (this.servers.get(t.id) === t) this.servers.delete(t.id);
      const k = dialogAckKey(t.request);
      if (this.accepted.get(k) === t) this.accepted.delete(k);
    } else if (t instanceof ClientTransaction) {
      if (this.clients.get(t.id) === t) this.clients.delete(t.id);
    }
  }
}

