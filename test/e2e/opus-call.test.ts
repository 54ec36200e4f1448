/**
 * Opus end to end: the TypeScript test caller offers only opus/48000/2 (dynamic PT, with
 * fmtp); the server answers 200 with opus on the same PT and streams the greeting as Opus,
 * which the test decodes with @discordjs/opus (independent of our libopus wrapper) and
 * checks for ≥ 2 s of speech. Also: the offerer's order decides between Opus and G.711.
 *
 * Ports (media-wiring ranges): SIP 16500-16999, drachtio control 19300-19399, RTP 31000-31999.
 */
import t from 'tap';
import { createRequire } from 'node:module';
import { placeCall, type OfferCodec } from '../helpers/caller.ts';
import { freePort, freePortBlock } from '../helpers/ports.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { supportedCodecs } from '../../src/media/index.ts';
import { requireTool } from '../helpers/require.ts';

const VOICED_RMS = 300;

/** opus/48000/2: the caller helper writes `name/rate`, so the channel count rides on the rate. */
const OPUS = (pt: number, fmtp?: string): OfferCodec => ({ pt, name: 'opus', rate: '48000/2' as unknown as number, ...(fmtp ? { fmtp } : {}) });

type OpusCodec = { decode(b: Buffer): Buffer };
let Opus: { OpusEncoder: new (rate: number, ch: number) => OpusCodec } | null = null;
try {
  Opus = createRequire(import.meta.url)('@discordjs/opus');
} catch { /* decode check skipped */ }

function rms(pcm: Int16Array): number {
  let s = 0;
  for (const x of pcm) s += x * x;
  return pcm.length ? Math.sqrt(s / pcm.length) : 0;
}

const skip = requireTool(t, 'opus calls', supportedCodecs.includes('opus'), 'Opus in the native core', 'libopus-dev');

let server: ServerHandle;
t.before(async () => {
  if (skip) return;
  const rtp = await freePortBlock({ min: 31000, max: 31999 }, 100);
  server = await startServer({
    SIP_PORT: String(await freePort({ min: 16500, max: 16999 }, 'both')),
    DRACHTIO_PORT: String(await freePort({ min: 19300, max: 19399 }, 'tcp')),
    RTP_PORT_MIN: String(rtp.min),
    RTP_PORT_MAX: String(rtp.max),
  });
});
t.teardown(async () => {
  await server?.stop();
});

t.test('opus-only offer → 200 with opus; greeting decodes as speech', { skip }, async (t) => {
  const r = await placeCall({
    port: server.sipPort,
    offer: [OPUS(109, 'useinbandfec=1;maxplaybackrate=48000;stereo=0'), { pt: 120, name: 'telephone-event', rate: 48000, fmtp: '0-16' }],
    send: 'none',
    hangupAfterMs: 4500,
  });
  t.equal(r.status, 200, `answered (${r.status} ${r.reason})`);
  t.equal(r.payloadType, 109, 'answer uses the offer\'s dynamic payload type');
  t.match(r.answerSdp, /m=audio \d+ RTP\/AVP 109 120\r\n/);
  t.match(r.answerSdp, /a=rtpmap:109 opus\/48000\/2/);
  t.match(r.answerSdp, /a=fmtp:109 [^\r\n]*useinbandfec=1/);
  t.match(r.answerSdp, /a=rtpmap:120 telephone-event\/48000/);
  const line = await server.waitForLog(new RegExp(`${r.callId}.*msg="call start"|msg="call start".*${r.callId}`), 2000);
  t.match(line, /codec=opus/);

  const pkts = r.packets.filter((p) => p.pt === 109);
  t.ok(pkts.length >= 100, `≥ 2 s of Opus packets (${pkts.length})`);
  const steps = new Set<number>();
  for (let i = 1; i < pkts.length; i++) if (pkts[i]!.seq === ((pkts[i - 1]!.seq + 1) & 0xffff)) steps.add((pkts[i]!.ts - pkts[i - 1]!.ts) >>> 0);
  t.same([...steps], [960], 'RTP timestamp advances 960 per 20 ms (48 kHz clock)');
  t.ok(pkts.every((p) => p.payload.length > 0 && p.payload.length < 400), 'plausible Opus payload sizes');

  if (!Opus) {
    t.comment('skip decode: @discordjs/opus not available');
    return;
  }
  const dec = new Opus.OpusEncoder(48000, 1);
  let voiced = 0;
  let errors = 0;
  for (const p of pkts) {
    try {
      const b = dec.decode(p.payload);
      const pcm = new Int16Array(b.buffer, b.byteOffset, b.byteLength / 2);
      if (rms(pcm) > VOICED_RMS) voiced++;
    } catch {
      errors++;
    }
  }
  t.equal(errors, 0, 'every packet decodes');
  t.ok(voiced * 20 >= 2000, `≥ 2 s of non-silent greeting decoded from Opus (${voiced * 20} ms)`);
});

t.test('offerer\'s order: PCMU before opus → PCMU; opus first → opus', { skip }, async (t) => {
  const a = await placeCall({ port: server.sipPort, offer: [{ pt: 0, name: 'PCMU' }, OPUS(111)], send: 'none', hangupAfterMs: 300 });
  t.equal(a.status, 200);
  t.equal(a.payloadType, 0);
  const b = await placeCall({ port: server.sipPort, offer: [OPUS(111), { pt: 0, name: 'PCMU' }], send: 'none', hangupAfterMs: 300 });
  t.equal(b.status, 200);
  t.equal(b.payloadType, 111);
});
