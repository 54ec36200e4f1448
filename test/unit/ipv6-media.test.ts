// IPv6 media: configuration (rtp.address6 / publicAddress6), the per-call choice of address
// family (src/sip/media-family.ts), the SDP answer's c= family, and the native engine's
// IPv6 sockets — audio both ways over ::1, family mismatches refused instead of silent, the
// dual-stack wildcard, a re-INVITE that switches family answered 488.
// Port range for this file: 23000-23099.
import t from 'tap';
import dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { advertisedAddress, mediaAddressFor } from '../../src/sip/media-family.ts';
import { negotiate, parseSdp } from '../../src/sdp/index.ts';
import { MediaEngine } from '../../src/media/index.ts';
import { Call } from '../../src/call/call.ts';
import type { Tenant } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { rtpPacket } from '../../src/cli/rtp.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(join(tmpdir(), 'ipv6-test-'));
const load = (env: Record<string, string> = {}, argv: string[] = []) => loadConfig({ env, argv, cwd: dir });

t.test('config: rtp.address6 and publicAddress6', async (t) => {
  t.equal(load().rtp.bindAddress6, undefined, 'no IPv6 media by default');
  t.equal(load().rtp.publicAddress6, undefined);
  const c = load({ RTP_ADDRESS6: '::1' });
  t.equal(c.rtp.bindAddress6, '::1');
  t.equal(c.rtp.publicAddress6, '::1', 'advertised address follows the bind address');
  t.equal(load({ RTP_ADDRESS6: '::' }).rtp.publicAddress6, '::1', 'wildcard → ::1 advertised (as 0.0.0.0 → 127.0.0.1)');
  t.equal(load({ RTP_ADDRESS6: '::', RTP_PUBLIC_ADDRESS6: '2001:db8::7' }).rtp.publicAddress6, '2001:db8::7');
  t.equal(load({ RTP_ADDRESS: '::1' }).rtp.publicAddress6, '::1', 'an IPv6 rtp.address serves IPv6 itself');
  t.equal(load({ RTP_ADDRESS6: 'off' }).rtp.bindAddress6, undefined);
  t.throws(() => load({ RTP_ADDRESS6: '127.0.0.1' }), ConfigError);
  t.throws(() => load({ RTP_ADDRESS6: 'media.example.com' }), /RTP_ADDRESS6: must be a numeric IPv6 address/);
  const f = join(dir, 'c.yaml');
  writeFileSync(f, 'rtp:\n  address6: "::1"\n  publicAddress6: "2001:db8::1"\n');
  const y = load({}, ['--config', f]);
  t.same([y.rtp.bindAddress6, y.rtp.publicAddress6], ['::1', '2001:db8::1'], 'YAML keys');
});

t.test('media family per call', async (t) => {
  const both = { publicAddress: '192.0.2.10', publicAddress6: '2001:db8::10' };
  const all = () => true;
  t.same(mediaAddressFor(both, all, 6), { family: 6, address: '2001:db8::10' });
  t.same(mediaAddressFor(both, all, 4), { family: 4, address: '192.0.2.10' });
  t.match(mediaAddressFor({ publicAddress: '192.0.2.10' }, all, 6), { reason: /IPv6 .*no IPv6 media address.*rtp\.address6/ });
  t.match(mediaAddressFor(both, (f) => f === 4, 6), { reason: /IPv6/ }, 'the engine must serve the family too');
  t.match(mediaAddressFor({ publicAddress: '::1' }, all, 4), { reason: /IPv4/ }, 'an IPv6-only setup refuses IPv4 offers');
  t.same(mediaAddressFor({ publicAddress: '::1' }, all, 6), { family: 6, address: '::1' });
  t.same(mediaAddressFor(both, all, undefined, '::1'), { family: 6, address: '2001:db8::10' }, 'delayed offer: the INVITE came over IPv6');
  t.same(mediaAddressFor(both, all, undefined, '127.0.0.1'), { family: 4, address: '192.0.2.10' });
  t.same(mediaAddressFor({ publicAddress: '192.0.2.10' }, all, undefined, '::1'), { family: 4, address: '192.0.2.10' }, 'delayed offer: the other family when one is missing');
  t.equal(advertisedAddress({ publicAddress: '2001:db8::5' }, 6), '2001:db8::5');
});

t.test('SDP: the offer\'s family is reported, the answer carries ours', async (t) => {
  const offer = 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
  const n = negotiate(offer, { local: { address: '2001:db8::10', port: 4000 } });
  t.equal(n.audio.remoteAddrType, 'IP6');
  t.same(n.audio.remote, { address: '::1', port: 6000 });
  t.same(parseSdp(n.sdp).connection, { netType: 'IN', addrType: 'IP6', address: '2001:db8::10' });
  const hold = negotiate(offer.replace('c=IN IP6 ::1', 'c=IN IP6 ::'), { local: { address: '::1', port: 4000 } });
  t.equal(hold.audio.remote, null);
  t.equal(hold.audio.remoteAddrType, 'IP6', 'known for a null address too');
  t.equal(negotiate(offer.replace(/IP6 ::1/g, 'IP4 127.0.0.1'), { local: { address: '127.0.0.1', port: 4000 } }).audio.remoteAddrType, 'IP4');
});

