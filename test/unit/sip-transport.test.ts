import t from 'tap';
import dgram from 'node:dgram';
import net from 'node:net';
import { setLogLevel } from '../../src/ops/log.ts';
import { SipMessage, SipParseError, parseSipMessage, parseVia, makeResponse } from '../../src/sip-edge/message.ts';
import { SipTransport, type Endpoint } from '../../src/sip-edge/transport.ts';

setLogLevel('silent');

const HOST = '127.0.0.1';

function options(branch: string, via = `SIP/2.0/UDP 127.0.0.1:5999;branch=${branch};rport`, body = ''): string {
  return [
    'OPTIONS sip:agent@127.0.0.1 SIP/2.0',
    `Via: ${via}`,
    'Max-Forwards: 70',
    'From: <sip:tester@127.0.0.1>;tag=t1',
    'To: <sip:agent@127.0.0.1>',
    `Call-ID: ${branch}@test`,
    'CSeq: 1 OPTIONS',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '', body,
  ].join('\r\n');
}

async function withTransport(fn: (tp: SipTransport) => Promise<void>): Promise<void> {
  const tp = new SipTransport({ address: HOST, port: 0, transports: ['udp', 'tcp'] });
  await tp.listen();
  try {
    await fn(tp);
  } finally {
    await tp.close();
  }
}

function nextMessage(tp: SipTransport): Promise<[SipMessage, Endpoint, number]> {
  return new Promise((resolve) => tp.once('message', (m: SipMessage, s: Endpoint, b: number) => resolve([m, s, b])));
}

function udpClient(): Promise<dgram.Socket> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, HOST, () => resolve(s));
  });
}

/** Parse leniently: a 400 for a bad header echoes that header, so keep the partial. */
function lenient(d: Buffer): SipMessage {
  try {
    return parseSipMessage(d);
  } catch (e) {
    return (e as SipParseError).partial!;
  }
}

function recvUdp(s: dgram.Socket): Promise<SipMessage> {
  return new Promise((resolve) => s.once('message', (d) => resolve(lenient(d))));
}

