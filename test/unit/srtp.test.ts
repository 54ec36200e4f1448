// SRTP (SDES): a=crypto parsing and offer/answer (src/sdp/crypto.ts, negotiate.ts), the native
// SrtpContext through the SrtpTest binding (libsrtp's AES_CM_128_HMAC_SHA1_80 reference packet,
// tamper → auth fail, replay → dropped) and a real media session protecting and unprotecting
// both ways against a UDP peer keyed like a carrier.
// Port range for this file: 23100-23139.
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { setLogLevel } from '../../src/ops/log.ts';
import { native } from '../../src/media/native.ts';
import { MediaEngine, ulawEncode } from '../../src/media/index.ts';
import {
  negotiate, parseSdp, parseCryptoLine, chooseCrypto, createReoffer, processAnswer, SdpError, newSrtpKey,
} from '../../src/sdp/index.ts';

setLogLevel('silent');

const LOCAL = { address: '192.0.2.10', port: 40002 };
const KEY_A = Buffer.from('e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6', 'hex');
const B64 = KEY_A.toString('base64');

function offer(proto: string, attrs: string[]): string {
  return ['v=0', 'o=- 1 1 IN IP4 198.51.100.5', 's=-', 'c=IN IP4 198.51.100.5', 't=0 0',
    `m=audio 6000 ${proto} 0 101`, 'a=rtpmap:101 telephone-event/8000', ...attrs].join('\r\n') + '\r\n';
}

