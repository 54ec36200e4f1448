/**
 * RFC 4028 session timers: negotiation on the INVITE (422, 420, interval, refresher), the
 * running timer on a fake clock (our refreshes at half the interval, expiry at
 * interval − min(32, interval/3) when the caller's refreshes stop), refresh responses (2xx
 * with a new interval, 422, 405 → re-INVITE, 491 retry), and the Call integration (UPDATE
 * with and without SDP, re-INVITE refresh headers, BYE with a Reason and `session-expired`).
 */
import t from 'tap';
import { EventEmitter } from 'node:events';
import {
  negotiateInvite, parseSessionExpires, parseMinSE, SessionTimer, SESSION_TIMER_DEFAULTS,
  type RefreshResponse, type SessionTimerParams,
} from '../../src/call/session-timer.ts';
import { Call, type CallEnded } from '../../src/call/call.ts';
import { negotiate } from '../../src/sdp/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { FakeClock } from './call-helpers.ts';

setLogLevel('silent');

/** Headers by name, case-insensitive, like drachtio-srf's `req.get`. */
const hdrs = (o: Record<string, string>) => ({
  get: (n: string) => Object.entries(o).find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1],
});
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

t.test('Session-Expires and Min-SE parsing', async (t) => {
  t.same(parseSessionExpires('1800;refresher=uac'), { delta: 1800, refresher: 'uac' });
  t.same(parseSessionExpires(' 90 ; Refresher = UAS ; x=1'), { delta: 90, refresher: 'uas' });
  t.same(parseSessionExpires('600'), { delta: 600 });
  t.equal(parseSessionExpires('abc'), undefined);
  t.equal(parseSessionExpires('0'), undefined);
  t.equal(parseSessionExpires(undefined), undefined);
  t.equal(parseMinSE('90'), 90);
  t.equal(parseMinSE('120;lr'), 120);
  t.equal(parseMinSE('-1'), undefined);
});

t.test('INVITE negotiation (RFC 4028 §9)', async (t) => {
  const p = SESSION_TIMER_DEFAULTS;
  t.same(p, { enabled: true, interval: 1800, minSE: 90 }, 'defaults: on, 1800 s, Min-SE 90');

  const short = negotiateInvite(hdrs({ Supported: 'timer', 'Session-Expires': '60' }), p);
  t.equal(short.action, 'reject');
  if (short.action === 'reject') {
    t.equal(short.status, 422, 'below our Min-SE → 422');
    t.same(short.headers, { 'Min-SE': '90' }, '422 carries our Min-SE');
  }

  const uac = negotiateInvite(hdrs({ Supported: '100rel, timer', 'Session-Expires': '600;refresher=uac', Allow: 'INVITE, ACK, BYE, UPDATE' }), p);
  t.equal(uac.action, 'run');
  if (uac.action === 'run') {
    t.same(uac.headers, { 'Session-Expires': '600;refresher=uac', Require: 'timer' }, 'caller refreshes; Require: timer');
    t.same(uac.params, { interval: 600, refresher: 'them', peerSupports: true, peerAllowsUpdate: true, minSE: 90 });
  }

  const uas = negotiateInvite(hdrs({ Supported: 'timer', 'Session-Expires': '300;refresher=uas' }), p);
  t.equal(uas.action === 'run' && uas.params.refresher, 'us', 'refresher=uas → we refresh');
  t.equal(uas.action === 'run' && uas.headers['Session-Expires'], '300;refresher=uas');

  const open = negotiateInvite(hdrs({ Supported: 'timer', 'Session-Expires': '7200' }), p);
  t.equal(open.action === 'run' && open.headers['Session-Expires'], '1800;refresher=uac', 'longer than ours → shortened to 1800; the caller who asked refreshes');

  const minSe = negotiateInvite(hdrs({ Supported: 'timer', 'Session-Expires': '7200', 'Min-SE': '3600' }), p);
  t.equal(minSe.action === 'run' && minSe.params.interval, 3600, 'never below the caller\'s Min-SE');

  const none = negotiateInvite(hdrs({ Supported: 'timer' }), p);
  t.equal(none.action === 'run' && none.headers['Session-Expires'], '1800;refresher=uac', 'no Session-Expires: ours, the caller refreshes');

  const plain = negotiateInvite(hdrs({}), p);
  t.equal(plain.action, 'run');
  if (plain.action === 'run') {
    t.same(plain.headers, { 'Session-Expires': '1800;refresher=uas' }, 'caller without timer support: we refresh, no Require');
    t.equal(plain.params.peerAllowsUpdate, false, 'no Allow: UPDATE → re-INVITE refreshes');
  }

  const proxyInserted = negotiateInvite(hdrs({ 'Session-Expires': '900;refresher=uac' }), p);
  t.equal(proxyInserted.action === 'run' && proxyInserted.params.refresher, 'us', 'Session-Expires without Supported: timer → we must refresh');

  t.same(negotiateInvite(hdrs({ Supported: 'timer', 'Session-Expires': '60' }), { ...p, enabled: false }), { action: 'none' }, 'off: ignored');
  const req = negotiateInvite(hdrs({ Require: 'timer' }), { ...p, enabled: false });
  t.same(req.action === 'reject' && [req.status, req.headers], [420, { Unsupported: 'timer' }], 'off + Require: timer → 420');
});

