/**
 * RFC 3261 MUSTs of the built-in SIP edge (several of them the RFC 4475 torture cases):
 * 420 + Unsupported for unknown Require option tags, 416 for unknown Request-URI schemes,
 * 505 for other SIP versions, 400 for `Contact: *` outside REGISTER and for a Request-URI
 * with headers, a To tag on every final response the edge makes, 400 (not silence) for
 * requests missing Call-ID/CSeq/From/To whenever the Via routes a response, and numbers
 * parsed per the ABNF (leading zeros legal, out of range → 400 naming the header,
 * Max-Forwards 0 → 483). Parser-level checks first, then a real edge with drachtio-srf as
 * the app and a raw SIP peer, then the same story told by SIPp.
 */
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { SipPeer, harness, sleep, SDP, APP_SDP } from './sip-edge-helpers.ts';
import { SipEdge, SUPPORTED_OPTION_TAGS } from '../../src/sip-edge/index.ts';
import {
  SipMessage, SipParseError, parseSipMessage, parseDecimal, uriHasHeaders, newBranch,
} from '../../src/sip-edge/message.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';

const isSipFrame = (f: { dir: string; tokens: string[] }): boolean => f.dir === 'edge' && f.tokens[1] === 'sip';

/** A raw request text: CRLF line ends, Content-Length filled in unless given. */
function raw(startLine: string, headers: string[], body = ''): string {
  const hs = headers.some((h) => /^content-length\s*:/i.test(h)) ? headers : [...headers, `Content-Length: ${Buffer.byteLength(body)}`];
  return [startLine, ...hs, '', body].join('\r\n');
}

/** A well-formed request (as raw text) from `peer`, with overrides: `drop` header names, `set` replacements. */
function request(peer: SipPeer, method: string, o: {
  uri?: string; version?: string; callId?: string; branch?: string; cseq?: string;
  drop?: string[]; set?: Record<string, string>; extra?: string[]; body?: string;
} = {}): { text: string; branch: string; callId: string } {
  const branch = o.branch ?? newBranch();
  const callId = o.callId ?? `musts-${randomUUID()}`;
  const base: [string, string][] = [
    ['Via', `SIP/2.0/${peer.transport.toUpperCase()} 127.0.0.1:${peer.port};rport;branch=${branch}`],
    ['Max-Forwards', '70'],
    ['From', `<sip:peer@127.0.0.1:${peer.port}>;tag=${peer.tag}`],
    ['To', `<sip:service@127.0.0.1:${peer.remotePort}>`],
    ['Call-ID', callId],
    ['CSeq', o.cseq ?? `1 ${method}`],
    ['Contact', peer.contact],
  ];
  const lines: string[] = [];
  for (const [n, v] of base) {
    if (o.drop?.includes(n)) continue;
    lines.push(`${n}: ${o.set?.[n] ?? v}`);
  }
  for (const [n, v] of Object.entries(o.set ?? {})) if (!base.some(([b]) => b === n)) lines.push(`${n}: ${v}`);
  lines.push(...(o.extra ?? []));
  if (o.body) lines.push('Content-Type: application/sdp');
  const uri = o.uri ?? `sip:service@127.0.0.1:${peer.remotePort}`;
  return { text: raw(`${method} ${uri} ${o.version ?? 'SIP/2.0'}`, lines, o.body ?? ''), branch, callId };
}

const byBranch = (branch: string) => (m: SipMessage): boolean => !m.isRequest && (m.get('Via') ?? '').includes(branch);

function parseErr(s: string): SipParseError {
  try {
    parseSipMessage(s);
  } catch (e) {
    return e as SipParseError;
  }
  throw new Error('parsed without error');
}

// ───────────────────────────── parser ─────────────────────────────

