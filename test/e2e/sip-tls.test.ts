/**
 * SIP over TLS against the real server (built-in edge, SIP_TLS_CERT/KEY/PORT from the
 * environment, certificates made with openssl): a Node `tls` caller places INVITE → 200 →
 * ACK → BYE over a verified TLS connection (sips: Request-URI → sips: Contact, Via TLS with
 * rport), a sips: request over UDP is refused (480, Warning 381), the ready line names the
 * TLS listener, a key that does not match the certificate stops start-up (exit 2, naming
 * the field), and baresip (a real softphone, headless) calls over TLS and hears the greeting.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { startServer, ROOT, type ServerHandle } from '../helpers/server.ts';
import { RANGES, freePort } from '../helpers/ports.ts';
import { baresipCall, freeBaresipPort, haveBaresip, wavRms } from '../helpers/baresip.ts';
import { haveOpenssl, makeTestCerts, type TestCerts } from '../helpers/tls-certs.ts';
import { TlsSipClient } from '../helpers/sip-tls.ts';
import { SipMessage, parseSipMessage, parseVia } from '../../src/sip-edge/message.ts';
import { requireTool } from '../helpers/require.ts';

const SDP = (port: number): string => [
  'v=0', 'o=caller 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', '',
].join('\r\n');

if (!haveOpenssl()) {
  requireTool(t, 'SIP over TLS end to end', false, 'openssl', 'openssl');
} else {
  const certs: TestCerts = makeTestCerts();
  let server: ServerHandle;
  let tlsPort = 0;
  t.before(async () => {
    tlsPort = await freePort(RANGES.sip, 'tcp');
    server = await startServer({ SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.key, SIP_TLS_PORT: String(tlsPort), CDR_DB: 'off' });
  });
  t.teardown(async () => {
    await server?.stop();
    rmSync(certs.dir, { recursive: true, force: true });
  });

  t.test('ready line names the TLS listener', async (t) => {
    t.match(await server.waitForLog(/voice-agent ready/), `sip="udp+tcp/127.0.0.1:${server.sipPort},tls/127.0.0.1:${tlsPort}"`);
  });

  t.test('Node tls caller: sips: INVITE → 100 → 200 (sips: Contact, Via TLS) → ACK → BYE → 200', async (t) => {
    const c = await TlsSipClient.connect(tlsPort, { ca: certs.pem(certs.ca), servername: 'sip.test' });
    t.teardown(() => c.close());
    t.ok(c.sock.authorized, 'the server\'s certificate verified against the test CA (name sip.test)');
    const rtp = dgram.createSocket('udp4');
    await new Promise<void>((r) => rtp.bind(0, '127.0.0.1', () => r()));
    t.teardown(() => rtp.close());
    let rtpIn = 0;
    rtp.on('message', () => { rtpIn++; });
    const inv = c.request('INVITE', { uri: `sips:18005550100@127.0.0.1:${tlsPort}`, callId: `e2e-tls-${randomUUID()}`, body: SDP(rtp.address().port) });
    c.send(inv);
    await c.next((m) => m.status === 100, 5000, '100 Trying');
    const ok = await c.next((m) => (m.status ?? 0) >= 200, 15000, 'final response');
    t.equal(ok.status, 200, 'answered');
    t.equal(ok.get('Contact'), `<sips:127.0.0.1:${tlsPort}>`, 'Contact: sips: at the TLS port');
    const via = parseVia(ok.get('Via')!)[0]!;
    t.equal(via.transport, 'TLS');
    t.equal(via.params.get('rport'), String(c.port), 'rport filled in from the TLS connection');
    t.equal(via.params.get('received'), '127.0.0.1');
    t.match(ok.body.toString(), /m=audio \d+ RTP\/AVP 0/, 'PCMU answer');
    c.send(c.ack2xx(inv, ok));
    // the greeting flows (RTP to our socket) while signalling stays on TLS
    const deadline = Date.now() + 10000;
    while (rtpIn < 25 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.ok(rtpIn >= 25, 'RTP from the server (the greeting)');
    const bye = c.request('BYE', { uri: `sips:127.0.0.1:${tlsPort}`, callId: inv.callId, cseq: 2, toTag: ok.toTag });
    c.send(bye);
    const byeOk = await c.next((m) => m.cseq.method === 'BYE', 5000, '200 to BYE');
    t.equal(byeOk.status, 200);
    t.match(await server.waitForLog(new RegExp(`msg=cdr callId=${inv.callId} .*reason=caller-bye`), 5000), 'reason=caller-bye', 'call ended by the caller\'s BYE');
    t.notOk(c.closed, 'one TLS connection for the whole call');
  });

  t.test('a sips: Request-URI over UDP → 480 with Warning 381 "SIPS Required"', async (t) => {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    t.teardown(() => s.close());
    const port = s.address().port;
    const o = SipMessage.request('OPTIONS', `sips:18005550100@127.0.0.1:${tlsPort}`);
    o.add('Via', `SIP/2.0/UDP 127.0.0.1:${port};rport;branch=z9hG4bK-${randomUUID()}`);
    o.add('Max-Forwards', '70');
    o.add('From', `<sip:probe@127.0.0.1:${port}>;tag=p1`);
    o.add('To', `<sips:18005550100@127.0.0.1>`);
    o.add('Call-ID', `sips-udp-${randomUUID()}`);
    o.add('CSeq', '1 OPTIONS');
    o.add('Content-Length', '0');
    const got = new Promise<SipMessage>((r) => s.once('message', (d) => r(parseSipMessage(d))));
    s.send(o.toBuffer(), server.sipPort, '127.0.0.1');
    const r = await got;
    t.equal(r.status, 480);
    t.equal(r.get('Warning'), '381 127.0.0.1 "SIPS Required"');
  });

  t.test('a key that does not match the certificate stops start-up: exit 2, the field named', async (t) => {
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, SIP_PORT: '0', DRACHTIO_PORT: '0', SIP_TLS_CERT: certs.cert, SIP_TLS_KEY: certs.otherKey, SIP_TLS_PORT: '0', CDR_DB: 'off' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { out += d; });
    const code = await new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    t.equal(code, 2, 'exit code 2 (configuration error)');
    t.match(out, `environment: SIP_TLS_KEY: the private key ${certs.otherKey} does not match the certificate ${certs.cert}`);
  });

  if (!haveBaresip()) {
    requireTool(t, 'baresip calls over TLS', false, 'baresip', 'baresip-core');
  } else {
    t.test('baresip calls over TLS: INVITE/ACK/BYE on the TLS port, ;transport=tls Contact, greeting heard', async (t) => {
      const port = await freeBaresipPort({ tls: true });
      t.ok(port, 'free ports for baresip');
      const { trace, heard, callIdPattern } = await baresipCall(t, {
        port, prefix: 'baresip-tls-', cafile: certs.ca, say: new Int16Array(8000 * 6), // silence
        // the account's transport=tls makes every request of the call go over TLS
        account: '<sip:caller@127.0.0.1;transport=tls>;regint=0', dial: `sip:18005550100@127.0.0.1:${tlsPort}`,
      });
      const sent = (re: RegExp): boolean => new RegExp(`TLS 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${tlsPort}\\n${re.source}`).test(trace);
      const received = (re: RegExp): boolean => new RegExp(`TLS 127\\.0\\.0\\.1:${tlsPort} -> 127\\.0\\.0\\.1:\\d+\\n${re.source}`).test(trace);
      t.ok(sent(/INVITE sip:18005550100@127\.0\.0\.1:\d+;transport=tls SIP\/2\.0/), 'INVITE over TLS', { trace: trace.slice(0, 3000) });
      t.ok(received(/SIP\/2\.0 200 OK/), '200 OK over TLS');
      t.match(trace, new RegExp(`Contact: <sip:127\\.0\\.0\\.1:${tlsPort};transport=tls>`), '200 Contact: TLS port, transport=tls');
      t.ok(sent(/ACK sip:127\.0\.0\.1:\d+;transport=tls SIP\/2\.0/), 'ACK to our Contact over TLS');
      t.ok(sent(/BYE sip:127\.0\.0\.1:\d+;transport=tls SIP\/2\.0/), 'BYE over TLS');
      t.match(trace, /Call established/, 'baresip: call established');
      t.ok(heard, 'baresip recorded what it heard');
      if (heard) t.ok(wavRms(heard) > 0.01, 'the caller heard the greeting (audio, not silence)');
      t.match(await server.waitForLog(new RegExp(`msg=cdr callId=${callIdPattern} [^\n]*reason=caller-bye`), 5000),
        'reason=caller-bye', 'server: baresip\'s call ended by its BYE');
    });
  }
}