function timer(params: Partial<SessionTimerParams>, responses: RefreshResponse[] = []) {
  const clock = new FakeClock();
  const sent: { at: number; method: string; headers: Record<string, string> }[] = [];
  const expired: string[] = [];
  const st = new SessionTimer({ interval: 60, refresher: 'us', peerSupports: true, peerAllowsUpdate: true, minSE: 30, ...params }, {
    refresh: async (method, headers) => {
      sent.push({ at: clock.now(), method, headers });
      return responses.shift() ?? { status: 200, get: () => undefined };
    },
    expired: (why) => expired.push(why),
  }, clock);
  return { clock, st, sent, expired };
}

t.test('we refresh at half the interval, with UPDATE, and keep the call alive', async (t) => {
  const s = timer({ interval: 60 });
  s.st.start();
  s.clock.advance(29_999);
  t.equal(s.sent.length, 0, 'nothing before interval/2');
  s.clock.advance(1);
  t.equal(s.sent.length, 1, 'refresh at 30 s');
  t.same(s.sent[0], { at: 30_000, method: 'UPDATE', headers: { 'Session-Expires': '60;refresher=uac', 'Min-SE': '30', Supported: 'timer' } });
  await flush();
  s.clock.advance(30_000);
  await flush();
  s.clock.advance(30_000);
  await flush();
  t.equal(s.sent.length, 3, 'one refresh per half interval');
  t.same(s.expired, [], 'never expired');
  t.equal(s.st.counts.sent, 3);
  s.st.stop();
  t.equal(s.clock.timers.size, 0, 'stop clears every timer');
});

t.test('the 2xx to our refresh sets the interval and refresher; 422 retries with Min-SE; 405 → re-INVITE; 491 retried', async (t) => {
  const s = timer({ interval: 60 }, [
    { status: 405 },
    { status: 200, get: (n) => (n === 'Session-Expires' ? '100;refresher=uac' : undefined) },
    { status: 422, get: (n) => (n === 'Min-SE' ? '120' : undefined) },
    { status: 491 },
    { status: 200, get: (n) => (n === 'Session-Expires' ? '120;refresher=uas' : undefined) },
  ]);
  s.st.start();
  s.clock.advance(30_000);
  await flush();
  t.same(s.sent.map((x) => x.method), ['UPDATE', 'INVITE'], '405 to UPDATE → re-INVITE at once');
  t.equal(s.st.method, 'INVITE', 're-INVITE from now on');
  t.equal(s.st.interval, 100, 'interval from the 2xx');
  s.clock.advance(50_000);
  await flush();
  t.same(s.sent.slice(2).map((x) => x.headers['Session-Expires']), ['100;refresher=uac', '120;refresher=uac'], '422 → retried with the peer\'s Min-SE');
  s.clock.advance(2_000);
  await flush();
  t.equal(s.sent.length, 5, '491 → retried within 2 s');
  t.equal(s.st.refresher, 'them', 'refresher=uas in the 2xx to our refresh: the peer refreshes now');
  t.equal(s.st.interval, 120);
  s.clock.advance(s.st.expiresAfterMs - 1);
  t.same(s.expired, [], 'not yet');
  s.clock.advance(1);
  t.equal(s.expired.length, 1, 'the peer did not refresh: expired');
  s.st.stop();
});

