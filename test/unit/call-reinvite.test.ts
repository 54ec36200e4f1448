// re-INVITE as carriers do it: codec change mid-call on the real media core (the peer gets the
// new payload type), 488 keeps the old codec, o= version rules, glare (491 both ways, retry
// after the RFC 3261 §14.1 wait with a fresh offer), 500 + Retry-After for an offer that
// overlaps one still being answered, our re-offer's answer applied.
// Ports: RTP 31700-31799 (media-wiring range 31000-31999).
import t from 'tap';
import dgram from 'node:dgram';
import { once, EventEmitter } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine } from '../../src/media/index.ts';
import { Call, type CallClock, type CallDialog, type ReinviteResponse, type SdpRelay } from '../../src/call/call.ts';
import { negotiate, parseSdp } from '../../src/sdp/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';

setLogLevel(process.env.TEST_LOG === '1' ? 'debug' : 'silent');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tenant = { id: 'acme', name: 'Acme', greeting: 'Hello', voice: 'kal' } as unknown as Tenant;

/** The carrier's SDP: `formats` on the m= line, o= version `v`. */
function sdp(opts: { port?: number; formats?: string; v?: number; addr?: string; dir?: string } = {}): string {
  const formats = opts.formats ?? '0 8 101';
  const maps: Record<string, string> = { 0: 'a=rtpmap:0 PCMU/8000', 8: 'a=rtpmap:8 PCMA/8000', 18: 'a=rtpmap:18 G729/8000', 101: 'a=rtpmap:101 telephone-event/8000' };
  return [
    'v=0', `o=carrier 4242 ${opts.v ?? 1} IN IP4 127.0.0.1`, 's=-', `c=IN IP4 ${opts.addr ?? '127.0.0.1'}`, 't=0 0',
    `m=audio ${opts.port ?? 40000} RTP/AVP ${formats}`, ...formats.split(' ').map((f) => maps[f]!).filter(Boolean), `a=${opts.dir ?? 'sendrecv'}`,
  ].join('\r\n') + '\r\n';
}

class FakeSession extends EventEmitter {
  readonly localAddress = '127.0.0.1';
  readonly localPort = 31790;
  log: string[] = [];
  setRemote(a: string, p: number): void { this.log.push(`remote ${a}:${p}`); }
  setCodec(c: string, pt: number): void { this.log.push(`codec ${c}/${pt}`); }
  setTelephoneEventPayloadType(pt: number | undefined): void { this.log.push(`te ${pt}`); }
  setDirection(d: string): void { this.log.push(`direction ${d}`); }
  play(): void {}
  flush(): void { this.log.push('flush'); }
  stats() { return { packetsIn: 0, packetsOut: 0, lastRxAgoMs: null }; }
  close(): void {}
}

interface Sent { method: string; body?: string; resolve: (r: { status: number; body?: string }) => void }

/** A dialog whose in-dialog requests wait until the test answers them. */
class FakeDialog extends EventEmitter implements CallDialog {
  local = { sdp: '' };
  sent: Sent[] = [];
  destroy(): Promise<unknown> { return Promise.resolve(); }
  request(o: { method: string; body?: string }): Promise<{ status: number; body?: string }> {
    return new Promise((resolve) => this.sent.push({ method: o.method, ...(o.body !== undefined ? { body: o.body } : {}), resolve }));
  }
  /** The peer's re-INVITE; resolves with our final response. */
  reinvite(body: string): Promise<{ status: number; body?: string; headers?: Record<string, string> }> {
    return new Promise((resolve) => {
      const res: ReinviteResponse = { send: (status, o) => resolve({ status, ...(o ?? {}) }) };
      this.emit('modify', { body }, res);
    });
  }
  /** Wait until the Call has sent `n` requests. */
  async requests(n: number): Promise<Sent[]> {
    for (let i = 0; i < 200 && this.sent.length < n; i++) await sleep(5);
    return this.sent;
  }
}

