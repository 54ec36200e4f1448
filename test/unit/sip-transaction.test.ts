import t from 'tap';
import { EventEmitter } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { SipMessage, parseSipMessage, makeResponse, parseVia } from '../../src/sip-edge/message.ts';
import type { Endpoint } from '../../src/sip-edge/transport.ts';
import { TransactionLayer, type Clock, type ServerTransaction, type ClientTransaction } from '../../src/sip-edge/transaction.ts';

setLogLevel('silent');

/** Deterministic clock: timers fire only from advance(), in due-time order. */
class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private q = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.q.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.q.delete(h as number);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.q) if (e[1].at <= end && (!best || e[1].at < best[1].at)) best = e;
      if (!best) break;
      this.q.delete(best[0]);
      this.t = best[1].at;
      best[1].fn();
    }
    this.t = end;
  }
  get pending(): number {
    return this.q.size;
  }
}

/** Records sends (with fake time); `inject` delivers a message as if received. */
class FakeTransport extends EventEmitter {
  sent: { msg: SipMessage; dest: Endpoint; at: number }[] = [];
  fail = false;
  constructor(private clock: FakeClock) {
    super();
  }
  send(msg: SipMessage, dest: Endpoint): Promise<void> {
    if (this.fail) return Promise.reject(new Error('ECONNREFUSED'));
    this.sent.push({ msg, dest, at: this.clock.t });
    return Promise.resolve();
  }
  inject(msg: SipMessage | string, src: Endpoint): void {
    const m = parseSipMessage(typeof msg === 'string' ? msg : msg.toBuffer());
    this.emit('message', m, src, 0);
  }
  times(pred: (m: SipMessage) => boolean): number[] {
    return this.sent.filter((s) => pred(s.msg)).map((s) => s.at);
  }
}

const UDP: Endpoint = { transport: 'udp', address: '10.0.0.1', port: 5060 };
const TCP: Endpoint = { transport: 'tcp', address: '10.0.0.1', port: 40000, connId: 'tcp-1' };

function req(method: string, opts: { branch?: string; cseq?: number; callId?: string; fromTag?: string; toTag?: string; transport?: string } = {}): SipMessage {
  const m = SipMessage.request(method, 'sip:agent@10.0.0.2');
  m.add('Via', `SIP/2.0/${opts.transport ?? 'UDP'} 10.0.0.1:5060;branch=${opts.branch ?? 'z9hG4bKinv1'}`);
  m.add('Max-Forwards', '70');
  m.add('From', `<sip:caller@10.0.0.1>;tag=${opts.fromTag ?? 'ft1'}`);
  m.add('To', `<sip:agent@10.0.0.2>${opts.toTag ? `;tag=${opts.toTag}` : ''}`);
  m.add('Call-ID', opts.callId ?? 'call-1');
  m.add('CSeq', `${opts.cseq ?? 1} ${method}`);
  return m;
}

function setup(): { clock: FakeClock; tp: FakeTransport; layer: TransactionLayer; reqs: [SipMessage, ServerTransaction | null][]; stray: SipMessage[] } {
  const clock = new FakeClock();
  const tp = new FakeTransport(clock);
  const layer = new TransactionLayer(tp, { clock });
  const reqs: [SipMessage, ServerTransaction | null][] = [];
  const stray: SipMessage[] = [];
  layer.on('request', (r: SipMessage, txn: ServerTransaction | null) => reqs.push([r, txn]));
  layer.on('response', (r: SipMessage) => stray.push(r));
  return { clock, tp, layer, reqs, stray };
}

const diffs = (a: number[]): number[] => a.slice(1).map((v, i) => v - a[i]);
const is200 = (m: SipMessage): boolean => m.status === 200;