t.test('a=crypto lines: what is accepted and why the rest is not', async (t) => {
  const ok = parseCryptoLine(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`);
  t.ok(!('reason' in ok) && Buffer.from(ok.key).equals(KEY_A) && ok.tag === 1);
  t.notOk('reason' in parseCryptoLine(`2 AES_CM_128_HMAC_SHA1_32 inline:${B64}|2^31`), 'lifetime 2^31');
  t.notOk('reason' in parseCryptoLine(`2 AES_CM_128_HMAC_SHA1_32 inline:${B64}|2147483648 WSH=64`), 'decimal lifetime, WSH hint');
  const bad: [string, RegExp][] = [
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64}|2^31|1:4`, /MKI not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64}|1:4`, /MKI not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64}|2^20`, /key lifetime 2\^20 not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64}|2^20|1:4;inline:${B64}|2^20|2:4`, /several keys/],
    [`1 AES_256_CM_HMAC_SHA1_80 inline:${B64}`, /suite not supported/],
    [`1 F8_128_HMAC_SHA1_80 inline:${B64}`, /suite not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64.slice(0, 20)}`, /bytes, need 30/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64} UNENCRYPTED_SRTP`, /session parameter UNENCRYPTED_SRTP not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 inline:${B64} KDR=24`, /session parameter KDR not supported/],
    [`1 AES_CM_128_HMAC_SHA1_80 uri:https://x`, /only inline/],
    ['x AES_CM_128_HMAC_SHA1_80 inline:abc', /malformed a=crypto tag/],
    ['1 AES_CM_128_HMAC_SHA1_80', /malformed/],
  ];
  for (const [line, re] of bad) {
    const r = parseCryptoLine(line);
    t.ok('reason' in r, line);
    if ('reason' in r) {
      t.match(r.reason, re, line);
      t.notMatch(r.reason, B64.slice(0, 10), 'no key in the reason');
    }
  }
  const m = parseSdp(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`, `a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:${B64}`])).media[0]!;
  const c = chooseCrypto(m, 'AES_CM_128_HMAC_SHA1_32');
  t.equal('line' in c && c.line.tag, 2, 'preferSuite (re-INVITE) picks the running suite');
  t.equal(newSrtpKey().length, 30);
  t.notSame(newSrtpKey(), newSrtpKey(), 'fresh keys differ');
});

t.test('negotiate: SAVP answered with SAVP and our key, AVP with AVP; policy refusals', async (t) => {
  const localKey = newSrtpKey();
  const n = negotiate(offer('RTP/SAVP', [`a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]), { local: LOCAL, srtp: { policy: 'optional', localKey } });
  t.equal(n.answer.media[0]!.proto, 'RTP/SAVP');
  t.match(n.sdp, new RegExp(`a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:${Buffer.from(localKey).toString('base64').replace(/[+/]/g, '.')}\\r\\n`));
  t.equal(n.audio.srtp?.suite, 'AES_CM_128_HMAC_SHA1_80');
  t.ok(Buffer.from(n.audio.srtp!.remoteKey).equals(KEY_A));
  t.same(n.audio.srtp!.localKey, localKey);

  const plain = negotiate(offer('RTP/AVP', []), { local: LOCAL, srtp: { policy: 'optional' } });
  t.equal(plain.answer.media[0]!.proto, 'RTP/AVP');
  t.notOk(plain.audio.srtp);
  t.notMatch(plain.sdp, /crypto/);

  // RTP/AVP + a=crypto (best-effort SRTP without RFC 5939 capability negotiation): plain RTP.
  const be = negotiate(offer('RTP/AVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]), { local: LOCAL, srtp: { policy: 'optional' } });
  t.notOk(be.audio.srtp, 'an AVP line with a=crypto stays plain RTP');

  const refuse = (sdp: string, policy: 'off' | 'required', re: RegExp): void => {
    try {
      negotiate(sdp, { local: LOCAL, srtp: { policy } });
      t.fail('expected a refusal');
    } catch (e) {
      t.ok(e instanceof SdpError && e.kind === 'srtp', `kind srtp (${policy})`);
      t.match((e as Error).message, re);
    }
  };
  refuse(offer('RTP/AVP', []), 'required', /^SRTP required on this trunk \(offered m=audio RTP\/AVP\)$/);
  refuse(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]), 'off', /^SRTP is off on this trunk/);
  refuse(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}|2^20`]), 'required', /no usable a=crypto.*lifetime/);

  // Two audio lines, SAVP then AVP (an offerer's own fallback): optional takes the first, off the second.
  const two = offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]) + 'm=audio 6002 RTP/AVP 0\r\n';
  t.equal(negotiate(two, { local: LOCAL, srtp: { policy: 'optional' } }).audio.mediaIndex, 0);
  const off = negotiate(two, { local: LOCAL, srtp: { policy: 'off' } });
  t.equal(off.audio.mediaIndex, 1);
  t.notOk(off.audio.srtp);
});

t.test('re-INVITE offers as Call negotiates them: the peer may re-key; RTP ⇄ SRTP or a suite change is refused', async (t) => {
  const localKey = newSrtpKey();
  const first = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]), { local: LOCAL, srtp: { policy: 'optional', localKey } });
  const running = { policy: 'required' as const, localKey, preferSuite: first.audio.srtp!.suite, scope: 'in this call (it was answered with SRTP)' };
  const newPeer = Buffer.alloc(30, 0x33);
  const rekey = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:${B64}`, `a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:${newPeer.toString('base64')}`]), { local: LOCAL, srtp: running });
  t.equal(rekey.audio.srtp?.suite, 'AES_CM_128_HMAC_SHA1_80', 'the running suite is kept when offered');
  t.equal(rekey.audio.srtp?.tag, 2);
  t.ok(Buffer.from(rekey.audio.srtp!.remoteKey).equals(newPeer), 'the new peer key');
  t.same(rekey.audio.srtp!.localKey, localKey, 'our key unchanged');
  t.throws(() => negotiate(offer('RTP/AVP', []), { local: LOCAL, srtp: running }), /SRTP required in this call \(it was answered with SRTP\)/);
  t.throws(() => negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64}`]), { local: LOCAL, srtp: { policy: 'off', scope: 'in this call (it was answered with plain RTP)' } }),
    /SRTP is off in this call \(it was answered with plain RTP\)/);
});

t.test('re-offer keeps our a=crypto; the answer to it is read back', async (t) => {
  const localKey = newSrtpKey();
  const n = negotiate(offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:${B64}`]), { local: LOCAL, srtp: { policy: 'optional', localKey } });
  const re = createReoffer({ current: n.sdp, mediaIndex: 0, codecs: ['PCMA'], sessionVersion: 2 });
  t.match(re.sdp, /m=audio 40002 RTP\/SAVP 8/);
  t.match(re.sdp, /a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:/);
  const newPeer = Buffer.alloc(30, 0x42);
  const answer = offer('RTP/SAVP', [`a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:${newPeer.toString('base64')}`]).replace(' 0 101', ' 8');
  const a = processAnswer(answer, re.offer, 0);
  t.equal(a.srtp?.suite, 'AES_CM_128_HMAC_SHA1_32');
  t.ok(Buffer.from(a.srtp!.remoteKey).equals(newPeer), 'the peer re-keyed in its answer');
  t.same(a.srtp!.localKey, localKey);
  t.throws(() => processAnswer(answer.replace('RTP/SAVP', 'RTP/AVP'), re.offer, 0), /answer to our RTP\/SAVP offer is RTP\/AVP/);
});

