// Opus through libopus in the native core, checked against @discordjs/opus as
// the independent encoder/decoder, both directions, plus decoder PLC and
// in-band FEC through the playout path. Port range for this file: 21500-21599.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import opus from '@discordjs/opus';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, supportedCodecs, parseOpusFmtp } from '../../src/media/index.ts';
import { native } from '../../src/media/native.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const speechLike = (n: number, rate: number) => Int16Array.from({ length: n }, (_, i) => {
  let v = 0; for (let h = 1; h <= 8; h++) v += Math.sin((2 * Math.PI * 150 * h * i) / rate) / h;
  return Math.round(5000 * v * (0.6 + 0.4 * Math.sin((2 * Math.PI * 3 * i) / rate)));
});
function rtp(pt: number, seq: number, ts: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(12); h[0] = 0x80; h[1] = pt; h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE(ts >>> 0, 4); h.writeUInt32BE(0xabc, 8);
  return Buffer.concat([h, payload]);
}
function bestCorr(x: Int16Array, y: Int16Array, maxLag: number): number {
  let best = -1; const n = Math.min(x.length, y.length - maxLag);
  for (let lag = 0; lag <= maxLag; lag++) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = 0; i < n; i++) { const a = x[i], b = y[i + lag]; xy += a * b; xx += a * a; yy += b * b; }
    best = Math.max(best, xy / Math.sqrt(xx * yy + 1e-9));
  }
  return best;
}
const concat = (a: Int16Array[]) => { const o = new Int16Array(a.reduce((n, c) => n + c.length, 0)); let p = 0; for (const c of a) { o.set(c, p); p += c.length; } return o; };

const engine = MediaEngine.create({ portMin: 21500, portMax: 21599 });
t.teardown(() => engine.close());

t.test('opus is compiled in and fmtp parses', async (t) => {
  t.ok(supportedCodecs.includes('opus'));
  t.same(parseOpusFmtp('maxplaybackrate=16000; stereo=0; useinbandfec=1;maxaveragebitrate=24000'),
    { fec: true, dtx: false, maxPlaybackRate: 16000, stereo: false, bitrate: 24000 });
});

t.test('inbound: @discordjs/opus encodes 48 kHz, the session decodes to 16 kHz PCM', async (t) => {
  const enc = new opus.OpusEncoder(48000, 1);
  const src = speechLike(48000 * 2, 48000);
  const s = engine.createSession({ codec: 'opus', payloadType: 111, deliverRate: 16000 });
  const chunks: Int16Array[] = [];
  s.on('audio', (p) => chunks.push(p));
  const sock = dgram.createSocket('udp4'); sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  for (let i = 0; i < 100; i++) {
    const frame = Buffer.from(src.buffer, src.byteOffset + i * 960 * 2, 960 * 2);
    sock.send(rtp(111, i, i * 960, enc.encode(frame)), s.localPort, '127.0.0.1');
    await sleep(20);
  }
  await sleep(200);
  const got = concat(chunks);
  const ref = native.resample(src, 48000, 16000);
  const c = bestCorr(ref.subarray(1600, 1600 + 16000), got, 3200);
  t.ok(c > 0.9, `16 kHz output correlates with the source: ${c.toFixed(3)}`);
  t.equal(s.stats().jitter?.decodeErrors, 0);
  sock.close(); s.close();
});

