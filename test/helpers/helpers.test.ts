/**
 * Self-checks of the QA helpers: the reference G.711 codec (known vectors and agreement with
 * the product's native codec), the pcap writer/reader and the RTP parser.
 */
import t from 'tap';
import { alawDecodeSample, alawEncodeSample, ulawDecodeSample, ulawEncodeSample } from './g711.ts';
import { parsePcapUdp } from './capture.ts';
import { rtpPcap, rtpPacket } from './pcap.ts';
import { analyzeStream, parseRtp, type RtpRecord } from './rtp.ts';

t.test('G.711 reference vectors', async (t) => {
  t.equal(ulawEncodeSample(0), 0xff);
  t.equal(ulawDecodeSample(0x00), -32124);
  t.equal(ulawDecodeSample(0x80), 32124);
  t.equal(alawEncodeSample(0), 0xd5);
  t.equal(alawDecodeSample(0xd5), 8);
  t.equal(alawDecodeSample(0x2a), -32256);
  const badU: number[] = [];
  const badA: number[] = [];
  for (let b = 0; b < 256; b++) {
    if (b !== 0x7f && ulawEncodeSample(ulawDecodeSample(b)) !== b) badU.push(b); // 0x7f is -0
    if (alawEncodeSample(alawDecodeSample(b)) !== b) badA.push(b);
  }
  t.same(badU, [], 'µ-law decode → encode round trip for every code');
  t.same(badA, [], 'A-law decode → encode round trip for every code');
});

let media: typeof import('../../src/media/index.ts') | undefined;
let mediaError = '';
try {
  media = await import('../../src/media/index.ts');
} catch (err) {
  mediaError = `native addon not loadable: ${(err as Error).message.split('\n')[0]}`;
}

t.test('reference G.711 agrees with the native codec', { skip: mediaError || false }, async (t) => {
  if (!media) return;
  const pcm = new Int16Array(65536);
  for (let i = 0; i < 65536; i++) pcm[i] = i - 32768;
  const u = media.ulawEncode(pcm);
  const a = media.alawEncode(pcm);
  let uBad = 0;
  let aBad = 0;
  for (let i = 0; i < 65536; i++) {
    if (u[i] !== ulawEncodeSample(pcm[i]!)) uBad++;
    if (a[i] !== alawEncodeSample(pcm[i]!)) aBad++;
  }
  t.equal(uBad, 0, 'µ-law encode matches for every 16-bit input');
  t.equal(aBad, 0, 'A-law encode matches for every 16-bit input');
  const bytes = new Uint8Array(256).map((_, i) => i);
  const ud = media.ulawDecode(bytes);
  const ad = media.alawDecode(bytes);
  t.same([...ud], [...bytes].map(ulawDecodeSample).map((v) => (Object.is(v, -0) ? 0 : v)), 'µ-law decode matches');
  t.same([...ad], [...bytes].map(alawDecodeSample), 'A-law decode matches');
});

t.test('pcap writer output parses back to the same RTP', async (t) => {
  const payloads = [Buffer.alloc(160, 0xff), Buffer.alloc(160, 0x7f), Buffer.alloc(160, 0x00)];
  const pkts = parsePcapUdp(rtpPcap(payloads, { payloadType: 0, firstSeq: 65535, ssrc: 42 }));
  t.equal(pkts.length, 3);
  t.equal(pkts[1]!.tsUs - pkts[0]!.tsUs, 20000, '20 ms apart');
  const rtp = pkts.map((p) => parseRtp(p.payload)!);
  t.same(rtp.map((r) => r.seq), [65535, 0, 1], 'sequence wraps');
  t.same(rtp.map((r) => r.ts), [0, 160, 320]);
  t.same(rtp.map((r) => r.marker), [true, false, false]);
  t.equal(rtp[0]!.ssrc, 42);
  const recs: RtpRecord[] = rtp.map((r, i) => ({ ...r, arrivalMs: i * 20, from: 'x' }));
  const a = analyzeStream(recs);
  t.ok(a.seqMonotonic);
  t.same(a.tsSteps, [160]);
  t.equal(a.medianIntervalMs, 20);
});

t.test('parseRtp skips CSRCs, extension and padding', async (t) => {
  const base = rtpPacket(7, 1234, 99, 8, false, Buffer.from([1, 2, 3, 4]));
  t.same([...parseRtp(base)!.payload], [1, 2, 3, 4]);
  const withExt = Buffer.concat([Buffer.from([0x90 | 0x01, 8]), base.subarray(2, 12), Buffer.alloc(4, 9), Buffer.from([0xbe, 0xde, 0, 1]), Buffer.alloc(4), Buffer.from([5, 6, 0, 2])]);
  withExt[0] = 0x80 | 0x10 | 0x20 | 0x01;
  const p = parseRtp(withExt)!;
  t.same([...p.payload], [5, 6], 'payload after CSRC + extension, padding removed');
  t.equal(parseRtp(Buffer.from([0x40, 0, 0])), undefined, 'not RTP');
});
