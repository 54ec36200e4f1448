// rtpengine anchor mode end to end: a UDP "carrier" ⇄ rtpengine-daemon (userspace, loopback)
// ⇄ our native MediaSession. G.711 passthrough both ways, and PCMU ⇄ Opus transcoding by
// rtpengine (the carrier speaks Opus only, our core G.711).
// Ports: ng 22300-22399, rtpengine media 30000-30999, our RTP 28000-29999.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine, ulawEncode, ulawDecode } from '../../src/media/index.ts';
import { RtpengineAnchor } from '../../src/media/rtpengine/index.ts';
import { freePortBlock } from '../helpers/ports.ts';
import { blockToneShare, toneAt } from '../helpers/audio.ts';
import { rtpengineBinary, startRtpengine, type RtpengineDaemon } from '../helpers/rtpengine.ts';
import { requireTool } from '../helpers/require.ts';

setLogLevel('silent');

const OUR_RTP = { min: 28000, max: 29999 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sdp(port: number, media: string): string {
  return `v=0\r\no=- 99 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n${media.replace('PORT', String(port))}a=sendrecv\r\n`;
}
const G711 = 'm=audio PORT RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n';
const OPUS = 'm=audio PORT RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n';
const mPort = (s: string): number => Number(/^m=audio (\d+) /m.exec(s)![1]);

function rtp(pt: number, seq: number, ts: number, ssrc: number, payload: Uint8Array, marker = false): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80; h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq & 0xffff, 2); h.writeUInt32BE(ts >>> 0, 4); h.writeUInt32BE(ssrc >>> 0, 8);
  return Buffer.concat([h, payload]);
}

interface Rx { pt: number; payload: Buffer; from: number }
async function carrierSocket() {
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const rx: Rx[] = [];
  sock.on('message', (m, r) => rx.push({ pt: m[1]! & 0x7f, payload: Buffer.from(m.subarray(12)), from: r.port }));
  return { sock, rx, port: sock.address().port };
}

/** Send `frames` 20 ms apart (setTimeout pacing is fine for a functional test). */
async function sendStream(sock: dgram.Socket, port: number, pt: number, frames: Uint8Array[], tsStep: number): Promise<void> {
  const ssrc = 0x1234abcd;
  for (let i = 0; i < frames.length; i++) {
    sock.send(rtp(pt, 1000 + i, 5000 + i * tsStep, ssrc, frames[i]!, i === 0), port, '127.0.0.1');
    await sleep(20);
  }
}

const skip = requireTool(t, 'rtpengine anchor end to end', !!rtpengineBinary(), 'rtpengine', 'rtpengine-daemon');

