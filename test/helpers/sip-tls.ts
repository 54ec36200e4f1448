/**
 * SIP over TLS test endpoints built on `node:tls`: a client (a caller's phone or a carrier
 * connecting to the edge) and a server (a rep's phone the edge connects to). Both frame the
 * stream by Content-Length and keep what they receive in an inbox.
 */
import tls from 'node:tls';
import { SipMessage, SipParseError, newBranch, newTag, parseSipMessage } from '../../src/sip-edge/message.ts';

type Pred = (m: SipMessage) => boolean;

/** Received SIP messages of one or more streams, waited for by predicate. */
class Inbox {
  readonly all: SipMessage[] = [];
  private readonly pending: SipMessage[] = [];
  private waiters: { pred: Pred; resolve: (m: SipMessage) => void }[] = [];

  /** Feed one stream's bytes; returns the leftover buffer. */
  frame(buf: Buffer, onMessage?: (m: SipMessage) => void): Buffer {
    for (;;) {
      while (buf.length > 0 && (buf[0] === 0x0d || buf[0] === 0x0a)) buf = buf.subarray(1);
      const he = buf.indexOf('\r\n\r\n');
      if (he < 0) return buf;
      const m = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(buf.toString('latin1', 0, he));
      const total = he + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) return buf;
      const raw = buf.subarray(0, total);
      buf = buf.subarray(total);
      let msg: SipMessage;
      try {
        msg = parseSipMessage(raw);
      } catch (e) {
        const p = e instanceof SipParseError ? e.partial : undefined;
        if (!p) continue;
        msg = p;
      }
      this.all.push(msg);
      onMessage?.(msg);
      const i = this.waiters.findIndex((w) => w.pred(msg));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(msg);
      else this.pending.push(msg);
    }
  }

  next(pred: Pred, ms = 5000, what = 'message'): Promise<SipMessage> {
    const i = this.pending.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.pending.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (m: SipMessage) => { clearTimeout(timer); resolve(m); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timeout waiting for ${what} (received: ${this.all.map((m) => m.summary()).join(' | ') || 'nothing'})`));
      }, ms);
      this.waiters.push(w);
    });
  }
}

export interface TlsClientOptions {
  /** CA to verify the edge's certificate with. */
  ca?: Buffer;
  /** Client certificate and key (mutual TLS). */
  cert?: Buffer;
  key?: Buffer;
  /** SNI / name checked against the edge's certificate. @defaultValue none (IP check) */
  servername?: string;
  /** @defaultValue true */
  rejectUnauthorized?: boolean;
}

/** A SIP UA on one TLS connection to the edge. */
export class TlsSipClient {
  readonly inbox = new Inbox();
  readonly tag = newTag();
  private buf: Buffer = Buffer.alloc(0);
  closed = false;

  private constructor(readonly sock: tls.TLSSocket, readonly remotePort: number) {
    sock.on('data', (c: Buffer) => {
      this.buf = this.inbox.frame(Buffer.concat([this.buf, c]));
    });
    sock.on('close', () => { this.closed = true; });
    sock.on('error', () => undefined);
  }

  /** Connect and finish the handshake (rejects when it fails). */
  static connect(port: number, o: TlsClientOptions = {}, host = '127.0.0.1'): Promise<TlsSipClient> {
    return new Promise((resolve, reject) => {
      const sock = tls.connect({
        host, port, ...(o.servername ? { servername: o.servername } : {}),
        ...(o.ca ? { ca: o.ca } : {}), ...(o.cert ? { cert: o.cert } : {}), ...(o.key ? { key: o.key } : {}),
        rejectUnauthorized: o.rejectUnauthorized ?? true,
      });
      sock.once('error', reject);
      sock.once('secureConnect', () => {
        sock.off('error', reject);
        resolve(new TlsSipClient(sock, port));
      });
    });
  }

  /** Local (ephemeral) port of the connection. */
  get port(): number {
    return this.sock.localPort ?? 0;
  }

  get via(): string {
    return `SIP/2.0/TLS 127.0.0.1:${this.port};rport;branch=${newBranch()}`;
  }

  /** The client's Contact: `sips:` when `secure`, else `sip:…;transport=tls`. */
  contact(secure = true): string {
    return secure ? `<sips:caller@127.0.0.1:${this.port}>` : `<sip:caller@127.0.0.1:${this.port};transport=tls>`;
  }

  request(method: string, o: { uri: string; callId: string; cseq?: number; toTag?: string; body?: string; secure?: boolean; headers?: [string, string][] }): SipMessage {
    const secure = o.secure ?? o.uri.startsWith('sips:');
    const m = SipMessage.request(method, o.uri);
    m.add('Via', this.via);
    m.add('Max-Forwards', '70');
    m.add('From', `"Caller" <${secure ? 'sips' : 'sip'}:+14155550142@127.0.0.1>;tag=${this.tag}`);
    m.add('To', `<${o.uri.replace(/;transport=tls/i, '')}>${o.toTag ? `;tag=${o.toTag}` : ''}`);
    m.add('Call-ID', o.callId);
    m.add('CSeq', `${o.cseq ?? 1} ${method}`);
    m.add('Contact', this.contact(secure));
    for (const [n, v] of o.headers ?? []) m.add(n, v);
    if (o.body) {
      m.add('Content-Type', 'application/sdp');
      m.body = Buffer.from(o.body);
    }
    m.add('Content-Length', String(m.body.length));
    return m;
  }

  /** ACK for a 2xx (new branch, Request-URI = the 2xx's Contact). */
  ack2xx(invite: SipMessage, ok: SipMessage): SipMessage {
    const contact = ok.get('Contact') ?? `<${invite.uri}>`;
    const m = SipMessage.request('ACK', contact.replace(/^.*<([^>]+)>.*$/, '$1'));
    m.add('Via', this.via);
    m.add('Max-Forwards', '70');
    m.add('From', invite.get('From')!);
    m.add('To', ok.get('To')!);
    m.add('Call-ID', invite.callId);
    m.add('CSeq', `${invite.cseq.seq} ACK`);
    m.add('Content-Length', '0');
    return m;
  }

  /** A response to a request the edge sent over this connection. */
  respond(req: SipMessage, status: number, toTag?: string): SipMessage {
    const m = SipMessage.response(status);
    for (const v of req.getAll('Via')) m.add('Via', v);
    m.add('From', req.get('From')!);
    const to = req.get('To')!;
    m.add('To', toTag && !/;tag=/.test(to) ? `${to};tag=${toTag}` : to);
    m.add('Call-ID', req.callId);
    m.add('CSeq', req.get('CSeq')!);
    m.add('Content-Length', '0');
    return m;
  }

  send(m: SipMessage | string): void {
    this.sock.write(typeof m === 'string' ? m : m.toBuffer());
  }

  next(pred: Pred, ms?: number, what?: string): Promise<SipMessage> {
    return this.inbox.next(pred, ms, what);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A TLS SIP server (e.g. a rep's phone): accepts connections, records what arrives. */
export class TlsSipServer {
  readonly inbox = new Inbox();
  readonly sockets: tls.TLSSocket[] = [];
  /** Subject CN of each client certificate presented (mutual TLS). */
  readonly clientCerts: string[] = [];
  /** Messages by the socket they came on, to answer on it. */
  private readonly origin = new WeakMap<SipMessage, tls.TLSSocket>();

  private constructor(readonly server: tls.Server, readonly port: number) {}

  static async listen(o: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean }): Promise<TlsSipServer> {
    const server = tls.createServer({
      cert: o.cert, key: o.key, ...(o.ca ? { ca: o.ca } : {}),
      requestCert: o.requestCert ?? false, rejectUnauthorized: o.requestCert ?? false,
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const s = new TlsSipServer(server, (server.address() as { port: number }).port);
    server.on('secureConnection', (sock) => {
      s.sockets.push(sock);
      const cn = sock.getPeerCertificate()?.subject?.CN;
      if (cn) s.clientCerts.push(Array.isArray(cn) ? cn.join(',') : cn);
      let buf: Buffer = Buffer.alloc(0);
      sock.on('data', (c: Buffer) => {
        buf = s.inbox.frame(Buffer.concat([buf, c]), (m) => s.origin.set(m, sock));
      });
      sock.on('error', () => undefined);
    });
    return s;
  }

  next(pred: Pred, ms?: number, what?: string): Promise<SipMessage> {
    return this.inbox.next(pred, ms, what);
  }

  /** Answer `req` on the connection it came on. */
  respond(req: SipMessage, status: number, o: { toTag?: string; contact?: string; body?: string } = {}): void {
    const m = SipMessage.response(status);
    for (const v of req.getAll('Via')) m.add('Via', v);
    m.add('From', req.get('From')!);
    const to = req.get('To')!;
    m.add('To', o.toTag && !/;tag=/.test(to) ? `${to};tag=${o.toTag}` : to);
    m.add('Call-ID', req.callId);
    m.add('CSeq', req.get('CSeq')!);
    if (o.contact) m.add('Contact', o.contact);
    if (o.body) {
      m.add('Content-Type', 'application/sdp');
      m.body = Buffer.from(o.body);
    }
    m.add('Content-Length', String(m.body.length));
    this.origin.get(req)!.write(m.toBuffer());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