const INV = (over: Record<string, string> = {}, start = 'INVITE sip:agent@example.net SIP/2.0', body = ''): string => {
  const h: Record<string, string> = {
    Via: 'SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKmusts', 'Max-Forwards': '70', From: '<sip:a@example.com>;tag=1',
    To: '<sip:agent@example.net>', 'Call-ID': 'musts@192.0.2.2', CSeq: `1 ${start.split(' ')[0]}`, ...over,
  };
  return raw(start, Object.entries(h).filter(([, v]) => v !== '').map(([n, v]) => `${n}: ${v}`), body);
};

t.test('parser: numbers per the ABNF — leading zeros legal, out of range names the header', async (t) => {
  t.equal(parseDecimal('0068', 255), 68);
  t.equal(parseDecimal('0', 255), 0);
  t.equal(parseDecimal('0000000000000000000000070', 255), 70, 'many leading zeros');
  t.equal(parseDecimal('256', 255), 'range');
  t.equal(parseDecimal('36893488147419103232', 2 ** 31 - 1), 'range');
  t.equal(parseDecimal('-1', 255), 'syntax');
  t.equal(parseDecimal('1 2', 255), 'syntax');
  t.equal(parseDecimal('', 255), 'syntax');

  // RFC 4475 §3.1.1.1 (wsinv) writes Max-Forwards: 0068 and CSeq: 0009.
  const m = parseSipMessage(INV({ 'Max-Forwards': '0068', CSeq: '0009 INVITE', 'Content-Length': '0004' }, undefined, 'v=0\n'));
  t.equal(Number(m.get('Max-Forwards')), 68);
  t.equal(m.cseq.seq, 9);
  t.equal(m.body.toString(), 'v=0\n');

  const cases: [Record<string, string>, string][] = [
    [{ 'Max-Forwards': '256' }, 'Max-Forwards out of range (0-255): 256'],
    [{ 'Max-Forwards': '300' }, 'Max-Forwards out of range (0-255): 300'],
    [{ CSeq: '2147483648 INVITE' }, 'CSeq number out of range (max 2147483647): "2147483648 INVITE"'],
    [{ CSeq: '36893488147419103232 INVITE' }, 'CSeq number out of range (max 2147483647): "36893488147419103232 INVITE"'],
    [{ 'Content-Length': '9999999999999999999999' }, 'Content-Length out of range (max 4294967295): 9999999999999999999999'],
    [{ Expires: '4294967296' }, 'Expires out of range (max 4294967295): 4294967296'],
    [{ Expires: '10000000000' }, 'Expires out of range (max 4294967295): 10000000000'],
    [{ Expires: 'soon' }, 'bad Expires: "soon"'],
  ];
  for (const [over, reason] of cases) {
    const e = parseErr(INV(over));
    t.equal(e.message, reason, Object.keys(over)[0]);
    t.equal(e.status, 400);
    t.equal(e.partial?.callId, 'musts@192.0.2.2', 'partial kept for the 400');
  }
  t.doesNotThrow(() => parseSipMessage(INV({ CSeq: '2147483647 INVITE', Expires: '4294967295' })), 'largest legal values');
  t.doesNotThrow(() => parseSipMessage(INV({ Expires: '0003600' })), 'Expires with leading zeros');
  // An odd Expires on a response is not a reason to drop the response.
  t.doesNotThrow(() => parseSipMessage(raw('SIP/2.0 200 OK', [
    'Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: r1', 'CSeq: 1 SUBSCRIBE', 'Expires: 99999999999',
  ])));
});

