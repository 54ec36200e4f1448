// Many sessions on one engine: once every one of the 20 send slots holds a session, the media
// thread reads its sockets at its clock's wake-ups instead of waking per packet (batched
// reads, docs/ARCHITECTURE.md "The media loop and the clock"). Each session must still latch,
// deliver every inbound frame as audio, take RFC 4733 digits and send its own paced stream,
// and a closed session's port must be reusable while the rest run on.
// Port range for this file: 21400-21499.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, type MediaSession, ulawEncode } from '../../src/media/index.ts';

setLogLevel('silent');

const SESSIONS = 30;  // > 20 slots: batched reads are on
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) { if (Date.now() > end) return false; await sleep(5); }
  return true;
}

function rtp(pt: number, seq: number, ts: number, ssrc: number, payload: Uint8Array, marker = false): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE(ts >>> 0, 4); h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
}

interface Peer { sock: dgram.Socket; port: number; rx: number; seqs: number[] }
async function peer(): Promise<Peer> {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const p: Peer = { sock, port: sock.address().port, rx: 0, seqs: [] };
  sock.on('message', (m) => { p.rx++; p.seqs.push(m.readUInt16BE(2)); });
  return p;
}

const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 21400, portMax: 21499 });
t.teardown(() => engine.close());

t.test(`${SESSIONS} sessions: latching, every inbound frame delivered, digits, paced output`, async (t) => {
  const peers: Peer[] = [];
  const sessions: MediaSession[] = [];
  const samples = new Array<number>(SESSIONS).fill(0);
  const latched = new Array<boolean>(SESSIONS).fill(false);
  const digits: string[] = new Array(SESSIONS).fill('');
  for (let i = 0; i < SESSIONS; i++) {
    const p = await peer();
    peers.push(p);
    // No signalled remote: the session sends only once it latched onto its peer.
    const s = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101 } as Parameters<typeof engine.createSession>[0]);
    s.on('audio', (pcm: Int16Array) => { samples[i] += pcm.length; });
    s.on('latched', () => { latched[i] = true; });
    s.on('dtmf', (d: { digit: string }) => { digits[i] += d.digit; });
    sessions.push(s);
  }
  t.teardown(() => { for (const s of sessions) if (!s.isClosed) s.close(); for (const p of peers) p.sock.close(); });

  // 50 packets (1 s) of a tone per session, 20 ms apart, then one RFC 4733 digit ('5').
  const frame = ulawEncode(Int16Array.from({ length: 160 }, (_, k) => Math.round(6000 * Math.sin((2 * Math.PI * 440 * k) / 8000))));
  const PACKETS = 50;
  for (let n = 0; n < PACKETS; n++) {
    for (let i = 0; i < SESSIONS; i++) peers[i]!.sock.send(rtp(0, n, n * 160, 0x1000 + i, frame, n === 0), sessions[i]!.localPort, '127.0.0.1');
    await sleep(20);
  }
  const te = (end: boolean, dur: number) => Uint8Array.from([5, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff]);
  for (let k = 0; k < 5; k++) {
    const end = k >= 2;
    for (let i = 0; i < SESSIONS; i++) {
      peers[i]!.sock.send(rtp(101, PACKETS + k, PACKETS * 160, 0x1000 + i, te(end, Math.min(3, k + 1) * 160), k === 0), sessions[i]!.localPort, '127.0.0.1');
    }
    await sleep(20);
  }
  t.ok(await waitFor(() => latched.every(Boolean), 3000), 'every session latched onto its peer');
  t.ok(await waitFor(() => digits.every((d) => d === '5'), 3000), `every session got the digit once (${digits.filter((d) => d === '5').length}/${SESSIONS})`);
  // Every frame played out: 50 packets × 160 samples (the jitter buffer may add concealed or silent frames after).
  t.ok(await waitFor(() => samples.every((n) => n >= PACKETS * 160), 3000),
    `every session delivered all ${PACKETS * 160} samples (min ${Math.min(...samples)})`);
  const stats = sessions.map((s) => s.stats());
  t.ok(stats.every((s) => s.packetsIn === PACKETS + 5), 'every inbound packet counted once');
  t.ok(stats.every((s) => s.invalidIn === 0), 'nothing rejected');
  // Each session sends its own stream to the latched peer: consecutive sequence numbers.
  t.ok(await waitFor(() => peers.every((p) => p.rx >= 10), 2000), 'every peer receives the session\'s stream');
  t.ok(peers.every((p) => p.seqs.slice(1).every((q, k) => ((q - p.seqs[k]!) & 0xffff) === 1)), 'no packet lost or reordered on loopback');

  // Close a third of the sessions (batched reads stay on while every slot still has one, and
  // fall back to per-packet wake-ups when a slot empties); the rest keep receiving.
  for (let i = 0; i < SESSIONS; i += 3) sessions[i]!.close();
  const before = samples.slice();
  for (let n = 0; n < 10; n++) {
    for (let i = 0; i < SESSIONS; i++) if (i % 3 !== 0) peers[i]!.sock.send(rtp(0, PACKETS + 5 + n, (PACKETS + 1 + n) * 160, 0x1000 + i, frame), sessions[i]!.localPort, '127.0.0.1');
    await sleep(20);
  }
  t.ok(await waitFor(() => samples.every((n, i) => i % 3 === 0 || n >= before[i]! + 10 * 160), 3000), 'the remaining sessions keep delivering audio');
  t.equal(engine.activeSessions, SESSIONS - Math.ceil(SESSIONS / 3));
});

t.test('a few sessions (fewer than the slots): packets still wake the thread at once', async (t) => {
  const p = await peer();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0 });
  t.teardown(() => { s.close(); p.sock.close(); });
  let got = 0;
  s.on('audio', (pcm: Int16Array) => { got += pcm.length; });
  const frame = ulawEncode(new Int16Array(160));
  for (let n = 0; n < 10; n++) {
    p.sock.send(rtp(0, n, n * 160, 0x77, frame, n === 0), s.localPort, '127.0.0.1');
    await sleep(20);
  }
  t.ok(await waitFor(() => got >= 10 * 160, 3000), `audio delivered (${got} samples)`);
  t.equal(s.stats().packetsIn, 10);
});
