/**
 * Test helpers for the built-in SIP edge: a raw SIP peer (UDP or TCP) standing in for a
 * carrier/phone, a recording proxy between drachtio-srf and the edge's control port, and a
 * one-call setup of edge + proxy + connected srf.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import Srf from 'drachtio-srf';
import { SipEdge, type SipEdgeOptions } from '../../src/sip-edge/index.ts';
import { SipMessage, newTag, newBranch } from '../../src/sip-edge/message.ts';
import { FrameDecoder, splitPayload } from '../../src/sip-edge/wire.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { SipInbox, sipAck, sipRequest, sipResponse, type Pred } from '../helpers/sip-messages.ts';

setLogLevel((process.env.LOG_LEVEL as 'debug' | 'info' | 'warn' | 'error' | 'silent' | undefined) ?? 'warn');

export const SDP = [
  'v=0', 'o=peer 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 6200 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', '',
].join('\r\n');
export const APP_SDP = SDP.replace('o=peer', 'o=app').replace('6200', '40000');

/** A raw SIP endpoint on 127.0.0.1 (UDP socket or one TCP connection to the edge). */
export class SipPeer {
  /** A 400 to a request missing Call-ID/From/… lacks them too: such responses are kept. */
  private readonly box = new SipInbox((p) => !p.isRequest && !!p.status);
  private udp?: dgram.Socket;
  private tcp?: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  port = 0;
  readonly tag = newTag();

  private constructor(readonly transport: 'udp' | 'tcp', readonly remotePort: number) {}

  static async udp(remotePort: number): Promise<SipPeer> {
    const p = new SipPeer('udp', remotePort);
    const s = dgram.createSocket('udp4');
    s.on('message', (d) => p.box.deliver(d));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    p.udp = s;
    p.port = s.address().port;
    return p;
  }

  static async tcp(remotePort: number): Promise<SipPeer> {
    const p = new SipPeer('tcp', remotePort);
    const s = net.connect({ host: '127.0.0.1', port: remotePort });
    await new Promise<void>((r, j) => {
      s.once('connect', () => r());
      s.once('error', j);
    });
    s.on('data', (c) => p.onStream(c));
    s.on('error', () => undefined);
    p.tcp = s;
    p.port = s.localPort ?? 0;
    return p;
  }

  private onStream(chunk: Buffer): void {
    this.buf = this.box.frame(Buffer.concat([this.buf, chunk]));
  }

  /** Received and not yet taken by next(). */
  get inbox(): SipMessage[] {
    return this.box.pending;
  }

  /** Next message matching `pred` (already received or arriving within `ms`). */
  next(pred: Pred, ms = 4000, what = 'message'): Promise<SipMessage> {
    return this.box.next(pred, ms, what);
  }

  /** Resolves true if no message matching `pred` arrives within `ms`. */
  async none(pred: Pred, ms: number): Promise<boolean> {
    try {
      await this.next(pred, ms);
      return false;
    } catch {
      return true;
    }
  }

  send(msg: SipMessage | string, port = this.remotePort): void {
    const data = typeof msg === 'string' ? Buffer.from(msg) : msg.toBuffer();
    if (this.udp) this.udp.send(data, port, '127.0.0.1');
    else this.tcp!.write(data);
  }

  get via(): string {
    return `SIP/2.0/${this.transport.toUpperCase()} 127.0.0.1:${this.port};rport;branch=${newBranch()}`;
  }

  get contact(): string {
    return this.transport === 'tcp' ? `<sip:peer@127.0.0.1:${this.port};transport=tcp>` : `<sip:peer@127.0.0.1:${this.port}>`;
  }

