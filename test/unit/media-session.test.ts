// MediaEngine / MediaSession over real UDP sockets on 127.0.0.1.
// Port range for this file: 20000-20999 (the native tests own 20000-21999).
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, type MediaSession, ulawDecode, ulawEncode, alawEncode } from '../../src/media/index.ts';

setLogLevel('silent');

interface RxPacket { at: number; marker: boolean; pt: number; seq: number; ts: number; ssrc: number; payload: Buffer; from: number }

/** A UDP peer that records the RTP it receives. */
async function rtpPeer() {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const packets: RxPacket[] = [];
  sock.on('message', (m, rinfo) => {
    packets.push({
      at: performance.now(), marker: (m[1] & 0x80) !== 0, pt: m[1] & 0x7f, seq: m.readUInt16BE(2),
      ts: m.readUInt32BE(4), ssrc: m.readUInt32BE(8), payload: m.subarray(12), from: rinfo.port,
    });
  });
  return { sock, packets, port: sock.address().port };
}

function rtp(pt: number, seq: number, ts: number, ssrc: number, payload: Uint8Array, marker = false): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE(ts >>> 0, 4); h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
}

function tone(n: number, hz = 440, amp = 8000): Int16Array {
  return Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) { if (Date.now() > end) return false; await sleep(5); }
  return true;
}

const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 20000, portMax: 20199 });
t.teardown(() => engine.close());

t.test('plays 1 s of tone as 50 paced packets with a correct RTP header', async (t) => {
  const peer = await rtpPeer();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.equal(s.localAddress, '127.0.0.1');
  t.ok(s.localPort >= 20000 && s.localPort <= 20199 && s.localPort % 2 === 0, `even port in range (${s.localPort})`);
  const pcm = tone(8000);
  // Queue before the destination is known so the very first packet is audio.
  s.play(pcm);
  t.equal(s.queuedMs, 1000);
  let done = 0;
  s.on('playoutDone', () => done++);
  engine.resetPacingStats();
  s.setRemote('127.0.0.1', peer.port);
  t.ok(await waitFor(() => peer.packets.length >= 60, 3000), 'received 60 packets');
  const pkts = peer.packets.slice(0, 60);
  const expected = ulawEncode(pcm);
  const audio = pkts.filter((p) => p.payload.some((b) => b !== 0xff));
  t.equal(audio.length, 50, '50 packets carry the tone');
  t.same(Buffer.concat(pkts.slice(0, 50).map((p) => p.payload)), Buffer.from(expected), 'payload = µ-law of the tone, in order');
  t.ok(pkts.slice(50).every((p) => p.payload.every((b) => b === 0xff)), 'then G.711 silence keeps the stream alive');
  t.same(pkts.map((p) => p.marker).flatMap((m, i) => (m ? [i] : [])), [0], 'marker only on the first packet');
  t.ok(pkts.every((p) => p.pt === 0), 'PT 0');
  t.equal(new Set(pkts.map((p) => p.ssrc)).size, 1, 'SSRC constant');
  let seqOk = true, tsOk = true;
  for (let i = 1; i < pkts.length; i++) {
    if (((pkts[i].seq - pkts[i - 1].seq) & 0xffff) !== 1) seqOk = false;
    if (((pkts[i].ts - pkts[i - 1].ts) >>> 0) !== 160) tsOk = false;
  }
  t.ok(seqOk, 'sequence +1 per packet');
  t.ok(tsOk, 'timestamp +160 per packet');
  const gaps = pkts.slice(1, 50).map((p, i) => p.at - pkts[i].at);
  const span = pkts[49].at - pkts[0].at;
  const pacing = engine.pacingStats();
  t.comment(`50 packets span ${span.toFixed(1)} ms; gap min ${Math.min(...gaps).toFixed(2)} max ${Math.max(...gaps).toFixed(2)} ms; ` +
    `native pacing ${JSON.stringify(pacing)}; scheduling ${engine.scheduling}`);
  t.ok(span > 900 && span < 1100, 'about 20 ms spacing (loose bound; timings belong in benchmarks)');
  t.ok(pacing.samples >= 50, 'pacing stats collected natively');
  t.equal(done, 1, "one 'playoutDone'");
  const st = s.stats();
  t.equal(st.ssrcOut, pkts[0].ssrc);
  t.ok(st.packetsOut >= 60 && st.bytesOut === st.packetsOut * 172, 'packet/byte counters');
  t.equal(st.lastRxAgoMs, null, 'nothing received yet');
  t.same(st.remote, { address: '127.0.0.1', port: peer.port });
  t.equal(st.latched, false);
  s.close();
  peer.sock.close();
});