class FakeClock implements CallClock {
  t = 0;
  private seq = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  setInterval(): unknown { return 0; }
  clearInterval(): void {}
  advance(ms: number): void {
    const end = this.t + ms;
    for (const [id, e] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (e.at > end) break;
      this.timers.delete(id);
      this.t = e.at;
      e.fn();
    }
    this.t = end;
  }
}

function fakeCall(opts: { relay?: SdpRelay; clock?: FakeClock } = {}) {
  const session = new FakeSession();
  const offer = sdp();
  const negotiation = negotiate(offer, { local: { address: '127.0.0.1', port: session.localPort }, origin: { sessionId: '77', sessionVersion: 1 } });
  const call = new Call({
    callId: 'reinv-1', from: '+14155550142', to: '+18005550100', tenant, session, negotiation, remoteSdp: offer,
    advertisedAddress: '127.0.0.1', capabilities: {}, sdpSessionId: '77', synthesize: async () => new Int16Array(160),
    ...(opts.relay ? { sdpRelay: opts.relay } : {}), ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const dialog = new FakeDialog();
  call.attachDialog(dialog);
  dialog.emit('ack', {});
  session.log.length = 0; // the ACK opened sending (direction recvonly → sendrecv)
  return { call, session, dialog };
}

const versionOf = (s: string | undefined) => parseSdp(s!).origin.sessionVersion;

// ---- the real media core: the peer hears the new codec -----------------------------------

const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 31700, portMax: 31789 });
t.teardown(() => engine.close());

t.test('codec change mid-call: re-INVITE offering only PCMA → RTP switches to PT 8; G.729-only → 488, PCMA goes on', async (t) => {
  const peer = dgram.createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  const pts: number[] = [];
  peer.on('message', (m) => {
    const pt = m[1]! & 0x7f;
    if (m.length >= 12 && (pt < 72 || pt > 76)) pts.push(pt);
  });
  const port = peer.address().port;
  const session = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port }, rtcpIntervalMs: 0 });
  const offer = sdp({ port });
  const negotiation = negotiate(offer, { local: { address: '127.0.0.1', port: session.localPort }, origin: { sessionId: '9', sessionVersion: 1 } });
  const call = new Call({
    callId: 'reinv-media', from: 'a', to: 'b', tenant, session, negotiation, remoteSdp: offer, advertisedAddress: '127.0.0.1',
    capabilities: {}, sdpSessionId: '9', synthesize: async () => new Int16Array(160),
  });
  t.teardown(() => call.hangup());
  const dialog = new FakeDialog();
  call.attachDialog(dialog);
  dialog.emit('ack', {});
  await sleep(200);
  t.ok(pts.length > 3 && pts.every((p) => p === 0), 'PCMU (PT 0) before');

  let r = await dialog.reinvite(sdp({ port, formats: '8 101', v: 2 }));
  t.equal(r.status, 200);
  t.match(r.body, /m=audio \d+ RTP\/AVP 8 101\r\n/, 'answer: PCMA');
  t.equal(versionOf(r.body), '2', 'changed answer: o= version + 1');
  t.equal(call.audio.codec, 'PCMA');
  const mark = pts.length;
  await sleep(300);
  const after = pts.slice(mark + 2); // a packet or two may have been in flight
  t.ok(after.length > 5, `RTP keeps flowing (${after.length} packets)`);
  t.ok(after.every((p) => p === 8), `the peer now receives PT 8 (got ${[...new Set(after)].join(',')})`);

  r = await dialog.reinvite(sdp({ port, formats: '18', v: 3 }));
  t.equal(r.status, 488, 'no acceptable codec → 488');
  t.equal(call.state, 'answered', 'the call goes on');
  t.equal(call.audio.codec, 'PCMA', 'on the old codec');
  const mark2 = pts.length;
  await sleep(200);
  t.ok(pts.slice(mark2).length > 3 && pts.slice(mark2).every((p) => p === 8), 'still PCMA after the 488');
});

// ---- o= version rules -----------------------------------------------------------------------

