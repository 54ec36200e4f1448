import t, { type Test } from 'tap';
import { parseSdp, serializeSdp, negotiate, createOffer, processAnswer, SdpError, directionOf, rtpMaps, type Negotiation } from '../../src/sdp/index.ts';

const LOCAL = { address: '192.0.2.10', port: 40002 };

function offer(opts: { formats: string; attrs?: string[]; session?: string[]; c?: string; port?: number; extraMedia?: string[]; mediaFirst?: string[] }): string {
  const lines = [
    'v=0',
    'o=- 1234 1 IN IP4 198.51.100.5',
    's=-',
    ...(opts.c === undefined ? ['c=IN IP4 198.51.100.5'] : opts.c === '' ? [] : [`c=${opts.c}`]),
    't=0 0',
    ...(opts.session ?? []),
    ...(opts.mediaFirst ?? []),
    `m=audio ${opts.port ?? 6000} RTP/AVP ${opts.formats}`,
    ...(opts.attrs ?? []),
    ...(opts.extraMedia ?? []),
  ];
  return lines.join('\r\n') + '\r\n';
}

/** Assert fn throws an SdpError of `kind` whose message matches `re`. */
function throwsSdp(t: Test, fn: () => unknown, kind: string, re: RegExp, msg = ''): void {
  try {
    fn();
    t.fail(`expected SdpError(${kind}) ${msg}`);
  } catch (e) {
    t.ok(e instanceof SdpError, `SdpError ${msg}`);
    t.equal((e as SdpError).kind, kind, msg);
    t.match((e as Error).message, re, msg);
  }
}

function neg(sdp: string, caps?: { opus?: boolean }): Negotiation {
  return negotiate(sdp, { local: LOCAL, capabilities: caps ?? {}, origin: { sessionId: '42', sessionVersion: 1 } });
}

function answerMedia(n: Negotiation, i = n.audio.mediaIndex): string[] {
  const sd = parseSdp(n.sdp);
  const m = sd.media[i]!;
  return [`m=${m.type} ${m.port} ${m.proto} ${m.formats.join(' ')}`, ...m.attributes.map((a) => (a.value === undefined ? a.name : `${a.name}:${a.value}`))];
}

t.test('parse: session and media fields, round trip', async (t) => {
  const text = offer({ formats: '0 8 101', attrs: ['a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=ptime:20', 'a=sendrecv'] });
  const sd = parseSdp(text);
  t.equal(sd.origin.sessionId, '1234');
  t.equal(sd.connection?.address, '198.51.100.5');
  t.equal(sd.media.length, 1);
  t.same(sd.media[0]!.formats, ['0', '8', '101']);
  t.equal(rtpMaps(sd.media[0]!).get(101)?.encoding, 'telephone-event');
  t.equal(directionOf(sd, sd.media[0]!), 'sendrecv');
  t.equal(serializeSdp(sd), text, 'serialize(parse(x)) === x for canonical input');
  t.same(parseSdp(serializeSdp(sd)), sd);
});

t.test('parse: bare LF, trailing blank lines, unknown line types ignored', async (t) => {
  const sd = parseSdp('v=0\no=- 1 1 IN IP4 10.0.0.1\ns=x\nc=IN IP4 10.0.0.1\nt=0 0\nx=unknown\nm=audio 5000 RTP/AVP 0\n\n\n');
  t.equal(sd.media[0]!.port, 5000);
});

t.test('parse: media-level c= overrides session c=; multicast suffix kept', async (t) => {
  const sd = parseSdp(offer({ formats: '0', attrs: ['c=IN IP4 203.0.113.9/127'] }));
  t.equal(sd.media[0]!.connection?.address, '203.0.113.9');
  t.equal(sd.media[0]!.connection?.suffix, '/127');
  t.match(serializeSdp(sd), /c=IN IP4 203\.0\.113\.9\/127/);
});

