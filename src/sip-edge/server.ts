/**
 * `SipEdge`: the built-in SIP edge. SIP over UDP/TCP (and TLS, `sip.tls`) on one side, the
 * drachtio wire protocol on the other, so a drachtio-srf application connects to it exactly as to drachtio-server:
 * `authenticate` (secret, tags) → `route` per verb → `sip` / `response` traffic, `ping` →
 * `pong`. Several applications may connect; each new request goes to one that registered
 * its verb (round-robin), in-dialog traffic to the dialog's owner.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { logger } from '../ops/log.ts';
import { SipTransport, type SipTlsOptions, type TransportName } from './transport.ts';
import type { EdgeGuard } from './guard.ts';
import type { Clock, TimerConfig } from './transaction.ts';
import { UaCore, type AppConn, type AppRouter } from './ua.ts';
import { FrameDecoder, encodeFrame, splitPayload, replyFrame } from './wire.ts';

const log = logger('sip-edge');

/**
 * Version string reported to applications in the `authenticate` answer. drachtio-srf parses
 * `v<major>.<minor>.<patch>` from it and enables pings from v0.8.2 on.
 */
export const EDGE_VERSION = 'v0.9.10-builtin-sip-edge';

/** Options of {@link SipEdge}. */
export interface SipEdgeOptions {
  /** SIP side. */
  sip: {
    /** @defaultValue `127.0.0.1` */
    address: string;
    /** 0 lets the OS pick (see {@link SipEdge.sipPort}). @defaultValue 5060 */
    port: number;
    /** @defaultValue `['udp', 'tcp']` */
    transports: Exclude<TransportName, 'tls'>[];
    /** SIP over TLS on its own port (5061 by default); off when absent. */
    tls?: SipTlsOptions;
    /**
     * Host put in Contact/Via/From of what the edge originates; needed when `address` is a
     * wildcard. @defaultValue `address` (or `127.0.0.1` for a wildcard)
     */
    advertisedHost?: string;
    /** Flood, scanner and access checks before transactions (src/sip/sip-guard.ts via main). @defaultValue none */
    guard?: EdgeGuard;
  };
  /** drachtio wire listener for applications. */
  control: {
    /** @defaultValue `127.0.0.1` */
    address: string;
    /** 0 lets the OS pick (see {@link SipEdge.controlPort}). @defaultValue 9022 */
    port: number;
    /** Shared secret applications authenticate with. @defaultValue `cymru` */
    secret: string;
  };
  /** SIP timers (T1/T2/T4). @defaultValue 500 / 4000 / 5000 ms */
  timers?: Partial<TimerConfig>;
  /** Injectable clock for the transaction layer (tests). @defaultValue real time */
  clock?: Clock;
}

/** Defaults of {@link SipEdgeOptions}. */
export const DEFAULT_SIP_EDGE_OPTIONS: SipEdgeOptions = {
  sip: { address: '127.0.0.1', port: 5060, transports: ['udp', 'tcp'] },
  control: { address: '127.0.0.1', port: 9022, secret: 'cymru' },
};

let connSeq = 0;

/** One drachtio application connection. */
class AppConnection implements AppConn {
  readonly id: string;
  authenticated = false;
  closed = false;
  tags: string[] = [];
  readonly verbs = new Set<string>();
  /** `sip` messages are handled strictly in arrival order (some steps are asynchronous). */
  queue: Promise<void> = Promise.resolve();
  private readonly decoder = new FrameDecoder();

  constructor(readonly socket: net.Socket) {
    this.id = `app-${++connSeq}@${socket.remoteAddress}:${socket.remotePort}`;
  }

  send(payload: Buffer): void {
    if (this.closed || this.socket.destroyed) return;
    this.socket.write(encodeFrame(payload));
  }

  decode(chunk: Buffer): Buffer[] {
    return this.decoder.push(chunk);
  }
}

/** The built-in SIP edge. Emits `'app'` (id) on authentication and `'app-gone'` (id) on disconnect. */
export class SipEdge extends EventEmitter {
  private readonly opts: SipEdgeOptions;
  private transport?: SipTransport;
  private ua?: UaCore;
  private control?: net.Server;
  private readonly conns = new Set<AppConnection>();
  private readonly rr = new Map<string, number>();

  constructor(opts: SipEdgeOptions) {
    super();
    this.opts = opts;
  }

  /** The bound SIP port (UDP and TCP). */
  get sipPort(): number {
    return this.transport?.port ?? this.opts.sip.port;
  }

  /** The bound SIP over TLS port (0 when TLS is off). */
  get tlsPort(): number {
    return this.transport?.tlsPort ?? this.opts.sip.tls?.port ?? 0;
  }

  /** The bound drachtio control port. */
  get controlPort(): number {
    const a = this.control?.address();
    return a && typeof a === 'object' ? a.port : this.opts.control.port;
  }

  /** SIP and control listeners are up (between start() and stop()). */
  get listening(): boolean {
    return this.transport !== undefined && this.control !== undefined && this.control.listening;
  }

  /** Live dialogs. */
  get dialogCount(): number {
    return this.ua?.dialogCount ?? 0;
  }

  /** Number of authenticated application connections. */
  get appCount(): number {
    return [...this.conns].filter((c) => c.authenticated && !c.closed).length;
  }