t.test('outbound: the session encodes Opus (48 kHz RTP clock, dynamic PT), @discordjs/opus decodes it', async (t) => {
  const dec = new opus.OpusEncoder(48000, 1);
  const sock = dgram.createSocket('udp4'); sock.bind(0, '127.0.0.1'); await once(sock, 'listening');
  const pkts: Buffer[] = [];
  sock.on('message', (m) => pkts.push(m));
  const s = engine.createSession({ codec: 'opus', payloadType: 109, fmtp: 'useinbandfec=1;maxplaybackrate=8000', remote: { address: '127.0.0.1', port: sock.address().port } });
  const src = speechLike(8000, 8000);
  s.play(src);
  await sleep(1300);
  const audio = pkts.filter((p) => (p[1] & 0x7f) === 109);
  t.ok(audio.length >= 50, `${audio.length} packets`);
  let tsOk = true; for (let i = 1; i < audio.length; i++) if (((audio[i].readUInt32BE(4) - audio[i - 1].readUInt32BE(4)) >>> 0) !== 960) tsOk = false;
  t.ok(tsOk, 'timestamp +960 per 20 ms (48 kHz clock)');
  const pcm = concat(audio.map((p) => { const b = dec.decode(p.subarray(12)); return new Int16Array(b.buffer, b.byteOffset, b.length / 2); }));
  const ref = native.resample(src, 8000, 48000);
  const c = bestCorr(ref.subarray(4800, 4800 + 19200), pcm, 9600);
  t.ok(c > 0.85, `decoded by the reference correlates with what we played: ${c.toFixed(3)}`);
  sock.close(); s.close();
});

t.test('loss: decoder PLC and in-band FEC (via the playout simulator)', async (t) => {
  const enc = new opus.OpusEncoder(16000, 1);
  enc.applyEncoderCTL(4012, 1);   // OPUS_SET_INBAND_FEC
  enc.applyEncoderCTL(4014, 20);  // OPUS_SET_PACKET_LOSS_PERC
  enc.setBitrate(24000);
  const src = speechLike(16000 * 2, 16000);
  const frames = Array.from({ length: 100 }, (_, i) => enc.encode(Buffer.from(src.buffer, src.byteOffset + i * 640, 640)));
  const run = (lost: Set<number>) => {
    const p = new native.PlayoutTest({ codec: 'opus', payloadType: 111, rate: 16000 });
    const out: Int16Array[] = [];
    for (let k = 0; k < 110; k++) {
      if (k < 100 && !lost.has(k)) p.put(rtp(111, k, k * 960, frames[k]), k * 20 + 1);
      const f = p.tick(k * 20 + 7); if (f) out.push(f);
    }
    return { pcm: concat(out), stats: p.stats() };
  };
  const clean = run(new Set());
  const lost = new Set([20, 35, 50, 65, 80]);
  const lossy = run(lost);
  t.equal(lossy.stats.lost, 5);
  t.comment(`FEC recovered ${lossy.stats.fecRecovered}, PLC ${lossy.stats.concealed}`);
  t.ok(lossy.stats.fecRecovered + lossy.stats.concealed >= 5, 'every loss handled by FEC or PLC');
  t.ok(lossy.stats.fecRecovered >= 3, 'in-band FEC used when the next packet carries it');
  let e = 0, s = 0; for (let i = 0; i < clean.pcm.length; i++) { s += clean.pcm[i] ** 2; e += (clean.pcm[i] - lossy.pcm[i]) ** 2; }
  const snr = 10 * Math.log10(s / e);
  t.comment(`lossy vs clean decode: SNR ${snr.toFixed(1)} dB over 2 s with 5 % loss`);
  t.ok(snr > 8, 'concealed stream stays close to the clean decode');
});

t.test('CPU: Opus encode+decode per stream (20 ms frames)', async (t) => {
  const s = engine.createSession({ codec: 'opus', payloadType: 111 });
  s.close();
  const enc = new opus.OpusEncoder(16000, 1);
  const src = speechLike(16000, 16000);
  const frames = Array.from({ length: 50 }, (_, i) => enc.encode(Buffer.from(src.buffer, src.byteOffset + i * 640, 640)));
  const p = new native.PlayoutTest({ codec: 'opus', payloadType: 111, rate: 16000 });
  const t0 = process.cpuUsage();
  for (let k = 0; k < 1000; k++) { p.put(rtp(111, k, k * 960, frames[k % 50]), k * 20 + 1); p.tick(k * 20 + 7); }
  const d = process.cpuUsage(t0);
  const us = (d.user + d.system) / 1000;
  t.comment(`decode+JB: ${us.toFixed(1)} µs per 20 ms frame = ${(us / 20000 * 100).toFixed(3)} % of a core per stream`);
  t.pass();
});