/** A TCP client that collects the stream and frames SIP messages out of it. */
async function tcpClient(port: number): Promise<{ sock: net.Socket; next: () => Promise<SipMessage>; raw: () => Buffer }> {
  const sock = net.connect(port, HOST);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    waiters.splice(0).forEach((w) => w());
  });
  const tryFrame = (): SipMessage | undefined => {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const cl = Number(/content-length:\s*(\d+)/i.exec(buf.toString('latin1', 0, end))?.[1] ?? 0);
    if (buf.length < end + 4 + cl) return undefined;
    const m = lenient(buf.subarray(0, end + 4 + cl));
    buf = buf.subarray(end + 4 + cl);
    return m;
  };
  const next = async (): Promise<SipMessage> => {
    for (;;) {
      const m = tryFrame();
      if (m) return m;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { sock, next, raw: () => buf };
}

t.test('listens on the same OS-assigned port for UDP and TCP', async (t) => {
  await withTransport(async (tp) => {
    t.ok(tp.port > 0);
    t.equal(tp.address, HOST);
    const c = await tcpClient(tp.port);
    c.sock.destroy();
    const u = await udpClient();
    const got = nextMessage(tp);
    u.send(options('z9hG4bKp1'), tp.port, HOST);
    const [m] = await got;
    t.equal(m.method, 'OPTIONS');
    u.close();
  });
});

t.test('UDP: receive, received/rport stamped on the top Via, respond to rport', async (t) => {
  await withTransport(async (tp) => {
    const u = await udpClient();
    const got = nextMessage(tp);
    const raw = options('z9hG4bKu1');
    u.send(raw, tp.port, HOST);
    const [m, src, bytes] = await got;
    t.equal(bytes, Buffer.byteLength(raw));
    t.same(src, { transport: 'udp', address: HOST, port: u.address().port });
    const via = parseVia(m.get('Via')!)[0];
    t.equal(via.params.get('rport'), String(u.address().port), 'rport filled (RFC 3581)');
    t.equal(via.params.get('received'), HOST, 'received added when rport present');
    // Without rport and with a matching host nothing is added.
    const got2 = nextMessage(tp);
    u.send(options('z9hG4bKu2', 'SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKu2'), tp.port, HOST);
    const [m2] = await got2;
    t.equal(m2.get('Via'), 'SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKu2');
    // Via host differing from the source → received (§18.2.1).
    const got3 = nextMessage(tp);
    u.send(options('z9hG4bKu3', 'SIP/2.0/UDP 192.0.2.1:5999;branch=z9hG4bKu3'), tp.port, HOST);
    const [m3] = await got3;
    t.equal(parseVia(m3.get('Via')!)[0].params.get('received'), HOST);
    // Sending a response.
    const reply = recvUdp(u);
    await tp.send(makeResponse(m, 200), src);
    const r = await reply;
    t.equal(r.status, 200);
    t.equal(r.callId, 'z9hG4bKu1@test');
    u.close();
  });
});

t.test('UDP: CRLF keep-alives ignored; malformed request answered 400 with reason and Warning', async (t) => {
  await withTransport(async (tp) => {
    const u = await udpClient();
    let count = 0;
    tp.on('message', () => count++);
    u.send('\r\n\r\n', tp.port, HOST);
    u.send('\r\n', tp.port, HOST);
    const reply = recvUdp(u);
    const bad = options('z9hG4bKbad').replace('CSeq: 1 OPTIONS', 'CSeq: abc');
    u.send(bad, tp.port, HOST);
    const r = await reply;
    t.equal(r.status, 400);
    t.equal(r.reason, 'Bad Request - bad CSeq: "abc"');
    t.equal(r.get('CSeq'), 'abc', 'offending header echoed as received');
    t.match(r.get('Warning')!, /^399 127\.0\.0\.1 "bad CSeq: 'abc'"$/);
    t.equal(r.callId, 'z9hG4bKbad@test');
    t.ok(r.toTag, 'the 400 carries a To tag');
    const reply2 = recvUdp(u);
    u.send(options('z9hG4bKnocid').replace(/Call-ID: .*\r\n/, ''), tp.port, HOST);
    const r2 = await reply2;
    t.equal(r2.reason, 'Bad Request - missing Call-ID header', 'a missing Call-ID is answered 400 (the Via routes it)');
    t.notOk(r2.has('Call-ID'), 'nothing invented for the missing header');
    const reply3 = recvUdp(u);
    u.send(options('z9hG4bKmf').replace('Max-Forwards: 70', 'Max-Forwards: lots').replace(/Call-ID: .*\r\n/, 'Call-ID: mf\r\n'), tp.port, HOST);
    const r3 = await reply3;
    t.equal(r3.reason, 'Bad Request - bad Max-Forwards: "lots"');
    // Binary garbage: dropped, no reply, nothing emitted.
    u.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]), tp.port, HOST);
    await new Promise((r) => setTimeout(r, 100));
    t.equal(count, 0);
    u.close();
  });
});