t.test('parse: malformed inputs throw SdpError(malformed) with the line', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['o=- 1 1 IN IP4 1.2.3.4\r\n', /line 1: must be "v=0"/],
    ['v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n', /unsupported version/],
    ['v=0\r\ns=-\r\n', /missing "o=" line/],
    ['v=0\r\no=- 1 1 IN IP4\r\n', /o= needs 6 fields/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ngarbage\r\n', /line 3: expected "<type>=<value>"/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio abc RTP/AVP 0\r\n', /port "abc" is not a number/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n', /out of range/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 5000 RTP/AVP\r\n', /m= needs/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n', /c= needs/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=now\r\n', /t= needs/],
    ['v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n' + 'a=x\r\n'.repeat(20000), /limit/],
  ];
  for (const [text, re] of cases) {
    throwsSdp(t, () => parseSdp(text), 'malformed', re, JSON.stringify(text.slice(0, 40)));
  }
});

t.test('negotiate: PCMU only', async (t) => {
  const n = neg(offer({ formats: '0' }));
  t.equal(n.audio.codec, 'PCMU');
  t.equal(n.audio.payloadType, 0);
  t.same(n.audio.remote, { address: '198.51.100.5', port: 6000 });
  t.same(answerMedia(n), ['m=audio 40002 RTP/AVP 0', 'rtpmap:0 PCMU/8000', 'ptime:20', 'sendrecv']);
  const sd = parseSdp(n.sdp);
  t.equal(sd.connection?.address, '192.0.2.10');
  t.equal(sd.origin.address, '192.0.2.10');
  t.equal(sd.origin.sessionId, '42');
  t.ok(n.sdp.endsWith('\r\n'));
  t.notOk(n.sdp.includes('\n\n'));
});

t.test('negotiate: PCMA only → PCMA', async (t) => {
  const n = neg(offer({ formats: '8', attrs: ['a=rtpmap:8 PCMA/8000'] }));
  t.equal(n.audio.codec, 'PCMA');
  t.equal(n.audio.payloadType, 8);
  t.same(answerMedia(n).slice(0, 2), ['m=audio 40002 RTP/AVP 8', 'rtpmap:8 PCMA/8000']);
});

t.test('negotiate: both offered — offerer order wins', async (t) => {
  t.equal(neg(offer({ formats: '8 0' })).audio.codec, 'PCMA');
  t.equal(neg(offer({ formats: '0 8' })).audio.codec, 'PCMU');
  t.equal(neg(offer({ formats: '18 8 0' })).audio.codec, 'PCMA', 'skips unsupported first choice');
});

t.test('negotiate: static PTs without rtpmap, case-insensitive names, dynamic PCMU', async (t) => {
  t.equal(neg(offer({ formats: '0' })).audio.codec, 'PCMU');
  const lower = neg(offer({ formats: '8', attrs: ['a=rtpmap:8 pcma/8000'] }));
  t.equal(lower.audio.codec, 'PCMA');
  const dyn = neg(offer({ formats: '96', attrs: ['a=rtpmap:96 pcmu/8000'] }));
  t.equal(dyn.audio.codec, 'PCMU');
  t.equal(dyn.audio.payloadType, 96, 'dynamic PT echoed');
  t.match(dyn.sdp, /a=rtpmap:96 PCMU\/8000/);
});

t.test('negotiate: G.729 only → no-common-codec error text', async (t) => {
  try {
    neg(offer({ formats: '18', attrs: ['a=rtpmap:18 G729/8000', 'a=fmtp:18 annexb=no'] }));
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof SdpError);
    const err = e as SdpError;
    t.equal(err.kind, 'no-common-codec');
    t.equal(err.message, 'no common codec: offered G729/8000 (pt 18); supported PCMU/8000, PCMA/8000');
    t.equal(err.offered, 'G729/8000 (pt 18)');
    t.equal(err.supported, 'PCMU/8000, PCMA/8000');
  }
  t.throws(() => neg(offer({ formats: '18 3 97', attrs: ['a=rtpmap:97 iLBC/8000'] })),
    { message: 'no common codec: offered G729/8000 (pt 18), GSM/8000 (pt 3), iLBC/8000 (pt 97); supported PCMU/8000, PCMA/8000' });
  t.throws(() => neg(offer({ formats: '101', attrs: ['a=rtpmap:101 telephone-event/8000'] })), { message: 'no common codec: offered only telephone-event/8000 (pt 101); supported PCMU/8000, PCMA/8000' });
  t.throws(() => neg(offer({ formats: '99' })), { message: /unknown \(pt 99, no rtpmap\)/ });
});