t.test('parser: SIP version → 505 (case-insensitive SIP/2.0 accepted), Contact: * and Request-URI headers → 400', async (t) => {
  const v = parseErr(INV({}, 'OPTIONS sip:t.watson@example.org SIP/7.0'));
  t.equal(v.status, 505);
  t.equal(v.message, 'unsupported SIP version: SIP/7.0');
  t.equal(v.partial?.method, 'OPTIONS');
  t.doesNotThrow(() => parseSipMessage(INV({}, 'OPTIONS sip:t.watson@example.org sip/2.0')), 'SIP-Version is case-insensitive (§7.1)');
  t.doesNotThrow(() => parseSipMessage(raw('sip/2.0 200 OK', [
    'Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bKx', 'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: r1', 'CSeq: 1 OPTIONS',
  ])), 'status line too');
  const junk = parseErr(INV({}, 'OPTIONS sip:t.watson@example.org SIP/2.0x'));
  t.equal(junk.status, 400, 'a malformed version is a 400, not a 505');

  const star = parseErr(INV({ Contact: '*' }));
  t.equal(star.message, 'Contact: * is only allowed in REGISTER, not in INVITE');
  t.equal(star.status, 400);
  t.equal(parseErr(INV({ Contact: '<sip:a@192.0.2.2>, *' }, 'OPTIONS sip:agent@example.net SIP/2.0')).message,
    'Contact: * is only allowed in REGISTER, not in OPTIONS');
  t.doesNotThrow(() => parseSipMessage(INV({ Contact: '*', Expires: '0' }, 'REGISTER sip:example.net SIP/2.0')), 'REGISTER may say Contact: *');

  t.equal(parseErr(INV({}, 'INVITE sip:agent@example.net?Subject=hi SIP/2.0')).message,
    'Request-URI must not carry headers: "sip:agent@example.net?Subject=hi"');
  t.equal(parseErr(INV({}, 'INVITE sip:example.net;transport=tcp?Route=%3Csip:x%3E SIP/2.0')).status, 400);
  t.equal(parseErr(INV({}, 'INVITE tel:+15555550100?x=y SIP/2.0')).status, 400);
  t.doesNotThrow(() => parseSipMessage(INV({}, 'INVITE sip:we?ird@example.net SIP/2.0')), '"?" in the user part is legal (user-unreserved)');
  t.doesNotThrow(() => parseSipMessage(INV({}, 'OPTIONS nobodyknowsthisscheme:totallyopaquecontent SIP/2.0')), 'unknown schemes are the UA core\'s 416');

  t.ok(uriHasHeaders('sip:a@b?c=d'));
  t.ok(uriHasHeaders('<sips:b?c=d>'));
  t.notOk(uriHasHeaders('sip:a?b@c'));
  t.notOk(uriHasHeaders('sip:a@b;x=y'));
  t.ok(uriHasHeaders('tel:+1?x'));
});

// ───────────────────────────── edge ─────────────────────────────

/** Edge + srf app. INVITE: `X-Test: answer` → createUAS, `ring` → 180, otherwise 486. */
async function setup(t: Test) {
  const seen: string[] = [];
  const h = await harness((srf) => {
    srf.invite(async (req: any, res: any) => {
      seen.push(req.get('Call-ID'));
      const mode = req.get('X-Test');
      req.on('cancel', () => undefined);
      if (mode === 'answer') await srf.createUAS(req, res, { localSdp: APP_SDP });
      else if (mode === 'ring') res.send(180);
      else res.send(486);
    });
  }, { routes: 1 });
  t.teardown(h.close);
  const peer = await SipPeer.udp(h.edge.sipPort);
  t.teardown(() => peer.close());
  const appSaw = (callId: string): boolean => seen.includes(callId) || h.proxy.frames.some((f) => isSipFrame(f) && (f.sip ?? '').includes(callId));
  return { h, peer, appSaw };
}

/** Common checks of an edge-generated error response. */
function checkGenerated(t: Test, r: SipMessage, status: number, warning: RegExp | null, what: string): void {
  t.equal(r.status, status, `${what}: ${status}`);
  t.ok(r.reason && r.reason.length > 0, `${what}: reason phrase "${r.reason}"`);
  t.ok(r.toTag, `${what}: To tag`);
  if (warning) t.match(r.get('Warning') ?? '', warning, `${what}: Warning says why`);
}

