/**
 * SRTP (SDES) interop against the real server (built-in edge, srtp policy `optional`):
 *  (a) baresip with its `srtp` module (`mediaenc=srtp-mand`: RTP/SAVP + a=crypto) calls us; our
 *      200 answers RTP/SAVP with an a=crypto of the offered tag; baresip hears the greeting
 *      (its decoded dump WAV is not silent) and we receive its audio (authenticated SRTP
 *      packets counted in the CDR line);
 *  (b) rtpengine converts: a plain RTP/AVP peer ⇄ rtpengine ⇄ our SRTP session. The ng
 *      `offer` turns the peer's RTP/AVP offer into RTP/SAVP with rtpengine's own a=crypto
 *      toward us, our answer's crypto goes back through `answer`, and audio flows both ways
 *      through rtpengine's SRTP ⇄ RTP conversion.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { freePortBlock } from '../helpers/ports.ts';
import { baresipCall, freeBaresipPort, haveBaresip, wavRms } from '../helpers/baresip.ts';
import { rtpengineBinary, startRtpengine } from '../helpers/rtpengine.ts';
import { blockToneShare, toneAt } from '../helpers/audio.ts';
import { RtpengineClient } from '../../src/media/rtpengine/client.ts';
import { MediaEngine, ulawEncode, ulawDecode } from '../../src/media/index.ts';
import { negotiate, newSrtpKey } from '../../src/sdp/index.ts';
import { requireTool } from '../helpers/require.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ SRTP: 'optional', CDR_DB: 'off' });
});
t.teardown(async () => {
  await server?.stop();
});

if (!haveBaresip(['srtp.so'])) {
  requireTool(t, 'baresip calls with SRTP', false, 'baresip with its srtp module', 'baresip-core');
} else {
  t.test('baresip (srtp module, mediaenc=srtp-mand) calls: RTP/SAVP + a=crypto both ways, greeting heard, its audio received', async (t) => {
    const { trace, heard, callIdPattern: esc } = await baresipCall(t, {
      port: await freeBaresipPort(), prefix: 'baresip-srtp-', modules: ['srtp.so'], say: toneAt(8000 * 6, 8000, 440, 6000),
      account: '<sip:caller@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU', dial: `sip:18005550100@127.0.0.1:${server.sipPort}`,
    });
    const invite = /INVITE sip:18005550100[\s\S]*?\n\n([\s\S]*?)(?=\n\S+ 127\.0\.0\.1|$)/.exec(trace)?.[1] ?? '';
    t.match(invite, /m=audio \d+ RTP\/SAVP /, 'baresip offers RTP/SAVP', { trace: trace.slice(0, 4000) });
    const offered = [...invite.matchAll(/a=crypto:(\d+) (\S+) inline:/g)].map((m) => [m[1]!, m[2]!]);
    t.ok(offered.length > 0, `baresip offers a=crypto (${offered.map((o) => o.join(' ')).join(', ')})`);
    const ok = /SIP\/2\.0 200 OK[\s\S]*?\n\n([\s\S]*?)(?=\n\S+ 127\.0\.0\.1|$)/.exec(trace)?.[1] ?? '';
    t.match(ok, /m=audio \d+ RTP\/SAVP 0/, 'our 200: RTP/SAVP');
    const ours = /a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/.exec(ok);
    t.ok(ours, 'our 200: a=crypto');
    const firstSupported = offered.find(([, s]) => s === 'AES_CM_128_HMAC_SHA1_80' || s === 'AES_CM_128_HMAC_SHA1_32');
    t.same(ours ? [ours[1], ours[2]] : null, firstSupported ?? null, 'the tag and suite of the first offered line we support');
    t.equal(ours ? Buffer.from(ours[3]!, 'base64').length : 0, 30, '30 bytes of key||salt');
    t.match(trace, /Call established/, 'baresip: call established');
    t.notMatch(trace, /srtp.*(auth|fail)/i, 'baresip reports no SRTP failure');
    t.ok(heard, 'baresip recorded what it decrypted and decoded');
    if (heard) t.ok(wavRms(heard) > 0.01, 'baresip heard the greeting (audio, not silence)');
    const start = await server.waitForLog(new RegExp(`msg="?call start"? callId=${esc}[^\n]*`), 5000);
    t.match(start, /srtp=AES_CM_128_HMAC_SHA1_(80|32)/, 'server: the call runs SRTP');
    const cdr = await server.waitForLog(new RegExp(`msg=cdr callId=${esc} [^\n]*`), 8000);
    const packetsIn = Number(/packetsIn=(\d+)/.exec(cdr)?.[1] ?? 0);
    t.ok(packetsIn > 100, `server: baresip's SRTP authenticated and played (${packetsIn} packets in)`);
    t.match(cdr, /reason=caller-bye/);
  });
}

t.test('rtpengine converts SRTP ⇄ RTP: a plain RTP/AVP peer and our SRTP session exchange audio', {
  skip: requireTool(t, 'rtpengine SRTP ⇄ RTP', !!rtpengineBinary(), 'rtpengine', 'rtpengine-daemon'),
}, async (t) => {
  const rte = await startRtpengine({ mediaPorts: 20 });
  t.teardown(() => rte.stop());
  const ports = await freePortBlock({ min: 28000, max: 29999 }, 10);
  const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: ports.min, portMax: ports.max });
  t.teardown(() => engine.close());
  const ng = new RtpengineClient({ url: rte.url, timeoutMs: 2000 });
  t.teardown(() => ng.close());

  // The plain peer.
  const peer = dgram.createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  const heardByPeer: { pt: number; payload: Buffer }[] = [];
  peer.on('message', (m) => heardByPeer.push({ pt: m[1]! & 0x7f, payload: Buffer.from(m.subarray(12)) }));
  const peerSdp = `v=0\r\no=- 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${peer.address().port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;

  // ng offer: the peer's RTP/AVP becomes RTP/SAVP with rtpengine's own SDES keys toward us.
  const callId = `srtp-rte-${Date.now()}`;
  const offer = await ng.offer({ 'call-id': callId, 'from-tag': 'plain-peer', sdp: peerSdp, 'transport-protocol': 'RTP/SAVP', ICE: 'remove' });
  t.match(offer.sdp, /m=audio \d+ RTP\/SAVP /, 'rtpengine offers RTP/SAVP toward us');
  t.match(offer.sdp, /a=crypto:\d+ AES_CM_128_HMAC_SHA1_(80|32) inline:/, 'with an a=crypto we support');

  // Our side, as the app does it: negotiate (srtp optional, our key), a keyed media session.
  const localKey = newSrtpKey();
  const probe = negotiate(offer.sdp, { local: { address: '127.0.0.1', port: 9 }, srtp: { policy: 'optional', localKey } });
  const a = probe.audio;
  t.ok(a.srtp, 'negotiated SRTP');
  const session = engine.createSession({
    codec: a.codec, payloadType: a.payloadType, remote: a.remote!,
    srtp: { suite: a.srtp!.suite, localKey: a.srtp!.localKey, remoteKey: a.srtp!.remoteKey },
  });
  t.teardown(() => session.close());
  const ours = negotiate(offer.sdp, { local: { address: '127.0.0.1', port: session.localPort }, srtp: { policy: 'optional', localKey } });
  const answer = await ng.answer({ 'call-id': callId, 'from-tag': 'plain-peer', 'to-tag': 'voice-agent', sdp: ours.sdp, ICE: 'remove' });
  t.match(answer.sdp, /m=audio \d+ RTP\/AVP /, 'the peer gets plain RTP/AVP back');
  t.notMatch(answer.sdp, /a=crypto/, 'and no keys');
  const rteA = Number(/^m=audio (\d+) /m.exec(answer.sdp)![1]);

  // Peer → rtpengine (encrypts) → our session (unprotects, plays out): 1 s of 440 Hz.
  const heardByUs: Int16Array[] = [];
  session.on('audio', (pcm: Int16Array) => heardByUs.push(pcm));
  const src = toneAt(8000, 8000, 440);
  for (let i = 0; i < 50; i++) {
    const h = Buffer.alloc(12);
    h[0] = 0x80; h[1] = i === 0 ? 0x80 : 0; h.writeUInt16BE(1000 + i, 2); h.writeUInt32BE(5000 + i * 160, 4); h.writeUInt32BE(0x1234abcd, 8);
    peer.send(Buffer.concat([h, ulawEncode(src.subarray(i * 160, (i + 1) * 160))]), rteA, '127.0.0.1');
    await sleep(20);
  }
  // Our session → rtpengine (decrypts) → peer: 1 s of 1 kHz.
  session.play(toneAt(8000, 8000, 1000));
  await sleep(1400);
  const st = session.stats();
  t.equal(st.srtp, a.srtp!.suite);
  t.ok(st.packetsIn >= 40, `our session authenticated ${st.packetsIn} SRTP packets from rtpengine`);
  t.equal(st.srtpAuthFail, 0, 'no authentication failure');
  t.equal(st.srtpReplay, 0, 'no replay');
  const all = Int16Array.from(heardByUs.flatMap((p) => Array.from(p)));
  t.ok(blockToneShare(all, 8000, 440) > 0.5, `the peer's 440 Hz plays out on our side (share ${blockToneShare(all, 8000, 440).toFixed(2)})`);
  const pcmu = heardByPeer.filter((p) => p.pt === 0);
  t.ok(pcmu.length >= 45, `the peer got ${pcmu.length} plain PCMU packets`);
  const got = Int16Array.from(pcmu.flatMap((p) => Array.from(ulawDecode(p.payload))));
  t.ok(blockToneShare(got, 8000, 1000) > 0.5, `our 1 kHz reaches the peer decrypted (share ${blockToneShare(got, 8000, 1000).toFixed(2)})`);
  await ng.delete({ 'call-id': callId, 'from-tag': 'plain-peer' }).catch(() => undefined);
});
