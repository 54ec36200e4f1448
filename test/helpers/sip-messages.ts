/**
 * What the raw SIP peers of the tests have in common (the UDP/TCP SipPeer of
 * test/unit/sip-edge-helpers.ts, the TLS client and server of ./sip-tls.ts): an inbox of
 * received messages waited for by predicate, and the requests, ACKs and responses they build.
 */
import { SipMessage, SipParseError, parseSipMessage } from '../../src/sip-edge/message.ts';

export type Pred = (m: SipMessage) => boolean;

/** Received SIP messages of one or more sockets or streams, waited for by predicate. */
export class SipInbox {
  /** Every message received. */
  readonly all: SipMessage[] = [];
  /** Received and not yet taken by next(). */
  readonly pending: SipMessage[] = [];
  private waiters: { pred: Pred; resolve: (m: SipMessage) => void }[] = [];

  /**
   * @param keepPartial which messages that parse only partly (SipParseError.partial) are kept;
   *   the others are dropped. @defaultValue all of them
   */
  constructor(private readonly keepPartial: Pred = () => true) {}

  /** One whole message (a datagram or a framed stream message). */
  deliver(raw: Buffer, onMessage?: (m: SipMessage) => void): void {
    let msg: SipMessage;
    try {
      msg = parseSipMessage(raw);
    } catch (e) {
      const partial = e instanceof SipParseError ? e.partial : undefined;
      if (!partial || !this.keepPartial(partial)) return;
      msg = partial;
    }
    this.all.push(msg);
    onMessage?.(msg);
    const i = this.waiters.findIndex((w) => w.pred(msg));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(msg);
    else this.pending.push(msg);
  }

  /** Feed one stream's bytes (framed by Content-Length, CRLF keep-alives skipped); returns the leftover buffer. */
  frame(buf: Buffer, onMessage?: (m: SipMessage) => void): Buffer {
    for (;;) {
      while (buf.length > 0 && (buf[0] === 0x0d || buf[0] === 0x0a)) buf = buf.subarray(1);
      const he = buf.indexOf('\r\n\r\n');
      if (he < 0) return buf;
      const m = /\r\n(?:content-length|l)\s*:\s*(\d+)/i.exec(buf.toString('latin1', 0, he));
      const total = he + 4 + (m ? Number(m[1]) : 0);
      if (buf.length < total) return buf;
      this.deliver(buf.subarray(0, total), onMessage);
      buf = buf.subarray(total);
    }
  }

  /** Next message matching `pred` (already received or arriving within `ms`). */
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

/** Optional headers and an SDP body: Content-Type and Content-Length follow from the body. */
export interface SipExtras {
  headers?: [string, string][];
  body?: string;
}

function finish(m: SipMessage, o: SipExtras): SipMessage {
  for (const [n, v] of o.headers ?? []) m.add(n, v);
  if (o.body) {
    m.add('Content-Type', 'application/sdp');
    m.body = Buffer.from(o.body);
  }
  m.add('Content-Length', String(m.body.length));
  return m;
}

export interface SipRequestFields extends SipExtras {
  via: string;
  from: string;
  to: string;
  callId: string;
  /** CSeq number (the method is the request's). */
  cseq: number;
  contact?: string;
}

/** A request: Via, From, To, Call-ID, CSeq, Contact, Max-Forwards 70, the extra headers, the body. */
export function sipRequest(method: string, uri: string, f: SipRequestFields): SipMessage {
  const m = SipMessage.request(method, uri);
  m.add('Via', f.via);
  m.add('From', f.from);
  m.add('To', f.to);
  m.add('Call-ID', f.callId);
  m.add('CSeq', `${f.cseq} ${method}`);
  if (f.contact) m.add('Contact', f.contact);
  m.add('Max-Forwards', '70');
  return finish(m, f);
}

/**
 * ACK for a final response to `invite` (RFC 3261 §17.1.1.3 / §13.2.2.4): for a 2xx a new
 * transaction (`via`, a new branch) to the 2xx's Contact; for a non-2xx the INVITE's Via and
 * Request-URI.
 */
export function sipAck(invite: SipMessage, res: SipMessage, via: string): SipMessage {
  const is2xx = (res.status ?? 0) < 300;
  const contact = res.get('Contact');
  const uri = is2xx && contact ? contact.replace(/^.*<([^>]+)>.*$/, '$1') : invite.uri!;
  return sipRequest('ACK', uri, {
    via: is2xx ? via : invite.get('Via')!, from: invite.get('From')!, to: res.get('To')!, callId: invite.callId, cseq: invite.cseq.seq,
  });
}

/** A response to `req`: its Vias, From, To (with `toTag` added when it has none), Call-ID and CSeq. */
export function sipResponse(req: SipMessage, status: number, o: SipExtras & { toTag?: string; contact?: string } = {}): SipMessage {
  const m = SipMessage.response(status);
  for (const v of req.getAll('Via')) m.add('Via', v);
  m.add('From', req.get('From')!);
  const to = req.get('To')!;
  m.add('To', o.toTag && !/;tag=/.test(to) ? `${to};tag=${o.toTag}` : to);
  m.add('Call-ID', req.callId);
  m.add('CSeq', req.get('CSeq')!);
  if (o.contact) m.add('Contact', o.contact);
  return finish(m, o);
}
