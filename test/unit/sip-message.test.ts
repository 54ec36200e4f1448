import t from 'tap';
import {
  SipMessage, SipParseError, parseSipMessage, parseVia, formatVia, parseUri, formatUri,
  parseNameAddr, formatNameAddr, makeResponse, newBranch, newTag, newCallId, REASON_PHRASES,
  splitHeaderValues, canonicalHeaderName,
} from '../../src/sip-edge/message.ts';

const CRLF = '\r\n';
const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

/** A valid INVITE; `drop`/`replace` let error tests remove or alter one header. */
function invite(opts: { drop?: string; replace?: Record<string, string>; body?: string; noCl?: boolean } = {}): string {
  const hdrs: [string, string][] = [
    ['Via', 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKabc;rport'],
    ['Max-Forwards', '70'],
    ['From', '"Zoë Müller" <sip:zoe@example.com>;tag=f1'],
    ['To', '<sip:agent@example.net>'],
    ['Call-ID', 'c1@10.0.0.1'],
    ['CSeq', '1 INVITE'],
    ['Contact', '<sip:zoe@10.0.0.1:5060>'],
    ['Content-Type', 'application/sdp'],
  ];
  const body = opts.body ?? SDP;
  const lines = ['INVITE sip:agent@example.net SIP/2.0'];
  for (const [n, v] of hdrs) {
    if (n === opts.drop) continue;
    lines.push(`${n}: ${opts.replace?.[n] ?? v}`);
  }
  if (!opts.noCl) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join(CRLF) + CRLF + CRLF + body;
}

function parseErr(input: string | Buffer): SipParseError {
  try {
    parseSipMessage(input);
  } catch (e) {
    if (e instanceof SipParseError) return e;
    throw e;
  }
  throw new Error('expected a SipParseError');
}

t.test('parses a full INVITE with UTF-8 display name and SDP body', async (t) => {
  const m = parseSipMessage(invite());
  t.ok(m.isRequest);
  t.equal(m.method, 'INVITE');
  t.equal(m.uri, 'sip:agent@example.net');
  t.equal(m.callId, 'c1@10.0.0.1');
  t.same(m.cseq, { seq: 1, method: 'INVITE' });
  t.equal(m.fromTag, 'f1');
  t.equal(m.toTag, undefined);
  t.equal(parseNameAddr(m.get('from')!).display, 'Zoë Müller');
  t.equal(m.body.toString(), SDP);
  t.equal(m.get('content-type'), 'application/sdp');
  t.equal(m.get('c'), 'application/sdp', 'compact lookup');
});

t.test('round trip: parse → toBuffer → parse is stable', async (t) => {
  const m = parseSipMessage(invite());
  const wire = m.toBuffer();
  t.equal(wire.toString(), invite(), 'byte-identical for a canonical message');
  const again = parseSipMessage(wire);
  t.same(again.headers, m.headers);
  t.same(again.body, m.body);
});

t.test('response parsing and status line with empty reason', async (t) => {
  const r = parseSipMessage('SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 5 INVITE\r\nContent-Length: 0\r\n\r\n');
  t.notOk(r.isRequest);
  t.equal(r.status, 180);
  t.equal(r.reason, 'Ringing');
  t.equal(r.toTag, '2');
  const r2 = parseSipMessage('SIP/2.0 200\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 5 INVITE\r\n\r\n');
  t.equal(r2.status, 200);
  t.equal(r2.reason, '');
});

t.test('compact forms are expanded and canonical capitalisation is written', async (t) => {
  const raw = [
    'BYE sip:a@b SIP/2.0',
    'v: SIP/2.0/TCP 1.2.3.4;branch=z9hG4bKx',
    'f: <sip:x@y>;tag=1',
    't: <sip:a@b>;tag=2',
    'i: abc',
    'CSEQ: 2 BYE',
    'max-forwards: 69',
    'www-authenticate: Digest realm="r"',
    'k: timer',
    'm: <sip:x@1.2.3.4>',
    'X-Custom-ID: keep',
    'l: 0',
    '', '',
  ].join(CRLF);
  const m = parseSipMessage(raw);
  t.same(m.headers.map((h) => h.name), [
    'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'WWW-Authenticate', 'Supported', 'Contact', 'X-Custom-ID', 'Content-Length',
  ]);
  const out = m.toString();
  t.match(out, /\r\nCall-ID: abc\r\n/);
  t.match(out, /\r\nCSeq: 2 BYE\r\n/);
  t.match(out, /\r\nMax-Forwards: 69\r\n/);
  t.equal(canonicalHeaderName('call-id'), 'Call-ID');
  t.equal(canonicalHeaderName('i'), 'Call-ID');
});

t.test('header folding (LWS continuation lines) and whitespace around colon', async (t) => {
  const raw = invite().replace('Contact: <sip:zoe@10.0.0.1:5060>', 'Contact  :\r\n   <sip:zoe@10.0.0.1:5060>\r\n\t;expires=60')
    .replace('Subject', 'Subject');
  const m = parseSipMessage(raw);
  t.equal(m.get('Contact'), '<sip:zoe@10.0.0.1:5060> ;expires=60');
  t.equal(parseNameAddr(m.get('Contact')!).params.get('expires'), '60');
});

t.test('multiple header lines and comma-separated values', async (t) => {
  const raw = invite().replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nVia: SIP/2.0/UDP proxy1:5070;branch=z9hG4bKp1, SIP/2.0/UDP proxy2;branch=z9hG4bKp2\r\nRecord-Route: <sip:p1;lr>\r\nRecord-Route: <sip:p2;lr>');
  const m = parseSipMessage(raw);
  t.equal(m.getAll('Via').length, 2);
  t.equal(m.getAll('Record-Route').length, 2);
  const all = m.getAll('Via').flatMap((v) => parseVia(v));
  t.same(all.map((v) => v.host), ['10.0.0.1', 'proxy1', 'proxy2']);
  t.same(splitHeaderValues('"a,b" <sip:x>, <sip:y;p=1,2>, sip:z'), ['"a,b" <sip:x>', '<sip:y;p=1,2>', 'sip:z']);
});

t.test('header manipulation: set/add/prepend/remove', async (t) => {
  const m = SipMessage.request('OPTIONS', 'sip:x', [{ name: 'via', value: 'SIP/2.0/UDP a;branch=z9hG4bK1' }]);
  m.add('Via', 'SIP/2.0/UDP b;branch=z9hG4bK2');
  m.prepend('Via', 'SIP/2.0/UDP top;branch=z9hG4bK0');
  t.same(m.getAll('v').map((v) => parseVia(v)[0].host), ['top', 'a', 'b']);
  t.equal(m.headers[0].name, 'Via', 'canonical name on add');
  m.add('Supported', 'timer').add('Supported', '100rel');
  m.set('supported', 'replaces');
  t.same(m.getAll('Supported'), ['replaces']);
  m.remove('VIA');
  t.same(m.getAll('Via'), []);
  m.prepend('Route', '<sip:r;lr>');
  t.equal(m.headers[0].name, 'Route', 'prepend without existing goes to top');
});

t.test('toBuffer rewrites Content-Length and strips injected line breaks', async (t) => {
  const m = SipMessage.response(200, undefined, [{ name: 'Content-Length', value: '999' }, { name: 'Subject', value: 'a\r\nEvil: 1' }], 'héllo');
  const s = m.toString();
  t.match(s, /^SIP\/2\.0 200 OK\r\n/);
  t.match(s, /\r\nContent-Length: 6\r\n/);
  t.notMatch(s, /\r\nEvil:/);
  const m2 = SipMessage.request('MESSAGE', 'sip:x');
  t.match(m2.toString(), /Content-Length: 0\r\n\r\n$/);
});

t.test('UDP: missing Content-Length → body is rest of datagram; extra bytes beyond Content-Length dropped', async (t) => {
  const m = parseSipMessage(invite({ noCl: true }));
  t.equal(m.body.toString(), SDP);
  const m2 = parseSipMessage(invite() + 'TRAILING GARBAGE');
  t.equal(m2.body.toString(), SDP);
});

t.test('leading CRLFs are skipped; LF-only line endings accepted', async (t) => {
  const m = parseSipMessage('\r\n\r\n' + invite());
  t.equal(m.method, 'INVITE');
  const [head, body] = invite().split('\r\n\r\n');
  const lf = parseSipMessage(head.replace(/\r\n/g, '\n') + '\n\n' + body);
  t.equal(lf.body.toString(), SDP);
  t.equal(lf.callId, 'c1@10.0.0.1');
});

t.test('error: missing each mandatory header', async (t) => {
  for (const h of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    const e = parseErr(invite({ drop: h }));
    t.equal(e.message, `missing ${h} header`, h);
    t.ok(e.partial, 'partial present');
    t.equal(e.partial!.method, 'INVITE');
  }
  // Max-Forwards is optional.
  t.doesNotThrow(() => parseSipMessage(invite({ drop: 'Max-Forwards' })));
});

t.test('error: bad CSeq, method mismatch, bad Max-Forwards, bad Call-ID', async (t) => {
  t.equal(parseErr(invite({ replace: { CSeq: 'abc' } })).message, 'bad CSeq: "abc"');
  t.equal(parseErr(invite({ replace: { CSeq: '99999999999 INVITE' } })).message, 'CSeq number out of range (max 2147483647): "99999999999 INVITE"');
  t.equal(parseErr(invite({ replace: { CSeq: '1 BYE' } })).message, 'CSeq method BYE does not match request method INVITE');
  t.equal(parseErr(invite({ replace: { 'Max-Forwards': 'x' } })).message, 'bad Max-Forwards: "x"');
  t.equal(parseErr(invite({ replace: { 'Call-ID': 'a b' } })).message, 'bad Call-ID: "a b"');
  const e = parseErr(invite({ replace: { CSeq: 'abc' } }));
  t.equal(e.partial!.callId, 'c1@10.0.0.1', 'partial keeps the rest');
});

t.test('error: bad / short Content-Length', async (t) => {
  t.equal(parseErr(invite().replace(/Content-Length: \d+/, 'Content-Length: abc')).message, 'bad Content-Length: "abc"');
  t.equal(parseErr(invite().replace(/Content-Length: \d+/, 'Content-Length: -1')).message, 'bad Content-Length: "-1"');
  const e = parseErr(invite().replace(/Content-Length: \d+/, 'Content-Length: 500'));
  t.match(e.message, /^truncated body: Content-Length 500 but only \d+ bytes$/);
  t.equal(parseErr(invite().replace('Content-Type', 'Content-Length: 3\r\nContent-Type')).message, 'multiple Content-Length headers');
});

t.test('error: start line problems', async (t) => {
  t.match(parseErr('INVITE sip:agent@example.net\r\nVia: SIP/2.0/UDP h\r\n\r\n').message, /^malformed request line/);
  t.match(parseErr('INVITE\r\n\r\n').message, /^malformed request line/);
  t.match(parseErr(invite().replace('SIP/2.0\r\n', 'SIP/3.0\r\n')).message, /^unsupported SIP version: SIP\/3.0/);
  t.match(parseErr(invite().replace('sip:agent@example.net SIP', 'agent SIP')).message, /^bad Request-URI/);
  t.match(parseErr('SIP/2.0 abc OK\r\n\r\n').message, /^malformed status line/);
  t.match(parseErr('SIP/2.0 999 Huh\r\n\r\n').message, /^bad status code: 999/);
  t.equal(parseErr('').message, 'empty message');
  t.equal(parseErr('\r\n\r\n').message, 'empty message');
});

t.test('error: malformed header line, bad Via, bad From', async (t) => {
  t.match(parseErr(invite().replace('Max-Forwards: 70', 'Max-Forwards 70')).message, /^malformed header line: "Max-Forwards 70"/);
  t.match(parseErr(invite({ replace: { Via: 'garbage' } })).message, /^bad Via/);
  t.match(parseErr(invite({ replace: { Via: 'SIP/2.0/UDP host:99999;branch=z9hG4bK' } })).message, /^bad Via: bad port/);
  t.match(parseErr(invite({ replace: { From: '"unterminated <sip:a@b>' } })).message, /^bad From header: unterminated display name/);
  t.match(parseErr(invite({ replace: { To: '<sip:a@b' } })).message, /^bad To header: missing ">"/);
});

t.test('binary garbage never throws anything but SipParseError', async (t) => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.alloc(Math.floor(rnd() * 300));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    try {
      parseSipMessage(b);
    } catch (e) {
      if (!(e instanceof SipParseError)) t.fail(`non-SipParseError on ${b.toString('hex')}: ${e}`);
    }
  }
  t.pass('2000 random buffers');
});

