import t, { type Test } from 'tap';
import { EventEmitter } from 'node:events';
import { Call, type EndReason, type CallEnded } from '../../src/call/call.ts';
import { negotiate, parseSdp, createOffer, type Negotiation } from '../../src/sdp/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { FakeClock } from './call-helpers.ts';

setLogLevel('silent');

class FakeSession extends EventEmitter {
  localAddress = '127.0.0.1';
  localPort = 24002;
  closed = 0;
  played: Int16Array[] = [];
  flushed = 0;
  remote: [string, number][] = [];
  codec: [string, number][] = [];
  lastRxAgoMs: number | null = null;
  setRemote(a: string, p: number): void { this.remote.push([a, p]); }
  directions: string[] = [];
  setCodec(c: 'PCMU' | 'PCMA' | 'opus', pt: number): void { this.codec.push([c, pt]); }
  setDirection(d: string): void { this.directions.push(d); }
  play(pcm: Int16Array): void { if (this.closed) throw new Error('closed'); this.played.push(pcm); }
  flush(): void { this.flushed++; }
  stats() { return { packetsIn: 10, packetsOut: 20, lastRxAgoMs: this.lastRxAgoMs }; }
  close(): void { this.closed++; }
}

class FakeDialog extends EventEmitter {
  local = { sdp: '' };
  destroyed = 0;
  byeHeaders: Record<string, string>[] = [];
  destroy(opts?: { headers: Record<string, string> }): Promise<unknown> {
    this.destroyed++;
    this.byeHeaders.push(opts?.headers ?? {});
    return Promise.resolve({});
  }
}

const tenant = { id: 'northwind', name: 'Northwind', isDefault: true, dids: [], language: 'en-US', greeting: 'Hello there', voice: 'slt' } as unknown as Tenant;
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n';

function setup(over: { maxCallSeconds?: number; rtpTimeoutSeconds?: number; synth?: (text: string) => Promise<Int16Array>; delayed?: boolean } = {}) {
  const clock = new FakeClock(1_000_000);
  const session = new FakeSession();
  const dialog = new FakeDialog();
  const synthCalls: string[] = [];
  const rejects: number[] = [];
  const call = new Call({
    callId: 'c1', from: '100', to: '18005550100', tenant, session,
    negotiation: over.delayed ? delayedNeg() : negotiate(OFFER, { local: { address: '127.0.0.1', port: 24002 }, origin: { sessionId: '7', sessionVersion: 1 } }),
    ...(over.delayed ? { delayedOffer: delayedNeg().answer } : {}),
    advertisedAddress: '127.0.0.1', capabilities: {}, sdpSessionId: '7',
    maxCallSeconds: over.maxCallSeconds ?? 0, rtpTimeoutSeconds: over.rtpTimeoutSeconds ?? 0,
    synthesize: over.synth ?? (async (text) => { synthCalls.push(text); return new Int16Array(8000); }),
    reject: (s) => rejects.push(s),
    clock,
  });
  const ended: CallEnded[] = [];
  call.on('ended', (e: CallEnded) => ended.push(e));
  return { clock, session, dialog, call, ended, synthCalls, rejects };
}

/** Everything released exactly once. */
function assertReleased(t: Test, s: ReturnType<typeof setup>, reason: EndReason, bye: number): void {
  t.equal(s.call.state, 'ended');
  t.equal(s.session.closed, 1, 'media session closed once');
  t.same(s.ended.map((e) => e.reason), [reason], 'ended emitted once with the reason');
  t.equal(s.dialog.destroyed, bye, `BYE sent ${bye} time(s)`);
  t.equal(s.clock.timers.size, 0, 'no timers left');
  t.equal(s.session.listenerCount('playoutDone') + s.session.listenerCount('latched'), 0, 'session listeners removed');
  t.equal(s.dialog.listenerCount('destroy') + s.dialog.listenerCount('modify'), 0, 'dialog listeners removed');
}