t.test('native SrtpContext: libsrtp reference packet (AES_CM_128_HMAC_SHA1_80), tamper, replay, re-key', async (t) => {
  // libsrtp test/srtp_driver.c srtp_validate(): master key||salt, SSRC 0xcafebabe, seq 0x1234.
  const plain = Buffer.from('800f1234decafbadcafebabe' + 'ab'.repeat(16), 'hex');
  const expected = Buffer.from('800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb', 'hex');
  const tx = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: KEY_A, remoteKey: KEY_A, ssrc: 0xcafebabe });
  const ct = tx.protect(plain);
  t.ok(ct && Buffer.from(ct).equals(expected), 'ciphertext and tag equal the reference');
  const rx = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: KEY_A, remoteKey: KEY_A });
  const r = rx.unprotect(expected);
  t.equal(r.status, 'ok');
  t.ok(r.packet && Buffer.from(r.packet).equals(plain), 'decrypts to the reference plaintext');
  t.equal(rx.unprotect(expected).status, 'replay', 'the same packet again is a replay');

  // Tamper: any flipped bit (payload, header, tag) fails authentication.
  for (const at of [5, 14, expected.length - 1]) {
    const bad = Buffer.from(expected);
    bad.writeUInt16BE(0x1235, 2); // a fresh index, so replay is not what rejects it
    bad[at] ^= 0x01;
    t.equal(rx.unprotect(bad).status, 'auth-fail', `bit flipped at ${at}`);
  }
  // Wrong key.
  const other = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: Buffer.alloc(30, 1), remoteKey: Buffer.alloc(30, 2) });
  t.equal(other.unprotect(expected).status, 'auth-fail');
  t.equal(other.unprotect(Buffer.alloc(4)).status, 'invalid', 'too short to be SRTP');

  // _32 suite: 4-byte tag on SRTP, 10-byte tag (+4 E|index) on SRTCP (RFC 4568 §6.2.2).
  const k32 = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_32', localKey: KEY_A, remoteKey: KEY_A, ssrc: 0xcafebabe });
  t.equal(k32.protect(plain)!.length, plain.length + 4);
  const rr = Buffer.from('81c90007cafebabe' + '00'.repeat(24), 'hex');
  const srtcp = k32.protectRtcp(rr)!;
  t.equal(srtcp.length, rr.length + 4 + 10);
  const k32rx = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_32', localKey: KEY_A, remoteKey: KEY_A });
  const back = k32rx.unprotectRtcp(srtcp);
  t.equal(back.status, 'ok');
  t.ok(Buffer.from(back.packet!).equals(rr));
  t.equal(k32rx.unprotectRtcp(srtcp).status, 'replay', 'SRTCP replay');

  // Re-key of the inbound side: the old key stops working, the new one works.
  const newKey = Buffer.alloc(30, 0x5a);
  const peer2 = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: newKey, remoteKey: newKey, ssrc: 0x01020304 });
  const p2 = Buffer.from(plain);
  p2.writeUInt32BE(0x01020304, 8);
  const sealed = peer2.protect(p2)!;
  t.equal(rx.unprotect(sealed).status, 'auth-fail', 'before the re-key');
  rx.setRemote('AES_CM_128_HMAC_SHA1_80', newKey);
  t.equal(rx.unprotect(sealed).status, 'ok', 'after the re-key');
  t.throws(() => new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: Buffer.alloc(16), remoteKey: KEY_A }), /30 bytes/);
});