t.test('TCP: two messages in one write, one message split across writes, responses on the same connection', async (t) => {
  await withTransport(async (tp) => {
    const got: [SipMessage, Endpoint][] = [];
    tp.on('message', (m: SipMessage, s: Endpoint) => got.push([m, s]));
    const c = await tcpClient(tp.port);
    const a = options('z9hG4bKt1', 'SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt1', 'hello');
    const b = options('z9hG4bKt2', 'SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt2');
    c.sock.write(a + '\r\n\r\n' + b); // with a keep-alive ping between them
    const waitFor = async (n: number): Promise<void> => {
      for (let i = 0; i < 200 && got.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await waitFor(2);
    t.equal(got.length, 2);
    t.equal(got[0][0].body.toString(), 'hello');
    t.equal(got[1][0].callId, 'z9hG4bKt2@test');
    t.ok(got[0][1].connId, 'connId assigned');
    t.equal(got[0][1].connId, got[1][1].connId);
    // Split across writes, including inside the header section and the body.
    const s = options('z9hG4bKt3', 'SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKt3', 'v=0\r\nsplit body\r\n');
    const cuts = [10, 60, s.length - 5];
    let prev = 0;
    for (const cut of cuts) {
      c.sock.write(s.slice(prev, cut));
      prev = cut;
      await new Promise((r) => setTimeout(r, 20));
    }
    t.equal(got.length, 2, 'not emitted before complete');
    c.sock.write(s.slice(prev));
    await waitFor(3);
    t.equal(got[2][0].body.toString(), 'v=0\r\nsplit body\r\n');
    // The CRLFCRLF ping was answered with a CRLF pong (RFC 5626).
    await new Promise((r) => setTimeout(r, 20));
    t.equal(c.raw().toString(), '\r\n');
    c.raw(); // (pong stays in the client buffer; the framer skips it)
    // Response goes back on the same connection (§18.2.2), even if addressed by connId only.
    await tp.send(makeResponse(got[2][0], 200), { ...got[2][1], port: 1 });
    const r = await c.next();
    t.equal(r.status, 200);
    t.equal(r.callId, 'z9hG4bKt3@test');
    t.equal(tp.tcpConnectionCount, 1);
    c.sock.destroy();
  });
});

t.test('TCP: missing Content-Length → 400 and connection closed; malformed request → 400 and connection kept', async (t) => {
  await withTransport(async (tp) => {
    const c = await tcpClient(tp.port);
    c.sock.write(options('z9hG4bKm1', 'SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKm1').replace('CSeq: 1 OPTIONS', 'CSeq: 1 INVITE'));
    const r = await c.next();
    t.equal(r.status, 400);
    t.equal(r.reason, 'Bad Request - CSeq method INVITE does not match request method OPTIONS');
    t.notOk(c.sock.destroyed);
    const closed = new Promise<void>((res) => c.sock.once('close', () => res()));
    c.sock.write(options('z9hG4bKm2', 'SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKm2').replace(/Content-Length: \d+\r\n/, ''));
    const r2 = await c.next();
    t.equal(r2.status, 400);
    t.equal(r2.reason, 'Bad Request - missing Content-Length header (mandatory on TCP)');
    await closed;
    t.pass('connection closed after framing error');
  });
});

t.test('TCP: outgoing connection, reused for the reply and for later sends', async (t) => {
  await withTransport(async (tp) => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const req = parseSipMessage(options('z9hG4bKo1', `SIP/2.0/TCP 127.0.0.1:${tp.port};branch=z9hG4bKo1`));
    await tp.send(req, { transport: 'tcp', address: HOST, port });
    const peer = await accepted;
    let data = '';
    peer.on('data', (d) => (data += d.toString()));
    const got = nextMessage(tp);
    const res = makeResponse(req, 200);
    peer.write(res.toBuffer());
    const [m, src] = await got;
    t.equal(m.status, 200);
    t.equal(src.transport, 'tcp');
    t.equal(src.port, port);
    await tp.send(parseSipMessage(options('z9hG4bKo2', `SIP/2.0/TCP 127.0.0.1:${tp.port};branch=z9hG4bKo2`)), { transport: 'tcp', address: HOST, port });
    await new Promise((r) => setTimeout(r, 50));
    t.match(data, /z9hG4bKo2/);
    t.equal(tp.tcpConnectionCount, 1, 'one connection reused');
    peer.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});

t.test('TCP connect failure rejects the send promise', async (t) => {
  await withTransport(async (tp) => {
    // A port nobody listens on (bind and close to get one).
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, HOST, () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    await t.rejects(tp.send(parseSipMessage(options('z9hG4bKe1')), { transport: 'tcp', address: HOST, port }), { code: 'ECONNREFUSED' });
  });
});

t.test('TCP idle connections are closed', async (t) => {
  const tp = new SipTransport({ address: HOST, port: 0, transports: ['tcp'], tcpIdleTimeoutMs: 100 });
  await tp.listen();
  const c = await tcpClient(tp.port);
  const closed = new Promise<void>((r) => c.sock.once('close', () => r()));
  await closed;
  t.pass('closed by the idle timer');
  for (let i = 0; i < 50 && tp.tcpConnectionCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(tp.tcpConnectionCount, 0);
  await tp.close();
});

t.test('UDP send failure rejects (bad address)', async (t) => {
  await withTransport(async (tp) => {
    await t.rejects(tp.send(SipMessage.response(200), { transport: 'udp', address: 'no-such-host.invalid', port: 5060 }));
  });
});

t.test('fixed port, UDP only', async (t) => {
  const tp = new SipTransport({ address: HOST, port: 15123, transports: ['udp'] });
  await tp.listen();
  t.equal(tp.port, 15123);
  await tp.close();
});

t.test('UDP throughput (informational)', async (t) => {
  await withTransport(async (tp) => {
    const u = await udpClient();
    const n = 2000;
    let count = 0;
    const done = new Promise<void>((r) => tp.on('message', () => ++count === n && r()));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      u.send(options(`z9hG4bKperf${i}`), tp.port, HOST);
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.comment(`received ${count}/${n} OPTIONS over UDP in ${ms.toFixed(0)} ms`);
    t.ok(count > n * 0.9);
    u.close();
  });
});