t.test('420 Bad Extension: unknown Require option tags (replaces included; timer is known) → 420 + Unsupported, never to the app', async (t) => {
  t.ok(SUPPORTED_OPTION_TAGS.has('timer'), 'timer (RFC 4028) is implemented');
  t.notOk(SUPPORTED_OPTION_TAGS.has('replaces'), 'replaces is not implemented');
  const { h, peer, appSaw } = await setup(t);

  const inv = request(peer, 'INVITE', { body: SDP, extra: ['Require: replaces, timer', 'Require: nothingSupportsThis'] });
  peer.send(inv.text);
  const r = await peer.next(byBranch(inv.branch));
  checkGenerated(t, r, 420, /^399 127\.0\.0\.1 "unsupported option tag\(s\) in Require: replaces, nothingSupportsThis"$/, 'INVITE');
  t.equal(r.reason, 'Bad Extension');
  t.equal(r.get('Unsupported'), 'replaces, nothingSupportsThis', 'Unsupported lists every unknown tag, not the known timer');
  // The 420 is a non-2xx final to an INVITE: the ACK (with Require, ignored) gets nothing back.
  peer.send(peer.ack(parseSipMessage(inv.text), r).toString().replace('Max-Forwards: 70', 'Max-Forwards: 70\r\nRequire: nothingSupportsThis'));
  t.ok(await peer.none((m) => m.callId === inv.callId && m.status !== 420, 300), 'no response to the ACK');

  const opt = request(peer, 'OPTIONS', { extra: ['Require: nothingSupportsThis, nothingSupportsThisEither'] });
  peer.send(opt.text);
  const ro = await peer.next(byBranch(opt.branch));
  checkGenerated(t, ro, 420, /nothingSupportsThisEither/, 'OPTIONS');
  t.equal(ro.get('Unsupported'), 'nothingSupportsThis, nothingSupportsThisEither');
  t.notOk(appSaw(inv.callId), 'the app never saw the INVITE');

  // CANCEL: its Require is ignored (§8.2.2.3).
  const ring = peer.request('INVITE', { callId: `ring-${randomUUID()}`, body: SDP, headers: [['X-Test', 'ring']] });
  peer.send(ring);
  await peer.next((m) => m.status === 180 && m.callId === ring.callId);
  const cancel = SipMessage.request('CANCEL', ring.uri!);
  for (const n of ['Via', 'From', 'To', 'Call-ID', 'Max-Forwards']) cancel.add(n, ring.get(n)!);
  cancel.add('CSeq', '1 CANCEL');
  cancel.add('Require', 'nothingSupportsThis');
  peer.send(cancel);
  const c200 = await peer.next((m) => m.cseq.method === 'CANCEL' && m.callId === ring.callId);
  t.equal(c200.status, 200, 'CANCEL with Require: still 200');
  const r487 = await peer.next((m) => m.status === 487 && m.callId === ring.callId);
  peer.send(peer.ack(ring, r487));

  // In a dialog: an INFO requiring an unknown extension gets 420, the call goes on.
  const call = peer.request('INVITE', { callId: `dlg-${randomUUID()}`, body: SDP, headers: [['X-Test', 'answer']] });
  peer.send(call);
  const ok = await peer.next((m) => m.status === 200 && m.callId === call.callId);
  peer.send(peer.ack(call, ok));
  const info = peer.request('INFO', { callId: call.callId, cseq: 2, toTag: ok.toTag, headers: [['Require', 'replaces']] });
  peer.send(info);
  const ri = await peer.next((m) => m.callId === call.callId && m.cseq.method === 'INFO');
  t.equal(ri.status, 420, 'in-dialog INFO with Require: replaces → 420');
  t.equal(ri.get('Unsupported'), 'replaces');
  t.equal(ri.toTag, ok.toTag, 'in-dialog: the dialog\'s To tag');
  t.equal(h.edge.dialogCount, 1, 'dialog still up');
  const bye = peer.request('BYE', { callId: call.callId, cseq: 3, toTag: ok.toTag });
  peer.send(bye);
  t.equal((await peer.next((m) => m.callId === call.callId && m.cseq.method === 'BYE')).status, 200);
});

