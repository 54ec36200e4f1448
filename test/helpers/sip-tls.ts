/**
 * SIP over TLS test endpoints built on `node:tls`: a client (a caller's phone or a carrier
 * connecting to the edge) and a server (a rep's phone the edge connects to). Both frame the
 * stream by Content-Length and keep what they receive in an inbox.
 */
import tls from 'node:tls';
import { SipMessage, newBranch, newTag } from '../../src/sip-edge/message.ts';
import { SipInbox, sipAck, sipRequest, sipResponse, type Pred } from './sip-messages.ts';

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
  readonly inbox = new SipInbox();
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
    return sipRequest(method, o.uri, {
      via: this.via,
      from: `"Caller" <${secure ? 'sips' : 'sip'}:+14155550142@127.0.0.1>;tag=${this.tag}`,
      to: `<${o.uri.replace(/;transport=tls/i, '')}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
      callId: o.callId, cseq: o.cseq ?? 1, contact: this.contact(secure), headers: o.headers, body: o.body,
    });
  }

  /** ACK for a 2xx (new branch, Request-URI = the 2xx's Contact). */
  ack2xx(invite: SipMessage, ok: SipMessage): SipMessage {
    return sipAck(invite, ok, this.via);
  }

  /** A response to a request the edge sent over this connection. */
  respond(req: SipMessage, status: number, toTag?: string): SipMessage {
    return sipResponse(req, status, { toTag });
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
  readonly inbox = new SipInbox();
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
    this.origin.get(req)!.write(sipResponse(req, status, o).toBuffer());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
