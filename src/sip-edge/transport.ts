/**
 * SIP transport layer of the built-in SIP edge (RFC 3261 §18): UDP and TCP on the same port,
 * TLS (§26.2, `node:tls`) on its own port (5061) when a certificate and key are given.
 *
 * - UDP: one message per datagram; CRLF keep-alives ignored.
 * - TCP and TLS: stream framing by Content-Length (mandatory on streams, §18.3), any number of
 *   messages per segment and messages split across segments; CRLFCRLF pings answered with a
 *   CRLF pong (RFC 5626 §3.5.1); one `connId` per connection; idle connections closed.
 * - TLS: optional mutual TLS (client certificates verified against the configured CA);
 *   outgoing TLS connections verify the server's certificate against the configured CA (else
 *   Node's system store) and the target's host name, unless `rejectUnauthorized: false`.
 * - Incoming requests get `received`/`rport` stamped on their top Via (§18.2.1, RFC 3581).
 * - Responses to requests received over TCP or TLS reuse that connection (§18.2.2); new
 *   connections are opened per transport (a TCP connection never carries what must go
 *   over TLS).
 * - Malformed requests are answered `400 Bad Request - <reason>` (`505 Version Not
 *   Supported - <reason>` for a SIP version other than 2.0) with a
 *   `Warning: 399 <host> "<reason>"` header and a To tag whenever the response can be routed:
 *   the top Via is present and parseable (or, on TCP, present at all: the connection is the
 *   route, §18.2.2), even when From/To/Call-ID/CSeq are missing (§21.4.1). Otherwise, and
 *   for ACKs and malformed responses, the message is dropped. All of it is logged.
 *
 * Events: `'message' (msg: SipMessage, src: Endpoint, bytes: number)`.
 */
import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { logger } from '../ops/log.ts';
import { metrics, sipMethodLabel, statusClass } from '../ops/metrics.ts';
import {
  SipMessage, SipParseError, REASON_PHRASES, parseSipMessage, parseVia, formatVia, makeResponse, newTag, setToTag,
  parseDecimal, MAX_CONTENT_LENGTH,
} from './message.ts';
import { guardAfterParse, guardBeforeParse, type EdgeGuard } from './guard.ts';

const log = logger('sip-transport');

export type TransportName = 'udp' | 'tcp' | 'tls';

/** Where a message came from / goes to. `connId` identifies a TCP or TLS connection. */
export interface Endpoint {
  transport: TransportName;
  address: string;
  port: number;
  connId?: string;
  /**
   * TLS only: the host name the target URI named (`address` is what it resolved to), sent
   * as SNI and matched against the server's certificate. Absent for IP-literal targets.
   */
  servername?: string;
}

/** Stream transports (§18.3 framing, responses over the request's connection). */
export function isStream(t: TransportName): boolean {
  return t !== 'udp';
}

/** SIP over TLS (RFC 3261 §26.2) options of {@link SipTransport}. */
export interface SipTlsOptions {
  /** PEM private key. */
  key: string | Buffer;
  /** PEM certificate, optionally followed by its chain. */
  cert: string | Buffer;
  /**
   * PEM CA certificate(s): client certificates are verified against them (`verifyClient`),
   * and so are servers the edge connects to. @defaultValue Node's system CA store (servers)
   */
  ca?: string | Buffer;
  /** TLS listen port; 0 lets the OS pick. @defaultValue 5061 */
  port: number;
  /** Mutual TLS: require a client certificate signed by `ca`. @defaultValue false */
  verifyClient?: boolean;
  /**
   * Verify the certificates of servers the edge connects to (chain and host name). Only a lab
   * sets this false. @defaultValue true
   */
  rejectUnauthorized?: boolean;
}