t.test('416 Unsupported URI Scheme for Request-URIs other than sip/sips/tel; tel is accepted, sips only over TLS', async (t) => {
  const { peer, appSaw } = await setup(t);
  const o = request(peer, 'OPTIONS', { uri: 'nobodyknowsthisscheme:totallyopaquecontent' });
  peer.send(o.text);
  checkGenerated(t, await peer.next(byBranch(o.branch)), 416, /^399 127\.0\.0\.1 "Request-URI scheme 'nobodyknowsthisscheme' not supported/, 'OPTIONS unknown scheme');

  const inv = request(peer, 'INVITE', { uri: 'soap.beep://192.0.2.103:3002', body: SDP });
  peer.send(inv.text);
  const ri = await peer.next(byBranch(inv.branch));
  checkGenerated(t, ri, 416, /soap\.beep/, 'INVITE soap.beep');
  t.equal(ri.reason, 'Unsupported URI Scheme');
  peer.send(peer.ack(parseSipMessage(inv.text), ri));
  t.notOk(appSaw(inv.callId), 'the app never saw it');

  const tel = request(peer, 'INVITE', { uri: 'tel:+15555550100', body: SDP });
  peer.send(tel.text);
  const rt = await peer.next((m) => m.callId === tel.callId && (m.status ?? 0) >= 200);
  t.equal(rt.status, 486, 'tel: reaches the app (which says busy)');
  t.ok(appSaw(tel.callId));
  peer.send(peer.ack(parseSipMessage(tel.text), rt));

  // sips: is a known scheme (no 416), but RFC 5630: it is only served over TLS (test/unit/sip-edge-tls.test.ts)
  const sips = request(peer, 'OPTIONS', { uri: `sips:service@127.0.0.1:${peer.remotePort}` });
  peer.send(sips.text);
  const rs = await peer.next(byBranch(sips.branch));
  t.equal(rs.status, 480, 'sips: OPTIONS over UDP answered 480');
  t.equal(rs.get('Warning'), '381 127.0.0.1 "SIPS Required"');
});

t.test('505 Version Not Supported for request lines other than SIP/2.0', async (t) => {
  const { peer, appSaw } = await setup(t);
  for (const [method, version] of [['OPTIONS', 'SIP/7.0'], ['INVITE', 'SIP/3.0'], ['OPTIONS', 'SIP/1.0']] as const) {
    const q = request(peer, method, { version });
    peer.send(q.text);
    const r = await peer.next(byBranch(q.branch));
    checkGenerated(t, r, 505, new RegExp(`^399 127\\.0\\.0\\.1 "unsupported SIP version: ${version.replace('.', '\\.')}"$`), `${method} ${version}`);
    t.equal(r.reason, `Version Not Supported - unsupported SIP version: ${version}`);
    t.notOk(appSaw(q.callId));
  }
  const lower = request(peer, 'OPTIONS', { version: 'sip/2.0' });
  peer.send(lower.text);
  t.equal((await peer.next(byBranch(lower.branch))).status, 200, 'sip/2.0 (lower case) is SIP/2.0');
});

t.test('400 for Contact: * outside REGISTER and for a Request-URI carrying headers', async (t) => {
  const { peer, appSaw } = await setup(t);
  const inv = request(peer, 'INVITE', { set: { Contact: '*' }, body: SDP });
  peer.send(inv.text);
  const r = await peer.next(byBranch(inv.branch));
  checkGenerated(t, r, 400, /Contact: \* is only allowed in REGISTER/, 'INVITE Contact: *');
  t.equal(r.reason, 'Bad Request - Contact: * is only allowed in REGISTER, not in INVITE');
  t.notOk(appSaw(inv.callId));

  const hdr = request(peer, 'OPTIONS', { uri: `sip:service@127.0.0.1:${peer.remotePort}?Subject=hello&Priority=urgent` });
  peer.send(hdr.text);
  const rh = await peer.next(byBranch(hdr.branch));
  checkGenerated(t, rh, 400, /Request-URI must not carry headers/, 'Request-URI with headers');

  const reg = request(peer, 'REGISTER', { uri: `sip:127.0.0.1:${peer.remotePort}`, set: { Contact: '*', Expires: '0' } });
  peer.send(reg.text);
  const rr = await peer.next(byBranch(reg.branch));
  t.equal(rr.status, 405, 'REGISTER with Contact: * is well-formed (405: no registrar here)');
  t.ok(rr.toTag);

  const user = request(peer, 'OPTIONS', { uri: `sip:we?ird@127.0.0.1:${peer.remotePort}` });
  peer.send(user.text);
  t.equal((await peer.next(byBranch(user.branch))).status, 200, '"?" in the user part is not a header');
});

t.test('400, not silence, for requests missing Call-ID/CSeq/From/To when the Via routes a response', async (t) => {
  const { h, peer } = await setup(t);
  for (const missing of ['Call-ID', 'CSeq', 'From', 'To']) {
    for (const method of ['OPTIONS', 'INVITE']) {
      const q = request(peer, method, { drop: [missing], body: method === 'INVITE' ? SDP : '' });
      peer.send(q.text);
      const r = await peer.next(byBranch(q.branch), 3000, `400 for ${method} without ${missing}`);
      t.equal(r.status, 400, `${method} without ${missing}: 400`);
      t.equal(r.reason, `Bad Request - missing ${missing} header`);
      t.match(r.get('Warning') ?? '', new RegExp(`^399 127\\.0\\.0\\.1 "missing ${missing} header"$`));
      t.notOk(r.has(missing), `nothing made up for ${missing}`);
      if (missing !== 'To') t.ok(r.toTag, 'To tag on the 400');
    }
  }
  // No Via: the response cannot be routed → silence. ACKs are never answered.
  const noVia = request(peer, 'OPTIONS', { drop: ['Via'] });
  peer.send(noVia.text);
  t.ok(await peer.none((m) => m.callId === noVia.callId, 300), 'no Via: silence');
  const badVia = request(peer, 'OPTIONS', { set: { Via: 'garbage' } });
  peer.send(badVia.text);
  t.ok(await peer.none((m) => m.callId === badVia.callId, 300), 'unparseable Via over UDP: silence');
  const ack = request(peer, 'ACK', { drop: ['Call-ID'] });
  peer.send(ack.text);
  t.ok(await peer.none(byBranch(ack.branch), 300), 'ACK without Call-ID: silence');

  // Over TCP the connection is the route, even for an unparseable Via.
  const tcp = await SipPeer.tcp(h.edge.sipPort);
  t.teardown(() => tcp.close());
  const tv = request(tcp, 'OPTIONS', { set: { Via: 'garbage' } });
  tcp.send(tv.text);
  const rt = await tcp.next((m) => m.callId === tv.callId);
  t.equal(rt.status, 400, 'TCP, unparseable Via: 400 on the connection');
  t.match(rt.reason!, /^Bad Request - bad Via/);
  t.ok(rt.toTag);
});

t.test('Max-Forwards, CSeq, Content-Length, Expires: leading zeros accepted, out of range → 400 naming the header, Max-Forwards 0 → 483', async (t) => {
  const { h, peer, appSaw } = await setup(t);
  // RFC 4475 wsinv: Max-Forwards: 0068, CSeq: 0009.
  const inv = request(peer, 'INVITE', { set: { 'Max-Forwards': '0068' }, cseq: '0009 INVITE', body: SDP });
  peer.send(inv.text);
  const r = await peer.next((m) => m.callId === inv.callId && (m.status ?? 0) >= 200);
  t.equal(r.status, 486, 'Max-Forwards: 0068 accepted, the app answered');
  t.equal(r.get('CSeq'), '0009 INVITE', 'CSeq echoed as received');
  t.ok(appSaw(inv.callId));
  peer.send(peer.ack(parseSipMessage(inv.text), r));

  for (const mf of ['0', '000']) {
    const z = request(peer, 'INVITE', { set: { 'Max-Forwards': mf }, body: SDP });
    peer.send(z.text);
    const rz = await peer.next(byBranch(z.branch));
    checkGenerated(t, rz, 483, /Max-Forwards reached 0/, `INVITE Max-Forwards: ${mf}`);
    t.equal(rz.reason, 'Too Many Hops');
    peer.send(peer.ack(parseSipMessage(z.text), rz));
    t.notOk(appSaw(z.callId));
  }
  const zo = request(peer, 'OPTIONS', { set: { 'Max-Forwards': '0' } });
  peer.send(zo.text);
  t.equal((await peer.next(byBranch(zo.branch))).status, 200, 'OPTIONS with Max-Forwards: 0 is answered');

  const bad: [Record<string, string>, string | undefined, RegExp][] = [
    [{ 'Max-Forwards': '256' }, undefined, /^Bad Request - Max-Forwards out of range \(0-255\): 256$/],
    [{}, '2147483648 OPTIONS', /^Bad Request - CSeq number out of range/],
    [{ 'Content-Length': '99999999999999999999' }, undefined, /^Bad Request - Content-Length out of range/],
    [{ Expires: '4294967296' }, undefined, /^Bad Request - Expires out of range \(max 4294967295\): 4294967296$/],
  ];
  for (const [set, cseq, reason] of bad) {
    const q = request(peer, 'OPTIONS', { set, cseq });
    peer.send(q.text);
    const rq = await peer.next(byBranch(q.branch));
    checkGenerated(t, rq, 400, /out of range/, Object.keys(set)[0] ?? 'CSeq');
    t.match(rq.reason!, reason);
  }
  for (const exp of ['4294967295', '0003600']) {
    const q = request(peer, 'OPTIONS', { set: { Expires: exp } });
    peer.send(q.text);
    t.equal((await peer.next(byBranch(q.branch))).status, 200, `Expires: ${exp} accepted`);
  }

  // TCP framing reads Content-Length per the ABNF too.
  const tcp = await SipPeer.tcp(h.edge.sipPort);
  t.teardown(() => tcp.close());
  const z = request(tcp, 'OPTIONS', { set: { 'Content-Length': '0000' } });
  tcp.send(z.text);
  t.equal((await tcp.next((m) => m.callId === z.callId)).status, 200, 'TCP: Content-Length: 0000');
  const huge = request(tcp, 'OPTIONS', { set: { 'Content-Length': '99999999999999999999' } });
  tcp.send(huge.text);
  const rh = await tcp.next((m) => m.callId === huge.callId);
  t.equal(rh.status, 400);
  t.match(rh.reason!, /^Bad Request - Content-Length out of range/);
  t.ok(rh.toTag);
});

t.test('SIPp: the MUSTs scenario against a bare edge', { skip: requireTool(t, 'SIPp MUSTs scenario', haveSipp(), 'sipp', 'sip-tester') }, async (t) => {
  const edge = new SipEdge({
    sip: { address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'] },
    control: { address: '127.0.0.1', port: 0, secret: 'cymru' },
  });
  await edge.start();
  t.teardown(() => edge.stop());
  for (const transport of ['udp', 'tcp'] as const) {
    const r = await runSipp('uac-rfc3261-musts', { target: `127.0.0.1:${edge.sipPort}`, transport, timeoutSec: 20 });
    t.equal(r.code, 0, sippMessage(r, `uac-rfc3261-musts over ${transport}`));
    t.match(r.log, /420 unsupported=nothingSupportsThis, nothingSupportsThisEither/, 'logged the Unsupported header');
  }
  await sleep(50);
  t.equal(edge.dialogCount, 0);
});
