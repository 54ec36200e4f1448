/**
 * The reps' phones for the outcome benchmark: one SIP UAS on UDP that answers every INVITE
 * the server sends to `REP_URI` (`sip:{extension}@127.0.0.1:<port>`) and records it — the
 * extension dialed (Request-URI user) and the screen-pop headers (X-Screen-Pop-Id,
 * X-Handoff-Trigger, X-Account-Id). This record, with the CRM's `handoff` activity carrying
 * the same pop id, is the benchmark's evidence that a call was handed off; the agent's own
 * log is not. It also answers BYE/CANCEL/OPTIONS so the server's legs end cleanly.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { makeResponse, newTag, parseSipMessage, setToTag, type SipMessage } from '../../../src/sip-edge/message.ts';

export interface RepInvite {
  /** extension dialed: the Request-URI user */
  extension: string;
  popId?: string;
  trigger?: string;
  accountId?: string;
  summary?: string;
  /** Date.now() when it arrived */
  at: number;
}

export class RepPhones {
  readonly invites: RepInvite[] = [];
  private readonly seen = new Set<string>();
  private readonly tags = new Map<string, string>();
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly sock: Socket, readonly port: number, private readonly media: Socket) {
    sock.on('message', (buf, rinfo) => this.onMessage(buf, rinfo));
  }

  /** Listen for SIP on `port`; the reps' audio goes to one sink socket on a free port. */
  static async start(port: number, host = '127.0.0.1'): Promise<RepPhones> {
    const bind = async (p: number): Promise<Socket> => {
      const s = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(p, host, () => resolve());
      });
      return s;
    };
    const sock = await bind(port);
    const media = await bind(0);
    media.on('message', () => {});
    return new RepPhones(sock, sock.address().port, media);
  }

  /** Resolves with the first INVITE (from now on, or already recorded after `since`) whose pop id passes `match`. */
  waitFor(match: (i: RepInvite) => boolean, timeoutMs: number): Promise<RepInvite | undefined> {
    return new Promise((resolve) => {
      const check = (): void => {
        const hit = this.invites.find(match);
        if (hit) {
          done();
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        done();
        resolve(undefined);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.sock.close();
    this.media.close();
  }

  private reply(res: SipMessage, rinfo: RemoteInfo): void {
    this.sock.send(res.toBuffer(), rinfo.port, rinfo.address);
  }

  private onMessage(buf: Buffer, rinfo: RemoteInfo): void {
    let m: SipMessage;
    try {
      m = parseSipMessage(buf);
    } catch {
      return;
    }
    if (!m.isRequest || m.method === 'ACK') return;
    const callId = m.get('Call-ID') ?? '';
    if (m.method === 'INVITE') {
      let tag = this.tags.get(callId);
      if (!tag) {
        tag = newTag();
        this.tags.set(callId, tag);
      }
      const ok = makeResponse(m, 200, 'OK');
      setToTag(ok, tag);
      const sdp = [
        'v=0', `o=rep 1 1 IN IP4 127.0.0.1`, 's=rep', 'c=IN IP4 127.0.0.1', 't=0 0',
        // a sink: the bench judges the INVITE, not the rep's audio
        `m=audio ${this.media.address().port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', '',
      ].join('\r\n');
      ok.set('Contact', `<sip:rep@127.0.0.1:${this.port}>`);
      ok.set('Content-Type', 'application/sdp');
      ok.body = Buffer.from(sdp);
      ok.set('Content-Length', String(ok.body.length));
      this.reply(ok, rinfo);
      if (!this.seen.has(callId)) {
        this.seen.add(callId);
        const user = /^sips?:([^@;>]+)@/.exec(m.uri ?? '')?.[1] ?? '';
        this.invites.push({
          extension: user,
          popId: m.get('X-Screen-Pop-Id'),
          trigger: m.get('X-Handoff-Trigger'),
          accountId: m.get('X-Account-Id'),
          summary: m.get('X-Handoff-Summary'),
          at: Date.now(),
        });
        for (const w of [...this.waiters]) w();
      }
      return;
    }
    if (m.method === 'CANCEL') {
      this.reply(makeResponse(m, 200, 'OK'), rinfo);
      return;
    }
    this.reply(makeResponse(m, 200, 'OK'), rinfo);
  }
}
