// The Call with an SDP relay (rtpengine anchor): re-INVITEs from the carrier go through
// fromCarrier('offer') / toCarrier('answer') so the carrier's media stays on rtpengine;
// relay failures answer 488 / 503 and leave the media session untouched; a delayed-offer
// ACK answer goes through fromCarrier('answer').
import t from 'tap';
import { Call, type CallDialog, type ReinviteResponse, type SdpRelay } from '../../src/call/call.ts';
import { negotiate, createOffer } from '../../src/sdp/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel('silent');

const tenant = { id: 'acme', name: 'Acme', greeting: 'Hello', voice: 'kal' } as unknown as Tenant;

const offer = (port: number, addr = '10.9.9.9', dir = 'sendrecv', formats = '0 101') => [
  'v=0', 'o=rte 1 1 IN IP4 10.9.9.9', 's=-', `c=IN IP4 ${addr}`, 't=0 0',
  `m=audio ${port} RTP/AVP ${formats}`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', `a=${dir}`,
].join('\r\n') + '\r\n';

class FakeSession {
  readonly localAddress = '127.0.0.1';
  readonly localPort = 31000;
  log: string[] = [];
  setRemote(a: string, p: number): void { this.log.push(`remote ${a}:${p}`); }
  setCodec(c: string, pt: number): void { this.log.push(`codec ${c}/${pt}`); }
  setDirection(d: string): void { this.log.push(`direction ${d}`); }
  play(): void { this.log.push('play'); }
  flush(): void { this.log.push('flush'); }
  stats() { return { packetsIn: 0, packetsOut: 0, lastRxAgoMs: null }; }
  close(): void { this.log.push('close'); }
  on(): this { return this; }
  removeListener(): this { return this; }
}

class FakeDialog implements CallDialog {
  local = { sdp: 'initial-wire' };
  handlers = new Map<string, (...a: any[]) => void>();
  destroyed = 0;
  on(ev: string, fn: (...a: any[]) => void): this { this.handlers.set(ev, fn); return this; }
  removeListener(ev: string): this { this.handlers.delete(ev); return this; }
  destroy(): Promise<unknown> { this.destroyed++; return Promise.resolve(); }
  reinvite(body: string): Promise<{ status: number; body?: string; headers?: Record<string, string> }> {
    return new Promise((resolve) => {
      const res: ReinviteResponse = { send: (status, o) => resolve({ status, ...(o ?? {}) }) };
      this.handlers.get('modify')!({ body }, res);
    });
  }
}

class FakeRelay implements SdpRelay {
  ops: string[] = [];
  fail: 'from' | 'to' | null = null;
  async fromCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    this.ops.push(`from:${kind}`);
    if (this.fail === 'from') throw new Error('rtpengine rejected offer');
    // rtpengine's B-side toward us
    return sdp.replace(/^c=IN IP4 \S+/m, 'c=IN IP4 127.0.0.5').replace(/^m=audio \d+/m, 'm=audio 30010');
  }
  async toCarrier(sdp: string, kind: 'offer' | 'answer'): Promise<string> {
    this.ops.push(`to:${kind}`);
    if (this.fail === 'to') throw new Error('rtpengine timeout');
    return sdp.replace(/^c=IN IP4 \S+/m, 'c=IN IP4 203.0.113.1').replace(/^m=audio \d+/m, 'm=audio 30012');
  }
}

function setup(delayed = false) {
  const session = new FakeSession();
  const relay = new FakeRelay();
  const local = { address: '127.0.0.1', port: session.localPort };
  const o = createOffer({ local, origin: { sessionId: '5', sessionVersion: 1 } });
  const negotiation = delayed
    ? { answer: o.offer, sdp: o.sdp, audio: { ...negotiate(offer(30010), { local }).audio, remote: null } }
    : negotiate(offer(30010, '127.0.0.5'), { local, origin: { sessionId: '5', sessionVersion: 1 } });
  const call = new Call({
    callId: 'relay-1', from: 'a', to: 'b', tenant, session, negotiation, advertisedAddress: '127.0.0.1',
    capabilities: {}, sdpSessionId: '5', synthesize: async () => new Int16Array(160), sdpRelay: relay,
    ...(delayed ? { delayedOffer: o.offer } : {}),
  });
  const dialog = new FakeDialog();
  call.attachDialog(dialog);
  if (!delayed) dialog.handlers.get('ack')!({}); // the caller's ACK (a delayed offer's carries the answer: the test sends it)
  return { call, session, relay, dialog };
}