const engine = MediaEngine.create({ bindAddress: '127.0.0.1', bindAddress6: '::1', portMin: 23000, portMax: 23049 });
const v4only = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 23050, portMax: 23069 });
const dual = MediaEngine.create({ bindAddress: '::', portMin: 23070, portMax: 23099 });
t.teardown(() => {
  engine.close();
  v4only.close();
  dual.close();
});

t.test('engine: which families it serves', async (t) => {
  t.same([engine.serves(4), engine.serves(6)], [true, true]);
  t.same([v4only.serves(4), v4only.serves(6)], [true, false]);
  t.same([dual.serves(4), dual.serves(6)], [true, true], ':: takes both');
  t.throws(() => v4only.createSession({ codec: 'PCMU', payloadType: 0, family: 6 }), /no IPv6 media address configured/);
  t.throws(() => MediaEngine.create({ bindAddress: '127.0.0.1', bindAddress6: '127.0.0.2', portMin: 23050, portMax: 23051 }), /bindAddress6/);
});

t.test('engine: an IPv6 session carries audio both ways over ::1', async (t) => {
  const peer = dgram.createSocket('udp6');
  peer.bind(0, '::1');
  await once(peer, 'listening');
  let fromServer = 0;
  let src = '';
  peer.on('message', (_m, r) => { fromServer++; src = r.address; });
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, family: 6, remote: { address: '::1', port: peer.address().port } });
  t.equal(s.localAddress, '::1', 'bound on the IPv6 address');
  const v4 = engine.createSession({ codec: 'PCMU', payloadType: 0, family: 4 });
  t.equal(v4.localAddress, '127.0.0.1', 'IPv4 sessions keep the IPv4 address');
  let samples = 0;
  s.on('audio', (p) => (samples += p.length));
  const tone = Buffer.alloc(160);
  for (let i = 0; i < 160; i++) tone[i] = i % 2 ? 0x20 : 0xa0;
  for (let i = 0; i < 25; i++) {
    peer.send(rtpPacket(i, i * 160, 0x66, 0, i === 0, tone), s.localPort, '::1');
    await sleep(20);
  }
  await sleep(300);
  const st = s.stats();
  t.ok(fromServer >= 10 && src === '::1', `peer got ${fromServer} packets from ${src}`);
  t.equal(st.packetsIn, 25, 'all inbound packets accepted');
  t.ok(samples >= 160 * 20, `decoded inbound audio delivered (${samples} samples)`);
  t.same(st.remote, { address: '::1', port: peer.address().port });
  t.equal(st.jitter?.received, 25);
  t.throws(() => s.setRemote('127.0.0.1', 5000), /IPv4 remote 127\.0\.0\.1 cannot be reached from the IPv6 media socket/, 'a family switch is refused, not silently lost');
  t.throws(() => engine.createSession({ codec: 'PCMU', payloadType: 0, family: 4, remote: { address: '::1', port: 5000 } }), /IPv6 remote ::1 cannot be reached/);
  peer.close();
  s.close();
  v4.close();
});

t.test('engine: the dual-stack wildcard takes IPv4 peers (as IPv4-mapped)', async (t) => {
  const s = dual.createSession({ codec: 'PCMU', payloadType: 0, family: 4, remote: { address: '127.0.0.1', port: 9 } });
  t.same(s.stats().remote, { address: '::ffff:127.0.0.1', port: 9 });
  s.setRemote('::1', 9);
  t.same(s.stats().remote, { address: '::1', port: 9 });
  s.close();
});

t.test('Call: a re-INVITE that moves an IPv6 call to IPv4 media is answered 488', async (t) => {
  const session = engine.createSession({ codec: 'PCMU', payloadType: 0, family: 6, remote: { address: '::1', port: 6000 } });
  const offer = 'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n';
  const call = new Call({
    callId: 'v6', from: '1', to: '2', tenant: { id: 't', greeting: 'Hi', voice: 'kal' } as unknown as Tenant, session,
    negotiation: negotiate(offer, { local: { address: '::1', port: session.localPort }, origin: { sessionId: '1', sessionVersion: 1 } }),
    advertisedAddress: '::1', capabilities: {}, sdpSessionId: '1', synthesize: async () => new Int16Array(0),
  });
  const dialog = Object.assign(new EventEmitter(), { local: { sdp: '' }, destroy: async () => ({}) });
  call.attachDialog(dialog);
  const sent: { status: number; reason?: string }[] = [];
  const res = { send: (status: number, o?: { headers?: Record<string, string> }) => sent.push({ status, ...(o?.headers?.Reason ? { reason: o.headers.Reason } : {}) }) };
  dialog.emit('modify', { body: offer.replace(/IP6 ::1/g, 'IP4 127.0.0.1') }, res);
  await sleep(10);
  t.equal(sent[0]?.status, 488, `488 (${sent[0]?.reason})`);
  dialog.emit('modify', { body: offer.replace('m=audio 6000', 'm=audio 6002') }, res);
  await sleep(10);
  t.equal(sent[1]?.status, 200, 'staying on IPv6 is fine');
  await call.hangup();
});