  /** A new request from this peer to the edge. */
  request(method: string, o: { callId: string; cseq?: number; toTag?: string; body?: string; uri?: string; headers?: [string, string][] }): SipMessage {
    return sipRequest(method, o.uri ?? `sip:service@127.0.0.1:${this.remotePort}`, {
      via: this.via,
      from: `"Peer" <sip:peer@127.0.0.1:${this.port}>;tag=${this.tag}`,
      to: `<sip:service@127.0.0.1:${this.remotePort}>${o.toTag ? `;tag=${o.toTag}` : ''}`,
      callId: o.callId, cseq: o.cseq ?? 1, contact: this.contact, headers: o.headers, body: o.body,
    });
  }

  /** ACK for a response to `invite` (2xx: new branch; non-2xx: the INVITE's branch). */
  ack(invite: SipMessage, res: SipMessage): SipMessage {
    return sipAck(invite, res, this.via);
  }

  /** A response from this peer to a request it received. */
  respond(req: SipMessage, status: number, o: { toTag?: string; body?: string; contact?: boolean; headers?: [string, string][] } = {}): SipMessage {
    return sipResponse(req, status, { ...o, contact: o.contact ? this.contact : undefined });
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }
}

export interface Frame {
  dir: 'app' | 'edge';
  tokens: string[];
  sip?: string;
}

/** TCP proxy between srf and the edge's control port that records every frame. */
export async function recordingProxy(target: number): Promise<{ port: number; frames: Frame[]; waitFrame: (p: (f: Frame) => boolean, ms?: number) => Promise<Frame>; close: () => Promise<void> }> {
  const frames: Frame[] = [];
  let waiters: { p: (f: Frame) => boolean; r: (f: Frame) => void }[] = [];
  const record = (dir: 'app' | 'edge', payload: Buffer): void => {
    const { tokens, sip } = splitPayload(payload);
    const f: Frame = { dir, tokens, sip: sip?.toString('utf8') };
    frames.push(f);
    waiters = waiters.filter((w) => (w.p(f) ? (w.r(f), false) : true));
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    sockets.add(client);
    sockets.add(upstream);
    const dApp = new FrameDecoder();
    const dEdge = new FrameDecoder();
    client.on('data', (c) => {
      for (const p of dApp.push(c)) record('app', p);
      upstream.write(c);
    });
    upstream.on('data', (c) => {
      for (const p of dEdge.push(c)) record('edge', p);
      client.write(c);
    });
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    frames,
    waitFrame: (p, ms = 4000) => {
      const f = frames.find(p);
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timeout waiting for frame')), ms);
        waiters.push({ p, r: (x) => { clearTimeout(timer); resolve(x); } });
      });
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Harness {
  edge: SipEdge;
  // drachtio-srf's bundled typings are incomplete (e.g. srf.options): use it untyped here.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  srf: any;
  proxy: Awaited<ReturnType<typeof recordingProxy>>;
  close: () => Promise<void>;
}

/** Start an edge (ports chosen by the OS), a recording proxy, and an srf connected through it. */
export async function harness(
  configure: (srf: any) => void,
  o: { timers?: SipEdgeOptions['timers']; routes?: number } = {},
): Promise<Harness> {
  const edge = new SipEdge({
    sip: { address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'] },
    control: { address: '127.0.0.1', port: 0, secret: 'cymru' },
    timers: o.timers,
  });
  await edge.start();
  const proxy = await recordingProxy(edge.controlPort);
  const srf = new (Srf as any)();
  srf.on('error', () => undefined);
  configure(srf);
  await new Promise<void>((resolve, reject) => {
    srf.connect({ host: '127.0.0.1', port: proxy.port, secret: 'cymru' }, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  // Wait until the edge has acknowledged every route the app registered.
  const want = o.routes ?? 0;
  const deadline = Date.now() + 3000;
  while (proxy.frames.filter((f) => f.dir === 'edge' && f.tokens.length === 4 && f.tokens[3] === 'OK').length < want) {
    if (Date.now() > deadline) throw new Error('routes not acknowledged');
    await new Promise((r) => setTimeout(r, 5));
  }
  return {
    edge, srf, proxy,
    close: async () => {
      try {
        srf.disconnect();
      } catch {
        // already disconnected
      }
      await proxy.close();
      await edge.stop();
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
