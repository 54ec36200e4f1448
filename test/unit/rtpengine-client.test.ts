// rtpengine ng client and anchor: URL/config parsing, error path with no daemon, and the
// offer/answer/query/delete round trip against a private rtpengine-daemon (userspace, loopback).
// Ports: ng 22300-22399, rtpengine media 30000-30999.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import {
  RtpengineAnchor, RtpengineClient, RtpengineError, createRtpengineAnchor, parseRtpengineUrl, rtpengineConfigFromEnv,
} from '../../src/media/rtpengine/index.ts';
import { freePort } from '../helpers/ports.ts';
import { RTPENGINE_RANGES, rtpengineBinary, startRtpengine } from '../helpers/rtpengine.ts';
import { requireTool } from '../helpers/require.ts';

setLogLevel('silent');

function sdp(port: number, pts = '0 8 101', extra = 'a=rtpmap:101 telephone-event/8000\r\n'): string {
  return `v=0\r\no=- 4711 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP ${pts}\r\n${extra}a=sendrecv\r\n`;
}
const mPort = (s: string): number => Number(/^m=audio (\d+) /m.exec(s)![1]);

t.test('parseRtpengineUrl', async (t) => {
  t.same(parseRtpengineUrl('udp://127.0.0.1:22222'), { host: '127.0.0.1', port: 22222 });
  t.same(parseRtpengineUrl('127.0.0.1:2223'), { host: '127.0.0.1', port: 2223 });
  t.same(parseRtpengineUrl('ng://rtp.example.net:22222/'), { host: 'rtp.example.net', port: 22222 });
  t.same(parseRtpengineUrl('udp://[::1]:22222'), { host: '::1', port: 22222 });
  t.throws(() => parseRtpengineUrl('tcp://127.0.0.1:22222'), /only udp/);
  t.throws(() => parseRtpengineUrl('udp://127.0.0.1'), /expected udp:\/\/host:port/);
  t.throws(() => parseRtpengineUrl('udp://127.0.0.1:70000'), /out of range/);
});

t.test('rtpengineConfigFromEnv', async (t) => {
  t.equal(rtpengineConfigFromEnv({}), null, 'unset = off');
  t.equal(rtpengineConfigFromEnv({ RTPENGINE_URL: '  ' }), null, 'empty = off');
  t.equal(createRtpengineAnchor({}), null);
  t.same(rtpengineConfigFromEnv({ RTPENGINE_URL: 'udp://127.0.0.1:22222' }), {
    url: 'udp://127.0.0.1:22222', timeoutMs: 1500, transcode: [], flags: [],
  });
  t.same(rtpengineConfigFromEnv({
    RTPENGINE_URL: 'udp://10.0.0.2:22222', RTPENGINE_TIMEOUT_MS: '800', RTPENGINE_TRANSCODE: 'PCMU, PCMA',
    RTPENGINE_DIRECTION: 'external,internal', RTPENGINE_FLAGS: 'SIP-source-address',
  }), {
    url: 'udp://10.0.0.2:22222', timeoutMs: 800, transcode: ['PCMU', 'PCMA'], direction: ['external', 'internal'], flags: ['SIP-source-address'],
  });
  t.throws(() => rtpengineConfigFromEnv({ RTPENGINE_URL: 'x:1', RTPENGINE_TIMEOUT_MS: 'soon' }), /RTPENGINE_TIMEOUT_MS/);
  t.throws(() => rtpengineConfigFromEnv({ RTPENGINE_URL: 'x:1', RTPENGINE_DIRECTION: 'one' }), /RTPENGINE_DIRECTION/);
});

t.test('rtpengine down: clear error within the timeout', async (t) => {
  // a port in our ng range with nobody listening
  const port = await freePort(RTPENGINE_RANGES.ng, 'udp');
  const c = new RtpengineClient({ url: `udp://127.0.0.1:${port}`, timeoutMs: 300 });
  t.teardown(() => c.close());
  const t0 = performance.now();
  const err = await c.offer({ 'call-id': 'down-1', 'from-tag': 'a', sdp: sdp(28000) }).catch((e: unknown) => e);
  const ms = performance.now() - t0;
  t.type(err, RtpengineError);
  const e = err as RtpengineError;
  t.equal(e.kind, 'timeout');
  t.equal(e.command, 'offer');
  t.match(e.message, new RegExp(`rtpengine at udp://127.0.0.1:${port} did not answer 'offer' within 300 ms`));
  t.ok(ms >= 280 && ms < 1000, `failed after ${Math.round(ms)} ms`);

  // The anchor surfaces the same error; release after a failed offer sends one delete (also failing quietly).
  const anchor = new RtpengineAnchor({ url: `udp://127.0.0.1:${port}`, timeoutMs: 200 });
  const leg = anchor.begin('down-2', 'carrier-tag');
  await t.rejects(leg.offerFromCarrier(sdp(28000)), { name: 'RtpengineError', kind: 'timeout' });
  const r1 = leg.release();
  t.equal(leg.release(), r1, 'release is memoised');
  await r1; // never rejects
  t.equal(anchor.activeCalls, 0);
  await anchor.close();
  await t.rejects(c.ping(), { name: 'RtpengineError', kind: 'timeout' });
});