function delayedNeg(): Negotiation {
  const o = createOffer({ local: { address: '127.0.0.1', port: 24002 }, origin: { sessionId: '7', sessionVersion: 1 } });
  return {
    answer: o.offer, sdp: o.sdp,
    audio: { codec: 'PCMU', payloadType: 0, clockRate: 8000, channels: 1, remote: null, offerDirection: 'sendrecv', answerDirection: 'sendrecv', localSends: false, remoteSends: false, hold: false, mediaIndex: 0 },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

/** The 200 went out and the caller ACKed it: an answered call. */
function answer(s: ReturnType<typeof setup>): void {
  s.call.attachDialog(s.dialog);
  s.dialog.emit('ack', {});
}

t.test('answer plays the greeting with the tenant voice', async (t) => {
  const s = setup();
  answer(s);
  t.equal(s.call.state, 'answered');
  await tick();
  t.same(s.synthCalls, ['Hello there']);
  t.equal(s.session.played.length, 1);
  let done = false;
  s.call.on('playout-done', () => (done = true));
  s.session.emit('playoutDone');
  t.ok(done, 'playout-done re-emitted');
  s.call.hangup();
});

t.test('caller BYE releases everything once', async (t) => {
  const s = setup({ maxCallSeconds: 60, rtpTimeoutSeconds: 5 });
  answer(s);
  s.clock.advance(2500);
  s.dialog.emit('destroy', {}, 'normal release');
  s.dialog.emit('destroy', {}, 'again');
  assertReleased(t, s, 'caller-bye', 0);
  t.equal(s.ended[0]!.durationMs, 2500);
  t.same(await s.call.ended, { reason: 'caller-bye', durationMs: 2500 });
  await s.call.hangup();
  t.equal(s.dialog.destroyed, 0, 'hangup after end is a no-op');
});

t.test('agent hangup sends one BYE with a Reason header', async (t) => {
  const s = setup({ maxCallSeconds: 60, rtpTimeoutSeconds: 5 });
  answer(s);
  await Promise.all([s.call.hangup(), s.call.hangup('shutdown')]);
  assertReleased(t, s, 'agent-hangup', 1);
  t.match(s.dialog.byeHeaders[0]!.Reason, /^Q\.850;cause=16/);
  s.dialog.emit('destroy', {});
  t.equal(s.ended.length, 1, 'late destroy ignored');
});

t.test('max call duration', async (t) => {
  const s = setup({ maxCallSeconds: 3 });
  answer(s);
  s.clock.advance(2999);
  t.equal(s.call.state, 'answered');
  s.clock.advance(1);
  assertReleased(t, s, 'max-duration', 1);
  t.equal(s.ended[0]!.durationMs, 3000);
  t.match(s.dialog.byeHeaders[0]!.Reason, /maximum call duration/);
});

t.test('RTP inactivity: never received', async (t) => {
  const s = setup({ rtpTimeoutSeconds: 5 });
  answer(s);
  s.clock.advance(4000);
  t.equal(s.call.state, 'answered');
  s.clock.advance(1000);
  assertReleased(t, s, 'rtp-timeout', 1);
  t.match(s.dialog.byeHeaders[0]!.Reason, /cause=102/);
});

t.test('RTP inactivity: flowing then stops', async (t) => {
  const s = setup({ rtpTimeoutSeconds: 5 });
  answer(s);
  s.session.lastRxAgoMs = 20;
  s.clock.advance(10_000);
  t.equal(s.call.state, 'answered', 'recent RTP keeps the call');
  s.session.lastRxAgoMs = 4000;
  s.clock.advance(1000);
  t.equal(s.call.state, 'answered');
  s.session.lastRxAgoMs = 5000;
  s.clock.advance(1000);
  assertReleased(t, s, 'rtp-timeout', 1);
});

t.test('RTP inactivity is suspended while the peer does not send (hold)', async (t) => {
  const s = setup({ rtpTimeoutSeconds: 5 });
  answer(s);
  const sent: { status: number; body?: string }[] = [];
  s.dialog.emit('modify', { body: OFFER.replace('a=rtpmap', 'a=inactive\r\na=rtpmap') }, { send: (status: number, o?: { body?: string }) => sent.push({ status, body: o?.body }) });
  t.equal(sent[0]!.status, 200);
  t.match(sent[0]!.body!, /a=inactive/);
  t.equal(s.session.flushed, 1, 'outbound audio flushed on hold');
  s.clock.advance(60_000);
  t.equal(s.call.state, 'answered');
  // un-hold: the watch window restarts
  s.dialog.emit('modify', { body: OFFER }, { send: (status: number, o?: { body?: string }) => sent.push({ status, body: o?.body }) });
  s.clock.advance(4000);
  t.equal(s.call.state, 'answered');
  s.clock.advance(1000);
  assertReleased(t, s, 'rtp-timeout', 1);
});

t.test('CANCEL before answer releases the media session, no BYE', async (t) => {
  const s = setup({ maxCallSeconds: 60 });
  s.call.cancel();
  s.call.cancel();
  assertReleased(t, s, 'canceled', 0);
  t.equal(s.ended[0]!.durationMs, 0);
  // 200 OK raced the CANCEL: the late dialog is torn down
  s.call.attachDialog(s.dialog);
  t.equal(s.dialog.destroyed, 1, 'late dialog gets a BYE');
  t.equal(s.session.closed, 1);
  t.equal(s.ended.length, 1);
});

t.test('hangup before answer rejects the INVITE', async (t) => {
  const s = setup();
  await s.call.hangup('shutdown');
  assertReleased(t, s, 'shutdown', 0);
  t.same(s.rejects, [503]);
  const s2 = setup();
  await s2.call.hangup();
  t.same(s2.rejects, [480]);
  t.equal(s2.ended[0]!.reason, 'rejected');
});

t.test('answer failure (fail) releases everything', async (t) => {
  const s = setup();
  s.call.fail(new Error('send failed'));
  s.call.fail(new Error('again'));
  assertReleased(t, s, 'error', 0);
});

t.test('greeting that finishes synthesizing after the call ended is not played', async (t) => {
  let resolve!: (p: Int16Array) => void;
  const s = setup({ synth: () => new Promise((r) => (resolve = r)) });
  answer(s);
  s.dialog.emit('destroy', {});
  resolve(new Int16Array(800));
  await tick();
  t.equal(s.session.played.length, 0);
  assertReleased(t, s, 'caller-bye', 0);
});

t.test('synthesis failure does not end the call', async (t) => {
  const s = setup({ synth: () => Promise.reject(new Error('flite missing')) });
  answer(s);
  await tick();
  t.equal(s.call.state, 'answered');
  await s.call.hangup();
  assertReleased(t, s, 'agent-hangup', 1);
});

t.test('re-INVITE: codec/remote change applied, version bumped; refresh keeps version; bad SDP → 488', async (t) => {
  const s = setup();
  answer(s);
  const replies: { status: number; body?: string; headers?: Record<string, string> }[] = [];
  const res = { send: (status: number, o?: { body?: string; headers?: Record<string, string> }) => replies.push({ status, ...o }) };
  // same offer: same answer, same o= version
  s.dialog.emit('modify', { body: OFFER }, res);
  t.equal(replies[0]!.status, 200);
  t.equal(parseSdp(replies[0]!.body!).origin.sessionVersion, '1');
  // new address and PCMA only
  s.dialog.emit('modify', { body: OFFER.replace(/127\.0\.0\.1/g, '127.0.0.9').replace('6000 RTP/AVP 0 8 101', '6100 RTP/AVP 8') }, res);
  t.equal(replies[1]!.status, 200);
  t.equal(parseSdp(replies[1]!.body!).origin.sessionVersion, '2');
  t.same(s.session.codec, [['PCMA', 8]]);
  t.same(s.session.remote, [['127.0.0.9', 6100]]);
  t.equal(s.call.audio.codec, 'PCMA');
  t.equal(s.dialog.local.sdp, replies[1]!.body);
  // no offer → our offer in the 200: every codec, the running one first (RFC 6337 §5.3);
  // the ACK brings the answer
  s.dialog.emit('modify', { body: '' }, res);
  t.equal(replies[2]!.status, 200);
  t.match(replies[2]!.body, /m=audio \d+ RTP\/AVP 8 0 101\r\n/);
  t.equal(parseSdp(replies[2]!.body!).origin.sessionVersion, '3', 'a changed SDP of ours: next version');
  s.dialog.emit('modify', { body: OFFER }, res);
  t.equal(replies[3]!.status, 491, 'an offer while ours waits for the ACK: 491');
  s.dialog.emit('ack', { body: OFFER.replace(/127\.0\.0\.1/g, '127.0.0.9').replace('6000 RTP/AVP 0 8 101', '6100 RTP/AVP 0 101') });
  await tick();
  t.equal(s.call.audio.codec, 'PCMU', 'the answer in the ACK switched the codec');
  t.same(s.session.codec, [['PCMA', 8], ['PCMU', 0]]);
  // G.729 only → 488, call continues
  s.dialog.emit('modify', { body: OFFER.replace('RTP/AVP 0 8 101', 'RTP/AVP 18') }, res);
  t.equal(replies[4]!.status, 488);
  t.match(replies[4]!.headers!.Reason, /no common codec: offered G729\/8000/);
  t.equal(s.call.state, 'answered');
  await s.call.hangup();
});

t.test('delayed offer: greeting waits for the ACK answer; codec/remote applied', async (t) => {
  const s = setup({ delayed: true, rtpTimeoutSeconds: 5 });
  s.call.attachDialog(s.dialog);
  await tick();
  t.same(s.synthCalls, [], 'no greeting before the answer');
  s.clock.advance(10_000);
  t.equal(s.call.state, 'answered', 'RTP timer idle until the answer');
  s.dialog.emit('ack', { body: OFFER.replace('RTP/AVP 0 8 101', 'RTP/AVP 8').replace('m=audio 6000', 'm=audio 6200') });
  await tick();
  t.same(s.session.codec, [['PCMA', 8]]);
  t.same(s.session.remote, [['127.0.0.1', 6200]]);
  t.same(s.synthCalls, ['Hello there']);
  s.clock.advance(5000);
  assertReleased(t, s, 'rtp-timeout', 1);
});

t.test('delayed offer: unusable answer in ACK → BYE', async (t) => {
  const s = setup({ delayed: true });
  s.call.attachDialog(s.dialog);
  s.dialog.emit('ack', { body: OFFER.replace('RTP/AVP 0 8 101', 'RTP/AVP 18') });
  assertReleased(t, s, 'error', 1);
});

t.test('delayed offer: no ACK → BYE after the ACK timeout', async (t) => {
  const s = setup({ delayed: true });
  s.call.attachDialog(s.dialog);
  s.clock.advance(34_000);
  assertReleased(t, s, 'no-ack', 1);
  t.match(s.dialog.byeHeaders[0]!.Reason, /no ACK/);
});

// ── a 200 is not an answered call until the caller ACKs it ──

t.test('no ACK: no greeting, no RTP out, BYE after 64·T1, never answered', async (t) => {
  const s = setup({ maxCallSeconds: 60 });
  let answered = 0;
  s.call.on('answered', () => answered++);
  t.same(s.session.directions, ['recvonly'], 'the media session sends nothing before the ACK');
  s.call.attachDialog(s.dialog);
  await tick();
  t.same(s.synthCalls, [], 'no greeting without the ACK');
  t.equal(answered, 0, 'no answered event');
  t.equal(s.call.answeredAt, null);
  s.clock.advance(33_999);
  t.equal(s.call.state, 'answered', 'the dialog stays until the ACK timeout (the edge gives up at 32 s; this is the backstop)');
  s.clock.advance(1);
  assertReleased(t, s, 'no-ack', 1);
  t.match(s.dialog.byeHeaders[0]!.Reason, /cause=408;text="no ACK/);
  t.same(s.ended[0], { reason: 'no-ack', durationMs: 0 });
  t.same(s.session.directions, ['recvonly'], 'never sent');
  t.same(s.synthCalls, []);
});

t.test('no ACK: the edge gives up first (its BYE) → no-ack, not caller-bye', async (t) => {
  const s = setup();
  s.call.attachDialog(s.dialog);
  s.clock.advance(32_000 - 1);
  s.dialog.emit('destroy', {}, 'ACK timeout');
  assertReleased(t, s, 'no-ack', 0);
  t.equal(s.call.answeredAt, null);
});

t.test('the ACK confirms: answered then, greeting and RTP start', async (t) => {
  const s = setup();
  let answeredAt: number | null = null;
  s.call.on('answered', () => (answeredAt = s.clock.now()));
  s.call.attachDialog(s.dialog);
  s.clock.advance(120);
  s.dialog.emit('ack', {});
  await tick();
  t.equal(answeredAt, 1_000_120, 'answered at the ACK');
  t.equal(s.call.answeredAt, 1_000_120);
  t.same(s.synthCalls, ['Hello there']);
  t.same(s.session.directions, ['recvonly', 'sendrecv'], 'sending starts with the ACK');
  s.dialog.emit('ack', {});
  t.same(s.session.directions, ['recvonly', 'sendrecv'], 'a second ACK changes nothing');
  s.clock.advance(40_000);
  t.equal(s.call.state, 'answered', 'no ACK timeout once ACKed');
  await s.call.hangup();
  t.equal(s.ended[0]!.durationMs, 40_000);
});

t.test('RTP from the offered address confirms before the ACK; from elsewhere it does not', async (t) => {
  const s = setup();
  s.call.attachDialog(s.dialog);
  s.session.emit('latched', { address: '198.51.100.9', port: 6000 });
  await tick();
  t.same(s.synthCalls, [], 'RTP from a foreign address: still waiting');
  t.same(s.session.directions, ['recvonly']);
  s.session.emit('latched', { address: '127.0.0.1', port: 6000 });
  await tick();
  t.same(s.synthCalls, ['Hello there'], 'RTP from the offered address: the conversation starts');
  t.same(s.session.directions, ['recvonly', 'sendrecv']);
  t.not(s.call.answeredAt, null);
  // still no ACK: the call ends as no-ack and is not counted as answered
  s.clock.advance(34_000);
  assertReleased(t, s, 'no-ack', 1);
  t.equal(s.call.answeredAt, null);
});

t.test('early RTP from the offered address (before the 200) opens sending; the 200 then confirms', async (t) => {
  const s = setup();
  s.session.emit('latched', { address: '127.0.0.1', port: 6000 });
  t.same(s.session.directions, ['recvonly', 'sendrecv'], 'keep-alive RTP may flow to a peer that sends');
  s.call.attachDialog(s.dialog);
  await tick();
  t.same(s.synthCalls, ['Hello there']);
  s.dialog.emit('ack', {});
  s.clock.advance(40_000);
  t.equal(s.call.state, 'answered');
  await s.call.hangup();
});

t.test('a hold offer before the ACK stays held after it', async (t) => {
  const s = setup();
  s.call.attachDialog(s.dialog);
  s.dialog.emit('modify', { body: OFFER.replace('a=rtpmap', 'a=sendonly\r\na=rtpmap') }, { send: () => undefined });
  t.same(s.session.directions, ['recvonly'], 'still nothing sent');
  s.dialog.emit('ack', {});
  t.same(s.session.directions, ['recvonly'], 'held: the peer sends only, we receive only');
  await s.call.hangup();
});