t.test('caller refreshes: expiry at interval − min(32, interval/3), pushed back by each refresh; 422 below Min-SE', async (t) => {
  for (const [interval, after] of [[1800, 1768], [90, 60], [6, 4]] as const) {
    const s = timer({ interval, refresher: 'them' });
    t.equal(s.st.expiresAfterMs, after * 1000, `interval ${interval} s → expires after ${after} s`);
  }
  const s = timer({ interval: 90, refresher: 'them', minSE: 90 });
  s.st.start();
  s.clock.advance(45_000);
  const r = s.st.inbound(hdrs({ Supported: 'timer', 'Session-Expires': '90;refresher=uac' }));
  t.ok('headers' in r);
  if ('headers' in r) {
    t.same(r.headers, { 'Session-Expires': '90;refresher=uac', Supported: 'timer', Require: 'timer' }, '2xx headers');
    r.confirm();
  }
  s.clock.advance(59_999);
  t.same(s.expired, [], '60 s after the refresh: not yet');
  const low = s.st.inbound(hdrs({ Supported: 'timer', 'Session-Expires': '30' }));
  t.same('reject' in low && [low.reject.status, low.reject.headers], [422, { 'Min-SE': '90' }], 'too short → 422 with Min-SE');
  s.clock.advance(1);
  t.equal(s.expired.length, 1, 'no refresh within 60 s: expired');
  t.equal(s.sent.length, 0, 'we never refreshed');
  const bare = timer({ interval: 90, refresher: 'them' });
  const rb = bare.st.inbound(hdrs({}));
  t.same('headers' in rb && rb.headers, { 'Session-Expires': '90;refresher=uas', Supported: 'timer' }, 'a re-INVITE without timer support makes us the refresher');
});

// ── Call integration ──

class FakeSession extends EventEmitter {
  localAddress = '127.0.0.1';
  localPort = 24002;
  closed = 0;
  setRemote(): void {}
  setCodec(): void {}
  setDirection(): void {}
  play(): void {}
  flush(): void {}
  stats() { return { packetsIn: 1, packetsOut: 1, lastRxAgoMs: 0 }; }
  close(): void { this.closed++; }
}

class FakeDialog extends EventEmitter {
  local = { sdp: 'v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\n' };
  byes: Record<string, string>[] = [];
  requests: { method: string; headers?: Record<string, string>; body?: string }[] = [];
  destroy(opts?: { headers: Record<string, string> }): Promise<unknown> {
    this.byes.push(opts?.headers ?? {});
    return Promise.resolve({});
  }
  async request(opts: { method: string; headers?: Record<string, string>; body?: string }) {
    this.requests.push(opts);
    return { status: 200, get: (n: string) => (n === 'Session-Expires' ? opts.headers?.['Session-Expires'] : undefined) };
  }
}

const tenant = { id: 'northwind', name: 'Northwind', isDefault: true, dids: [], language: 'en-US', greeting: 'Hello', voice: 'slt' } as unknown as Tenant;
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n';

function callWith(params: SessionTimerParams) {
  const clock = new FakeClock();
  const dialog = new FakeDialog();
  const call = new Call({
    callId: 'st1', from: '100', to: '18005550100', tenant, session: new FakeSession(),
    negotiation: negotiate(OFFER, { local: { address: '127.0.0.1', port: 24002 }, origin: { sessionId: '7', sessionVersion: 1 } }),
    advertisedAddress: '127.0.0.1', capabilities: {}, sdpSessionId: '7',
    synthesize: async () => new Int16Array(80), clock, sessionTimer: params,
  });
  const ended: CallEnded[] = [];
  call.on('ended', (e: CallEnded) => ended.push(e));
  call.attachDialog(dialog);
  dialog.emit('ack', {});
  return { clock, dialog, call, ended };
}