t.test('negotiate: telephone-event echoed with offer PT and fmtp', async (t) => {
  const n = neg(offer({ formats: '0 8 96', attrs: ['a=rtpmap:96 telephone-event/8000', 'a=fmtp:96 0-15'] }));
  t.same(n.audio.telephoneEvent, { payloadType: 96, clockRate: 8000, fmtp: '0-15' });
  t.same(answerMedia(n), ['m=audio 40002 RTP/AVP 0 96', 'rtpmap:0 PCMU/8000', 'rtpmap:96 telephone-event/8000', 'fmtp:96 0-15', 'ptime:20', 'sendrecv']);
  const noFmtp = neg(offer({ formats: '8 101', attrs: ['a=rtpmap:101 TELEPHONE-EVENT/8000'] }));
  t.equal(noFmtp.audio.telephoneEvent?.payloadType, 101);
  t.notMatch(noFmtp.sdp, /a=fmtp/);
  const off = negotiate(offer({ formats: '0 101', attrs: ['a=rtpmap:101 telephone-event/8000'] }), { local: LOCAL, capabilities: { telephoneEvent: false } });
  t.equal(off.audio.telephoneEvent, undefined);
  t.notMatch(off.sdp, /telephone-event/);
  const te48 = neg(offer({ formats: '0 110', attrs: ['a=rtpmap:110 telephone-event/48000'] }));
  t.equal(te48.audio.telephoneEvent, undefined, 'clock rate must match the codec');
});

t.test('negotiate: opus recognised, negotiated only with the capability flag', async (t) => {
  const o = offer({ formats: '111 0 101', attrs: ['a=rtpmap:111 opus/48000/2', 'a=fmtp:111 minptime=10;useinbandfec=1', 'a=rtpmap:101 telephone-event/8000'] });
  const off = neg(o);
  t.equal(off.audio.codec, 'PCMU', 'flag off: falls back to G.711');
  const on = neg(o, { opus: true });
  t.equal(on.audio.codec, 'opus');
  t.equal(on.audio.payloadType, 111);
  t.equal(on.audio.clockRate, 48000);
  t.equal(on.audio.channels, 2);
  t.equal(on.audio.remoteFmtp, 'minptime=10;useinbandfec=1');
  t.match(on.sdp, /a=rtpmap:111 opus\/48000\/2/);
  t.match(on.sdp, /a=fmtp:111 /);
  t.equal(on.audio.telephoneEvent, undefined, 'te at 8000 does not pair with opus at 48000');
  t.throws(() => neg(offer({ formats: '111', attrs: ['a=rtpmap:111 OPUS/48000/2'] })),
    { message: 'no common codec: offered OPUS/48000/2 (pt 111); supported PCMU/8000, PCMA/8000' });
});

t.test('negotiate: directions and hold', async (t) => {
  const dir = (attrs: string[], c?: string) => neg(offer({ formats: '0', attrs, ...(c ? { c } : {}) })).audio;
  let a = dir(['a=sendonly']);
  t.equal(a.answerDirection, 'recvonly');
  t.equal(a.hold, true);
  t.equal(a.localSends, false);
  t.equal(a.remoteSends, true);
  a = dir(['a=recvonly']);
  t.equal(a.answerDirection, 'sendonly');
  t.equal(a.localSends, true);
  t.equal(a.remoteSends, false);
  a = dir(['a=inactive']);
  t.equal(a.answerDirection, 'inactive');
  t.equal(a.localSends, false);
  t.equal(a.remoteSends, false);
  a = dir([], 'IN IP4 0.0.0.0');
  t.equal(a.remote, null, 'c=0.0.0.0: nowhere to send');
  t.equal(a.hold, true);
  t.equal(a.localSends, false);
  t.equal(a.answerDirection, 'recvonly');
  // session-level direction applies when the media has none
  const s = neg(offer({ formats: '0', session: ['a=sendonly'] }));
  t.equal(s.audio.answerDirection, 'recvonly');
  t.match(s.sdp, /a=recvonly/);
});