t.test('inbound RTP goes through the jitter buffer and is delivered as audio batches; garbage is rejected', async (t) => {
  const peer = await rtpPeer();
  const s = engine.createSession({ codec: 'PCMA', payloadType: 8, telephoneEventPayloadType: 101 });
  const chunks: Int16Array[] = [];
  s.on('audio', (pcm) => chunks.push(pcm));
  const payloads: Uint8Array[] = [];
  const src = tone(160 * 10, 1000, 12000);
  for (let i = 0; i < 10; i++) payloads.push(alawEncode(src.subarray(i * 160, (i + 1) * 160)));
  for (let i = 0; i < 10; i++) {
    peer.sock.send(rtp(8, 1000 + i, 5000 + 160 * i, 0x1234, payloads[i], i === 0), s.localPort, '127.0.0.1');
    await sleep(2);
  }
  peer.sock.send(Buffer.from('not rtp at all'), s.localPort, '127.0.0.1');
  const bad = rtp(8, 1, 1, 1, new Uint8Array(4)); bad[0] = 0x40;  // version 1
  peer.sock.send(bad, s.localPort, '127.0.0.1');
  peer.sock.send(rtp(101, 2000, 1, 0x1234, Uint8Array.from([1, 0x8a, 0, 160])), s.localPort, '127.0.0.1');
  t.ok(await waitFor(() => chunks.reduce((n, c) => n + c.length, 0) >= 1600, 2000), 'all audio delivered');
  await sleep(100);
  const got = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) { got.set(c, off); off += c.length; }
  const want = new Int16Array(1600);
  const { alawDecode } = await import('../../src/media/index.ts');
  payloads.forEach((p, i) => want.set(alawDecode(p), i * 160));
  t.same([...got.subarray(0, 1600)], [...want], 'PCM starts with exactly the decoded input, in order');
  // After the last packet the playout conceals (fading within 60 ms), then plays silence.
  const tail = got.subarray(1600 + 480);
  t.ok(tail.every((v) => v === 0), `silence after the concealment fade (${tail.length} samples)`);
  // Batched in media terms: an event carries more than one 20 ms packet's audio on average
  // (counting events against wall time failed on a loaded box, where the test waits longer).
  t.ok(got.length / chunks.length > 160, `batched (${chunks.length} events carry ${got.length} samples)`);
  const st = s.stats();
  t.equal(st.packetsIn, 11, '10 audio + 1 telephone-event');
  t.equal(st.invalidIn, 2, 'garbage and version-1 packets rejected');
  t.ok(st.lastRxAgoMs !== null && st.lastRxAgoMs < 1000, 'lastRxAgoMs tracks inbound');
  s.close();
  peer.sock.close();
});

t.test('symmetric RTP: outbound latches to the actual source of inbound RTP', async (t) => {
  const signalled = await rtpPeer();
  const actual = await rtpPeer();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: signalled.port } });
  t.ok(await waitFor(() => signalled.packets.length >= 2, 1000), 'sends to the signalled remote first');
  const latched = once(s, 'latched');
  // Wrong payload type does not latch.
  actual.sock.send(rtp(18, 1, 0, 7, new Uint8Array(20)), s.localPort, '127.0.0.1');
  await sleep(60);
  t.equal(s.stats().latched, false, 'a non-negotiated payload type does not latch');
  actual.sock.send(rtp(0, 2, 160, 7, new Uint8Array(160).fill(0xff)), s.localPort, '127.0.0.1');
  const [remote] = (await latched) as [{ address: string; port: number }];
  t.same(remote, { address: '127.0.0.1', port: actual.port }, "'latched' names the real source");
  const before = actual.packets.length;
  t.ok(await waitFor(() => actual.packets.length >= before + 3, 1000), 'outbound now goes to the source');
  const st = s.stats();
  t.equal(st.latched, true);
  t.same(st.remote, { address: '127.0.0.1', port: actual.port });
  // A third party cannot steal the stream while the latched source is active.
  const intruder = await rtpPeer();
  actual.sock.send(rtp(0, 3, 320, 7, new Uint8Array(160).fill(0xff)), s.localPort, '127.0.0.1');
  intruder.sock.send(rtp(0, 9, 999, 9, new Uint8Array(160).fill(0xff)), s.localPort, '127.0.0.1');
  await sleep(80);
  t.same(s.stats().remote, { address: '127.0.0.1', port: actual.port }, 'intruder ignored');
  t.ok(s.stats().invalidIn >= 1, 'intruder packet counted as invalid');
  // setRemote (re-INVITE) re-arms latching.
  s.setRemote('127.0.0.1', signalled.port);
  t.match(s.stats(), { latched: false, remote: { address: '127.0.0.1', port: signalled.port } }, 're-armed: not latched, signalled remote');
  s.close();
  for (const p of [signalled, actual, intruder]) p.sock.close();
});

