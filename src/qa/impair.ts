/**
 * Network impairment relay for QA: a small SIP-aware UDP forwarder that sits between a caller
 * (SIPp, baresip, the test caller) and the server, outside the process under test, and applies
 * loss, burst loss, jitter with reordering, delay and duplication to the RTP (and RTCP) it
 * carries. This kernel has no `netem` qdisc, so impairment is done in user space.
 *
 * How it sits in the path (UDP only):
 * - SIP: the caller targets the relay's SIP port. The relay acts as a stateless proxy: it adds
 *   its own Via to requests, Record-Routes initial INVITEs (so the server's BYE comes back through
 *   it), pops its Via from responses, and forwards requests from the server to their
 *   Request-URI (the caller's Contact).
 * - Media: every SDP it forwards is rewritten so each side sends RTP to a relay socket: the
 *   caller's offer gets the relay's server-facing address, the server's answer the relay's
 *   caller-facing address (RTCP on port + 1 alongside). Packets are impaired per direction:
 *   `up` = caller → server (what the recogniser hears), `down` = server → caller.
 *
 * Deterministic: decisions come from a seeded xorshift generator per call and direction, so a
 * profile with the same seed drops/delays the same packet numbers every run (delivery times
 * still carry the OS timer's ~1 ms noise).
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';

/** What one direction of a profile does to each RTP/RTCP packet. */
export interface Impairment {
  /** independent random loss, 0..1 */
  loss?: number;
  /** bursty loss (Gilbert–Elliott): average loss 0..1 and mean burst length in packets */
  burst?: { loss: number; meanBurst: number };
  /** added delay uniform in [0, jitterMs] per packet (reorders when larger than the packet interval) */
  jitterMs?: number;
  /** constant added delay, ms */
  delayMs?: number;
  /** probability a packet is sent twice (the copy 1–5 ms later) */
  duplicate?: number;
}

/** Named profiles (both directions alike). */
export const PROFILES: Record<string, Impairment> = {
  clean: {},
  loss1: { loss: 0.01 },
  loss3: { loss: 0.03 },
  loss5: { loss: 0.05 },
  burst2: { burst: { loss: 0.02, meanBurst: 4 } },
  jitter30: { jitterMs: 30 },
  jitter60: { jitterMs: 60 },
  delay150: { delayMs: 150 },
  dup2: { duplicate: 0.02 },
};

export interface RelayOptions {
  /** address the relay binds (SIP and media) @defaultValue '127.0.0.1' */
  host?: string;
  /** SIP port the callers target; 0 = any free port @defaultValue 0 */
  sipPort?: number;
  /** the server's SIP address */
  target: { host: string; port: number };
  /** profile name from {@link PROFILES} or an explicit impairment */
  profile: string | Impairment;
  /** which media directions are impaired @defaultValue 'both' */
  direction?: 'up' | 'down' | 'both';
  /** seed of the generators @defaultValue 1 */
  seed?: number;
}

/** Packet counters of one direction. */
export interface DirectionStats {
  received: number;
  forwarded: number;
  dropped: number;
  duplicated: number;
  /** forwarded RTP packets whose sequence number was below the previous one's */
  reordered: number;
  /** mean added delay of forwarded packets, ms */
  meanDelayMs: number;
}

export interface RelayStats {
  profile: string;
  seed: number;
  calls: number;
  sipForwarded: number;
  up: DirectionStats;
  down: DirectionStats;
}

/** Seeded xorshift32 in [0, 1). */
export function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

/**
 * The per-packet decision of one direction: `null` = drop, else the delays (ms) at which to
 * send it (two entries when duplicated). Pure given its generator: the same seed gives the
 * same decisions for the same packet sequence.
 */
