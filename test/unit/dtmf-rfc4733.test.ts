// RFC 4733 DTMF: receive from the sip-tester pcaps (replayed over UDP into a
// session, also with the marker bit stripped and the end retransmitted), and
// our own sender looped into a second session.
// Port range for this file: 21400-21499.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, existsSync } from 'node:fs';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, type DtmfEvent } from '../../src/media/index.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** UDP payloads of a classic pcap (Ethernet or Linux cooked capture, IPv4). */
export function pcapUdpPayloads(path: string): { atMs: number; payload: Buffer }[] {
  const d = readFileSync(path);
  const link = d.readUInt32LE(20);
  const l2 = link === 113 ? 16 : 14;
  const out: { atMs: number; payload: Buffer }[] = [];
  let off = 24;
  let t0 = -1;
  while (off + 16 <= d.length) {
    const sec = d.readUInt32LE(off), usec = d.readUInt32LE(off + 4), incl = d.readUInt32LE(off + 8);
    const pkt = d.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    const ip = pkt.subarray(l2);
    if ((ip[0] >> 4) !== 4 || ip[9] !== 17) continue;
    const udp = ip.subarray((ip[0] & 15) * 4);
    const at = sec * 1000 + usec / 1000;
    if (t0 < 0) t0 = at;
    out.push({ atMs: at - t0, payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))) });
  }
  return out;
}

const engine = MediaEngine.create({ portMin: 21400, portMax: 21499 });
t.teardown(() => engine.close());

const digits: [string, string][] = [['0', '0'], ['1', '1'], ['5', '5'], ['9', '9'], ['pound', '#'], ['star', '*']];

t.test('sip-tester RFC 2833 pcaps: one dtmf event per key press, with its duration', async (t) => {
  for (const [file, digit] of digits) {
    const path = `/usr/share/sip-tester/dtmf_2833_${file}.pcap`;
    if (!existsSync(path)) { t.comment(`${path} missing`); continue; }
    const pkts = pcapUdpPayloads(path);
    const pt = pkts[0].payload[1] & 0x7f;
    const s = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: pt });
    const got: DtmfEvent[] = [];
    const starts: string[] = [];
    s.on('dtmf', (e) => got.push(e));
    s.on('dtmfStart', (e) => starts.push(e.digit));
    const sock = dgram.createSocket('udp4');
    sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
    for (const p of pkts) { sock.send(p.payload, s.localPort, '127.0.0.1'); await sleep(2); }
    // Replay again with the marker bit cleared (gateways that lose it) and a new timestamp.
    for (const p of pkts) {
      const b = Buffer.from(p.payload); b[1] &= 0x7f; b.writeUInt32BE((b.readUInt32BE(4) + 8000) >>> 0, 4);
      sock.send(b, s.localPort, '127.0.0.1'); await sleep(2);
    }
    await sleep(150);
    t.same(got.map((e) => e.digit), [digit, digit], `${file}: '${digit}' twice (with and without marker), end retransmissions ignored`);
    t.same(starts, [digit, digit], `${file}: dtmfStart once per press`);
    const lastDur = Math.max(...pkts.map((p) => p.payload.readUInt16BE(14)));
    t.equal(got[0]?.durationMs, lastDur / 8, `${file}: duration ${lastDur / 8} ms from the event's duration field`);
    t.equal(s.stats().dtmfIn, 2);
    sock.close(); s.close();
  }
});

t.test('our sender: digits arrive intact in another session; timestamps/marker/end per RFC 4733', async (t) => {
  const rx = engine.createSession({ codec: 'PCMA', payloadType: 8, telephoneEventPayloadType: 101 });
  const tx = engine.createSession({ codec: 'PCMA', payloadType: 8, telephoneEventPayloadType: 101, remote: { address: '127.0.0.1', port: rx.localPort } });
  const got: DtmfEvent[] = [];
  rx.on('dtmf', (e) => got.push(e));
  tx.play(new Int16Array(8000).fill(1000));  // voice queued: must pause while digits go out
  tx.sendDtmf('12#9', { durationMs: 120 });
  t.throws(() => tx.sendDtmf('1x'), /invalid DTMF digit/);
  const plain = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.throws(() => plain.sendDtmf('1'), /telephone-event was not negotiated/);
  plain.close();
  const end = Date.now() + 3000;
  while (got.length < 4 && Date.now() < end) await sleep(20);
  t.same(got.map((e) => e.digit), ['1', '2', '#', '9'], 'all digits, in order, once each');
  t.ok(got.every((e) => e.durationMs === 120), `durations ${got.map((e) => e.durationMs).join(',')} ms`);
  await sleep(100);
  t.equal(tx.stats().dtmfOut, 4, 'four digits sent');
  t.ok(tx.queuedMs > 0, 'voice paused during the digits (still queued)');
  tx.close(); rx.close();
});

t.test('wire format of sent events (captured by a raw socket)', async (t) => {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  const pkts: Buffer[] = [];
  sock.on('message', (m) => { if ((m[1] & 0x7f) === 101) pkts.push(m); });
  const tx = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101, remote: { address: '127.0.0.1', port: sock.address().port } });
  tx.sendDtmf('7', { durationMs: 100 });
  await sleep(400);
  t.ok(pkts.length >= 7, `${pkts.length} event packets`);
  const ts = new Set(pkts.map((p) => p.readUInt32BE(4)));
  t.equal(ts.size, 1, 'one timestamp for the whole event');
  t.ok((pkts[0][1] & 0x80) !== 0 && pkts.slice(1).every((p) => (p[1] & 0x80) === 0), 'marker on the first packet only');
  const ends = pkts.filter((p) => (p[13] & 0x80) !== 0);
  t.equal(ends.length, 3, 'end sent three times');
  t.ok(ends.every((p) => p.readUInt16BE(14) === 800), 'final duration 800 (100 ms at 8 kHz)');
  t.ok(pkts.every((p) => p[12] === 7), 'event 7');
  for (let i = 1; i < pkts.length; i++) t.equal((pkts[i].readUInt16BE(2) - pkts[i - 1].readUInt16BE(2)) & 0xffff, 1, 'seq continuous');
  tx.close(); sock.close();
});