t.test('carrier re-INVITE goes through the relay both ways', async (t) => {
  const { call, session, relay, dialog } = setup();
  t.teardown(() => call.hangup());
  await new Promise((r) => setTimeout(r, 20)); // greeting queued
  session.log.length = 0;
  const ours = call.sdp;
  const r = await dialog.reinvite(offer(7000, '198.51.100.9', 'sendonly', '8 0'));
  t.equal(r.status, 200);
  t.same(relay.ops, ['from:offer', 'to:answer']);
  t.match(r.body, /c=IN IP4 203\.0\.113\.1/, 'the carrier is answered with rtpengine\'s side');
  t.match(r.body, /m=audio 30012 /);
  t.equal(dialog.local.sdp, r.body, 'dialog keeps the wire SDP');
  t.match(call.sdp, /m=audio 31000 /, 'the Call keeps our own SDP');
  t.not(call.sdp, ours, 'answer changed (recvonly) → new version');
  t.match(call.sdp, /^o=voice-agent 5 2 /m);
  t.match(call.sdp, /a=recvonly/);
  t.same(session.log, ['flush', 'direction recvonly'],
    'negotiated against rtpengine\'s side: same remote, PCMU kept (running codec preferred), hold applied');
});

t.test('relay failures leave the media untouched: 488 on the offer, 503 on the answer', async (t) => {
  const { call, session, relay, dialog } = setup();
  t.teardown(() => call.hangup());
  await new Promise((r) => setTimeout(r, 20)); // greeting queued
  session.log.length = 0;
  relay.fail = 'from';
  let r = await dialog.reinvite(offer(7000, '198.51.100.9', 'inactive'));
  t.equal(r.status, 488);
  t.match(r.headers?.Reason, /media relay rejected the offer/);
  relay.fail = 'to';
  r = await dialog.reinvite(offer(7000, '198.51.100.9', 'inactive'));
  t.equal(r.status, 503);
  t.equal(r.headers?.Reason, 'SIP;cause=503;text="media relay unavailable"');
  t.same(session.log, [], 'nothing applied to the media session');
  t.equal(call.state, 'answered', 'the call survives a failed re-INVITE');
  relay.fail = null;
  r = await dialog.reinvite(offer(7000, '198.51.100.9', 'inactive'));
  t.equal(r.status, 200);
  t.same(session.log, ['flush', 'direction inactive'], 'hold through rtpengine stops our RTP');
});

t.test('offerless re-INVITE: our offer goes out through toCarrier(offer)', async (t) => {
  const { call, relay, dialog } = setup();
  t.teardown(() => call.hangup());
  const r = await dialog.reinvite('');
  t.equal(r.status, 200);
  t.same(relay.ops, ['to:offer']);
  t.match(r.body, /m=audio 30012 /);
});

t.test('delayed offer: ACK answer via fromCarrier(answer); relay failure hangs up', async (t) => {
  const a = setup(true);
  a.dialog.handlers.get('ack')!({ body: offer(7000, '198.51.100.9') });
  await new Promise((r) => setTimeout(r, 20));
  t.same(a.relay.ops, ['from:answer']);
  t.ok(a.session.log.includes('remote 127.0.0.5:30010'), 'answer applied as relayed');
  t.ok(a.session.log.includes('play'), 'greeting after the answer');
  await a.call.hangup();

  const b = setup(true);
  b.relay.fail = 'from';
  b.dialog.handlers.get('ack')!({ body: offer(7000, '198.51.100.9') });
  const ended = await b.call.ended;
  t.equal(ended.reason, 'error');
  t.equal(b.dialog.destroyed, 1, 'BYE sent');
});
