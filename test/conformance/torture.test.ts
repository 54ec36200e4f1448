/**
 * A SIP torture set in the spirit of RFC 4475, written for this product: valid oddities a
 * carrier or PBX may send (compact forms, folded headers, odd spacing and case, escaped URIs,
 * quoted display names, comma-joined Vias, params without values, unknown headers, bodies
 * without Content-Length over UDP, keep-alive CRLFs) must be accepted; invalid messages must
 * get the right 4xx when a response can be routed (Content-Length past the datagram, negative
 * or non-numeric numbers, CSeq method mismatch, conflicting single-valued headers, header lines
 * without a colon, an unterminated quote, an unknown Via transport) or be dropped when it cannot
 * (no Via, binary junk, stray responses, a stray ACK) — and the server must never crash: after
 * the whole set it still answers OPTIONS and its process is alive.
 *
 * Run against the whole voice-agent server behind each edge: the built-in edge always, and a
 * real drachtio-server when a `drachtio` binary is on PATH (it is not packaged for Debian or
 * npm; skipped otherwise). Where the two edges legitimately differ (405 vs 501 for an unknown
 * method) the case accepts either; where a real drachtio-server is known to deviate (it drops an
 * unknown method silently) the case says so and asserts what it does. A server that closes a TCP
 * connection after answering a malformed message 400 (sofia-sip does) gets a new connection
 * for the next case.
 */
import t, { type Test } from 'tap';
import { createSocket, type Socket } from 'node:dgram';
import { connect, type Socket as TcpSocket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { drachtioBinary, startDrachtio, type DrachtioHandle } from '../helpers/drachtio.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';

const CRLF = '\r\n';
let seq = 0;

/** Raw transport to one SIP port: send text/bytes, collect responses (start line + headers). */
interface RawPeer {
  port: number;
  transport: 'udp' | 'tcp';
  send(data: string | Buffer): void;
  /** Responses whose Via carries `branch`, collected for `ms`. */
  responses(branch: string, ms?: number): Promise<string[]>;
  /** TCP: the server closed the connection (sofia-sip, under drachtio-server, does after a 400 for a malformed message) */
  readonly closed: boolean;
  close(): Promise<void>;
}

function splitFrames(buf: string): { frames: string[]; rest: string } {
  const frames: string[] = [];
  for (;;) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) break;
    const head = buf.slice(0, end);
    const len = Number(/^(?:content-length|l)\s*:\s*(\d+)/im.exec(head)?.[1] ?? 0);
    if (buf.length < end + 4 + len) break;
    frames.push(buf.slice(0, end + 4 + len));
    buf = buf.slice(end + 4 + len);
  }
  return { frames, rest: buf };
}