function sent() {
  const out: { status: number; opts?: { body?: string; headers?: Record<string, string> } }[] = [];
  return { out, res: { send: (status: number, opts?: { body?: string; headers?: Record<string, string> }) => { out.push({ status, ...(opts ? { opts } : {}) }); } } };
}

t.test('Call: caller refreshes with UPDATE (no SDP) and re-INVITE; stops refreshing → BYE with Reason, session-expired', async (t) => {
  const c = callWith({ interval: 90, refresher: 'them', peerSupports: true, peerAllowsUpdate: true, minSE: 90 });
  c.clock.advance(50_000);
  const u = sent();
  c.dialog.emit('update', hdrs({ Supported: 'timer', 'Session-Expires': '90;refresher=uac' }), u.res);
  t.same(u.out, [{ status: 200, opts: { headers: { 'Session-Expires': '90;refresher=uac', Supported: 'timer', Require: 'timer' } } }], 'UPDATE without SDP → 200 with the timer headers, no body');
  c.clock.advance(50_000);
  const ri = sent();
  c.dialog.emit('modify', { body: OFFER, ...hdrs({ Supported: 'timer', 'Session-Expires': '90;refresher=uac' }) }, ri.res);
  t.equal(ri.out[0]?.status, 200, 're-INVITE refresh answered 200');
  t.match(ri.out[0]?.opts?.body ?? '', /m=audio 24002 RTP\/AVP 0/, 'with our SDP answer');
  t.match(ri.out[0]?.opts?.headers ?? {}, { 'Session-Expires': '90;refresher=uac', Require: 'timer', 'Content-Type': 'application/sdp' });
  const low = sent();
  c.dialog.emit('update', hdrs({ Supported: 'timer', 'Session-Expires': '10' }), low.res);
  t.same(low.out, [{ status: 422, opts: { headers: { 'Min-SE': '90' } } }], 'UPDATE asking for 10 s → 422 Min-SE: 90');
  const offer = sent();
  c.dialog.emit('update', { body: OFFER.replace('a=rtpmap:101', 'a=sendonly\r\na=rtpmap:101'), ...hdrs({ Supported: 'timer', 'Session-Expires': '90;refresher=uac' }) }, offer.res);
  await flush();
  t.equal(offer.out[0]?.status, 200, 'UPDATE with an SDP offer → 200');
  t.match(offer.out[0]?.opts?.body ?? '', /a=recvonly/, 'answered like a re-INVITE offer (hold → recvonly)');
  t.equal(c.call.state, 'answered');
  c.clock.advance(59_999);
  t.equal(c.call.state, 'answered', 'still up 60 s after the last refresh − 1 ms');
  c.clock.advance(1);
  t.equal(c.call.state, 'ended', 'no refresh for interval − 30 s: call ended');
  t.same(c.ended.map((e) => e.reason), ['session-expired'], 'CDR reason session-expired');
  t.same(c.dialog.byes, [{ Reason: 'SIP;cause=408;text="session timer expired"' }], 'BYE with a Reason');
  t.equal(c.clock.timers.size, 0, 'no timers left');
  t.equal(c.dialog.listenerCount('update'), 0, 'update listener removed');
});

t.test('Call: we refresh (re-INVITE with the current SDP when the caller does not allow UPDATE)', async (t) => {
  const c = callWith({ interval: 120, refresher: 'us', peerSupports: false, peerAllowsUpdate: false, minSE: 90 });
  c.clock.advance(60_000);
  await flush();
  t.equal(c.dialog.requests.length, 1, 'one refresh at interval/2');
  const r = c.dialog.requests[0]!;
  t.equal(r.method, 'INVITE');
  t.equal(r.body, c.dialog.local.sdp, 'offering our current SDP unchanged');
  t.same(r.headers, { 'Session-Expires': '120;refresher=uac', 'Min-SE': '90', Supported: 'timer', 'Content-Type': 'application/sdp' });
  for (let i = 0; i < 10; i++) {
    c.clock.advance(60_000);
    await flush();
  }
  t.equal(c.call.state, 'answered', 'refreshes keep the call up');
  t.ok(c.dialog.requests.length >= 10, `refreshed every 60 s (${c.dialog.requests.length})`);
  await c.call.hangup();
  t.equal(c.clock.timers.size, 0, 'hang-up stops the session timer');
});