t.test('negotiate: multiple m= lines — answer audio, reject others with port 0 in order', async (t) => {
  const sdp = offer({
    formats: '0 8',
    mediaFirst: ['m=video 7000 RTP/AVP 96', 'a=rtpmap:96 H264/90000'],
    extraMedia: ['m=audio 6002 RTP/AVP 0', 'm=application 9 UDP/BFCP *'],
  });
  const n = neg(sdp);
  t.equal(n.audio.mediaIndex, 1);
  const ans = parseSdp(n.sdp);
  t.equal(ans.media.length, 4, 'same number of m= lines as the offer');
  t.same(ans.media.map((m) => [m.type, m.port]), [['video', 0], ['audio', 40002], ['audio', 0], ['application', 0]]);
  t.same(ans.media[0]!.formats, ['96']);
  t.same(ans.media[3]!.formats, ['*']);
});

t.test('negotiate: first audio line without a common codec, second with one', async (t) => {
  const n = neg(offer({ formats: '18', extraMedia: ['m=audio 6002 RTP/AVP 8'] }));
  t.equal(n.audio.mediaIndex, 1);
  t.equal(n.audio.codec, 'PCMA');
  t.same(parseSdp(n.sdp).media.map((m) => m.port), [0, 40002]);
});

t.test('negotiate: unusable streams', async (t) => {
  throwsSdp(t, () => neg('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n'), 'srtp', /SRTP is off on this trunk \(offered m=audio RTP\/SAVP\)/);
  throwsSdp(t, () => neg('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n'), 'no-audio', /./);
  t.throws(() => neg('v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n'), { message: /no m= lines/ });
  throwsSdp(t, () => neg(offer({ formats: '0', c: '' })), 'malformed', /no c= line/);
  throwsSdp(t, () => neg(offer({ formats: '0', port: 0 })), 'no-audio', /./);
  throwsSdp(t, () => neg(offer({ formats: '0', c: 'ATM NSAP 47.0091' })), 'unsupported', /./);
});

t.test('negotiate: IPv6 local address and RTP/AVPF', async (t) => {
  const n = negotiate(offer({ formats: '0' }).replace('RTP/AVP', 'RTP/AVPF'), { local: { address: '2001:db8::1', port: 40010 } });
  t.match(n.sdp, /c=IN IP6 2001:db8::1/);
  t.match(n.sdp, /m=audio 40010 RTP\/AVPF 0/);
});

t.test('negotiate: preferCodec keeps the running codec', async (t) => {
  const n = negotiate(offer({ formats: '0 8' }), { local: LOCAL, preferCodec: 'PCMA' });
  t.equal(n.audio.codec, 'PCMA');
});

t.test('delayed offer: createOffer and processAnswer', async (t) => {
  const { offer, sdp } = createOffer({ local: LOCAL, origin: { sessionId: '9', sessionVersion: 1 } });
  t.match(sdp, /^v=0\r\no=voice-agent 9 1 IN IP4 192\.0\.2\.10\r\n/);
  t.match(sdp, /m=audio 40002 RTP\/AVP 0 8 101\r\n/);
  t.match(sdp, /a=fmtp:101 0-16/);
  t.match(createOffer({ local: LOCAL, capabilities: { opus: true } }).sdp, /RTP\/AVP 111 0 8 101/);
  const ans = (formats: string, extra: string[] = [], c = 'IN IP4 198.51.100.7') =>
    ['v=0', 'o=- 5 5 IN IP4 198.51.100.7', 's=-', `c=${c}`, 't=0 0', `m=audio 7000 RTP/AVP ${formats}`, ...extra].join('\r\n') + '\r\n';
  let a = processAnswer(ans('8 101', ['a=rtpmap:101 telephone-event/8000']), offer);
  t.equal(a.codec, 'PCMA');
  t.same(a.remote, { address: '198.51.100.7', port: 7000 });
  t.same(a.telephoneEvent, { payloadType: 101, clockRate: 8000, fmtp: '0-16' });
  t.equal(a.localSends, true);
  a = processAnswer(ans('0', ['a=sendonly']), offer);
  t.equal(a.codec, 'PCMU');
  t.equal(a.localSends, false, 'answer sendonly: peer will not receive');
  t.equal(a.remoteSends, true);
  a = processAnswer(ans('0', [], 'IN IP4 0.0.0.0'), offer);
  t.equal(a.remote, null);
  throwsSdp(t, () => processAnswer(ans('18'), offer), 'no-common-codec', /answer lists formats 18; we offered 0 8 101/);
  throwsSdp(t, () => processAnswer(ans('0').replace('m=audio 7000', 'm=audio 0'), offer), 'no-audio', /rejected/);
  throwsSdp(t, () => processAnswer(ans('0', ['a=rtpmap:0 G729/8000']), offer), 'no-common-codec', /./);
  throwsSdp(t, () => processAnswer('', offer), 'malformed', /empty/);
});