t.test('Via parse/format incl. IPv6, LWS around slashes, rport/received', async (t) => {
  const [v] = parseVia('SIP / 2.0 / udp [2001:db8::1]:5062;branch=z9hG4bKq;rport;received=1.2.3.4');
  t.equal(v.protocol, 'SIP/2.0/UDP');
  t.equal(v.transport, 'UDP');
  t.equal(v.host, '2001:db8::1');
  t.equal(v.port, 5062);
  t.equal(v.branch, 'z9hG4bKq');
  t.equal(v.params.get('rport'), null);
  t.equal(v.params.get('received'), '1.2.3.4');
  v.params.set('rport', '4000');
  t.equal(formatVia(v), 'SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bKq;rport=4000;received=1.2.3.4');
  const [w] = parseVia('SIP/2.0/TCP host.example');
  t.equal(w.port, undefined);
  t.equal(formatVia({ ...w, branch: 'z9hG4bKnew' }), 'SIP/2.0/TCP host.example;branch=z9hG4bKnew');
  t.throws(() => parseVia(''), SipParseError);
  t.throws(() => parseVia('SIP/2.0/UDP'), SipParseError);
});

t.test('URI parse/format', async (t) => {
  const u = parseUri('sip:alice:secret@[::1]:5070;transport=tcp;lr?Subject=hi&Priority=urgent');
  t.equal(u.scheme, 'sip');
  t.equal(u.user, 'alice');
  t.equal(u.password, 'secret');
  t.equal(u.host, '::1');
  t.equal(u.port, 5070);
  t.equal(u.params.get('transport'), 'tcp');
  t.equal(u.params.get('lr'), null);
  t.equal(u.headers.get('Subject'), 'hi');
  t.equal(formatUri(u), 'sip:alice:secret@[::1]:5070;transport=tcp;lr?Subject=hi&Priority=urgent');
  const tel = parseUri('tel:+4930123;phone-context=example.com');
  t.equal(tel.host, '+4930123');
  t.equal(formatUri(tel), 'tel:+4930123;phone-context=example.com');
  t.equal(parseUri('<sips:example.com>').host, 'example.com');
  t.equal(parseUri('sip:+49;npdi@gw.example.com;user=phone').user, '+49;npdi');
  t.throws(() => parseUri('nope'), SipParseError);
  t.throws(() => parseUri('sip:'), SipParseError);
  t.throws(() => parseUri('sip:a@h:port'), SipParseError);
});

