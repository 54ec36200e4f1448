/**
 * The rep leg is in the recording after a warm transfer: the call's recorder taps the
 * caller's session, and once that session is bridged to the rep's, what it sends to the
 * caller is the rep. Caller (A) sends 400 Hz, the rep (B) 1300 Hz; A's WAV has 400 Hz on the
 * left and the rep's 1300 Hz on the right.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, ulawEncode } from '../../src/media/index.ts';
import { freePortBlock } from '../helpers/ports.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tone = (n: number, hz: number, amp = 8000) => Int16Array.from({ length: n }, (_, i) => Math.round(amp * Math.sin((2 * Math.PI * hz * i) / 8000)));
const rtp = (seq: number, payload: Uint8Array): Buffer => {
  const h = Buffer.alloc(12); h[0] = 0x80; h[1] = 0; h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE((seq * 160) >>> 0, 4); h.writeUInt32BE(0x77, 8);
  return Buffer.concat([h, payload]);
};
function level(x: Int16Array, hz: number): number {
  const c = 2 * Math.cos((2 * Math.PI * hz) / 8000); let s1 = 0, s2 = 0;
  for (const v of x) { const s = v + c * s1 - s2; s2 = s1; s1 = s; }
  return Math.sqrt(s1 * s1 + s2 * s2 - c * s1 * s2) / (x.length / 2) / 32768;
}
async function peer() {
  const sock = dgram.createSocket('udp4'); sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  return { sock, port: sock.address().port };
}

t.test('recording of a bridged call: caller left, rep right', async (t) => {
  const ports = await freePortBlock({ min: 25000, max: 26999 }, 10);
  const engine = MediaEngine.create({ portMin: ports.min, portMax: ports.max });
  t.teardown(() => engine.close());
  const pa = await peer(), pb = await peer();
  const a = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: pa.port } });
  const b = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: pb.port }, near: a });
  const file = join(mkdtempSync(join(tmpdir(), 'rep-rec-')), 'call.wav');
  a.startRecording(file);
  engine.bridge(a, b);
  for (let i = 0; i < 60; i++) {
    pa.sock.send(rtp(i, ulawEncode(tone(160, 400))), a.localPort, '127.0.0.1');
    pb.sock.send(rtp(i, ulawEncode(tone(160, 1300))), b.localPort, '127.0.0.1');
    await sleep(20);
  }
  await sleep(100);
  const r = a.stopRecording();
  t.ok(r && r.frames > 4000, `${r?.frames} frames`);
  const wav = readFileSync(file);
  const n = r!.frames;
  const left = new Int16Array(n), right = new Int16Array(n);
  for (let i = 0; i < n; i++) { left[i] = wav.readInt16LE(44 + i * 4); right[i] = wav.readInt16LE(46 + i * 4); }
  t.ok(level(left, 400) > 0.1 && level(left, 1300) < 0.02, `left = caller (400 Hz ${level(left, 400).toFixed(3)})`);
  t.ok(level(right, 1300) > 0.1 && level(right, 400) < 0.02, `right = the rep after the bridge (1300 Hz ${level(right, 1300).toFixed(3)})`);
  engine.unbridge(a);
  a.close(); b.close(); pa.sock.close(); pb.sock.close();
});