export class Impairer {
  private readonly r: () => number;
  private bad = false;
  constructor(private readonly imp: Impairment, seed: number) {
    this.r = rng(seed);
  }
  decide(): number[] | null {
    const { loss = 0, burst, jitterMs = 0, delayMs = 0, duplicate = 0 } = this.imp;
    // draw every number every time so the stream of decisions does not shift with outcomes
    const uLoss = this.r(), uBurst = this.r(), uJit = this.r(), uDup = this.r(), uDupGap = this.r();
    if (burst && burst.loss > 0) {
      // Gilbert–Elliott with loss only in the bad state: leave bad with 1/meanBurst; enter bad
      // so that the stationary bad share equals the average loss
      const pBg = 1 / Math.max(1, burst.meanBurst);
      const pGb = (burst.loss * pBg) / Math.max(1e-9, 1 - burst.loss);
      this.bad = this.bad ? uBurst >= pBg : uBurst < pGb;
      if (this.bad) return null;
    }
    if (uLoss < loss) return null;
    const d = delayMs + uJit * jitterMs;
    return uDup < duplicate ? [d, d + 1 + uDupGap * 4] : [d];
  }
}

interface MediaLeg {
  /** relay sockets: rtp, rtcp */
  rtp: Socket;
  rtcp: Socket;
  port: number;
  /** where this leg's peer wants media (from its SDP), latched to the real source once seen */
  peer?: { address: string; port: number };
  peerRtcp?: { address: string; port: number };
}

interface CallMedia {
  /** caller-facing sockets (carry the server's media to the caller) */
  a: MediaLeg;
  /** server-facing sockets (carry the caller's media to the server) */
  b: MediaLeg;
  up: Impairer;
  down: Impairer;
  lastSeq: { up?: number; down?: number };
  touched: number;
}

const CRLF = '\r\n';

function emptyStats(): DirectionStats {
  return { received: 0, forwarded: 0, dropped: 0, duplicated: 0, reordered: 0, meanDelayMs: 0 };
}

/** Bind an RTP/RTCP socket pair on consecutive ports (even RTP port). */
async function bindPair(host: string): Promise<{ rtp: Socket; rtcp: Socket; port: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    const rtp = createSocket('udp4');
    const rtcp = createSocket('udp4');
    const ok = await new Promise<boolean>((res) => {
      rtp.once('error', () => res(false));
      rtp.bind(port, host, () => {
        rtcp.once('error', () => res(false));
        rtcp.bind(port + 1, host, () => res(true));
      });
    });
    if (ok) return { rtp, rtcp, port };
    try { rtp.close(); } catch { /* not bound */ }
    try { rtcp.close(); } catch { /* not bound */ }
  }
  throw new Error('impair relay: no free RTP port pair');
}

/** Header helpers on raw SIP text (the relay never needs a full parser). */
function splitMessage(text: string): { head: string[]; body: string } {
  const i = text.indexOf(CRLF + CRLF);
  const head = (i < 0 ? text : text.slice(0, i)).split(CRLF);
  // unfold continuation lines
  const lines: string[] = [];
  for (const l of head) {
    if ((l.startsWith(' ') || l.startsWith('\t')) && lines.length > 1) lines[lines.length - 1] += ' ' + l.trim();
    else lines.push(l);
  }
  return { head: lines, body: i < 0 ? '' : text.slice(i + 4) };
}
const COMPACT: Record<string, string> = { v: 'via', i: 'call-id', l: 'content-length', c: 'content-type', m: 'contact', f: 'from', t: 'to' };
const hname = (l: string): string => {
  const n = l.slice(0, l.indexOf(':')).trim().toLowerCase();
  return COMPACT[n] ?? n;
};
const hvalue = (l: string): string => l.slice(l.indexOf(':') + 1).trim();

/** Where a Via says to send the response: received/rport when present, else sent-by. */
function viaTarget(via: string): { address: string; port: number } | undefined {
  const m = /^SIP\/2\.0\/\w+\s+([^;:\s]+|\[[^\]]+\])(?::(\d+))?(.*)$/i.exec(via.trim());
  if (!m) return undefined;
  const params = m[3] ?? '';
  const received = /;\s*received=([^;\s]+)/i.exec(params)?.[1];
  const rport = /;\s*rport=(\d+)/i.exec(params)?.[1];
  return { address: received ?? m[1]!.replace(/^\[|\]$/g, ''), port: Number(rport ?? m[2] ?? 5060) };
}

