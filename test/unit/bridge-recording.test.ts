// Native bridge (with transcoding PCMU ↔ Opus) and the stereo WAV recording tap.
// Port range for this file: 21600-21699.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, ulawEncode, ulawDecode } from '../../src/media/index.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tone = (n: number, hz: number, amp = 8000) => Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000)));
function rtp(pt: number, seq: number, ts: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(12); h[0] = 0x80; h[1] = pt; h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE(ts >>> 0, 4); h.writeUInt32BE(0x55, 8);
  return Buffer.concat([h, payload]);
}
/** Power of `hz` in x (Goertzel), normalised to a full-scale sine = 1. */
function toneLevel(x: Int16Array, hz: number, rate = 8000): number {
  const w = (2 * Math.PI * hz) / rate; const c = 2 * Math.cos(w); let s1 = 0, s2 = 0;
  for (const v of x) { const s = v + c * s1 - s2; s2 = s1; s1 = s; }
  return Math.sqrt(s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length / 2) / 32768;
}
async function peer() {
  const sock = dgram.createSocket('udp4'); sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  const got: Buffer[] = []; sock.on('message', (m) => { if ((m[1] & 0x7f) === 0) got.push(m); });
  return { sock, got, port: sock.address().port };
}

const engine = MediaEngine.create({ portMin: 21600, portMax: 21699 });
t.teardown(() => engine.close());

t.test('bridge: A hears B and B hears A; JS play() is mixed in; unbridge stops it', async (t) => {
  const pa = await peer(), pb = await peer();
  const a = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: pa.port } });
  const b = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: pb.port }, near: a });
  engine.bridge(a, b);
  t.throws(() => engine.bridge(a, b), /already bridged/);
  t.equal(a.stats().bridged, true);
  // Caller A speaks 500 Hz, caller B speaks 1200 Hz.
  for (let i = 0; i < 50; i++) {
    pa.sock.send(rtp(0, i, i * 160, ulawEncode(tone(160, 500))), a.localPort, '127.0.0.1');
    pb.sock.send(rtp(0, i, i * 160, ulawEncode(tone(160, 1200))), b.localPort, '127.0.0.1');
    if (i === 20) b.play(tone(4000, 300, 4000));  // announcement to B's side while bridged
    await sleep(20);
  }
  await sleep(200);
  const dec = (ps: Buffer[]) => { const o = new Int16Array(ps.length * 160); ps.forEach((p, i) => o.set(ulawDecode(p.subarray(12)), i * 160)); return o; };
  const toA = dec(pa.got), toB = dec(pb.got);
  t.ok(toneLevel(toA, 1200) > 0.1 && toneLevel(toA, 500) < 0.02, `A hears B (1200 Hz ${toneLevel(toA, 1200).toFixed(3)})`);
  t.ok(toneLevel(toB, 500) > 0.1 && toneLevel(toB, 1200) < 0.02, `B hears A (500 Hz ${toneLevel(toB, 500).toFixed(3)})`);
  t.ok(toneLevel(toB, 300) > 0.02, 'the JS announcement is mixed into B');
  t.equal(engine.unbridge(a), true);
  t.equal(engine.unbridge(b), false, 'both sides released');
  a.close(); b.close(); pa.sock.close(); pb.sock.close();
});

t.test('bridge transcodes Opus ↔ PCMU', async (t) => {
  const pb = await peer();
  const a = engine.createSession({ codec: 'opus', payloadType: 111, deliverRate: 16000 });
  const b = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: pb.port }, near: a });
  engine.bridge(a, b);
  const opus = (await import('@discordjs/opus')).default;
  const enc = new opus.OpusEncoder(48000, 1);
  const src = Int16Array.from({ length: 48000 }, (_, i) => Math.round(8000 * Math.sin((2 * Math.PI * 700 * i) / 48000)));
  const sock = dgram.createSocket('udp4'); sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  for (let i = 0; i < 50; i++) {
    const h = Buffer.alloc(12); h[0] = 0x80; h[1] = 111; h.writeUInt16BE(i, 2); h.writeUInt32BE(i * 960, 4);
    sock.send(Buffer.concat([h, enc.encode(Buffer.from(src.buffer, i * 1920, 1920))]), a.localPort, '127.0.0.1');
    await sleep(20);
  }
  await sleep(150);
  const o = new Int16Array(pb.got.length * 160); pb.got.forEach((p, i) => o.set(ulawDecode(p.subarray(12)), i * 160));
  t.ok(toneLevel(o, 700) > 0.1, `Opus caller's 700 Hz reaches the PCMU side (${toneLevel(o, 700).toFixed(3)})`);
  a.close(); b.close(); sock.close(); pb.sock.close();
});

t.test('recording: stereo WAV, caller left, agent right', async (t) => {
  const p = await peer();
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: p.port } });
  const path = join(mkdtempSync(join(tmpdir(), 'rec-')), 'call.wav');
  s.startRecording(path);
  t.throws(() => s.startRecording(path), /already recording/);
  s.play(tone(8000, 1000));
  for (let i = 0; i < 50; i++) { p.sock.send(rtp(0, i, i * 160, ulawEncode(tone(160, 400))), s.localPort, '127.0.0.1'); await sleep(20); }
  await sleep(100);
  const r = s.stopRecording();
  t.ok(r && r.frames > 8000, `${r?.frames} stereo frames written, ${r?.dropped} dropped`);
  const wav = readFileSync(path);
  t.equal(wav.toString('ascii', 0, 4), 'RIFF'); t.equal(wav.readUInt16LE(22), 2, 'stereo'); t.equal(wav.readUInt32LE(24), 8000);
  t.equal(wav.readUInt32LE(40), r!.frames * 4, 'data size patched');
  const pcm = new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + 44 + r!.frames * 4));
  const left = pcm.filter((_, i) => i % 2 === 0), right = pcm.filter((_, i) => i % 2 === 1);
  t.ok(toneLevel(left, 400) > 0.1 && toneLevel(left, 1000) < 0.02, `left = caller (400 Hz ${toneLevel(left, 400).toFixed(3)}, 1000 Hz ${toneLevel(left, 1000).toFixed(3)})`);
  t.ok(toneLevel(right, 1000) > 0.1 && toneLevel(right, 400) < 0.02, 'right = agent (1000 Hz)');
  t.equal(s.stopRecording(), null, 'stopping twice is harmless');
  s.close(); p.sock.close();
});