async function rawPeer(serverPort: number, transport: 'udp' | 'tcp'): Promise<RawPeer> {
  const got: string[] = [];
  let port = 0;
  let closed = false;
  let sock: Socket | TcpSocket;
  if (transport === 'udp') {
    const u = createSocket('udp4');
    u.on('message', (m) => got.push(m.toString('latin1')));
    await new Promise<void>((res) => u.bind(0, '127.0.0.1', () => res()));
    port = u.address().port;
    sock = u;
  } else {
    const c = connect(serverPort, '127.0.0.1');
    await new Promise<void>((res, rej) => { c.once('connect', () => res()); c.once('error', rej); });
    port = c.localPort ?? 0;
    let buf = '';
    c.on('data', (d) => {
      const { frames, rest } = splitFrames(buf + d.toString('latin1'));
      buf = rest;
      got.push(...frames);
    });
    c.on('error', () => { /* closed by the server: the test sees missing responses */ });
    c.on('close', () => { closed = true; });
    sock = c;
  }
  return {
    port,
    transport,
    get closed() {
      return closed;
    },
    send(data) {
      const b = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
      if (transport === 'udp') (sock as Socket).send(b, serverPort, '127.0.0.1');
      else (sock as TcpSocket).write(b);
    },
    async responses(branch, ms = 1500) {
      const deadline = Date.now() + ms;
      const mine = () => got.filter((m) => !/^[A-Z]+ \S+ SIP\/2\.0/.test(m) && m.includes(branch));
      // a final response ends the wait early; otherwise wait the whole window (a drop is silence)
      while (Date.now() < deadline) {
        if (mine().some((m) => /^SIP\/2\.0 [2-6]\d\d/.test(m))) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      return mine();
    },
    async close() {
      if (transport === 'udp') (sock as Socket).close();
      else (sock as TcpSocket).destroy();
    },
  };
}

const status = (msgs: string[]): number | undefined => {
  const finals = msgs.map((m) => Number(/^SIP\/2\.0 (\d{3})/.exec(m)?.[1])).filter((s) => s >= 200);
  return finals[0];
};

interface Case {
  name: string;
  /** build the message for this peer; returns the text and the branch responses carry */
  build(p: RawPeer): { data: string | Buffer; branch: string };
  /** expected final status, a set of acceptable ones, or 'none' (must be dropped) */
  expect: number | number[] | 'none';
  /** only over this transport */
  only?: 'udp' | 'tcp';
  /**
   * What a real drachtio-server does where it is known to differ from `expect` (asserted as
   * such, so a drachtio-server that changes is noticed), and why.
   */
  drachtio?: { expect: number | number[] | 'none'; why: string };
}

/** Default headers of a request from peer `p` (the branch is new per message). */
function heads(p: RawPeer, method: string, branch: string, callId: string, target: number): string[] {
  return [
    `Via: SIP/2.0/${p.transport.toUpperCase()} 127.0.0.1:${p.port};rport;branch=${branch}`,
    'Max-Forwards: 70',
    `From: <sip:torture@127.0.0.1:${p.port}>;tag=t${seq}`,
    `To: <sip:service@127.0.0.1:${target}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:torture@127.0.0.1:${p.port};transport=${p.transport}>`,
  ];
}

function cases(target: number): Case[] {
  const id = () => { seq++; return { branch: `z9hG4bKtort${seq}x${randomBytes(3).toString('hex')}`, callId: `torture-${seq}-${randomBytes(4).toString('hex')}` }; };
  const msg = (start: string, hs: string[], body = '', withLength = true) =>
    [start, ...hs, ...(withLength ? [`Content-Length: ${Buffer.byteLength(body)}`] : []), '', body].join(CRLF);
  const ruri = `sip:service@127.0.0.1:${target}`;
  const options = (edit: (h: string[], p: RawPeer, b: string, c: string) => string[], start = `OPTIONS ${ruri} SIP/2.0`, body = '', withLength = true) =>
    (p: RawPeer) => { const { branch, callId } = id(); return { data: msg(start, edit(heads(p, 'OPTIONS', branch, callId, target), p, branch, callId), body, withLength), branch }; };
  return [
    // ── valid oddities: must be accepted ──
    {
      name: 'compact header forms (v f t i m l)', expect: 200,
      build: (p) => {
        const { branch, callId } = id();
        return { branch, data: [`OPTIONS ${ruri} SIP/2.0`, `v: SIP/2.0/${p.transport.toUpperCase()} 127.0.0.1:${p.port};rport;branch=${branch}`, 'Max-Forwards: 70',
          `f: <sip:torture@127.0.0.1:${p.port}>;tag=c${seq}`, `t: <${ruri}>`, `i: ${callId}`, 'CSeq: 1 OPTIONS', `m: <sip:torture@127.0.0.1:${p.port}>`, 'l: 0', '', ''].join(CRLF) };
      },
    },
    {
      name: 'folded header lines (continuation with SP and HTAB)', expect: 200,
      build: options((h) => [...h, 'Subject: a subject that', ' continues on the next line', '\tand the one after', 'X-Folded:', '  value on the next line']),
    },
    {
      name: 'odd case and whitespace around the colon', expect: 200,
      build: options((h) => h.map((l) => l.replace(/^Call-ID: /, 'cAlL-iD   :   ').replace(/^CSeq: /, 'cseq:').replace(/^Max-Forwards: /, 'MAX-FORWARDS\t:\t'))),
    },
    {
      name: 'unknown headers with an empty value and odd tokens', expect: 200,
      build: options((h) => [...h, 'X-Empty:', 'X-Odd-Token.!%*_+`\'~: yes', 'NewFangledHeader:   newfangled value', ' continued newfangled value']),
    },
    {
      name: 'quoted display names with escaped quotes, To without angle brackets', expect: 200,
      build: options((h, p) => h.map((l) => l.startsWith('From:') ? `From: "J. \\"Torture\\" Tester, Esq." <sip:torture@127.0.0.1:${p.port}>;tag=q${seq}` : l.startsWith('To:') ? `To: ${ruri}` : l)),
    },
    {
      name: 'escaped user part and params without values in the Request-URI', expect: 200,
      build: options((h) => h, `OPTIONS sip:%73ervice@127.0.0.1:${target};lr;x-flag;x-val=1 SIP/2.0`),
    },
    {
      name: 'two Via values joined by a comma (response carries both)', expect: 200, only: 'udp',
      build: options((h) => h.map((l) => l.startsWith('Via:') ? `${l} , SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKupstream${seq}` : l)),
    },
    {
      name: 'a body without Content-Length over UDP (the datagram ends it)', expect: 200, only: 'udp',
      build: options((h) => [...h, 'Content-Type: text/plain'], undefined, 'hello', false),
    },
    {
      name: 'a long header value (3.5 KB Subject, under sipGuard.limits.maxHeaderBytes)', expect: 200,
      build: options((h) => [...h, `Subject: ${'x'.repeat(3500)}`]),
    },
    {
      name: 'an unknown method gets 405 or 501, never 400', expect: [405, 501],
      drachtio: {
        expect: 'none',
        why: 'drachtio-server discards a request outside a dialog whose method it does not know, without a response (src/controller.cpp processMessageStatelessly, default: nta_msg_discard; RFC 3261 8.2.1 asks for 405/501); the app never sees it',
      },
      build: (p) => { const { branch, callId } = id(); return { branch, data: msg(`NEWFANGLED ${ruri} SIP/2.0`, heads(p, 'NEWFANGLED', branch, callId, target)) }; },
    },
    // ── invalid: the right 4xx when the Via routes a response ──
    {
      name: 'Content-Length larger than the datagram → 400', expect: 400, only: 'udp',
      build: options((h) => [...h, 'Content-Type: text/plain', 'Content-Length: 500'], undefined, 'short body', false),
    },
    {
      name: 'negative Content-Length → 400', expect: 400, only: 'udp',
      build: options((h) => [...h, 'Content-Length: -5'], undefined, '', false),
    },
    {
      name: 'a header over sipGuard.limits.maxHeaderBytes (6 KB) → 400', expect: 400, only: 'tcp',
      build: options((h) => [...h, `Subject: ${'x'.repeat(6000)}`]),
    },
    {
      name: 'non-numeric CSeq → 400', expect: 400,
      build: options((h) => h.map((l) => l.startsWith('CSeq:') ? 'CSeq: one OPTIONS' : l)),
    },
    {
      name: 'CSeq method differs from the request method → 400', expect: 400,
      build: options((h) => h.map((l) => l.startsWith('CSeq:') ? 'CSeq: 1 INVITE' : l)),
    },
    {
      name: 'two different Call-ID values → 400', expect: 400,
      build: options((h) => [...h, 'Call-ID: another-call-id@elsewhere']),
    },
    {
      name: 'a header line without a colon → 400', expect: 400,
      build: options((h) => [...h, 'This line has no colon at all']),
    },
    {
      name: 'an unterminated quoted display name → 400', expect: 400,
      build: options((h, p) => h.map((l) => l.startsWith('From:') ? `From: "never closed <sip:torture@127.0.0.1:${p.port}>;tag=u${seq}` : l)),
    },
    // ── invalid and unroutable: dropped, never answered ──
    {
      name: 'no Via at all → dropped', expect: 'none',
      build: options((h) => h.filter((l) => !l.startsWith('Via:'))),
    },
    {
      name: 'a stray 200 OK matching no transaction → dropped', expect: 'none',
      build: (p) => { const { branch, callId } = id(); return { branch, data: msg('SIP/2.0 200 OK', heads(p, 'OPTIONS', branch, callId, target).filter((l) => !l.startsWith('Max-Forwards'))) }; },
    },
    {
      name: 'a stray ACK → absorbed, never answered', expect: 'none',
      build: (p) => { const { branch, callId } = id(); return { branch, data: msg(`ACK ${ruri} SIP/2.0`, heads(p, 'ACK', branch, callId, target).map((l) => l.startsWith('To:') ? `${l};tag=nosuchdialog` : l)) }; },
    },
    {
      name: 'binary junk with NUL bytes → dropped', expect: 'none', only: 'udp',
      build: () => { const { branch } = id(); return { branch, data: Buffer.concat([Buffer.from([0, 1, 2, 0xff, 0xfe, 0]), randomBytes(300)]) }; },
    },
    {
      name: 'keep-alive CRLFs → no response', expect: 'none',
      build: () => { const { branch } = id(); return { branch, data: '\r\n\r\n' }; },
    },
  ];
}

async function alive(t: Test, port: number, transport: 'udp' | 'tcp', what: string): Promise<void> {
  const p = await rawPeer(port, transport);
  const c = cases(port)[0].build(p);
  p.send(c.data);
  t.equal(status(await p.responses(c.branch, 3000)), 200, `${what}: still answers OPTIONS over ${transport}`);
  await p.close();
}

async function torture(t: Test, port: number, label: string, isAlive: () => boolean): Promise<Record<string, string>> {
  const outcome: Record<string, string> = {};
  for (const transport of ['udp', 'tcp'] as const) {
    let p = await rawPeer(port, transport);
    let previous = '';
    const closedAfter: string[] = [];
    for (const c of cases(port)) {
      if (c.only && c.only !== transport) continue;
      if (p.closed) {
        // a server may close a stream after answering a malformed message 400 (RFC 3261 18.3
        // leaves framing errors on streams to the server): the next case gets a new connection
        closedAfter.push(previous);
        await p.close();
        p = await rawPeer(port, transport);
      }
      previous = c.name;
      const m = c.build(p);
      p.send(m.data);
      const deviation = label === 'drachtio' ? c.drachtio : undefined;
      const expect = deviation?.expect ?? c.expect;
      const got = await p.responses(m.branch, expect === 'none' ? 700 : 3000);
      const st = status(got);
      const key = `${transport} ${c.name}`;
      outcome[key] = st === undefined ? 'none' : String(st);
      if (deviation) t.comment(`${label} ${key}: known drachtio-server deviation, expecting ${Array.isArray(expect) ? expect.join('/') : expect}: ${deviation.why}`);
      if (expect === 'none') t.equal(got.length, 0, `${label} ${key}: no response (${got[0]?.split(CRLF)[0] ?? 'none'})`);
      else if (Array.isArray(expect)) t.ok(st !== undefined && expect.includes(st), `${label} ${key}: ${st} ∈ ${expect.join('/')}`);
      else t.equal(st, expect, `${label} ${key}`);
    }
    if (closedAfter.length) t.comment(`${label}: the server closed the ${transport} connection after: ${closedAfter.join('; ')}`);
    await p.close();
    await alive(t, port, transport, label);
  }
  t.ok(isAlive(), `${label}: server process alive after the torture set`);
  return outcome;
}

const results: Record<string, Record<string, string>> = {};
const drachtio = drachtioBinary();

t.test('torture set against the built-in edge', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  results.builtin = await torture(t, server.sipPort, 'builtin', () => server.proc.exitCode === null);
});

t.test('torture set against a real drachtio-server', { skip: drachtio ? false : 'drachtio not on PATH (drachtio-server is in neither Debian nor npm)' }, async (t) => {
  let d: DrachtioHandle | undefined;
  let server: ServerHandle | undefined;
  t.teardown(async () => { await server?.stop(); await d?.stop(); });
  d = await startDrachtio();
  server = await startServer({ EDGE: 'drachtio', DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(d.adminPort), DRACHTIO_SECRET: d.secret });
  results.drachtio = await torture(t, d.sipPort, 'drachtio', () => server!.proc.exitCode === null);
});