t.test('flush() stops the audio at once; queuedMs follows the queue', async (t) => {
  const peer = await rtpPeer();
  const s: MediaSession = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: peer.port } });
  let done = 0;
  s.on('playoutDone', () => done++);
  s.play(tone(16000));
  t.ok(s.queuedMs > 1900, `queued ${s.queuedMs} ms`);
  await sleep(300);
  t.ok(s.queuedMs < 1900, `queue drains while playing (${s.queuedMs} ms left)`);
  s.flush();
  t.equal(s.queuedMs, 0, 'queue empty after flush');
  const flushedAt = peer.packets.length;
  await sleep(200);
  const after = peer.packets.slice(flushedAt + 1);  // at most one packet may have been in flight
  t.ok(after.length >= 5, 'stream continues');
  t.ok(after.every((p) => p.payload.every((b) => b === 0xff)), 'only silence after flush');
  t.equal(done, 0, "no 'playoutDone' after flush");
  // A new talkspurt after flush carries the marker bit.
  const n0 = peer.packets.length;
  s.play(tone(800));
  t.ok(await waitFor(() => done === 1, 1000), 'playoutDone for the new audio');
  // 'playoutDone' can reach JS before the peer socket has read the last packet.
  const voiced = () => peer.packets.slice(n0).filter((p) => p.payload.some((b) => b !== 0xff));
  await waitFor(() => voiced().length >= 5, 1000);
  const spurt = voiced();
  t.equal(spurt.length, 5, '100 ms = 5 packets');
  t.equal(spurt[0].marker, true, 'marker on the first packet of the new talkspurt');
  t.ok(spurt.slice(1).every((p) => !p.marker), 'no marker inside the talkspurt');
  s.close();
  peer.sock.close();
});

t.test('setCodec switches payload type and encoding', async (t) => {
  const peer = await rtpPeer();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: peer.port } });
  s.setCodec('PCMA', 8);
  const n0 = peer.packets.length;
  t.ok(await waitFor(() => peer.packets.length >= n0 + 3, 1000));
  const last = peer.packets[peer.packets.length - 1];
  t.equal(last.pt, 8);
  t.ok(last.payload.every((b) => b === 0xd5), 'A-law silence');
  s.close();
  peer.sock.close();
});

t.test('sessions close cleanly and their port is reusable; a full range gives a clear error', async (t) => {
  const e2 = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 20400, portMax: 20401 });
  const a = e2.createSession({ codec: 'PCMU', payloadType: 0 });
  t.equal(a.localPort, 20400);
  t.equal(e2.activeSessions, 1);
  t.throws(() => e2.createSession({ codec: 'PCMU', payloadType: 0 }), /no free RTP port in range 20400-20401/);
  a.close();
  a.close();  // idempotent
  t.equal(e2.activeSessions, 0);
  t.throws(() => a.play(new Int16Array(160)), /closed/);
  const b = e2.createSession({ codec: 'PCMU', payloadType: 0 });
  t.equal(b.localPort, 20400, 'port reused right after close');
  e2.close();
  t.ok(b.isClosed, 'engine close closes its sessions');
  t.throws(() => e2.createSession({ codec: 'PCMU', payloadType: 0 }), /closed/);
  // The socket is really gone: the port can be bound by someone else now.
  const probe = dgram.createSocket('udp4');
  probe.bind(20400, '127.0.0.1');
  await once(probe, 'listening');
  probe.close();
  t.throws(() => MediaEngine.create({ portMin: 20500, portMax: 20400 }), /invalid RTP port range/);
  t.throws(() => MediaEngine.create({ bindAddress: 'localhost' }), /numeric/);
});

t.test('many sessions share one media thread (pacing sanity)', async (t) => {
  const peer = await rtpPeer();
  const sessions = Array.from({ length: 50 }, () =>
    engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: peer.port } }));
  await sleep(100);
  engine.resetPacingStats();
  peer.packets.length = 0;
  await sleep(1000);
  const p = engine.pacingStats();
  t.comment(`50 sessions, 1 s: ${peer.packets.length} packets, pacing ${JSON.stringify(p)}`);
  t.ok(peer.packets.length >= 50 * 45, 'about 50 packets/s per session');
  t.ok(p.samples >= 50 * 45);
  for (const s of sessions) s.close();
  t.equal(engine.activeSessions, 0);
  peer.sock.close();
});