t.test('INVITE server: 2xx retransmitted 500,1000,2000,4000,4000… until the ACK (RFC 6026 Accepted)', async (t) => {
  const { clock, tp, layer, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  t.equal(reqs.length, 1);
  const txn = reqs[0][1]!;
  t.equal(txn.state, 'Proceeding');
  txn.respond(makeResponse(txn.request, 180));
  const ok = makeResponse(txn.request, 200);
  ok.set('To', ok.get('To') + ';tag=tt');
  txn.respond(ok);
  t.equal(txn.state, 'Accepted');
  clock.advance(12_000);
  t.same(diffs(tp.times(is200)), [500, 1000, 2000, 4000, 4000]);
  // Retransmitted INVITE: absorbed, last response re-sent.
  const before = tp.sent.length;
  tp.inject(req('INVITE'), UDP);
  t.equal(reqs.length, 1, 'retransmission not passed up');
  t.equal(tp.sent.length, before + 1);
  t.equal(tp.sent.at(-1)!.msg.status, 200);
  // ACK for the 2xx: new branch, matched by Call-ID + CSeq + From tag.
  let acked = 0;
  txn.on('ack', () => acked++);
  tp.inject(req('ACK', { branch: 'z9hG4bKack', toTag: 'tt' }), UDP);
  t.equal(acked, 1);
  t.equal(reqs.length, 2);
  t.equal(reqs[1][0].method, 'ACK');
  t.equal(reqs[1][1], null, 'ACK for 2xx has no transaction');
  const n200 = tp.times(is200).length;
  clock.advance(10_000);
  t.equal(tp.times(is200).length, n200, 'no retransmission after ACK');
  let terminated = false;
  let ackTimeout = false;
  txn.on('terminated', () => (terminated = true));
  txn.on('ackTimeout', () => (ackTimeout = true));
  clock.advance(32_000);
  t.ok(terminated, 'terminated by timer L');
  t.notOk(ackTimeout);
  t.same(layer.counts, { server: 0, client: 0 });
});

t.test('INVITE server: ack2xx() hook without an ACK (proxy relayed the 2xx) stops retransmission, no ackTimeout', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  const txn = reqs[0][1]!;
  const ok = makeResponse(txn.request, 200);
  ok.set('To', ok.get('To') + ';tag=tt');
  txn.respond(ok);
  let acks = 0;
  let ackTimeout = false;
  txn.on('ack', () => acks++);
  txn.on('ackTimeout', () => (ackTimeout = true));
  txn.ack2xx();
  txn.ack2xx(); // idempotent
  clock.advance(40_000);
  t.equal(tp.times(is200).length, 1, 'the 2xx went out once, never retransmitted');
  t.equal(acks, 0, "no 'ack' event without an ACK");
  t.notOk(ackTimeout, 'no ackTimeout');
  t.equal(txn.state, 'Terminated', 'timer L still ends the transaction');
});

t.test('INVITE server: no ACK → ackTimeout at 64*T1', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  const txn = reqs[0][1]!;
  txn.respond(makeResponse(txn.request, 200));
  let at = -1;
  txn.on('ackTimeout', () => (at = clock.now()));
  clock.advance(40_000);
  t.equal(at, 32_000);
  t.equal(txn.state, 'Terminated');
  t.same(tp.times(is200), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
});

t.test('INVITE server: automatic 100 Trying after 200 ms without a TU response', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  clock.advance(199);
  t.equal(tp.sent.length, 0);
  clock.advance(1);
  t.equal(tp.sent[0].msg.status, 100);
  t.equal(tp.sent[0].msg.callId, 'call-1');
  t.equal(reqs[0][1]!.lastResponse?.status, 100);
  // A TU answering first suppresses it.
  const s2 = setup();
  s2.tp.inject(req('INVITE'), UDP);
  s2.reqs[0][1]!.respond(makeResponse(s2.reqs[0][1]!.request, 180));
  s2.clock.advance(1000);
  t.same(s2.tp.sent.map((s) => s.msg.status), [180]);
});

t.test('INVITE server: non-2xx → timer G retransmits, ACK absorbed (Confirmed), timer I', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  const txn = reqs[0][1]!;
  txn.respond(makeResponse(txn.request, 486));
  t.equal(txn.state, 'Completed');
  clock.advance(8000);
  t.same(tp.times((m) => m.status === 486), [0, 500, 1500, 3500, 7500]);
  let acks = 0;
  txn.on('ack', () => acks++);
  tp.inject(req('ACK'), UDP); // same branch as the INVITE (§17.1.1.3)
  t.equal(acks, 1);
  t.equal(reqs.length, 1, 'ACK for non-2xx not passed to the TU');
  t.equal(txn.state, 'Confirmed');
  tp.inject(req('ACK'), UDP);
  t.equal(reqs.length, 1, 'ACK retransmission absorbed in Confirmed');
  clock.advance(4999);
  t.equal(txn.state, 'Confirmed');
  clock.advance(1);
  t.equal(txn.state, 'Terminated', 'timer I = T4');
  t.equal(tp.times((m) => m.status === 486).length, 5, 'no retransmission after ACK');
});