t.test('negotiate: opus with the offer\'s dynamic PT and fmtp, offerer\'s order, te at 48 kHz', async (t) => {
  const o = offer({
    formats: '96 8 0 97',
    attrs: ['a=rtpmap:96 opus/48000/2', 'a=fmtp:96 useinbandfec=1;stereo=0;maxplaybackrate=24000', 'a=rtpmap:97 telephone-event/48000', 'a=fmtp:97 0-15'],
  });
  const n = neg(o, { opus: true });
  t.equal(n.audio.codec, 'opus');
  t.equal(n.audio.payloadType, 96, 'the offer\'s dynamic payload type is kept');
  t.equal(n.audio.remoteFmtp, 'useinbandfec=1;stereo=0;maxplaybackrate=24000', 'peer fmtp passed on for the encoder');
  t.same(n.audio.telephoneEvent, { payloadType: 97, clockRate: 48000, fmtp: '0-15' });
  t.match(n.sdp, /m=audio 40002 RTP\/AVP 96 97\r\n/);
  t.match(n.sdp, /a=rtpmap:96 opus\/48000\/2\r\n/);
  t.match(n.sdp, /a=fmtp:96 maxplaybackrate=16000;sprop-maxcapturerate=16000;minptime=10;useinbandfec=1\r\n/);
  t.notMatch(n.sdp, /a=ptime/);
  // Offerer's order: G.711 first → G.711 even with opus available.
  const g = neg(offer({ formats: '0 96', attrs: ['a=rtpmap:96 opus/48000/2'] }), { opus: true });
  t.equal(g.audio.codec, 'PCMU');
  // Only opus offered, capability on → opus; capability off → 488 naming what we support.
  t.equal(neg(offer({ formats: '111', attrs: ['a=rtpmap:111 opus/48000/2'] }), { opus: true }).audio.codec, 'opus');
  t.equal(neg(offer({ formats: '111', attrs: ['a=rtpmap:111 opus/48000'] }), { opus: true }).audio.codec, 'opus', 'missing /2 tolerated');
  t.throws(() => neg(offer({ formats: '111', attrs: ['a=rtpmap:111 opus/16000/1'] }), { opus: true }), /no common codec/);
  // re-INVITE keeps the running codec
  const keep = negotiate(offer({ formats: '0 96', attrs: ['a=rtpmap:96 opus/48000/2'] }), { local: LOCAL, capabilities: { opus: true }, preferCodec: 'opus' });
  t.equal(keep.audio.codec, 'opus');
});

t.test('delayed offer with opus: te at 8 and 48 kHz, processAnswer picks the matching clock', async (t) => {
  const { offer: o, sdp } = createOffer({ local: LOCAL, capabilities: { opus: true } });
  t.match(sdp, /m=audio 40002 RTP\/AVP 111 0 8 101 110\r\n/);
  t.match(sdp, /a=rtpmap:110 telephone-event\/48000/);
  const ans = (formats: string, extra: string[]) =>
    ['v=0', 'o=- 5 5 IN IP4 198.51.100.7', 's=-', 'c=IN IP4 198.51.100.7', 't=0 0', `m=audio 7000 RTP/AVP ${formats}`, ...extra].join('\r\n') + '\r\n';
  const a = processAnswer(ans('111 110', ['a=rtpmap:111 opus/48000/2', 'a=fmtp:111 useinbandfec=1', 'a=rtpmap:110 telephone-event/48000']), o);
  t.equal(a.codec, 'opus');
  t.equal(a.payloadType, 111);
  t.equal(a.remoteFmtp, 'useinbandfec=1');
  t.equal(a.telephoneEvent?.payloadType, 110);
  const b = processAnswer(ans('0 101 110', ['a=rtpmap:101 telephone-event/8000', 'a=rtpmap:110 telephone-event/48000']), o);
  t.equal(b.codec, 'PCMU');
  t.equal(b.telephoneEvent?.payloadType, 101, 'te at the codec\'s clock');
});