t.test('o= rules: same version = no change (answer and session untouched); changed SDP = next version', async (t) => {
  const { call, session, dialog } = fakeCall();
  t.teardown(() => call.hangup());
  const first = call.sdp;
  let r = await dialog.reinvite(sdp({ formats: '0 8 101', v: 1 }));
  t.equal(r.body, first, 'same o= version and content: our SDP as it was, same version');
  t.same(session.log, [], 'nothing touched');

  r = await dialog.reinvite(sdp({ formats: '8 101', v: 2 }));
  t.equal(versionOf(r.body), '2');
  t.same(session.log, ['codec PCMA/8'], 'codec switched');
  const v2 = r.body;

  r = await dialog.reinvite(sdp({ formats: '8 101', v: 2 }));
  t.equal(r.body, v2, 'a session refresh (same version) gets the identical answer');

  r = await dialog.reinvite(sdp({ formats: '8 101', v: 3 }));
  t.equal(r.body, v2, 'new version, same media: our answer is unchanged, so our version stays');

  r = await dialog.reinvite(sdp({ formats: '8 101', v: 3, port: 40100 }));
  t.equal(r.status, 200, 'changed content without a new version is still taken (with a warning)');
  t.same(session.log.at(-1), 'remote 127.0.0.1:40100');
  t.equal(versionOf(r.body), '2', 'our answer did not change (same codec, same port)');

  r = await dialog.reinvite(sdp({ formats: '0 101', v: 4, port: 40100, dir: 'sendonly' }));
  t.equal(versionOf(r.body), '3', 'hold with PCMU: our answer changed, next version');
  t.match(r.body, /a=recvonly/);
});

// ---- glare --------------------------------------------------------------------------------

t.test('glare: a re-INVITE while ours is out gets 491; ours applies its answer', async (t) => {
  const { call, session, dialog } = fakeCall();
  t.teardown(() => call.hangup());
  const done = call.reoffer({ codecs: ['PCMA'] });
  const [ours] = await dialog.requests(1);
  t.equal(ours!.method, 'INVITE');
  t.match(ours!.body, /m=audio \d+ RTP\/AVP 8 101\r\n/, 'we offer only PCMA (+ telephone-event)');
  t.equal(versionOf(ours!.body), '2', 'our changed offer: next version');

  const theirs = await dialog.reinvite(sdp({ formats: '0 101', v: 2 }));
  t.equal(theirs.status, 491, 'their offer crossed ours → 491 Request Pending');
  t.same(session.log, [], 'their offer was not applied');

  ours!.resolve({ status: 200, body: sdp({ formats: '8 101', v: 2, port: 40200 }) });
  t.equal(await done, 200);
  t.equal(call.audio.codec, 'PCMA');
  t.same(session.log, ['codec PCMA/8', 'remote 127.0.0.1:40200'], 'the answer to our offer is applied');
  t.equal(call.sdp, ours!.body, 'our offer is the session\'s SDP now');

  const later = await dialog.reinvite(sdp({ formats: '8 101', v: 3, port: 40200 }));
  t.equal(later.status, 200, 'with nothing of ours outstanding, offers are answered again');
  t.equal(versionOf(later.body), '3', 'the answer differs from our last offer: next version');
});

t.test('glare: our re-INVITE gets 491 → retried after the §14.1 wait with a fresh offer; their re-INVITE in between is answered', async (t) => {
  const clock = new FakeClock();
  const { call, session, dialog } = fakeCall({ clock });
  t.teardown(() => call.hangup());
  const done = call.reoffer({ codecs: ['PCMA'] });
  const [first] = await dialog.requests(1);
  first!.resolve({ status: 491 });
  await sleep(10);
  t.equal(dialog.sent.length, 1, 'no retry before the wait');
  t.equal(clock.timers.size, 1, 'a back-off timer is armed');

  // the peer (owner of the Call-ID, longer wait) gets in first: answered normally
  const theirs = await dialog.reinvite(sdp({ formats: '0 101', v: 2, port: 40300 }));
  t.equal(theirs.status, 200);
  t.same(session.log, ['remote 127.0.0.1:40300']);

  clock.advance(2000); // the wait is at most 2 s for the side that does not own the Call-ID
  const [, second] = await dialog.requests(2);
  t.ok(second, 'retried');
  t.match(second!.body, /m=audio \d+ RTP\/AVP 8 101\r\n/, 'still offering what was asked');
  t.ok(Number(versionOf(second!.body)) > Number(versionOf(theirs.body)), 'a fresh offer: version above our last answer');
  second!.resolve({ status: 200, body: sdp({ formats: '8 101', v: 3, port: 40300 }) });
  t.equal(await done, 200);
  t.equal(call.audio.codec, 'PCMA');
});