t.test('name-addr parse/format', async (t) => {
  const a = parseNameAddr('"Zoë \\"Z\\" M" <sip:zoe@x.com;transport=udp>;tag=abc;expires=30');
  t.equal(a.display, 'Zoë "Z" M');
  t.equal(a.uri, 'sip:zoe@x.com;transport=udp');
  t.equal(a.params.get('tag'), 'abc');
  t.equal(formatNameAddr(a), '"Zoë \\"Z\\" M" <sip:zoe@x.com;transport=udp>;tag=abc;expires=30');
  const b = parseNameAddr('Bob Smith <sip:bob@y>');
  t.equal(b.display, 'Bob Smith');
  const c = parseNameAddr('sip:carol@z;tag=9');
  t.equal(c.uri, 'sip:carol@z');
  t.equal(c.params.get('tag'), '9', 'addr-spec params are header params (§20.10)');
  t.equal(formatNameAddr(c), '<sip:carol@z>;tag=9');
  t.throws(() => parseNameAddr(''), SipParseError);
  t.throws(() => parseNameAddr('<sip:a@b> junk'), SipParseError);
});

t.test('makeResponse copies Via/From/To/Call-ID/CSeq (§8.2.6.2)', async (t) => {
  const req = parseSipMessage(invite().replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nVia: SIP/2.0/UDP p2;branch=z9hG4bKp2'));
  const res = makeResponse(req, 486);
  t.equal(res.reason, 'Busy Here');
  t.same(res.getAll('Via'), req.getAll('Via'));
  t.equal(res.get('From'), req.get('From'));
  t.equal(res.get('To'), req.get('To'));
  t.equal(res.callId, req.callId);
  t.same(res.cseq, req.cseq);
  t.equal(res.get('Content-Length'), '0');
  t.equal(res.get('Contact'), undefined);
  const back = parseSipMessage(res.toBuffer());
  t.equal(back.status, 486);
  t.equal(makeResponse(req, 400, 'Bad Request - x').reason, 'Bad Request - x');
});

t.test('identifiers and reason phrases', async (t) => {
  const b = newBranch();
  t.match(b, /^z9hG4bK[0-9a-f]{20}$/);
  t.not(newBranch(), b);
  t.match(newTag(), /^[0-9a-f]{12}$/);
  t.match(newCallId(), /^[0-9a-f]{32}$/);
  t.equal(REASON_PHRASES[481], 'Call/Transaction Does Not Exist');
  t.equal(SipMessage.response(487).reason, 'Request Terminated');
});

t.test('parse throughput (informational)', async (t) => {
  const raw = Buffer.from(invite());
  const n = 20000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) parseSipMessage(raw);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  t.comment(`parsed ${n} INVITEs in ${ms.toFixed(0)} ms (${Math.round(n / (ms / 1000))}/s)`);
  t.ok(ms < 20000);
});
