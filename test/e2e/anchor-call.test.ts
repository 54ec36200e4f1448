/**
 * rtpengine anchor mode through the whole server: a private rtpengine-daemon (userspace,
 * loopback), the server started with RTPENGINE_URL, and the TypeScript test caller.
 *
 * - the 200 OK's SDP points at rtpengine (its media range), not at our RTP range;
 * - the greeting reaches the caller through rtpengine (≥ 2 s non-silent, sent from
 *   rtpengine's port), and the caller's RTP reaches our core through it;
 * - the caller's BYE deletes the call on rtpengine (`query` → unknown call);
 * - rtpengine down → 503 with `Reason: …"media relay unavailable"` and an error log line.
 *
 * Ports (media-wiring ranges): SIP 16500-16999, drachtio control 19300-19399, our RTP
 * 31000-31999; rtpengine's ng 22300-22399 and media 30000-30999 (picked by its helper).
 */
import t from 'tap';
import { placeCall } from '../helpers/caller.ts';
import { rms } from '../helpers/g711.ts';
import { freePort, freePortBlock } from '../helpers/ports.ts';
import { rtpengineBinary, startRtpengine, type RtpengineDaemon } from '../helpers/rtpengine.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { RtpengineClient } from '../../src/media/rtpengine/client.ts';
import { requireTool } from '../helpers/require.ts';

const SIP = { min: 16500, max: 16999 };
const CONTROL = { min: 19300, max: 19399 };
const RTP = { min: 31000, max: 31999 };
const VOICED_RMS = 300;

const skip = requireTool(t, 'calls anchored on rtpengine', !!rtpengineBinary(), 'rtpengine', 'rtpengine-daemon');

async function serverEnv(extra: Record<string, string>): Promise<Record<string, string>> {
  const rtp = await freePortBlock(RTP, 100);
  return {
    SIP_PORT: String(await freePort(SIP, 'both')),
    DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
    RTP_PORT_MIN: String(rtp.min),
    RTP_PORT_MAX: String(rtp.max),
    ...extra,
  };
}

t.test('calls anchored on rtpengine', { skip }, async (t) => {
  const rte: RtpengineDaemon = await startRtpengine({ mediaPorts: 60, logLevel: 6 });
  t.teardown(() => rte.stop());
  const server: ServerHandle = await startServer(await serverEnv({ RTPENGINE_URL: rte.url, RTPENGINE_TIMEOUT_MS: '1000' }));
  t.teardown(() => server.stop());
  t.match(server.log(), /rtpengine anchoring on/, 'server logs that anchoring is on');
  const ng = new RtpengineClient({ url: rte.url, timeoutMs: 1000 });
  t.teardown(() => ng.close());

  t.test('200 OK points at rtpengine; greeting arrives through it; BYE deletes', async (t) => {
    let queried: string | undefined;
    let callId = '';
    const r = await placeCall({
      port: server.sipPort, codec: 'PCMU', hangupAfterMs: 4500,
      onEvent: (ev, detail) => {
        if (ev === 'invite') callId = (detail as { callId: string }).callId;
        if (ev === 'rtp-first') {
          // While the call is up, rtpengine knows it and counts packets.
          ng.query({ 'call-id': callId }).then((q) => { queried = JSON.stringify(q); }, (e: Error) => { queried = `error: ${e.message}`; });
        }
      },
    });
    t.equal(r.status, 200, `answered (${r.status} ${r.reason})`);
    const media = r.remoteMedia!;
    t.ok(media, 'answer has media');
    t.equal(media.address, '127.0.0.1');
    t.ok(media.port >= rte.media.min && media.port <= rte.media.max,
      `200 OK media port ${media.port} is rtpengine's (${rte.media.min}-${rte.media.max})`);
    t.ok(media.port < server.rtpMin || media.port > server.rtpMax, `… and not in our RTP range ${server.rtpMin}-${server.rtpMax}`);
    t.equal(r.payloadType, 0, 'PCMU answered');
    t.match(r.answerSdp, /a=rtpmap:0 PCMU\/8000/);

    const audio = r.packets.filter((p) => p.pt === 0);
    t.ok(audio.length >= 100, `≥ 2 s of RTP from the server side (${audio.length} packets)`);
    const senders = new Set(audio.map((p) => p.from));
    t.same([...senders], [`127.0.0.1:${media.port}`], 'all audio came from rtpengine\'s port (symmetric)');
    let voiced = 0;
    for (let i = 0; i + 160 <= r.pcm.length; i += 160) if (rms(r.pcm.subarray(i, i + 160)) > VOICED_RMS) voiced++;
    t.ok(voiced * 20 >= 2000, `≥ 2 s of non-silent greeting through rtpengine (${voiced * 20} ms)`);
    t.ok(r.sentPackets > 100, `caller sent ${r.sentPackets} packets to rtpengine`);
    t.match(queried, /"packets":[1-9]/, 'rtpengine relayed packets while the call was up');
    t.equal(r.byeStatus, 200, 'BYE answered');

    // BYE → delete on rtpengine: the call is gone there (delete-delay=0).
    let gone: unknown;
    for (let i = 0; i < 30 && !gone; i++) {
      await ng.query({ 'call-id': r.callId }).then(() => new Promise((res) => setTimeout(res, 100)), (e: unknown) => { gone = e; });
    }
    t.match(gone, { name: 'RtpengineError', kind: 'rejected' }, 'query after BYE: rtpengine no longer knows the call');
    t.match(String((gone as Error)?.message), /unknown call|not found/i);
    const deletes = rte.log().split('\n').filter((l) => l.includes(r.callId) && l.includes("Received command 'delete'"));
    t.equal(deletes.length, 1, `exactly one delete for the call in rtpengine's log (${deletes.length})`);
    const cdr = await server.waitForLog(new RegExp(`msg=cdr.*${r.callId}|${r.callId}.*msg=cdr`), 3000);
    t.match(cdr, /reason=caller-bye/);
  });

  t.test('unsupported offer through rtpengine → 488, leg released', async (t) => {
    const r = await placeCall({ port: server.sipPort, offer: [{ pt: 18, name: 'G729', fmtp: 'annexb=no' }] });
    t.equal(r.status, 488, `${r.status} ${r.reason}`);
    let gone: unknown;
    for (let i = 0; i < 20 && !gone; i++) {
      await ng.query({ 'call-id': r.callId }).then(() => new Promise((res) => setTimeout(res, 100)), (e: unknown) => { gone = e; });
    }
    t.match(gone, { kind: 'rejected' }, 'rtpengine call deleted after the 488');
  });

  t.test('rtpengine down → 503 media relay unavailable + error log', async (t) => {
    await rte.stop();
    const r = await placeCall({ port: server.sipPort, codec: 'PCMU' });
    t.equal(r.status, 503, `${r.status} ${r.reason}`);
    t.equal(r.finalResponse?.get('Reason'), 'SIP;cause=503;text="media relay unavailable"');
    t.equal(r.finalResponse?.get('Retry-After'), '2');
    const line = await server.waitForLog(new RegExp(`${r.callId}.*media relay unavailable|media relay unavailable.*${r.callId}`), 3000);
    t.match(line, /level=error/, 'error log line');
  });
});