t.test('rtpengine anchor end to end', { skip }, async (t) => {
  const rte: RtpengineDaemon = await startRtpengine({ mediaPorts: 40 });
  t.teardown(() => rte.stop());
  const ports = await freePortBlock(OUR_RTP, 20);
  const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: ports.min, portMax: ports.max });
  t.teardown(() => engine.close());

  t.test('G.711: carrier → rtpengine → MediaSession, and back', async (t) => {
    const anchor = new RtpengineAnchor({ url: rte.url, timeoutMs: 1000 });
    t.teardown(() => anchor.close());
    const carrier = await carrierSocket();
    t.teardown(() => carrier.sock.close());

    const leg = anchor.begin(`e2e-g711-${Date.now()}`, 'carrier-tag');
    const towardUs = await leg.offerFromCarrier(sdp(carrier.port, G711));
    const rtpengineB = mPort(towardUs);
    const session = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101, remote: { address: '127.0.0.1', port: rtpengineB } });
    t.teardown(() => session.close());
    const toCarrier = await leg.answerFromUs(sdp(session.localPort, G711));
    const rtpengineA = mPort(toCarrier);
    t.not(rtpengineA, session.localPort, 'carrier is told rtpengine\'s address, not ours');

    const heard: Int16Array[] = [];
    session.on('audio', (pcm) => heard.push(pcm));
    const src = toneAt(8000, 8000, 440); // 1 s
    const frames = Array.from({ length: 50 }, (_, i) => ulawEncode(src.subarray(i * 160, (i + 1) * 160)));
    await sendStream(carrier.sock, rtpengineA, 0, frames, 160);
    await sleep(200);
    const total = heard.reduce((n, p) => n + p.length, 0);
    const all = new Int16Array(total);
    let off = 0;
    for (const p of heard) { all.set(p, off); off += p.length; }
    t.ok(total >= 40 * 160, `session decoded ${total} samples relayed by rtpengine`);
    t.ok(blockToneShare(all, 8000, 440) > 0.8, `440 Hz dominates what we heard (${blockToneShare(all, 8000, 440).toFixed(3)})`);
    const st = session.stats();
    t.ok(st.packetsIn >= 40, `packetsIn=${st.packetsIn}`);
    t.equal(st.remote?.port, rtpengineB, 'our RTP goes to rtpengine');

    // Our side plays a 1 kHz tone; the carrier receives it from rtpengine's A-side port.
    carrier.rx.length = 0;
    session.play(toneAt(8000, 8000, 1000));
    await sleep(1300);
    const fromRte = carrier.rx.filter((p) => p.from === rtpengineA && p.pt === 0);
    t.ok(fromRte.length >= 45, `carrier got ${fromRte.length} PCMU packets from rtpengine`);
    t.equal(carrier.rx.filter((p) => p.from !== rtpengineA).length, 0, 'nothing reached the carrier around rtpengine');
    const pcm = Int16Array.from(fromRte.flatMap((p) => [...ulawDecode(p.payload)]));
    t.ok(blockToneShare(pcm, 8000, 1000) > 0.7, `1 kHz dominates at the carrier (${blockToneShare(pcm, 8000, 1000).toFixed(3)})`);

    const q = JSON.stringify(await leg.query());
    t.match(q, /"packets":[1-9]/, 'rtpengine counted relayed packets');
    await leg.release();
    await t.rejects(leg.query(), { name: 'RtpengineError', kind: 'rejected' }, 'deleted on hang-up');
  });

  t.test('PCMU ⇄ Opus transcoding in rtpengine', async (t) => {
    let Opus: { OpusEncoder: new (rate: number, ch: number) => { encode(b: Buffer): Buffer; decode(b: Buffer): Buffer } };
    try {
      Opus = createRequire(import.meta.url)('@discordjs/opus');
    } catch (err) {
      // a devDependency `make test` installs: missing means a broken install, not a reason to skip
      t.fail(`@discordjs/opus (devDependency) cannot be loaded: ${(err as Error).message}`);
      return;
    }
    const anchor = new RtpengineAnchor({ url: rte.url, timeoutMs: 1000, transcode: ['PCMU'] });
    t.teardown(() => anchor.close());
    const carrier = await carrierSocket();
    t.teardown(() => carrier.sock.close());

    const leg = anchor.begin(`e2e-opus-${Date.now()}`, 'carrier-tag');
    const towardUs = await leg.offerFromCarrier(sdp(carrier.port, OPUS));
    t.match(towardUs, /a=rtpmap:0 PCMU\/8000/, 'rtpengine offers PCMU toward us');
    const session = engine.createSession({ codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: mPort(towardUs) } });
    t.teardown(() => session.close());
    const toCarrier = await leg.answerFromUs(sdp(session.localPort, 'm=audio PORT RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n'));
    t.match(toCarrier, /m=audio \d+ RTP\/AVP 96/, 'carrier is answered with Opus');
    t.match(toCarrier, /a=rtpmap:96 opus\/48000/);
    const rtpengineA = mPort(toCarrier);

    // carrier → us: Opus 48 kHz mono, 20 ms frames of a 440 Hz tone
    const enc = new Opus.OpusEncoder(48000, 1);
    const src = toneAt(48000 * 1.2, 48000, 440);
    const frames = Array.from({ length: 60 }, (_, i) => {
      const f = src.subarray(i * 960, (i + 1) * 960);
      return enc.encode(Buffer.from(f.buffer, f.byteOffset, f.byteLength));
    });
    const heard: Int16Array[] = [];
    session.on('audio', (pcm) => heard.push(pcm));
    await sendStream(carrier.sock, rtpengineA, 96, frames, 960);
    await sleep(300);
    const all = Int16Array.from(heard.flatMap((p) => [...p]));
    t.ok(all.length >= 40 * 160, `session decoded ${all.length} samples (PCMU transcoded from Opus)`);
    const share = blockToneShare(all.subarray(1600), 8000, 440);
    t.ok(share > 0.6, `440 Hz dominates after Opus → PCMU (${share.toFixed(3)})`);

    // us → carrier: PCMU from the native core arrives as Opus
    carrier.rx.length = 0;
    session.play(toneAt(8000, 8000, 1000));
    await sleep(1300);
    const opusPkts = carrier.rx.filter((p) => p.from === rtpengineA && p.pt === 96);
    t.ok(opusPkts.length >= 45, `carrier got ${opusPkts.length} Opus packets`);
    const dec = new Opus.OpusEncoder(48000, 1);
    const pcm48 = opusPkts.flatMap((p) => {
      const b = dec.decode(p.payload);
      return [...new Int16Array(b.buffer, b.byteOffset, b.byteLength / 2)];
    });
    const pcm = Int16Array.from(pcm48);
    const share2 = blockToneShare(pcm.subarray(Math.min(pcm.length, 9600)), 48000, 1000);
    t.ok(share2 > 0.5, `1 kHz dominates in the decoded Opus (${share2.toFixed(3)})`);
    await leg.release();
  });
});