t.test('INVITE server: non-2xx without ACK → timer H terminates at 64*T1', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  const txn = reqs[0][1]!;
  txn.respond(makeResponse(txn.request, 603));
  clock.advance(31_999);
  t.equal(txn.state, 'Completed');
  clock.advance(1);
  t.equal(txn.state, 'Terminated');
  const n = tp.sent.length;
  clock.advance(60_000);
  t.equal(tp.sent.length, n);
  t.same(diffs(tp.times((m) => m.status === 603)).slice(0, 5), [500, 1000, 2000, 4000, 4000]);
});

t.test('INVITE server over TCP: no retransmissions, ackTimeout still at 64*T1; responses reuse the connection', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('INVITE', { transport: 'TCP' }), TCP);
  const txn = reqs[0][1]!;
  txn.respond(makeResponse(txn.request, 200));
  let timeout = false;
  txn.on('ackTimeout', () => (timeout = true));
  clock.advance(40_000);
  t.equal(tp.times(is200).length, 1);
  t.ok(timeout);
  t.equal(tp.sent[0].dest.connId, 'tcp-1');
});

t.test('non-INVITE server: last response re-sent on retransmission, timer J; TCP terminates at once', async (t) => {
  const { clock, tp, reqs } = setup();
  tp.inject(req('OPTIONS', { branch: 'z9hG4bKopt' }), UDP);
  const txn = reqs[0][1]!;
  t.equal(txn.state, 'Trying');
  tp.inject(req('OPTIONS', { branch: 'z9hG4bKopt' }), UDP);
  t.equal(tp.sent.length, 0, 'retransmission in Trying absorbed silently');
  txn.respond(makeResponse(txn.request, 200));
  t.equal(txn.state, 'Completed');
  tp.inject(req('OPTIONS', { branch: 'z9hG4bKopt' }), UDP);
  t.equal(reqs.length, 1);
  t.equal(tp.sent.length, 2, 'response re-sent');
  clock.advance(31_999);
  t.equal(txn.state, 'Completed');
  clock.advance(1);
  t.equal(txn.state, 'Terminated', 'timer J = 64*T1');
  t.equal(tp.sent.length, 2, 'non-INVITE responses are never retransmitted by timers');

  const s = setup();
  s.tp.inject(req('BYE', { transport: 'TCP' }), TCP);
  const bye = s.reqs[0][1]!;
  bye.respond(makeResponse(bye.request, 200));
  t.equal(bye.state, 'Terminated', 'J = 0 on TCP');
});

t.test('responses go to the rport / sent-by port (RFC 3581, §18.2.2)', async (t) => {
  const { tp, reqs } = setup();
  const r = req('OPTIONS', { branch: 'z9hG4bKr1' });
  r.set('Via', 'SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr1;rport=40001;received=192.0.2.7');
  tp.inject(r, UDP);
  reqs[0][1]!.respond(makeResponse(r, 200));
  t.same(tp.sent[0].dest, { transport: 'udp', address: '192.0.2.7', port: 40001 });
  const r2 = req('OPTIONS', { branch: 'z9hG4bKr2' });
  r2.set('Via', 'SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKr2');
  tp.inject(r2, UDP);
  reqs[1][1]!.respond(makeResponse(r2, 200));
  t.same(tp.sent[1].dest, { transport: 'udp', address: '10.0.0.1', port: 5070 });
});

