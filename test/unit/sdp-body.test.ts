/**
 * The SDP inside SIP bodies (src/sdp/body.ts): bare application/sdp, multipart/mixed with
 * ISUP (SIP-I / SIP-T), multipart/alternative, RFC 2046 boundary details (quoted boundary,
 * preamble, epilogue, transport padding, LF-only), nesting, handling=required, errors.
 */
import t from 'tap';
import { sdpFromBody, splitMultipart, parseContentType, BodyError } from '../../src/sdp/index.ts';

const SDP = ['v=0', 'o=gw 1 1 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'm=audio 5004 RTP/AVP 0 8', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
const ISUP = '\x01\x00\x60\x01\x0a\x00\x02\x0a\x08\x83\x90\x89\x95\x00\x10\x0f\x0a\x07\x03\x13\x09\x51\x55\x15\x00\x00';
const crlf = (lines: string[]) => lines.join('\r\n');

t.test('Content-Type parsing: quoted boundary, case, spaces', async (t) => {
  t.same(parseContentType('Multipart/Mixed ; boundary="unique-boundary-1" ; charset=x'), {
    type: 'multipart/mixed', params: { boundary: 'unique-boundary-1', charset: 'x' }, raw: 'Multipart/Mixed ; boundary="unique-boundary-1" ; charset=x',
  });
  t.equal(parseContentType('multipart/mixed;boundary="a;b=c"').params.boundary, 'a;b=c', 'semicolon inside quotes');
  t.equal(parseContentType(undefined).type, '');
});

t.test('plain application/sdp and no body', async (t) => {
  t.same(sdpFromBody('application/sdp', SDP), { sdp: SDP, container: 'application/sdp', others: [] });
  t.same(sdpFromBody('Application/SDP; charset=utf-8', SDP)?.sdp, SDP);
  t.equal(sdpFromBody('application/sdp', ''), null, 'no body: an offerless INVITE');
  t.equal(sdpFromBody(undefined, '  \r\n'), null);
  t.same(sdpFromBody(undefined, SDP)?.sdp, SDP, 'a body without Content-Type is taken as SDP (as before)');
});

t.test('SIP-I: multipart/mixed with SDP and ISUP, preamble and epilogue', async (t) => {
  const body = crlf([
    'This is a preamble; it is ignored.',
    '--unique-boundary-1',
    'Content-Type: application/sdp',
    '',
    SDP.replace(/\r\n$/, ''),
    '--unique-boundary-1',
    'Content-Type: application/ISUP; version=itu-t92+',
    'Content-Disposition: signal; handling=optional',
    'Content-Transfer-Encoding: binary',
    '',
    ISUP,
    '--unique-boundary-1--',
    'epilogue, ignored too',
  ]);
  const r = sdpFromBody('multipart/mixed;boundary=unique-boundary-1', body)!;
  t.equal(r.sdp, SDP.replace(/\r\n$/, ''), 'the SDP part, without the CRLF that belongs to the delimiter');
  t.equal(r.container, 'multipart/mixed');
  t.same(r.others, [{ type: 'application/isup', contentType: 'application/ISUP; version=itu-t92+', bytes: Buffer.byteLength(ISUP), disposition: 'signal; handling=optional' }]);
});

t.test('quoted boundary with RFC 2046 specials, transport padding, ISUP first', async (t) => {
  const b = "=_Part 0.(1)+x'y,z:?";
  const body = crlf([
    `--${b}   `, // transport padding after the delimiter
    'Content-Type: application/ISUP;version=nxv3;base=etsi121',
    '',
    'IAM',
    `--${b}`,
    'content-type: application/sdp',
    '',
    SDP,
    `--${b}--`,
  ]);
  const r = sdpFromBody(`multipart/mixed; boundary="${b}"`, body)!;
  t.equal(r.sdp, SDP, 'SDP part found after the ISUP part');
  t.same(r.others.map((p) => p.type), ['application/isup']);
});

t.test('LF-only line ends and a boundary that occurs inside a line are tolerated', async (t) => {
  const body = ['--b1', 'Content-Type: application/sdp', '', 'v=0', 'a=tool:--b1 inside a line', '--b1--', ''].join('\n');
  t.equal(sdpFromBody('multipart/mixed; boundary=b1', body)!.sdp, 'v=0\na=tool:--b1 inside a line');
  const looksLike = ['--b1', 'Content-Type: application/sdp', '', 'v=0', '--b1x', '--b1--'].join('\r\n');
  t.equal(sdpFromBody('multipart/mixed; boundary=b1', looksLike)!.sdp, 'v=0\r\n--b1x', '--b1x is no delimiter');
});

t.test('multipart/alternative: the last (preferred) SDP part', async (t) => {
  const body = crlf(['--alt', 'Content-Type: application/sdp', '', 'v=0 first', '--alt', 'Content-Type: application/sdp', '', 'v=0 second', '--alt', 'Content-Type: text/plain', '', 'hello', '--alt--']);
  const r = sdpFromBody('multipart/alternative; boundary=alt', body)!;
  t.equal(r.sdp, 'v=0 second');
  t.same(r.others.map((p) => p.type), ['application/sdp', 'text/plain'], 'the unused alternatives are listed');
});

t.test('nested multipart and base64 SDP', async (t) => {
  const inner = crlf(['--in', 'Content-Type: application/sdp', 'Content-Transfer-Encoding: base64', '', Buffer.from(SDP).toString('base64'), '--in--']);
  const body = crlf(['--out', 'Content-Type: multipart/alternative; boundary=in', '', inner, '--out', 'Content-Type: application/vnd.example+xml', '', '<x/>', '--out--']);
  const r = sdpFromBody('multipart/mixed; boundary=out', body)!;
  t.equal(r.sdp, SDP);
  t.equal(r.container, 'multipart/alternative');
  t.same(r.others.map((p) => p.type), ['application/vnd.example+xml']);
});

t.test('parts without headers, empty parts', async (t) => {
  const parts = splitMultipart(crlf(['--x', '', 'no headers here', '--x', 'Content-Type: application/sdp', '', '--x--']), 'x');
  t.equal(parts.length, 2);
  t.equal(parts[0]!.headers.size, 0);
  t.equal(parts[0]!.content, 'no headers here');
  t.equal(parts[1]!.content, '');
});

t.test('unsupported and malformed bodies', async (t) => {
  const noSdp = crlf(['--x', 'Content-Type: application/ISUP;version=itu-t', '', 'IAM', '--x--']);
  t.throws(() => sdpFromBody('multipart/mixed; boundary=x', noSdp), { name: 'BodyError', kind: 'unsupported', message: 'multipart/mixed body has no application/sdp part' });
  t.throws(() => sdpFromBody('application/xml', '<x/>'), { kind: 'unsupported', type: 'application/xml', message: 'unsupported body type application/xml' });
  t.throws(() => sdpFromBody('multipart/related; boundary=x', noSdp), { kind: 'unsupported', type: 'multipart/related', message: 'unsupported body type multipart/related' });
  const required = crlf(['--x', 'Content-Type: application/sdp', '', 'v=0', '--x', 'Content-Type: application/ISUP;version=itu-t', 'Content-Disposition: signal;handling=required', '', 'IAM', '--x--']);
  t.throws(() => sdpFromBody('multipart/mixed; boundary=x', required), { kind: 'unsupported', type: 'application/isup', message: /handling=required/ });
  t.throws(() => sdpFromBody('multipart/mixed', noSdp), { kind: 'malformed', message: 'malformed multipart/mixed body: no boundary parameter' });
  t.throws(() => sdpFromBody('multipart/mixed; boundary=y', noSdp), { kind: 'malformed', message: 'malformed multipart/mixed body: boundary "y" not found' });
  t.throws(() => sdpFromBody('multipart/mixed; boundary=x', '--x\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n'), { kind: 'malformed', message: /no closing boundary/ });
  t.ok(new BodyError('malformed', 'x', 'y') instanceof Error);
});
