/**
 * The TypeScript test caller places calls over UDP and checks the greeting audio the server
 * streams: ≥ 2 s of non-silent audio, ~20 ms packet spacing, monotonic sequence numbers and
 * timestamps (step 160), one SSRC, marker bit on the first packet; PCMU and PCMA.
 */
import t from 'tap';
import { placeCall } from '../helpers/caller.ts';
import { rms } from '../helpers/g711.ts';
import { analyzeStream } from '../helpers/rtp.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';

/** RMS (of 16-bit PCM) above which a 20 ms frame counts as voiced. */
const VOICED_RMS = 300;

let server: ServerHandle;
t.before(async () => {
  server = await startServer();
});
t.teardown(async () => {
  await server?.stop();
});

for (const codec of ['PCMU', 'PCMA'] as const) {
  t.test(`${codec}: greeting audio, pacing and RTP headers`, async (t) => {
    const r = await placeCall({ port: server.sipPort, codec, hangupAfterMs: 5000 });
    t.equal(r.status, 200, `answered (${r.status} ${r.reason})`);
    t.equal(r.payloadType, codec === 'PCMU' ? 0 : 8, 'answer selected the offered codec');
    t.equal(r.hangup, 'caller');
    t.equal(r.byeStatus, 200, 'BYE answered 200');
    const audio = r.packets.filter((p) => p.pt === r.payloadType);
    const a = analyzeStream(audio);
    t.ok(a.packets >= 100, `≥ 2 s of packets (got ${a.packets})`);
    // Voiced frames: count 20 ms frames above the RMS threshold.
    let voiced = 0;
    for (let i = 0; i + 160 <= r.pcm.length; i += 160) if (rms(r.pcm.subarray(i, i + 160)) > VOICED_RMS) voiced++;
    t.ok(voiced * 20 >= 2000, `≥ 2 s of non-silent audio (got ${voiced * 20} ms, overall RMS ${rms(r.pcm).toFixed(0)})`);
    t.ok(a.medianIntervalMs >= 15 && a.medianIntervalMs <= 25, `median inter-arrival ${a.medianIntervalMs.toFixed(2)} ms within 15-25 ms`);
    t.ok(a.seqMonotonic, 'sequence numbers increase by 1');
    t.same(a.tsSteps, [160], 'timestamp step is 160');
    t.equal(a.ssrcs.length, 1, 'one SSRC');
    t.ok(a.firstMarker, 'marker bit on the first packet');
    t.ok(r.sentPackets > 100, `caller sent RTP (${r.sentPackets} packets)`);
  });
}

t.test('caller BYE releases the call (RTP stops, CDR logged)', async (t) => {
  const r = await placeCall({ port: server.sipPort, hangupAfterMs: 1000 });
  t.equal(r.status, 200);
  t.equal(r.byeStatus, 200);
  const line = await server.waitForLog(new RegExp(`msg=cdr.*${r.callId}|${r.callId}.*msg=cdr`), 3000).catch(() => '');
  t.match(line, /reason=caller-bye/, 'CDR says caller-bye');
  // The server's RTP port must be free again once the call is released.
  if (r.remoteMedia) {
    const { udpFree } = await import('../helpers/ports.ts');
    let free = false;
    for (let i = 0; i < 20 && !free; i++) {
      free = await udpFree(r.remoteMedia.port);
      if (!free) await new Promise((res) => setTimeout(res, 100));
    }
    t.ok(free, `server RTP port ${r.remoteMedia.port} released`);
  }
});

t.test('G.729-only offer from the caller → 488 with Reason and Warning', async (t) => {
  const r = await placeCall({ port: server.sipPort, offer: [{ pt: 18, name: 'G729', fmtp: 'annexb=no' }] });
  t.equal(r.status, 488, `${r.status} ${r.reason}`);
  t.ok(r.finalResponse?.get('Reason'), `Reason: ${r.finalResponse?.get('Reason')}`);
  t.ok(r.finalResponse?.get('Warning'), `Warning: ${r.finalResponse?.get('Warning')}`);
});