/** Options of {@link SipTransport}. */
export interface SipTransportOptions {
  /** Local address to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  address: string;
  /** Local port for both UDP and TCP; 0 lets the OS pick one (the same for both). */
  port: number;
  /** Transports to open. */
  transports: TransportName[];
  /**
   * Close a TCP connection after this long without traffic in either direction.
   * @defaultValue 300000 (5 minutes)
   */
  tcpIdleTimeoutMs?: number;
  /**
   * Give up connecting to a TCP peer after this long (the send promise rejects).
   * @defaultValue 10000
   */
  tcpConnectTimeoutMs?: number;
  /**
   * Largest message accepted (header + body). Larger TCP messages close the connection.
   * @defaultValue 65535
   */
  maxMessageBytes?: number;
  /**
   * UDP socket receive buffer (SO_RCVBUF) so bursts of datagrams survive event-loop
   * stalls; the kernel caps it at `net.core.rmem_max`.
   * @defaultValue 4194304 (4 MiB)
   */
  udpRecvBufferBytes?: number;
  /**
   * Host written into `Warning: 399 <host>` of locally generated 400 responses.
   * @defaultValue the bound address
   */
  warningHost?: string;
  /** SIP over TLS on its own port; off when absent. */
  tls?: SipTlsOptions;
  /** Flood, scanner and access checks before parsing and before transactions (./guard.ts); none when absent. */
  guard?: EdgeGuard;
}

interface Conn {
  id: string;
  socket: net.Socket;
  remote: Endpoint;
  buf: Buffer;
}