t.test('a late reply after a timeout is dropped quietly', async (t) => {
  // A fake "rtpengine" that answers ping after 150 ms while the client waits 60 ms.
  const fake = dgram.createSocket('udp4');
  fake.bind(0, '127.0.0.1');
  await once(fake, 'listening');
  fake.on('message', (m, r) => {
    const cookie = m.subarray(0, m.indexOf(0x20)).toString();
    setTimeout(() => fake.send(Buffer.from(`${cookie} d6:result4:ponge`), r.port, r.address), 150);
  });
  t.teardown(() => fake.close());
  const c = new RtpengineClient({ url: `udp://127.0.0.1:${fake.address().port}`, timeoutMs: 60 });
  t.teardown(() => c.close());
  const logged: unknown[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => { logged.push(a); };
  try {
    await t.rejects(c.ping(), { name: 'RtpengineError', kind: 'timeout' });
    await new Promise((r) => setTimeout(r, 250));
  } finally {
    console.log = orig;
  }
  t.same(logged, [], 'nothing printed to stdout');
});

t.test('closing the client fails pending commands at once', async (t) => {
  const port = await freePort(RTPENGINE_RANGES.ng, 'udp');
  const c = new RtpengineClient({ url: `udp://127.0.0.1:${port}`, timeoutMs: 5000 });
  const p = c.ping();
  await new Promise((r) => setTimeout(r, 20));
  c.close();
  await t.rejects(p, { name: 'RtpengineError', kind: 'closed' });
  await t.rejects(c.ping(), { name: 'RtpengineError', kind: 'closed' });
});

t.test('against rtpengine-daemon', { skip: requireTool(t, 'against rtpengine-daemon', !!rtpengineBinary(), 'rtpengine', 'rtpengine-daemon') }, async (t) => {
  const rte = await startRtpengine({ mediaPorts: 40, logLevel: 6 });
  t.teardown(() => rte.stop());
  const client = new RtpengineClient({ url: rte.url, timeoutMs: 1000 });
  t.teardown(() => client.close());
  await client.ping();

  t.test('offer / answer / query / delete round trip', async (t) => {
    const callId = `rt-${Date.now()}`;
    const o = await client.offer({ 'call-id': callId, 'from-tag': 'carrier', sdp: sdp(28100), replace: ['origin', 'session-connection'] });
    t.equal(o.result, 'ok');
    const towardUs = mPort(o.sdp);
    t.ok(towardUs >= rte.media.min && towardUs <= rte.media.max, `offer port ${towardUs} from rtpengine's range`);
    t.match(o.sdp, /c=IN IP4 127\.0\.0\.1/);
    const a = await client.answer({ 'call-id': callId, 'from-tag': 'carrier', 'to-tag': 'us', sdp: sdp(28102, '0 101') });
    const towardCarrier = mPort(a.sdp);
    t.ok(towardCarrier >= rte.media.min && towardCarrier <= rte.media.max && towardCarrier !== towardUs);
    t.match(a.sdp, /m=audio \d+ RTP\/AVP 0 101/, 'answer keeps our codec choice');
    const q = await client.query({ 'call-id': callId });
    t.equal(q.result, 'ok');
    t.ok(q.tags && typeof q.tags === 'object' && 'carrier' in (q.tags as object) && 'us' in (q.tags as object), 'both tags known');
    const d = await client.delete({ 'call-id': callId });
    t.equal(d.result, 'ok');
    t.notOk(d.warning);
    const d2 = await client.delete({ 'call-id': callId });
    t.match(d2.warning, /not found/i, 'second delete: warning, not error');
    await t.rejects(client.query({ 'call-id': callId }), { name: 'RtpengineError', kind: 'rejected' }, 'query after delete fails');
  });

  t.test('result: error surfaces error-reason', async (t) => {
    const err = await client.offer({ 'call-id': 'bad-sdp', 'from-tag': 'x', sdp: 'garbage' }).catch((e: unknown) => e) as RtpengineError;
    t.type(err, RtpengineError);
    t.equal(err.kind, 'rejected');
    t.equal(err.reason, 'Failed to parse SDP');
    t.match(err.message, /rejected 'offer': Failed to parse SDP/);
    const e2 = await client.answer({ 'call-id': 'no-such-call', 'from-tag': 'x', 'to-tag': 'y', sdp: sdp(28104) }).catch((e: unknown) => e) as RtpengineError;
    t.equal(e2.kind, 'rejected');
    t.match(e2.reason, /unknown call-id/i);
  });

  t.test('anchor: offer from carrier, answer from us, release exactly once', async (t) => {
    const anchor = new RtpengineAnchor({ url: rte.url, timeoutMs: 1000 });
    t.teardown(() => anchor.close());
    const leg = anchor.begin(`anchor-${Date.now()}`, 'carrier-ft');
    const towardUs = await leg.offerFromCarrier(sdp(28110, '0 8 101'));
    t.not(mPort(towardUs), 28110);
    t.notMatch(towardUs, /a=ice/);
    const toCarrier = await leg.answerFromUs(sdp(28112, '8 101'));
    t.match(toCarrier, /m=audio \d+ RTP\/AVP 8 101/);
    t.equal(anchor.activeCalls, 1);
    const q = await leg.query();
    const streams = JSON.stringify(q);
    t.match(streams, /"port":28110/, 'rtpengine knows the carrier endpoint');
    t.match(streams, /"port":28112/, 'rtpengine knows our endpoint');
    t.same(leg.state.commands, ['offer', 'answer']);
    await Promise.all([leg.release(), leg.release()]);
    t.equal(anchor.activeCalls, 0);
    t.ok(leg.released);
    await t.rejects(leg.query(), { name: 'RtpengineError', kind: 'rejected' }, 'call gone from rtpengine');
    await t.rejects(leg.offerFromCarrier(sdp(28110)), { name: 'RtpengineError', kind: 'closed' }, 'no commands after release');
    const deletes = rte.log().split('\n').filter((l) => l.includes(leg.callId) && /Received command 'delete'/.test(l));
    t.equal(deletes.length, 1, 'exactly one delete reached rtpengine');
  });

  t.test('anchor: delayed offer (we offer, carrier answers in ACK)', async (t) => {
    const anchor = new RtpengineAnchor({ url: rte.url, timeoutMs: 1000 });
    t.teardown(() => anchor.close());
    const leg = anchor.begin(`delayed-${Date.now()}`, 'carrier-ft');
    const toCarrier = await leg.toCarrier(sdp(28120, '0 8 101'), 'offer');
    t.not(mPort(toCarrier), 28120);
    const towardUs = await leg.fromCarrier(sdp(28122, '0 101'), 'answer');
    t.match(towardUs, /m=audio \d+ RTP\/AVP 0 101/);
    t.not(mPort(towardUs), mPort(toCarrier));
    // a re-INVITE from the carrier afterwards (offer from the carrier's tag) still works
    const reOffer = await leg.fromCarrier(sdp(28124, '0 101'), 'offer');
    t.ok(mPort(reOffer) >= rte.media.min && mPort(reOffer) <= rte.media.max, 're-offer toward us is rtpengine\'s');
    const reAnswer = await leg.toCarrier(sdp(28120, '0 101'), 'answer');
    t.ok(mPort(reAnswer) >= rte.media.min && mPort(reAnswer) <= rte.media.max, 're-answer toward the carrier is rtpengine\'s');
    t.same(leg.state.commands, ['offer', 'answer', 'offer', 'answer']);
    await leg.release();
  });

  t.test('anchor.close releases live calls', async (t) => {
    const anchor = new RtpengineAnchor({ url: rte.url, timeoutMs: 1000 });
    const leg = anchor.begin(`close-${Date.now()}`, 'c');
    await leg.offerFromCarrier(sdp(28130));
    await anchor.close();
    t.ok(leg.released);
    await t.rejects(client.query({ 'call-id': leg.callId }), { name: 'RtpengineError', kind: 'rejected' });
  });
});