  async start(): Promise<void> {
    const transport = new SipTransport({
      address: this.opts.sip.address, port: this.opts.sip.port, transports: this.opts.sip.transports,
      ...(this.opts.sip.tls ? { tls: this.opts.sip.tls } : {}),
      ...(this.opts.sip.guard ? { guard: this.opts.sip.guard } : {}),
    });
    const router: AppRouter = {
      pick: (verb) => this.pick(verb),
      connectedCount: () => this.appCount,
    };
    this.ua = new UaCore({
      transport, router, clock: this.opts.clock, timers: this.opts.timers, advertisedHost: this.opts.sip.advertisedHost,
    });
    await transport.listen();
    this.transport = transport;
    const control = net.createServer((sock) => this.onConnection(sock));
    await new Promise<void>((resolve, reject) => {
      control.once('error', reject);
      control.listen({ host: this.opts.control.address, port: this.opts.control.port }, () => {
        control.off('error', reject);
        resolve();
      });
    });
    control.on('error', (e) => log.error('control listener error', { err: e }));
    this.control = control;
    log.info('sip edge started', {
      sip: `${this.opts.sip.address}:${this.sipPort}`, transports: this.opts.sip.transports.join(','),
      tls: this.opts.sip.tls ? `${this.opts.sip.address}:${this.tlsPort}` : undefined,
      control: `${this.opts.control.address}:${this.controlPort}`,
    });
  }

  async stop(): Promise<void> {
    await this.ua?.shutdown();
    for (const c of this.conns) {
      c.closed = true;
      c.socket.destroy();
    }
    this.conns.clear();
    const control = this.control;
    this.control = undefined;
    if (control) await new Promise<void>((r) => control.close(() => r()));
    await this.transport?.close();
    this.transport = undefined;
    log.info('sip edge stopped');
  }

  /**
   * `tcp/h:p,udp/h:p[,tls/h:tlsPort]` as drachtio-server reports its SIP contacts (one
   * `<proto>/<host>:<port>` per transport, sofia's protocol names).
   */
  private hostports(): string {
    const host = this.opts.sip.advertisedHost ?? this.opts.sip.address;
    const hps = (['tcp', 'udp'] as const)
      .filter((t) => this.opts.sip.transports.includes(t))
      .map((t) => `${t}/${host}:${this.sipPort}`);
    if (this.opts.sip.tls) hps.push(`tls/${host}:${this.tlsPort}`);
    return hps.join(',');
  }

  private pick(verb: string): AppConn | undefined {
    const list = [...this.conns].filter((c) => c.authenticated && !c.closed && c.verbs.has(verb));
    if (list.length === 0) return undefined;
    const i = (this.rr.get(verb) ?? 0) % list.length;
    this.rr.set(verb, i + 1);
    return list[i];
  }

  private onConnection(sock: net.Socket): void {
    const conn = new AppConnection(sock);
    this.conns.add(conn);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 45_000);
    log.debug('application connection', { app: conn.id });
    sock.on('data', (chunk: Buffer) => {
      let payloads: Buffer[];
      try {
        payloads = conn.decode(chunk);
      } catch (e) {
        log.warn('bad frame from application, closing connection', { app: conn.id, err: e });
        sock.destroy();
        return;
      }
      for (const p of payloads) this.onPayload(conn, p);
    });
    sock.on('error', (e) => log.debug('application socket error', { app: conn.id, err: e }));
    sock.on('close', () => {
      conn.closed = true;
      this.conns.delete(conn);
      if (conn.authenticated) {
        log.info('application disconnected', { app: conn.id });
        this.ua?.appGone(conn);
        this.emit('app-gone', conn.id);
      }
    });
  }

  private onPayload(conn: AppConnection, payload: Buffer): void {
    const { tokens, sip } = splitPayload(payload);
    const msgId = tokens[0] ?? '';
    const type = tokens[1] ?? '';
    if (!conn.authenticated) {
      if (type !== 'authenticate') {
        log.warn('message before authentication, closing connection', { app: conn.id, type });
        conn.send(replyFrame(msgId, 'NO', 'not authenticated'));
        conn.socket.end();
        return;
      }
      if (tokens[2] !== this.opts.control.secret) {
        log.warn('application rejected: incorrect secret', { app: conn.id });
        conn.send(replyFrame(msgId, 'NO', 'incorrect secret'));
        conn.closed = true;
        conn.socket.end();
        return;
      }
      conn.authenticated = true;
      conn.tags = (tokens[3] ?? '').split(',').filter(Boolean);
      const hp = this.hostports();
      conn.send(replyFrame(msgId, 'OK', hp, EDGE_VERSION, hp));
      log.info('application connected', { app: conn.id, tags: conn.tags.join(',') || undefined });
      this.emit('app', conn.id);
      return;
    }
    switch (type) {
      case 'route': {
        const verb = (tokens[2] ?? '').toLowerCase();
        if (verb) conn.verbs.add(verb);
        conn.send(replyFrame(msgId, 'OK'));
        log.debug('route registered', { app: conn.id, verb });
        return;
      }
      case 'remove_route':
        conn.verbs.delete((tokens[2] ?? '').toLowerCase());
        conn.send(replyFrame(msgId, 'OK'));
        return;
      case 'ping':
        conn.send(replyFrame(msgId, 'OK', 'pong'));
        return;
      case 'authenticate':
        conn.send(replyFrame(msgId, 'OK', this.hostports(), EDGE_VERSION, this.hostports()));
        return;
      case 'sip':
        conn.queue = conn.queue.then(async () => {
          if (this.ua && !conn.closed) await this.ua.handleAppSip(conn, tokens, sip);
        }).catch((e) => {
          log.error('sip from application failed', { app: conn.id, err: e });
        });
        return;
      case 'proxy':
        conn.queue = conn.queue.then(() => {
          if (this.ua && !conn.closed) this.ua.handleAppProxy(conn, tokens, sip);
        }).catch((e) => log.error('proxy from application failed', { app: conn.id, err: e }));
        return;
      default:
        log.warn('unknown message type from application', { app: conn.id, type });
        conn.send(replyFrame(msgId, 'NOK', `Server error: unknown message type ${type}`));
    }
  }
}