/** How a connection is keyed for reuse: transport, peer address and port. */
function connKey(transport: TransportName, address: string, port: number): string {
  return `${transport}:${address}:${port}`;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

function normAddr(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * Where responses to `req` (received from `src`) go, RFC 3261 §18.2.2 + RFC 3581 §4:
 * stream transports reuse the connection; datagram responses go to the source address and
 * to the `rport` port when the client asked for it, else to the sent-by port (default 5060).
 */
export function responseEndpoint(req: SipMessage, src: Endpoint): Endpoint {
  if (isStream(src.transport)) return { ...src };
  try {
    const top = parseVia(req.get('Via') ?? '')[0];
    const rport = top.params.get('rport');
    const address = top.params.get('received') || src.address;
    if (rport !== undefined) return { transport: 'udp', address, port: rport ? Number(rport) || src.port : src.port };
    return { transport: 'udp', address, port: top.port ?? 5060 };
  } catch {
    return { ...src };
  }
}

/** UDP + TCP SIP transport on one address/port, TLS on a second port. */
export class SipTransport extends EventEmitter {
  private readonly opts: Required<Omit<SipTransportOptions, 'warningHost' | 'tls' | 'guard'>> & { warningHost?: string; tls?: SipTlsOptions; guard?: EdgeGuard };
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private tlsServer?: tls.Server;
  private conns = new Map<string, Conn>();
  /** `transport:address:port` of the peer → connId (most recent connection). */
  private byAddr = new Map<string, string>();
  /** Pending outgoing connects by `transport:address:port`, so concurrent sends share one connect. */
  private connecting = new Map<string, Promise<Conn>>();
  private nextConn = 1;
  private boundPort = 0;
  private boundTlsPort = 0;
  private closed = false;

  constructor(opts: SipTransportOptions) {
    super();
    this.opts = {
      tcpIdleTimeoutMs: 300_000,
      tcpConnectTimeoutMs: 10_000,
      maxMessageBytes: 65_535,
      udpRecvBufferBytes: 4 * 1024 * 1024,
      ...opts,
    };
  }

  /** The bound local address. */
  get address(): string {
    return this.opts.address;
  }

  /** The bound local port (the OS-chosen one after `listen()` when 0 was requested). */
  get port(): number {
    return this.boundPort || this.opts.port;
  }

  /** Host of `Warning: 399` in locally generated error responses (unset: the bound address). */
  get warningHost(): string | undefined {
    return this.opts.warningHost;
  }

  /** Close a TCP/TLS connection at once (the SIP guard: a banned source). */
  closeConnection(connId: string): void {
    this.conns.get(connId)?.socket.destroy();
  }

  /** Number of open TCP and TLS connections (for metrics and tests). */
  get tcpConnectionCount(): number {
    return this.conns.size;
  }

  /** SIP over TLS is configured. */
  get tlsEnabled(): boolean {
    return this.opts.tls !== undefined;
  }

  /** The bound TLS port (0 when TLS is off). */
  get tlsPort(): number {
    return this.boundTlsPort || (this.opts.tls?.port ?? 0);
  }

  /** The local port of `transport` (the TLS port for TLS, else the UDP/TCP port). */
  portOf(transport: TransportName): number {
    return transport === 'tls' ? this.tlsPort : this.port;
  }

  /** Bind the sockets. With port 0 and both transports, retries until UDP gets TCP's port. */
  async listen(): Promise<void> {
    const wantUdp = this.opts.transports.includes('udp');
    const wantTcp = this.opts.transports.includes('tcp');
    for (let attempt = 0; ; attempt++) {
      let port = this.opts.port;
      try {
        if (wantTcp) port = await this.listenTcp(port);
        if (wantUdp) port = await this.listenUdp(port);
        this.boundPort = port;
        if (this.opts.tls) this.boundTlsPort = await this.listenTls(this.opts.tls);
        log.info('listening', {
          address: this.opts.address, port, transports: this.opts.transports.join(','),
          tls: this.opts.tls ? `${this.boundTlsPort}${this.opts.tls.verifyClient ? ' (client certificates required)' : ''}` : undefined,
        });
        return;
      } catch (e) {
        await this.closeSockets();
        if (this.opts.port !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  private listenTcp(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const srv = net.createServer((sock) => this.adopt(sock, 'tcp'));
      srv.once('error', reject);
      srv.listen({ host: this.opts.address, port, exclusive: true }, () => {
        srv.off('error', reject);
        srv.on('error', (e) => log.error('tcp server error', { err: e }));
        this.tcp = srv;
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  /** The TLS listener (its own port). Handshake failures are logged, the socket dropped. */
  private listenTls(o: SipTlsOptions): Promise<number> {
    return new Promise((resolve, reject) => {
      const verify = o.verifyClient === true;
      const srv = tls.createServer({
        key: o.key, cert: o.cert, ...(o.ca ? { ca: o.ca } : {}),
        requestCert: verify, rejectUnauthorized: verify,
        handshakeTimeout: this.opts.tcpConnectTimeoutMs,
      }, (sock) => this.adopt(sock, 'tls'));
      srv.on('tlsClientError', (e, sock) => {
        const peer = sock.remoteAddress ? `${normAddr(sock.remoteAddress)}:${sock.remotePort}` : undefined;
        log.warn('tls handshake failed', { peer, reason: e.message.trim() });
      });
      const fail = (e: NodeJS.ErrnoException): void => {
        reject(Object.assign(new Error(`cannot listen for SIP over TLS on ${this.opts.address}:${o.port}: ${e.message}`), { code: e.code }));
      };
      srv.once('error', fail);
      srv.listen({ host: this.opts.address, port: o.port, exclusive: true }, () => {
        srv.off('error', fail);
        srv.on('error', (e) => log.error('tls server error', { err: e }));
        this.tlsServer = srv;
        resolve((srv.address() as net.AddressInfo).port);
      });
    });
  }

  private listenUdp(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: net.isIPv6(this.opts.address) ? 'udp6' : 'udp4' });
      sock.once('error', reject);
      sock.on('message', (data, rinfo) => this.onDatagram(data, rinfo));
      sock.bind({ address: this.opts.address, port, exclusive: true }, () => {
        sock.off('error', reject);
        sock.on('error', (e) => log.warn('udp socket error', { err: e }));
        try {
          sock.setRecvBufferSize(this.opts.udpRecvBufferBytes);
        } catch (e) {
          log.debug('could not set UDP receive buffer', { err: e as Error });
        }
        this.udp = sock;
        resolve(sock.address().port);
      });
    });
  }

  /** Close all sockets and connections. */
  async close(): Promise<void> {
    this.closed = true;
    await this.closeSockets();
  }

  private async closeSockets(): Promise<void> {
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    this.byAddr.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    const tlsSrv = this.tlsServer;
    this.udp = undefined;
    this.tcp = undefined;
    this.tlsServer = undefined;
    await Promise.all([
      udp ? new Promise<void>((r) => udp.close(() => r())) : undefined,
      tcp ? new Promise<void>((r) => tcp.close(() => r())) : undefined,
      tlsSrv ? new Promise<void>((r) => tlsSrv.close(() => r())) : undefined,
    ]);
  }

  /**
   * Send a message. UDP: one datagram (send errors reject). TCP/TLS: on `dest.connId`'s
   * connection if open (and of that transport), else an open connection of that transport to
   * `address:port`, else a new connection (TLS: verified per {@link SipTlsOptions}).
   */
  async send(msg: SipMessage, dest: Endpoint): Promise<void> {
    if (this.closed) throw new Error('transport closed');
    const data = msg.toBuffer();
    if (dest.transport === 'udp') {
      const udp = this.udp;
      if (!udp) throw new Error('UDP transport not open');
      await new Promise<void>((resolve, reject) => {
        udp.send(data, dest.port, dest.address, (err) => (err ? reject(err) : resolve()));
      });
    } else {
      const conn = await this.connFor(dest);
      await new Promise<void>((resolve, reject) => {
        conn.socket.write(data, (err) => (err ? reject(err) : resolve()));
      });
    }
    log.debug('sent', { to: `${dest.transport}:${dest.address}:${dest.port}`, msg: msg.summary(), bytes: data.length });
    if (msg.isRequest) metrics.sipRequests.inc({ layer: 'edge', direction: 'out', method: sipMethodLabel(msg.method) });
    else metrics.sipResponses.inc({ layer: 'edge', direction: 'out', method: sipMethodLabel(msg.cseq?.method), status_class: statusClass(msg.status ?? 0) });
  }

  private async connFor(dest: Endpoint): Promise<Conn> {
    if (dest.connId) {
      const c = this.conns.get(dest.connId);
      if (c && !c.socket.destroyed && c.remote.transport === dest.transport) return c;
    }
    const key = connKey(dest.transport, dest.address, dest.port);
    const id = this.byAddr.get(key);
    const existing = id ? this.conns.get(id) : undefined;
    if (existing && !existing.socket.destroyed) return existing;
    let p = this.connecting.get(key);
    if (!p) {
      p = this.connect(dest).finally(() => this.connecting.delete(key));
      this.connecting.set(key, p);
    }
    return p;
  }

  private connect(dest: Endpoint): Promise<Conn> {
    const secure = dest.transport === 'tls';
    const o = this.opts.tls;
    if (secure && !o) return Promise.reject(new Error('SIP over TLS is not configured (sip.tls cert and key)'));
    return new Promise((resolve, reject) => {
      const sock = secure
        ? tls.connect({
          host: dest.address, port: dest.port,
          // SNI and the certificate's name check use the URI's host name; IP targets are
          // checked against the certificate's IP addresses.
          ...(dest.servername ? { servername: dest.servername } : {}),
          ...(o!.ca ? { ca: o!.ca } : {}),
          // our certificate, for peers that require client certificates (mutual TLS)
          key: o!.key, cert: o!.cert,
          rejectUnauthorized: o!.rejectUnauthorized !== false,
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity(dest.servername ?? dest.address, cert),
        })
        : net.connect({ host: dest.address, port: dest.port });
      const what = `${secure ? 'TLS' : 'TCP'} connect to ${dest.address}:${dest.port}`;
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`${what} timed out`));
      }, this.opts.tcpConnectTimeoutMs);
      sock.once('error', (e) => {
        clearTimeout(timer);
        if (secure) log.warn('tls connection failed', { to: `${dest.address}:${dest.port}`, servername: dest.servername, reason: e.message });
        reject(e);
      });
      sock.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        if (secure && !(sock as tls.TLSSocket).authorized) {
          log.warn('tls server certificate NOT verified (sip.tls.rejectUnauthorized is false)', {
            to: `${dest.address}:${dest.port}`, reason: String((sock as tls.TLSSocket).authorizationError ?? ''),
          });
        }
        resolve(this.adopt(sock, secure ? 'tls' : 'tcp'));
      });
    });
  }

  /** Register a connected socket (accepted or initiated) and start framing its stream. */
  private adopt(sock: net.Socket, transport: 'tcp' | 'tls'): Conn {
    const id = `${transport}-${this.nextConn++}`;
    const remote: Endpoint = {
      transport,
      address: normAddr(sock.remoteAddress),
      port: sock.remotePort ?? 0,
      connId: id,
    };
    const conn: Conn = { id, socket: sock, remote, buf: Buffer.alloc(0) };
    const key = connKey(transport, remote.address, remote.port);
    this.conns.set(id, conn);
    this.byAddr.set(key, id);
    sock.setNoDelay(true);
    sock.setTimeout(this.opts.tcpIdleTimeoutMs, () => {
      log.debug(`closing idle ${transport} connection`, { connId: id });
      sock.destroy();
    });
    sock.on('data', (chunk) => this.onStream(conn, chunk));
    sock.on('error', (e) => log.debug(`${transport} connection error`, { connId: id, err: e }));
    sock.on('close', () => {
      this.conns.delete(id);
      if (this.byAddr.get(key) === id) this.byAddr.delete(key);
    });
    const peerCert = transport === 'tls' ? (sock as tls.TLSSocket).getPeerCertificate() : undefined;
    log.debug(`${transport} connection`, {
      connId: id, peer: `${remote.address}:${remote.port}`,
      cert: peerCert && peerCert.subject ? peerCert.subject.CN : undefined,
    });
    return conn;
  }

  private onDatagram(data: Buffer, rinfo: dgram.RemoteInfo): void {
    // Keep-alives (CRLF, RFC 5626 §3.5.1) and stray whitespace are ignored.
    let i = 0;
    while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a || data[i] === 0x20)) i++;
    if (i === data.length) return;
    this.dispatch(data, { transport: 'udp', address: normAddr(rinfo.address), port: rinfo.port }, data.length);
  }

  /** TCP/TLS framing (§18.3): headers end at CRLFCRLF, body length from Content-Length. */
  private onStream(conn: Conn, chunk: Buffer): void {
    conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
    while (conn.buf.length > 0 && !conn.socket.destroyed) {
      // Leading CRLFs between messages: a double CRLF is a keep-alive ping → CRLF pong.
      let i = 0;
      while (i < conn.buf.length && (conn.buf[i] === 0x0d || conn.buf[i] === 0x0a)) i++;
      if (i > 0) {
        if (i === conn.buf.length && i < 4) return; // maybe the first half of a ping
        if (i >= 4) conn.socket.write('\r\n');
        conn.buf = conn.buf.subarray(i);
        continue;
      }
      const headEnd = conn.buf.indexOf(CRLFCRLF);
      if (headEnd < 0) {
        if (conn.buf.length > this.opts.maxMessageBytes) this.streamError(conn, 'header section too large');
        return;
      }
      const head = conn.buf.toString('latin1', 0, headEnd);
      const m = /\r\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)/i.exec(head);
      if (!m) {
        this.streamError(conn, `missing Content-Length header (mandatory on ${conn.remote.transport.toUpperCase()})`, conn.buf.subarray(0, headEnd + 4));
        return;
      }
      const cl = m[1].trim();
      const len = parseDecimal(cl, MAX_CONTENT_LENGTH); // 1*DIGIT: leading zeros are legal
      if (typeof len === 'string') {
        this.streamError(conn, len === 'syntax'
          ? `bad Content-Length: "${cl.slice(0, 20)}"`
          : `Content-Length out of range (max ${MAX_CONTENT_LENGTH}): ${cl.slice(0, 20)}`, conn.buf.subarray(0, headEnd + 4));
        return;
      }
      const total = headEnd + 4 + len;
      if (total > this.opts.maxMessageBytes) {
        this.streamError(conn, `message too large: ${total} bytes`, conn.buf.subarray(0, headEnd + 4));
        return;
      }
      if (conn.buf.length < total) return;
      const msgBuf = conn.buf.subarray(0, total);
      conn.buf = conn.buf.subarray(total);
      this.dispatch(msgBuf, conn.remote, total);
    }
  }

  /**
   * Framing lost on a stream: answer 400 if the header block allows it (so the peer
   * learns why) and close the connection — the rest of the stream cannot be delimited.
   */
  private streamError(conn: Conn, reason: string, head?: Buffer): void {
    log.warn(`${conn.remote.transport} framing error, closing connection`, { connId: conn.id, reason });
    conn.buf = Buffer.alloc(0);
    let sent: Promise<void> | undefined;
    if (head) {
      let partial: SipMessage | undefined;
      try {
        partial = parseSipMessage(head);
      } catch (e) {
        partial = (e as SipParseError).partial;
      }
      if (partial) sent = this.rejectMalformed(partial, 400, reason, conn.remote);
    }
    // Stop reading; close once the 400 (if any) is written.
    conn.socket.pause();
    void (sent ?? Promise.resolve()).finally(() => conn.socket.end());
  }

  private dispatch(data: Buffer, src: Endpoint, bytes: number): void {
    if (this.opts.guard && guardBeforeParse(this.opts.guard, this, data, src)) return;
    let msg: SipMessage;
    try {
      msg = parseSipMessage(data);
    } catch (e) {
      const err = e as SipParseError;
      const partial = err.partial;
      if (partial && this.rejectMalformed(partial, err.status, err.message, src)) {
        log.warn(`malformed request answered ${err.status}`, { from: `${src.transport}:${src.address}:${src.port}`, reason: err.message });
      } else {
        log.warn(partial && !partial.isRequest ? 'malformed response dropped' : 'malformed message dropped', {
          from: `${src.transport}:${src.address}:${src.port}`,
          reason: err.message,
        });
      }
      return;
    }
    if (this.opts.guard && guardAfterParse(this.opts.guard, this, msg, src, bytes)) return;
    if (msg.isRequest) {
      this.stampVia(msg, src);
      metrics.sipRequests.inc({ layer: 'edge', direction: 'in', method: sipMethodLabel(msg.method) });
    } else metrics.sipResponses.inc({ layer: 'edge', direction: 'in', method: sipMethodLabel(msg.cseq?.method), status_class: statusClass(msg.status ?? 0) });
    this.emit('message', msg, src, bytes);
  }

  /** RFC 3261 §18.2.1 `received`, RFC 3581 §4 `rport` on the top Via of a request. */
  private stampVia(msg: SipMessage, src: Endpoint): void {
    const idx = msg.headers.findIndex((h) => h.name.toLowerCase() === 'via');
    if (idx < 0) return;
    const vias = parseVia(msg.headers[idx].value);
    const top = vias[0];
    let changed = false;
    const hasRport = top.params.has('rport');
    if (top.host !== src.address || hasRport) {
      top.params.set('received', src.address);
      changed = true;
    }
    if (hasRport) {
      top.params.set('rport', String(src.port));
      changed = true;
    }
    if (changed) msg.headers[idx] = { name: 'Via', value: vias.map(formatVia).join(', ') };
  }

  /**
   * Answer a malformed request with `status` (400 or 505), a reason phrase and Warning 399
   * naming the problem, and a To tag, when the response can be routed: the request has a
   * top Via we can parse (§18.2.2), or arrived over TCP with any Via (the connection is the
   * route). Whatever else is missing (From, To, Call-ID, CSeq) is simply not echoed. Returns
   * the send promise (never rejecting) or undefined when no response can be sent.
   */
  private rejectMalformed(partial: SipMessage, status: number, reason: string, src: Endpoint): Promise<void> | undefined {
    if (!partial.isRequest || partial.method === 'ACK') return undefined; // never answer ACKs (§17)
    const via = partial.get('Via');
    if (via === undefined) return undefined;
    let dest: Endpoint;
    try {
      parseVia(via);
      dest = responseEndpoint(partial, src);
    } catch {
      if (!isStream(src.transport)) return undefined; // nowhere to send it on UDP
      dest = src;
    }
    const phrase = `${REASON_PHRASES[status] ?? 'Bad Request'} - ${reason}`.replace(/[\r\n]/g, ' ').slice(0, 120);
    const res = makeResponse(partial, status, phrase);
    setToTag(res, newTag()); // §8.2.6.2: a final response carries a To tag
    const host = this.opts.warningHost ?? (this.address === '0.0.0.0' || this.address === '::' ? 'sip-edge' : this.address);
    res.add('Warning', `399 ${host} "${reason.replace(/["\\]/g, "'")}"`);
    return this.send(res, dest).catch((e) => log.debug(`sending ${status} failed`, { err: e }));
  }
}