/** host:port of a SIP URI (Request-URI or inside <…>). */
function uriTarget(uri: string): { address: string; port: number } | undefined {
  const m = /sips?:(?:[^@;>]*@)?([^;:>?\s]+)(?::(\d+))?/i.exec(uri);
  return m ? { address: m[1]!, port: Number(m[2] ?? 5060) } : undefined;
}

/** The SDP's connection address and first audio port. */
export function sdpMedia(sdp: string): { address?: string; port?: number } {
  const address = /^c=IN IP4 (\S+)/m.exec(sdp)?.[1];
  const port = Number(/^m=audio (\d+)/m.exec(sdp)?.[1] ?? NaN);
  return { address, port: Number.isFinite(port) ? port : undefined };
}

/** Point an SDP's c= lines and audio port at (address, port). */
export function rewriteSdp(sdp: string, address: string, port: number): string {
  return sdp
    .replace(/^c=IN IP4 \S+/gm, `c=IN IP4 ${address}`)
    .replace(/^o=(\S+ \S+ \S+) IN IP4 \S+/m, `o=$1 IN IP4 ${address}`)
    .replace(/^m=audio \d+/m, `m=audio ${port}`)
    .replace(/^a=rtcp:\d+.*$/gm, `a=rtcp:${port + 1}`);
}

/** The relay. `start()` binds; `stats()` counts; `stop()` closes everything. */
export class ImpairRelay extends EventEmitter {
  private sip?: Socket;
  private readonly calls = new Map<string, CallMedia>();
  private readonly host: string;
  private readonly imp: Impairment;
  private readonly profileName: string;
  private readonly seed: number;
  private readonly st = { up: emptyStats(), down: emptyStats(), sip: 0, delaySum: { up: 0, down: 0 } };
  private readonly timers = new Set<NodeJS.Timeout>();
  private callNo = 0;
  sipPort = 0;

  constructor(private readonly opts: RelayOptions) {
    super();
    this.host = opts.host ?? '127.0.0.1';
    if (typeof opts.profile === 'string') {
      const p = PROFILES[opts.profile];
      if (!p) throw new Error(`impair relay: unknown profile "${opts.profile}" (known: ${Object.keys(PROFILES).join(', ')})`);
      this.imp = p;
      this.profileName = opts.profile;
    } else {
      this.imp = opts.profile;
      this.profileName = 'custom';
    }
    this.seed = opts.seed ?? 1;
  }

  async start(): Promise<void> {
    const s = createSocket('udp4');
    await new Promise<void>((res, rej) => { s.once('error', rej); s.bind(this.opts.sipPort ?? 0, this.host, () => res()); });
    s.on('message', (m, r) => { void this.onSip(m.toString('latin1'), r); });
    this.sip = s;
    this.sipPort = s.address().port;
  }