t.test('CANCEL gets its own transaction; findInviteForCancel matches the INVITE by branch', async (t) => {
  const { tp, layer, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  tp.inject(req('CANCEL'), UDP);
  t.equal(reqs.length, 2);
  const [cancel, ctxn] = reqs[1];
  t.equal(cancel.method, 'CANCEL');
  t.ok(ctxn);
  t.not(ctxn, reqs[0][1]);
  t.equal(layer.findInviteForCancel(cancel), reqs[0][1]);
  t.equal(layer.findInviteForCancel(req('CANCEL', { branch: 'z9hG4bKother' })), undefined);
  ctxn!.respond(makeResponse(cancel, 200));
  reqs[0][1]!.respond(makeResponse(reqs[0][0], 487));
  t.same(tp.sent.map((s) => `${s.msg.status} ${s.msg.cseq.method}`), ['200 CANCEL', '487 INVITE']);
});

t.test('INVITE client: timer A doubles (no cap), timer B → timeout', async (t) => {
  const { clock, tp, layer } = setup();
  const ct = layer.sendRequest(req('INVITE', { branch: 'z9hG4bKc1' }), UDP);
  t.equal(ct.state, 'Calling');
  let timeoutAt = -1;
  ct.on('timeout', () => (timeoutAt = clock.now()));
  clock.advance(40_000);
  t.same(tp.times((m) => m.method === 'INVITE'), [0, 500, 1500, 3500, 7500, 15500, 31500]);
  t.equal(timeoutAt, 32_000);
  t.equal(ct.state, 'Terminated');
});

t.test('INVITE client: 1xx stops retransmission; non-2xx → ACK generated (§17.1.1.3), retransmitted final re-ACKed, timer D', async (t) => {
  const { clock, tp, layer } = setup();
  const inv = req('INVITE', { branch: 'z9hG4bKc2' });
  inv.add('Route', '<sip:proxy;lr>');
  const ct = layer.sendRequest(inv, UDP);
  const got: number[] = [];
  ct.on('response', (r: SipMessage) => got.push(r.status!));
  const ringing = makeResponse(inv, 180);
  ringing.set('To', '<sip:agent@10.0.0.2>;tag=uas1');
  tp.inject(ringing, UDP);
  t.equal(ct.state, 'Proceeding');
  clock.advance(60_000);
  t.equal(tp.times((m) => m.method === 'INVITE').length, 1, 'no retransmission in Proceeding');
  t.equal(ct.state, 'Proceeding', 'timer B no longer applies');
  const busy = makeResponse(inv, 486);
  busy.set('To', '<sip:agent@10.0.0.2>;tag=uas1');
  tp.inject(busy, UDP);
  t.equal(ct.state, 'Completed');
  const acks = tp.sent.filter((s) => s.msg.method === 'ACK');
  t.equal(acks.length, 1);
  const ack = acks[0].msg;
  t.equal(ack.uri, inv.uri);
  t.equal(parseVia(ack.get('Via')!)[0].branch, 'z9hG4bKc2', 'same branch as the INVITE');
  t.equal(ack.toTag, 'uas1', 'To from the response');
  t.same(ack.cseq, { seq: 1, method: 'ACK' });
  t.equal(ack.get('Route'), '<sip:proxy;lr>');
  tp.inject(busy, UDP);
  t.equal(tp.sent.filter((s) => s.msg.method === 'ACK').length, 2, 're-ACK');
  t.same(got, [180, 486], 'final retransmission not passed up');
  clock.advance(31_999);
  t.equal(ct.state, 'Completed');
  clock.advance(1);
  t.equal(ct.state, 'Terminated', 'timer D = 32 s');
});

t.test('INVITE client: 2xx → Accepted, retransmitted 2xx re-emitted; after timer M a 2xx is stray', async (t) => {
  const { clock, tp, layer, stray } = setup();
  const inv = req('INVITE', { branch: 'z9hG4bKc3' });
  const ct = layer.sendRequest(inv, UDP);
  const got: number[] = [];
  ct.on('response', (r: SipMessage) => got.push(r.status!));
  const ok = makeResponse(inv, 200);
  tp.inject(ok, UDP);
  t.equal(ct.state, 'Accepted');
  tp.inject(ok, UDP);
  t.same(got, [200, 200]);
  t.equal(tp.sent.filter((s) => s.msg.method === 'ACK').length, 0, 'UA ACKs 2xx, not the transaction');
  clock.advance(32_000);
  t.equal(ct.state, 'Terminated');
  tp.inject(ok, UDP);
  t.equal(stray.length, 1);
});

t.test('non-INVITE client: timer E capped at T2 (T2 in Proceeding), timer F, timer K', async (t) => {
  const { clock, tp, layer } = setup();
  const ct = layer.sendRequest(req('OPTIONS', { branch: 'z9hG4bKo1' }), UDP);
  let timeout = false;
  ct.on('timeout', () => (timeout = true));
  clock.advance(40_000);
  t.same(tp.times((m) => m.method === 'OPTIONS'), [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
  t.ok(timeout, 'timer F');

  const s = setup();
  const bye = req('BYE', { branch: 'z9hG4bKo2' });
  const c2 = s.layer.sendRequest(bye, UDP);
  s.clock.advance(600); // one retransmission at 500
  s.tp.inject(makeResponse(bye, 100), UDP);
  t.equal(c2.state, 'Proceeding');
  s.clock.advance(9000);
  t.same(s.tp.times((m) => m.method === 'BYE'), [0, 500, 1500, 5500, 9500], 'Proceeding: next interval T2');
  const got: number[] = [];
  c2.on('response', (r: SipMessage) => got.push(r.status!));
  s.tp.inject(makeResponse(bye, 200), UDP);
  s.tp.inject(makeResponse(bye, 200), UDP);
  t.same(got, [200], 'final retransmission absorbed');
  t.equal(c2.state, 'Completed');
  s.clock.advance(5000);
  t.equal(c2.state, 'Terminated', 'timer K = T4');
});

t.test('client over TCP: no retransmissions, timer B still fires; K = 0', async (t) => {
  const { clock, tp, layer } = setup();
  const ct = layer.sendRequest(req('INVITE', { branch: 'z9hG4bKt1', transport: 'TCP' }), TCP);
  let timeout = false;
  ct.on('timeout', () => (timeout = true));
  clock.advance(40_000);
  t.equal(tp.sent.length, 1);
  t.ok(timeout);
  const opt = req('OPTIONS', { branch: 'z9hG4bKt2', transport: 'TCP' });
  const c2 = layer.sendRequest(opt, TCP);
  tp.inject(makeResponse(opt, 200), TCP);
  t.equal(c2.state, 'Terminated');
});

t.test('INVITE and CANCEL client transactions with one branch are distinguished by CSeq method', async (t) => {
  const { tp, layer } = setup();
  const inv = req('INVITE', { branch: 'z9hG4bKcc' });
  const ct = layer.sendRequest(inv, UDP);
  tp.inject(makeResponse(inv, 180), UDP);
  const cancel = layer.makeCancel(ct);
  t.equal(cancel.method, 'CANCEL');
  t.equal(cancel.uri, inv.uri);
  t.same(cancel.cseq, { seq: 1, method: 'CANCEL' });
  t.equal(cancel.get('Via'), inv.get('Via'));
  t.equal(cancel.get('To'), inv.get('To'));
  t.equal(cancel.get('From'), inv.get('From'));
  t.equal(cancel.callId, inv.callId);
  const cc = layer.sendRequest(cancel, UDP);
  const seen: string[] = [];
  ct.on('response', (r: SipMessage) => seen.push(`inv ${r.status}`));
  cc.on('response', (r: SipMessage) => seen.push(`cancel ${r.status}`));
  tp.inject(makeResponse(cancel, 200), UDP);
  tp.inject(makeResponse(inv, 487), UDP);
  t.same(seen, ['cancel 200', 'inv 487']);
});

t.test('send failure → transportError and termination', async (t) => {
  const { tp, layer } = setup();
  tp.fail = true;
  const ct: ClientTransaction = layer.sendRequest(req('OPTIONS', { branch: 'z9hG4bKf1' }), UDP);
  const err = await new Promise<Error>((resolve) => ct.on('transportError', resolve));
  t.match(err.message, /ECONNREFUSED/);
  t.equal(ct.state, 'Terminated');
  tp.fail = false;
  const s = setup();
  s.tp.inject(req('OPTIONS'), UDP);
  const st = s.reqs[0][1]!;
  s.tp.fail = true;
  st.respond(makeResponse(st.request, 200));
  await new Promise<void>((resolve) => st.on('transportError', () => resolve()));
  t.equal(st.state, 'Terminated');
});

t.test('RFC 6026: ACK reusing the INVITE branch in Accepted is passed to the TU', async (t) => {
  const { tp, reqs } = setup();
  tp.inject(req('INVITE'), UDP);
  const txn = reqs[0][1]!;
  txn.respond(makeResponse(txn.request, 200));
  tp.inject(req('ACK'), UDP);
  t.equal(reqs.length, 2);
  t.equal(reqs[1][1], null);
});

t.test('a throwing TU listener does not break the layer', async (t) => {
  const { tp, layer } = setup();
  let calls = 0;
  layer.on('request', () => {
    calls++;
    throw new Error('boom');
  });
  t.doesNotThrow(() => tp.inject(req('OPTIONS', { branch: 'z9hG4bKx1' }), UDP));
  t.doesNotThrow(() => tp.inject(req('OPTIONS', { branch: 'z9hG4bKx2' }), UDP));
  t.equal(calls, 2);
});

t.test('close() terminates everything and clears timers', async (t) => {
  const { clock, tp, layer } = setup();
  layer.sendRequest(req('INVITE', { branch: 'z9hG4bKz1' }), UDP);
  tp.inject(req('INVITE', { branch: 'z9hG4bKz2' }), UDP);
  layer.close();
  t.same(layer.counts, { server: 0, client: 0 });
  t.equal(clock.pending, 0);
});
