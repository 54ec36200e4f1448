/**
 * SIP over TLS on the built-in edge (in process, real drachtio-srf, real TLS on 127.0.0.1,
 * certificates made with openssl): the TLS listener and its framing, Via/Contact/Record-Route
 * for requests that arrived over TLS (sips: → `sips:host:tlsPort`, sip: →
 * `;transport=tls`), responses and in-dialog requests over the caller's TLS connection,
 * sips: Request-URIs refused over UDP/TCP (RFC 5630: 480 + Warning 381), outbound TLS to
 * sips:/transport=tls targets with certificate verification, mutual TLS, and the drachtio
 * hostports (`tls/h:p`).
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import Srf from 'drachtio-srf';
import { SipEdge } from '../../src/sip-edge/index.ts';
import type { SipTlsOptions } from '../../src/sip-edge/transport.ts';
import { parseVia } from '../../src/sip-edge/message.ts';
import { SipPeer, recordingProxy, sleep, SDP, APP_SDP, type Frame } from './sip-edge-helpers.ts';
import { haveOpenssl, makeTestCerts, type TestCerts } from '../helpers/tls-certs.ts';
import { TlsSipClient, TlsSipServer } from '../helpers/sip-tls.ts';
import { requireTool } from '../helpers/require.ts';

const isSipFrame = (f: Frame): boolean => f.dir === 'edge' && f.tokens[1] === 'sip';
const firstLine = (f: Frame): string => (f.sip ?? '').split('\r\n')[0]!;

interface Setup {
  edge: SipEdge;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  srf: any;
  frames: Frame[];
  hostport: string;
}

/** Edge with TLS (OS-chosen ports) + recording proxy + srf; `configure` registers the app's handlers. */
async function setup(t: Test, tlsOpts: Partial<SipTlsOptions> | null, configure: (srf: any) => void = () => undefined, routes = 0): Promise<Setup> {
  const edge = new SipEdge({
    sip: {
      address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'],
      ...(tlsOpts ? { tls: { key: certs.pem(certs.key), cert: certs.pem(certs.cert), ca: certs.pem(certs.ca), port: 0, ...tlsOpts } } : {}),
    },
    control: { address: '127.0.0.1', port: 0, secret: 'cymru' },
  });
  await edge.start();
  const proxy = await recordingProxy(edge.controlPort);
  const srf = new (Srf as any)();
  srf.on('error', () => undefined);
  let hostport = '';
  srf.on('connect', (_e: unknown, hp: string) => { hostport = hp; });
  configure(srf);
  await new Promise<void>((resolve, reject) => {
    srf.connect({ host: '127.0.0.1', port: proxy.port, secret: 'cymru' }, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  const deadline = Date.now() + 3000;
  while (!hostport) {
    if (Date.now() > deadline) throw new Error('no connect event');
    await sleep(5);
  }
  while (proxy.frames.filter((f) => f.dir === 'edge' && f.tokens.length === 4 && f.tokens[3] === 'OK').length < routes) {
    if (Date.now() > deadline) throw new Error('routes not acknowledged');
    await sleep(5);
  }
  t.teardown(async () => {
    try { srf.disconnect(); } catch { /* gone */ }
    await proxy.close();
    await edge.stop();
  });
  return { edge, srf, frames: proxy.frames, hostport };
}

let certs: TestCerts;

if (!haveOpenssl()) {
  requireTool(t, 'SIP over TLS', false, 'openssl', 'openssl');
} else {
  certs = makeTestCerts();
  t.teardown(() => rmSync(certs.dir, { recursive: true, force: true }));

  t.test('drachtio hostports list tls/h:p after tcp and udp; TLS listens on its own port', async (t) => {
    const s = await setup(t, {});
    t.ok(s.edge.tlsPort > 0 && s.edge.tlsPort !== s.edge.sipPort, 'TLS on its own port');
    t.equal(s.hostport, `tcp/127.0.0.1:${s.edge.sipPort},udp/127.0.0.1:${s.edge.sipPort},tls/127.0.0.1:${s.edge.tlsPort}`);
    const off = await setup(t, null);
    t.equal(off.hostport, `tcp/127.0.0.1:${off.edge.sipPort},udp/127.0.0.1:${off.edge.sipPort}`, 'no tls/ without TLS');
    t.equal(off.edge.tlsPort, 0);
  });

  for (const secure of [true, false]) {
    const scheme = secure ? 'sips' : 'sip';
    t.test(`inbound ${scheme}: INVITE over TLS: 200 with ${secure ? 'a sips: Contact' : 'a ;transport=tls Contact'}, ACK, BYE back over the caller's connection`, async (t) => {
      let dialog: any;
      const s = await setup(t, {}, (srf) => {
        srf.invite(async (req: any, res: any) => {
          dialog = await srf.createUAS(req, res, { localSdp: APP_SDP });
        });
      }, 1);
      const c = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca) });
      t.teardown(() => c.close());
      const uri = secure ? `sips:18005550100@127.0.0.1:${s.edge.tlsPort}` : `sip:18005550100@127.0.0.1:${s.edge.tlsPort};transport=tls`;
      const inv = c.request('INVITE', { uri, callId: `tls-${scheme}-${randomUUID()}`, body: SDP });
      c.send(inv);
      t.equal((await c.next((m) => m.status === 100, 3000, '100 Trying')).cseq.method, 'INVITE');
      const ok = await c.next((m) => m.status === 200, 3000, '200 OK');
      t.equal(ok.get('Contact'), secure ? `<sips:127.0.0.1:${s.edge.tlsPort}>` : `<sip:127.0.0.1:${s.edge.tlsPort};transport=tls>`,
        'Contact names the TLS port (RFC 3261 §12.1.1: sips: for a sips: Request-URI)');
      const via = parseVia(ok.get('Via')!)[0]!;
      t.equal(via.transport, 'TLS', 'our Via echoed: SIP/2.0/TLS');
      t.equal(via.params.get('rport'), String(c.port), 'rport = the connection\'s source port');
      t.equal(ok.body.toString(), APP_SDP);

      const invFrame = s.frames.find((f) => isSipFrame(f) && firstLine(f).startsWith('INVITE'))!;
      t.same([invFrame.tokens[4], invFrame.tokens[5], invFrame.tokens[6]], ['tls', '127.0.0.1', String(c.port)], 'app sees protocol tls');

      c.send(c.ack2xx(inv, ok));
      await sleep(100);
      t.ok(dialog, 'app has the dialog');
      const ended = dialog.destroy();
      const bye = await c.next((m) => m.method === 'BYE', 3000, 'BYE from the app');
      t.equal(bye.uri, secure ? `sips:caller@127.0.0.1:${c.port}` : `sip:caller@127.0.0.1:${c.port};transport=tls`, 'BYE to the caller\'s Contact');
      const byeVia = parseVia(bye.get('Via')!)[0]!;
      t.equal(`${byeVia.transport} ${byeVia.host}:${byeVia.port}`, `TLS 127.0.0.1:${s.edge.tlsPort}`, 'Via: SIP/2.0/TLS with the TLS port');
      c.send(c.respond(bye, 200));
      await ended;
      t.equal(s.edge.dialogCount, 0);
      t.notOk(c.closed, 'same connection throughout');
    });
  }

  t.test('stream framing over TLS: two requests in one record, one request split in two writes, CRLF ping', async (t) => {
    const s = await setup(t, {});
    const c = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca), servername: 'localhost' });
    t.teardown(() => c.close());
    const a = c.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `o1-${randomUUID()}` });
    const b = c.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `o2-${randomUUID()}` });
    c.send(Buffer.concat([a.toBuffer(), b.toBuffer()]).toString('latin1'));
    for (const r of [a, b]) t.equal((await c.next((m) => m.callId === r.callId, 3000)).status, 200, `OPTIONS ${r.callId.slice(0, 2)} answered`);
    const split = c.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `o3-${randomUUID()}` }).toBuffer();
    c.sock.write(split.subarray(0, 40));
    await sleep(30);
    c.sock.write(split.subarray(40));
    t.equal((await c.next((m) => m.status === 200, 3000)).callId.slice(0, 2), 'o3', 'split request answered');
    const pong = new Promise<Buffer>((r) => c.sock.once('data', r));
    c.sock.write('\r\n\r\n');
    t.equal((await pong).toString(), '\r\n', 'CRLFCRLF ping → CRLF pong (RFC 5626)');
  });

  t.test('a sips: Request-URI over UDP or TCP → 480 with Warning 381 "SIPS Required" (RFC 5630); the app never sees it', async (t) => {
    const seen: string[] = [];
    const s = await setup(t, {}, (srf) => {
      srf.invite((req: any, res: any) => { seen.push(req.get('Call-ID')); res.send(486); });
      srf.options((req: any, res: any) => { seen.push(req.get('Call-ID')); res.send(200); });
    }, 2);
    for (const peer of [await SipPeer.udp(s.edge.sipPort), await SipPeer.tcp(s.edge.sipPort)]) {
      t.teardown(() => peer.close());
      for (const method of ['INVITE', 'OPTIONS']) {
        const req = peer.request(method, { callId: `sips-${peer.transport}-${randomUUID()}`, uri: `sips:18005550100@127.0.0.1:${s.edge.tlsPort}`, ...(method === 'INVITE' ? { body: SDP } : {}) });
        peer.send(req);
        const r = await peer.next((m) => m.callId === req.callId && (m.status ?? 0) >= 200, 3000, `final to ${method}`);
        t.equal(r.status, 480, `${peer.transport} ${method}: 480`);
        t.equal(r.reason, 'Temporarily Unavailable');
        t.ok(r.toTag, 'To tag on the final');
        const warnings = r.getAll('Warning');
        t.equal(warnings[0], '381 127.0.0.1 "SIPS Required"');
        t.match(warnings[1] ?? '', new RegExp(`^399 127\\.0\\.0\\.1 "sips: Request-URI received over ${peer.transport.toUpperCase()}; SIPS requires TLS"$`));
        if (method === 'INVITE') peer.send(peer.ack(req, r));
      }
      // the same number as sip: is served
      const plain = peer.request('OPTIONS', { callId: `sip-${peer.transport}-${randomUUID()}`, uri: `sip:18005550100@127.0.0.1:${s.edge.sipPort}` });
      peer.send(plain);
      t.equal((await peer.next((m) => m.callId === plain.callId, 3000)).status, 200, `${peer.transport}: sip: OPTIONS still 200`);
    }
    t.equal(seen.filter((id) => id.startsWith('sips-')).length, 0, 'no sips: request reached the app');
  });

  t.test('outbound to a sips: rep phone: verified TLS connection, TLS Via, sips: Contact (srf callingNumber @localhost rewritten), ACK and BYE on that connection', async (t) => {
    const s = await setup(t, {});
    const rep = await TlsSipServer.listen({ cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) });
    t.teardown(() => rep.close());
    const p = s.srf.createUAC(`sips:2101@127.0.0.1:${rep.port}`, { localSdp: APP_SDP, callingNumber: '+14155550142' });
    const inv = await rep.next((m) => m.method === 'INVITE', 4000, 'INVITE over TLS');
    const via = parseVia(inv.get('Via')!)[0]!;
    t.equal(`${via.transport} ${via.host}:${via.port}`, `TLS 127.0.0.1:${s.edge.tlsPort}`, 'Via: SIP/2.0/TLS <host>:<tls port>');
    t.equal(inv.get('Contact'), `<sips:+14155550142@127.0.0.1:${s.edge.tlsPort}>`, 'Contact: the edge\'s TLS address instead of srf\'s @localhost');
    rep.respond(inv, 180, { toTag: 'rep1' });
    rep.respond(inv, 200, { toTag: 'rep1', contact: `<sips:2101@127.0.0.1:${rep.port}>`, body: SDP });
    const ack = await rep.next((m) => m.method === 'ACK', 3000, 'ACK');
    t.equal(ack.uri, `sips:2101@127.0.0.1:${rep.port}`);
    const dialog = await p;
    const done = dialog.destroy();
    const bye = await rep.next((m) => m.method === 'BYE', 3000, 'BYE');
    rep.respond(bye, 200);
    await done;
    t.equal(rep.sockets.length, 1, 'INVITE, ACK and BYE on one TLS connection');
  });

  t.test('outbound transport=tls with a host name: SNI/name check against the certificate; client certificate for mutual-TLS peers', async (t) => {
    const s = await setup(t, {});
    const rep = await TlsSipServer.listen({ cert: certs.pem(certs.cert), key: certs.pem(certs.key), ca: certs.pem(certs.ca), requestCert: true });
    t.teardown(() => rep.close());
    const p = s.srf.createUAC(`sip:2102@localhost:${rep.port};transport=tls`, { localSdp: APP_SDP });
    const inv = await rep.next((m) => m.method === 'INVITE', 4000, 'INVITE over TLS');
    t.equal(inv.get('Contact'), `<sip:127.0.0.1:${s.edge.tlsPort};transport=tls>`, 'sip: target: ;transport=tls Contact');
    t.same(rep.clientCerts, ['sip.test'], 'the edge presented its certificate');
    rep.respond(inv, 486, { toTag: 'busy' });
    t.equal((await p.catch((e: any) => e)).status, 486);
  });

  t.test('outbound TLS to an untrusted certificate fails (503); rejectUnauthorized:false (lab) connects', async (t) => {
    const rogue = await TlsSipServer.listen({ cert: certs.pem(certs.rogueCert), key: certs.pem(certs.rogueKey) });
    t.teardown(() => rogue.close());
    const strict = await setup(t, {});
    const err = await strict.srf.createUAC(`sips:2101@127.0.0.1:${rogue.port}`, { localSdp: APP_SDP }).catch((e: any) => e);
    t.equal(err.status, 503, 'unverified server: local 503');
    t.equal(rogue.inbox.all.length, 0, 'nothing sent to it');

    const lab = await setup(t, { rejectUnauthorized: false });
    const p = lab.srf.createUAC(`sips:2101@127.0.0.1:${rogue.port}`, { localSdp: APP_SDP });
    const inv = await rogue.next((m) => m.method === 'INVITE', 4000, 'INVITE');
    rogue.respond(inv, 603, { toTag: 'x' });
    t.equal((await p.catch((e: any) => e)).status, 603, 'lab edge reached the self-signed server');

    const noTls = await setup(t, null);
    t.equal((await noTls.srf.createUAC(`sips:2101@127.0.0.1:${rogue.port}`, { localSdp: APP_SDP }).catch((e: any) => e)).status, 503,
      'edge without TLS: sips: target → 503');
  });

  t.test('mutual TLS (verifyClient): no client certificate → handshake refused; a CA-signed one → served', async (t) => {
    const s = await setup(t, { verifyClient: true }, (srf) => srf.options((_req: any, res: any) => res.send(200)), 1);
    const anon = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca) })
      .then(async (c) => {
        // TLS 1.3: the server's refusal arrives after the client's handshake completes
        c.send(c.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `anon-${randomUUID()}` }));
        const r = await c.next(() => true, 1000).catch(() => undefined);
        await sleep(50);
        return { answered: r !== undefined, closed: c.closed };
      })
      .catch(() => ({ answered: false, closed: true }));
    t.same(anon, { answered: false, closed: true }, 'no certificate: connection refused, nothing answered');

    const rogue = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca), cert: certs.pem(certs.rogueCert), key: certs.pem(certs.rogueKey) })
      .then(async (c) => {
        c.send(c.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `rogue-${randomUUID()}` }));
        return (await c.next(() => true, 1000).catch(() => undefined)) !== undefined;
      })
      .catch(() => false);
    t.notOk(rogue, 'a certificate not signed by the CA is refused');

    const good = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca), cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) });
    t.teardown(() => good.close());
    const o = good.request('OPTIONS', { uri: `sips:127.0.0.1:${s.edge.tlsPort}`, callId: `good-${randomUUID()}` });
    good.send(o);
    t.equal((await good.next((m) => m.callId === o.callId, 3000)).status, 200, 'CA-signed client certificate: answered');
  });

  t.test('proxied sips: request over TLS: Record-Route is sips: with the TLS port, Via TLS', async (t) => {
    const s = await setup(t, {}, (srf) => {
      srf.invite((req: any, res: any) => {
        // (srf's proxyRequest turns a `sips:` destination into `sip:sips:…`: a transport=tls target instead)
        srf.proxyRequest(req, [`sip:2103@127.0.0.1:${rep.port};transport=tls`], { recordRoute: true }).catch(() => undefined);
        void res;
      });
    }, 1);
    const rep = await TlsSipServer.listen({ cert: certs.pem(certs.clientCert), key: certs.pem(certs.clientKey) });
    t.teardown(() => rep.close());
    const c = await TlsSipClient.connect(s.edge.tlsPort, { ca: certs.pem(certs.ca) });
    t.teardown(() => c.close());
    const inv = c.request('INVITE', { uri: `sips:2103@127.0.0.1:${s.edge.tlsPort}`, callId: `px-${randomUUID()}`, body: SDP });
    c.send(inv);
    const fwd = await rep.next((m) => m.method === 'INVITE', 4000, 'proxied INVITE');
    t.equal(fwd.get('Record-Route'), `<sips:127.0.0.1:${s.edge.tlsPort};lr>`);
    t.equal(parseVia(fwd.get('Via')!)[0]!.transport, 'TLS');
    rep.respond(fwd, 486, { toTag: 'b' });
    t.equal((await c.next((m) => (m.status ?? 0) >= 200, 4000, 'final')).status, 486, 'final relayed back over TLS');
  });
}