  stats(): RelayStats {
    const fin = (d: DirectionStats, sum: number): DirectionStats => ({ ...d, meanDelayMs: d.forwarded ? Math.round((sum / d.forwarded) * 10) / 10 : 0 });
    return {
      profile: this.profileName, seed: this.seed, calls: this.callNo, sipForwarded: this.st.sip,
      up: fin(this.st.up, this.st.delaySum.up), down: fin(this.st.down, this.st.delaySum.down),
    };
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.calls.values()) for (const s of [c.a.rtp, c.a.rtcp, c.b.rtp, c.b.rtcp]) { try { s.close(); } catch { /* closed */ } }
    this.calls.clear();
    try { this.sip?.close(); } catch { /* closed */ }
  }

  private fromServer(r: RemoteInfo): boolean {
    return r.port === this.opts.target.port && (r.address === this.opts.target.host || this.opts.target.host === 'localhost');
  }

  private send(text: string, to: { address: string; port: number }): void {
    this.st.sip++;
    this.sip?.send(Buffer.from(text, 'latin1'), to.port, to.address);
  }

  private async onSip(text: string, r: RemoteInfo): Promise<void> {
    if (!text.trim()) return;
    const { head, body } = splitMessage(text);
    const start = head[0] ?? '';
    const isResponse = start.startsWith('SIP/2.0 ');
    const callId = hvalue(head.find((l) => hname(l) === 'call-id') ?? 'call-id:');
    let newBody = body;
    let lines = head.slice(1);
    const me = `${this.host}:${this.sipPort}`;
    if (isResponse) {
      // pop our Via, answer to the next one
      const vias = lines.flatMap((l, i) => (hname(l) === 'via' ? [i] : []));
      const top = vias[0];
      if (top === undefined) return;
      const values = hvalue(lines[top]!).split(/,(?=\s*SIP\/2\.0\/)/i);
      if (!values[0]?.includes(`branch=z9hG4bKimp`)) return;
      values.shift();
      if (values.length) lines[top] = `Via: ${values.join(',')}`;
      else lines.splice(top, 1);
      const nextIdx = lines.findIndex((l) => hname(l) === 'via');
      const next = nextIdx >= 0 ? viaTarget(hvalue(lines[nextIdx]!).split(/,(?=\s*SIP\/2\.0\/)/i)[0]!) : undefined;
      if (!next) return;
      if (body && /application\/sdp/i.test(hvalue(lines.find((l) => hname(l) === 'content-type') ?? 'c:'))) {
        newBody = await this.rewrite(callId, body, this.fromServer(r) ? 'server' : 'caller');
      }
      this.send(this.assemble(start, lines, newBody), next);
      return;
    }
    // a request: which way does it go?
    const fromServer = this.fromServer(r);
    const method = start.split(' ')[0] ?? '';
    // our own Route (from the Record-Route we added) comes off
    const routeIdx = lines.findIndex((l) => hname(l) === 'route');
    if (routeIdx >= 0 && hvalue(lines[routeIdx]!).includes(me)) {
      const values = hvalue(lines[routeIdx]!).split(/,(?=\s*<)/);
      values.shift();
      if (values.length) lines[routeIdx] = `Route: ${values.join(',')}`;
      else lines.splice(routeIdx, 1);
    }
    // stamp the received address on the sender's Via so the response finds it (RFC 3581)
    const topVia = lines.findIndex((l) => hname(l) === 'via');
    if (topVia >= 0) {
      const [first, ...rest] = hvalue(lines[topVia]!).split(/,(?=\s*SIP\/2\.0\/)/i);
      const stamped = first!.replace(/;\s*rport(?!=)/i, `;rport=${r.port}`) + (/;\s*received=/i.test(first!) ? '' : `;received=${r.address}`);
      lines[topVia] = `Via: ${[stamped, ...rest].join(',')}`;
    }
    const origBranch = /branch=([^;,\s]+)/i.exec(lines[topVia] ?? '')?.[1] ?? String(Math.random());
    const branch = `z9hG4bKimp${createHash('sha1').update(origBranch + method).digest('hex').slice(0, 16)}`;
    lines = [`Via: SIP/2.0/UDP ${me};branch=${branch}`, ...lines];
    const toHasTag = /;\s*tag=/i.test(hvalue(lines.find((l) => hname(l) === 'to') ?? 't:'));
    if (method === 'INVITE' && !toHasTag && !fromServer) lines.splice(1, 0, `Record-Route: <sip:${me};lr>`);
    if (body && /application\/sdp/i.test(hvalue(lines.find((l) => hname(l) === 'content-type') ?? 'c:'))) {
      newBody = await this.rewrite(callId, body, fromServer ? 'server' : 'caller');
    }
    const ruri = start.split(' ')[1] ?? '';
    const dest = fromServer ? uriTarget(ruri) : { address: this.opts.target.host, port: this.opts.target.port };
    if (!dest) return;
    if (method === 'BYE' || method === 'CANCEL') this.scheduleRelease(callId);
    this.send(this.assemble(start, lines, newBody), dest);
  }

  private assemble(start: string, lines: string[], body: string): string {
    const out = lines.filter((l) => hname(l) !== 'content-length');
    out.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
    return [start, ...out, '', body].join(CRLF);
  }

  /** Record the sender's media address and point its peer at the relay socket on the other side. */
  private async rewrite(callId: string, sdp: string, from: 'caller' | 'server'): Promise<string> {
    const c = await this.media(callId);
    const m = sdpMedia(sdp);
    if (m.address && m.port !== undefined) {
      const leg = from === 'caller' ? c.a : c.b;
      leg.peer = { address: m.address, port: m.port };
      leg.peerRtcp = { address: m.address, port: m.port + 1 };
    }
    // the caller's SDP goes to the server: media to the server-facing socket, and vice versa
    const via = from === 'caller' ? c.b : c.a;
    return rewriteSdp(sdp, this.host, via.port);
  }

  private async media(callId: string): Promise<CallMedia> {
    let c = this.calls.get(callId);
    if (c) return c;
    const n = ++this.callNo;
    const [a, b] = await Promise.all([bindPair(this.host), bindPair(this.host)]);
    const none = new Impairer({}, 1);
    const dir = this.opts.direction ?? 'both';
    c = {
      a: { ...a }, b: { ...b },
      up: dir === 'down' ? none : new Impairer(this.imp, this.seed * 7919 + n * 2),
      down: dir === 'up' ? none : new Impairer(this.imp, this.seed * 7919 + n * 2 + 1),
      lastSeq: {}, touched: Date.now(),
    };
    const cm = c;
    // caller → relay(a) → server ; server → relay(b) → caller
    a.rtp.on('message', (m, r) => this.forward(cm, 'up', m, r, cm.a, cm.b, false));
    a.rtcp.on('message', (m, r) => this.forward(cm, 'up', m, r, cm.a, cm.b, true));
    b.rtp.on('message', (m, r) => this.forward(cm, 'down', m, r, cm.b, cm.a, false));
    b.rtcp.on('message', (m, r) => this.forward(cm, 'down', m, r, cm.b, cm.a, true));
    this.calls.set(callId, c);
    return c;
  }

  private forward(c: CallMedia, dir: 'up' | 'down', pkt: Buffer, r: RemoteInfo, inLeg: MediaLeg, outLeg: MediaLeg, rtcp: boolean): void {
    c.touched = Date.now();
    // symmetric RTP: latch the sender's real address
    if (rtcp) inLeg.peerRtcp = { address: r.address, port: r.port };
    else inLeg.peer = { address: r.address, port: r.port };
    const to = rtcp ? outLeg.peerRtcp : outLeg.peer;
    if (!to) return;
    const sock = rtcp ? outLeg.rtcp : outLeg.rtp;
    const st = this.st[dir];
    st.received++;
    const plan = (dir === 'up' ? c.up : c.down).decide();
    if (!plan) { st.dropped++; return; }
    if (plan.length > 1) st.duplicated++;
    for (const delay of plan) {
      const go = (): void => {
        if (!rtcp && pkt.length >= 12) {
          const seq = pkt.readUInt16BE(2);
          const last = c.lastSeq[dir];
          if (last !== undefined && ((seq - last) & 0xffff) > 0x8000) st.reordered++;
          c.lastSeq[dir] = seq;
        }
        st.forwarded++;
        this.st.delaySum[dir] += delay;
        try { sock.send(pkt, to.port, to.address); } catch { /* socket closed with the call */ }
      };
      if (delay < 0.5) go();
      else {
        const t = setTimeout(() => { this.timers.delete(t); go(); }, Math.round(delay));
        this.timers.add(t);
      }
    }
  }

  /** Close a call's sockets a little after its BYE/CANCEL (late packets still get through). */
  private scheduleRelease(callId: string): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      const c = this.calls.get(callId);
      if (!c) return;
      this.calls.delete(callId);
      for (const s of [c.a.rtp, c.a.rtcp, c.b.rtp, c.b.rtcp]) { try { s.close(); } catch { /* closed */ } }
    }, 2000);
    this.timers.add(t);
  }
}
