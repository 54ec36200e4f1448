// The media-capacity benchmark's native carrier load (native/rtp_load.h, binding RtpLoadTest):
// every caller's packets reach its own target from one socket, with the RTP a carrier sends
// (PCMU, 160-byte payloads, consecutive sequence numbers and timestamps per caller, one SSRC per
// caller), and what the targets send back is counted per caller.
import dgram from 'node:dgram';
import t from 'tap';
import { native } from '../../src/media/native.ts';

const bind = (): Promise<dgram.Socket> =>
  new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });

t.test('two callers: their own streams to their own targets, echoes counted as inter-arrivals', async (t) => {
  const voice = new Uint8Array(160 * 10).map((_, i) => (i * 7) & 0xff);
  const load = new native.RtpLoadTest({ voices: [voice], jitterMs: 0, lossPct: 0, seed: 7 });
  const targets = [await bind(), await bind()];
  const got: { seq: number; ts: number; ssrc: number; pt: number; len: number; from: number }[][] = [[], []];
  targets.forEach((s, i) =>
    s.on('message', (m, r) => {
      got[i]!.push({ seq: m.readUInt16BE(2), ts: m.readUInt32BE(4), ssrc: m.readUInt32BE(8), pt: m[1]! & 0x7f, len: m.length, from: r.port });
      s.send(m, r.port, r.address); // a session answering on the same port
    }),
  );
  load.start(targets.map((s) => s.address().port));
  load.mark();
  await new Promise((r) => setTimeout(r, 400));
  const rep = load.report();
  load.stop();
  for (const s of targets) s.close();
  for (const [i, g] of got.entries()) {
    t.ok(g.length >= 10, `target ${i} got ${g.length} packets`);
    t.ok(g.every((p) => p.pt === 0 && p.len === 172 && p.from === load.port()), `target ${i}: PCMU, 160-byte payloads, from the load's one port`);
    t.ok(g.every((p) => p.ssrc === g[0]!.ssrc), `target ${i}: one SSRC`);
    t.ok(g.slice(1).every((p, k) => p.seq === ((g[k]!.seq + 1) & 0xffff) && p.ts === ((g[k]!.ts + 160) >>> 0)), `target ${i}: consecutive seq and ts`);
  }
  t.not(got[0]![0]!.ssrc, got[1]![0]!.ssrc, 'each caller its own SSRC');
  t.ok(rep.sent >= 20 && rep.dropped === 0 && rep.sendErrors === 0, `sent ${rep.sent}, none dropped or failed`);
  t.ok(rep.rxPackets >= 18 && rep.rxIntervals >= 16 && rep.rxUnknown === 0, `echoes: ${rep.rxPackets} packets, ${rep.rxIntervals} inter-arrivals`);
});

t.test('bad options are clear errors', async (t) => {
  t.throws(() => new native.RtpLoadTest({ voices: [] }), /no voices/);
  t.throws(() => new native.RtpLoadTest({ voices: [new Uint8Array(100)] }), /whole 160-byte frames/);
  const load = new native.RtpLoadTest({ voices: [new Uint8Array(160)] });
  t.throws(() => load.start([70000]), /targets\[i\]/);
  load.stop();
});
