// Hold / un-hold: MediaSession.setDirection on the native core (no RTP at all while our
// direction excludes send; marker bit and continuing seq/ts on resume), and the Call
// applying it on re-INVITE (sendonly / inactive / c=0.0.0.0 → stop sending; sendrecv → resume).
// Ports: RTP 31800-31899 (media-wiring range 31000-31999).
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine } from '../../src/media/index.ts';
import { Call, type CallDialog, type ReinviteResponse } from '../../src/call/call.ts';
import { negotiate } from '../../src/sdp/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';

setLogLevel('silent');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rx { at: number; marker: boolean; pt: number; seq: number; ts: number; ssrc: number; payload: Buffer }

async function rtpPeer() {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const packets: Rx[] = [];
  sock.on('message', (m) => {
    if (m.length < 12 || (m[1]! & 0x7f) >= 72 && (m[1]! & 0x7f) <= 76) return; // RTCP-mux types
    packets.push({
      at: performance.now(), marker: (m[1]! & 0x80) !== 0, pt: m[1]! & 0x7f, seq: m.readUInt16BE(2),
      ts: m.readUInt32BE(4), ssrc: m.readUInt32BE(8), payload: Buffer.from(m.subarray(12)),
    });
  });
  return { sock, packets, port: sock.address().port };
}

const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 31800, portMax: 31899 });
t.teardown(() => engine.close());

t.test('native: no RTP while inactive, resume with marker and continuing seq/ts', async (t) => {
  const peer = await rtpPeer();
  t.teardown(() => peer.sock.close());
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: peer.port }, rtcpIntervalMs: 0 });
  t.teardown(() => s.close());
  await sleep(300);
  t.ok(peer.packets.length >= 10, `keep-alive silence flows before hold (${peer.packets.length} packets)`);
  t.equal(s.stats().sending, true);

  s.setDirection('inactive');
  t.equal(s.stats().sending, false);
  await sleep(60); // a packet may have been in flight
  const before = peer.packets.length;
  const last = peer.packets[before - 1]!;
  s.play(new Int16Array(1600).fill(1000)); // queued audio must wait, not leak out
  await sleep(500);
  t.equal(peer.packets.length, before, 'no packet for 500 ms while inactive (no keep-alive silence either)');

  s.setDirection('recvonly');
  await sleep(200);
  t.equal(peer.packets.length, before, 'recvonly does not send either');

  s.setDirection('sendrecv');
  await sleep(200);
  const resumed = peer.packets.slice(before);
  t.ok(resumed.length >= 5, `sending resumed (${resumed.length} packets)`);
  const first = resumed[0]!;
  t.equal(first.marker, true, 'first packet after hold carries the marker bit');
  t.equal(first.seq, (last.seq + 1) & 0xffff, 'sequence number continues without a gap');
  t.equal(first.ssrc, last.ssrc, 'same SSRC');
  const dts = (first.ts - last.ts) >>> 0;
  t.ok(dts % 160 === 0 && dts >= 160 * 30, `timestamp advanced with wall time over the hold (${dts} = ${dts / 8} ms)`);
  t.ok(resumed.some((p) => p.payload.some((b) => b !== 0xff)), 'the audio queued during hold is played after it');
  t.equal(resumed.filter((p) => p.marker).length, 1, 'marker only on the first packet');

  s.setDirection('sendonly');
  const n = peer.packets.length;
  await sleep(100);
  t.ok(peer.packets.length > n, 'sendonly sends');
  t.throws(() => s.setDirection('bogus' as 'inactive'), /direction must be/);
});

// ---- the Call on re-INVITE -----------------------------------------------------------

const tenant: Tenant = {
  id: 'acme', name: 'Acme', numbers: ['18005550100'], greeting: 'Hello', voice: 'kal', maxCallSeconds: 0,
} as unknown as Tenant;