t.test('glare: a non-2xx other than 491 leaves the session unchanged; reoffer without codecs sends our SDP unchanged', async (t) => {
  const { call, session, dialog } = fakeCall();
  t.teardown(() => call.hangup());
  const before = call.sdp;
  const done = call.reoffer({ codecs: ['PCMA'] });
  const [first] = await dialog.requests(1);
  first!.resolve({ status: 488 });
  t.equal(await done, 488);
  t.equal(call.sdp, before);
  t.same(session.log, []);
  const refresh = call.reoffer();
  const [, second] = await dialog.requests(2);
  t.equal(second!.body, before, 'no codecs: our current SDP, same o= version');
  second!.resolve({ status: 200, body: sdp({ v: 1 }) });
  t.equal(await refresh, 200);
});

t.test('offer before the previous one is answered (slow relay) → 500 + Retry-After', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const relay: SdpRelay = {
    fromCarrier: async (s) => { await gate; return s; },
    toCarrier: async (s) => s,
  };
  const { call, dialog } = fakeCall({ relay });
  t.teardown(() => call.hangup());
  const first = dialog.reinvite(sdp({ formats: '8 101', v: 2 }));
  const second = await dialog.reinvite(sdp({ formats: '0 101', v: 3 }));
  t.equal(second.status, 500);
  t.match(second.headers?.['Retry-After'], /^([0-9]|10)$/, 'Retry-After 0-10 s');
  release();
  t.equal((await first).status, 200, 'the first is answered normally');
});

t.test('createReoffer keeps the session\'s m= lines and payload types; processAnswer reads the audio line by index', async (t) => {
  const { createReoffer, processAnswer } = await import('../../src/sdp/index.ts');
  const offer = [
    'v=0', 'o=carrier 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    'm=video 5000 RTP/AVP 96', 'a=rtpmap:96 H264/90000',
    'm=audio 6000 RTP/AVP 96 0 97', 'a=rtpmap:96 opus/48000/2', 'a=rtpmap:97 telephone-event/48000',
  ].join('\r\n') + '\r\n';
  const ours = negotiate(offer, { local: { address: '127.0.0.1', port: 31000 }, capabilities: { opus: true }, origin: { sessionId: '5', sessionVersion: 1 } });
  t.equal(ours.audio.mediaIndex, 1);
  const re = createReoffer({
    current: ours.sdp, mediaIndex: 1, codecs: ['opus', 'PCMA'], capabilities: { opus: true },
    payloadTypes: { opus: 96 }, sessionVersion: 2,
  });
  t.equal(re.offer.media.length, 2, 'as many m= lines as before (RFC 3264 §8)');
  t.equal(re.offer.media[0]!.port, 0, 'the rejected video line stays rejected');
  t.same(re.offer.media[1]!.formats, ['96', '8', '101', '110'], 'opus keeps PT 96; PCMA; telephone-event at 8 and 48 kHz');
  t.equal(re.offer.origin.sessionVersion, '2');
  t.throws(() => createReoffer({ current: ours.sdp, mediaIndex: 1, codecs: ['opus'], sessionVersion: 2 }), { message: /cannot offer opus/ });
  const answer = [
    'v=0', 'o=carrier 1 2 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.2', 't=0 0',
    'm=video 0 RTP/AVP 96', 'm=audio 6100 RTP/AVP 8 101', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000',
  ].join('\r\n') + '\r\n';
  const a = processAnswer(answer, re.offer, 1);
  t.same([a.codec, a.payloadType, a.telephoneEvent?.payloadType, a.remote, a.mediaIndex], ['PCMA', 8, 101, { address: '127.0.0.2', port: 6100 }, 1]);
});