t.test('a media session with SRTP: our SRTP decrypts at the peer, the peer\'s SRTP plays; tamper and replay counted', async (t) => {
  const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: 23100, portMax: 23139 });
  t.teardown(() => engine.close());
  const ourKey = newSrtpKey();
  const peerKey = newSrtpKey();
  const peer = dgram.createSocket('udp4');
  peer.bind(0, '127.0.0.1');
  await once(peer, 'listening');
  t.teardown(() => peer.close());
  // The peer: sends with peerKey, receives with ourKey.
  const peerCtx = new native.SrtpTest({ suite: 'AES_CM_128_HMAC_SHA1_80', localKey: peerKey, remoteKey: ourKey, ssrc: 0x0badcafe });
  const heard: Buffer[] = [];
  const failures: string[] = [];
  peer.on('message', (m) => {
    if (m[1]! >= 192 && m[1]! <= 223) return; // SRTCP (multiplexing not used here)
    const r = peerCtx.unprotect(new Uint8Array(m));
    if (r.status === 'ok') heard.push(Buffer.from(r.packet!));
    else failures.push(r.status);
  });
  const s = engine.createSession({
    codec: 'PCMU', payloadType: 0, remote: { address: '127.0.0.1', port: peer.address().port },
    srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', localKey: ourKey, remoteKey: peerKey },
  });
  t.teardown(() => s.close());
  const tone = new Int16Array(1600);
  for (let i = 0; i < tone.length; i++) tone[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000));
  s.play(tone);
  const inbound: Int16Array[] = [];
  s.on('audio', (pcm: Int16Array) => inbound.push(pcm));
  // 20 packets of a 1 kHz tone from the peer, SRTP-protected.
  const payload = ulawEncode(Int16Array.from({ length: 160 }, (_, i) => Math.round(10000 * Math.sin((2 * Math.PI * 1000 * i) / 8000))));
  const packets: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) {
    const h = Buffer.alloc(12);
    h[0] = 0x80; h[1] = 0; h.writeUInt16BE(100 + i, 2); h.writeUInt32BE(1000 + i * 160, 4); h.writeUInt32BE(0x0badcafe, 8);
    packets.push(peerCtx.protect(Buffer.concat([h, Buffer.from(payload)]))!);
  }
  for (const p of packets) {
    peer.send(p, s.localPort, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 20));
  }
  peer.send(packets[5]!, s.localPort, '127.0.0.1'); // replayed
  const forged = Buffer.from(packets[19]!);
  forged.writeUInt16BE(200, 2); // a new index, but the tag no longer matches
  peer.send(forged, s.localPort, '127.0.0.1');
  const plainRtp = Buffer.concat([Buffer.from([0x80, 0, 0, 201, 0, 0, 0x20, 0, 0x0b, 0xad, 0xca, 0xfe]), Buffer.from(payload)]);
  peer.send(plainRtp, s.localPort, '127.0.0.1'); // unprotected RTP on an SRTP session
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && ((s.stats().srtpAuthFail ?? 0) < 2 || heard.length < 20)) await new Promise((r) => setTimeout(r, 50));
  const st = s.stats();
  t.equal(st.srtp, 'AES_CM_128_HMAC_SHA1_80');
  t.equal(st.packetsIn, 20, 'every protected packet accepted once');
  t.equal(st.srtpReplay, 1, 'the replayed packet dropped and counted');
  t.equal(st.srtpAuthFail, 2, 'the forged and the plain packet dropped and counted');
  t.ok(st.latched, 'latched on the authenticated stream');
  t.ok(heard.length >= 20, `the peer decrypted our packets (${heard.length})`);
  t.same(failures, [], 'no packet of ours failed at the peer');
  t.ok(heard.every((p) => p[1]! === 0 || p[1]! === 0x80), 'plain RTP PCMU inside');
  const loud = heard.filter((p) => p.subarray(12).some((b) => b !== 0xff && b !== 0x7f));
  t.ok(loud.length > 5, 'our tone inside the decrypted payloads');
  const rms = Math.sqrt(inbound.flatMap((f) => Array.from(f)).reduce((a, x) => a + x * x, 0) / Math.max(1, inbound.reduce((a, f) => a + f.length, 0)));
  t.ok(rms > 1000, `the peer's tone plays out after unprotect (rms ${rms.toFixed(0)})`);
});