function offer(opts: { dir?: string; addr?: string; port?: number } = {}): string {
  return [
    'v=0', 'o=peer 1 1 IN IP4 127.0.0.1', 's=-', `c=IN IP4 ${opts.addr ?? '127.0.0.1'}`, 't=0 0',
    `m=audio ${opts.port ?? 40000} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
    `a=${opts.dir ?? 'sendrecv'}`,
  ].join('\r\n') + '\r\n';
}

class FakeSession {
  readonly localAddress = '127.0.0.1';
  readonly localPort = 31990;
  directions: string[] = [];
  flushed = 0;
  played = 0;
  setRemote(): void {}
  setCodec(): void {}
  setDirection(d: string): void { this.directions.push(d); }
  play(): void { this.played++; }
  flush(): void { this.flushed++; }
  stats() { return { packetsIn: 0, packetsOut: 0, lastRxAgoMs: null }; }
  close(): void {}
  on(): this { return this; }
  removeListener(): this { return this; }
}

class FakeDialog implements CallDialog {
  local = { sdp: '' };
  handlers = new Map<string, (...a: any[]) => void>();
  on(ev: string, fn: (...a: any[]) => void): this { this.handlers.set(ev, fn); return this; }
  removeListener(ev: string): this { this.handlers.delete(ev); return this; }
  destroy(): Promise<unknown> { return Promise.resolve(); }
  async reinvite(body: string): Promise<{ status: number; body?: string }> {
    return new Promise((resolve) => {
      const res: ReinviteResponse = { send: (status, o) => resolve({ status, ...(o?.body !== undefined ? { body: o.body } : {}) }) };
      this.handlers.get('modify')!({ body }, res);
    });
  }
}

function makeCall() {
  const session = new FakeSession();
  const negotiation = negotiate(offer(), { local: { address: '127.0.0.1', port: session.localPort }, origin: { sessionId: '7', sessionVersion: 1 } });
  const call = new Call({
    callId: 'hold-1', from: 'a', to: 'b', tenant, session, negotiation, advertisedAddress: '127.0.0.1',
    capabilities: {}, sdpSessionId: '7', synthesize: async () => new Int16Array(160),
  });
  const dialog = new FakeDialog();
  call.attachDialog(dialog);
  dialog.handlers.get('ack')!({}); // the caller's ACK: sending starts (recvonly → sendrecv)
  session.directions.length = 0;
  return { call, session, dialog };
}

t.test('Call: re-INVITE sendonly / inactive / c=0.0.0.0 stops our RTP, sendrecv resumes it', async (t) => {
  const { call, session, dialog } = makeCall();
  t.teardown(() => call.hangup());

  let r = await dialog.reinvite(offer({ dir: 'sendonly' }));
  t.equal(r.status, 200);
  t.match(r.body, /a=recvonly/);
  t.same(session.directions, ['recvonly'], 'sendonly offer → we stop sending (recvonly)');
  t.equal(session.flushed, 1, 'queued prompt dropped on hold');

  r = await dialog.reinvite(offer({ dir: 'sendrecv' }));
  t.equal(r.status, 200);
  t.match(r.body, /a=sendrecv/);
  t.same(session.directions, ['recvonly', 'sendrecv'], 'un-hold → sendrecv');

  r = await dialog.reinvite(offer({ dir: 'inactive' }));
  t.match(r.body, /a=inactive/);
  t.equal(session.directions.at(-1), 'inactive');

  r = await dialog.reinvite(offer({ dir: 'sendrecv' }));
  r = await dialog.reinvite(offer({ addr: '0.0.0.0' }));
  t.equal(r.status, 200);
  t.equal(session.directions.at(-1), 'recvonly', 'c=0.0.0.0 (RFC 2543 hold) → we stop sending');

  r = await dialog.reinvite(offer({ dir: 'sendrecv' }));
  t.equal(session.directions.at(-1), 'sendrecv');

  const n = session.directions.length;
  r = await dialog.reinvite(offer({ dir: 'sendrecv' }));
  t.equal(session.directions.length, n, 'a session refresh with the same direction does not touch the session');
});

t.test('Call: with a real MediaSession the peer receives nothing while held', async (t) => {
  const peer = await rtpPeer();
  t.teardown(() => peer.sock.close());
  const session = engine.createSession({ codec: 'PCMU', payloadType: 0, rtcpIntervalMs: 0 });
  const negotiation = negotiate(offer({ port: peer.port }), {
    local: { address: '127.0.0.1', port: session.localPort }, origin: { sessionId: '8', sessionVersion: 1 },
  });
  session.setRemote('127.0.0.1', peer.port);
  const call = new Call({
    callId: 'hold-2', from: 'a', to: 'b', tenant, session, negotiation, advertisedAddress: '127.0.0.1',
    capabilities: {}, sdpSessionId: '8', synthesize: async () => new Int16Array(8000).fill(2000),
  });
  t.teardown(() => call.hangup());
  const dialog = new FakeDialog();
  call.attachDialog(dialog);
  await sleep(200);
  t.equal(peer.packets.length, 0, 'nothing sent before the ACK');
  dialog.handlers.get('ack')!({});
  await sleep(200);
  t.ok(peer.packets.length > 3, 'greeting / keep-alive flowing');
  await dialog.reinvite(offer({ port: peer.port, dir: 'inactive' }));
  await sleep(60);
  const held = peer.packets.length;
  await sleep(400);
  t.equal(peer.packets.length, held, 'nothing sent while the caller holds');
  await dialog.reinvite(offer({ port: peer.port, dir: 'sendrecv' }));
  await sleep(200);
  const after = peer.packets.slice(held);
  t.ok(after.length >= 5, 'resumed after un-hold');
  t.equal(after[0]!.marker, true, 'marker on the first packet after un-hold');
  t.equal(after[0]!.seq, (peer.packets[held - 1]!.seq + 1) & 0xffff, 'seq continues');
});
