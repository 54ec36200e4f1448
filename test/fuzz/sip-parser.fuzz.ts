/**
 * Mutation fuzzer for the SIP parser.
 *
 *   node --import tsx test/fuzz/sip-parser.fuzz.ts [seconds=10] [seed]
 *
 * Mutates a seed corpus of valid SIP messages (byte flips, truncation, insertion of
 * random bytes and SIP-significant tokens, header duplication/removal/swap, folding,
 * invalid UTF-8, splices of two messages) and checks that:
 *  - parseSipMessage only ever returns a SipMessage or throws SipParseError;
 *  - a parsed message serializes, and its own serialization parses again;
 *  - parseVia / parseNameAddr / parseUri on the parsed values throw only SipParseError.
 * Any other outcome prints the input as hex and exits 1. The last line printed is JSON:
 *   {"target":"sip-parser","execs":N,"crashes":0,"seconds":S,"seed":X}
 */
import { setLogLevel } from '../../src/ops/log.ts';
import { parseSipMessage, parseVia, parseNameAddr, parseUri, SipParseError } from '../../src/sip-edge/message.ts';

setLogLevel('silent');

const seconds = Number(process.argv[2] ?? 10);
const seed0 = Number(process.argv[3] ?? (Date.now() % 0x7fffffff)) >>> 0 || 1;

const SDP = 'v=0\r\no=- 123 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n';
const CRLF = '\r\n';
const msg = (lines: string[], body = ''): Buffer =>
  Buffer.from(lines.join(CRLF) + CRLF + `Content-Length: ${Buffer.byteLength(body)}` + CRLF + CRLF + body, 'utf8');

const SEEDS: Buffer[] = [
  msg([
    'INVITE sip:+4930123456@agent.example.com;user=phone SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport',
    'Via: SIP/2.0/TCP [2001:db8::5]:5070;branch=z9hG4bKproxy;received=2001:db8::5',
    'Max-Forwards: 70',
    'From: "Zoë Müller" <sip:+4917012345@carrier.example.net>;tag=1928301774',
    'To: <sip:+4930123456@agent.example.com>',
    'Call-ID: a84b4c76e66710@pc33.carrier.example.net',
    'CSeq: 314159 INVITE',
    'Contact: <sip:+4917012345@192.0.2.10:5060;transport=udp>',
    'Record-Route: <sip:proxy.example.net;lr>, <sip:edge.example.net;lr>',
    'Supported: timer, 100rel, replaces',
    'Session-Expires: 1800;refresher=uac',
    'Content-Type: application/sdp',
  ], SDP),
  msg([
    'SIP/2.0 200 OK',
    'Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10',
    'From: "Zoë Müller" <sip:+4917012345@carrier.example.net>;tag=1928301774',
    'To: <sip:+4930123456@agent.example.com>;tag=a6c85cf',
    'Call-ID: a84b4c76e66710@pc33.carrier.example.net',
    'CSeq: 314159 INVITE',
    'Contact: <sip:agent@198.51.100.2:5080>',
    'Content-Type: application/sdp',
  ], SDP),
  msg([
    'BYE sip:agent@198.51.100.2:5080 SIP/2.0',
    'v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKbye1',
    'Max-Forwards: 70',
    'f: <sip:+4917012345@carrier.example.net>;tag=1928301774',
    't: <sip:+4930123456@agent.example.com>;tag=a6c85cf',
    'i: a84b4c76e66710@pc33.carrier.example.net',
    'CSeq: 314160 BYE',
    'Reason: Q.850;cause=16;text="Normal call clearing"',
  ]),
  msg([
    'CANCEL sip:agent@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKcan',
    'Max-Forwards: 70',
    'From: Alice <sip:alice@example.com>;tag=x',
    'To: sip:agent@example.com',
    'Call-ID: cancel-1',
    'CSeq: 1 CANCEL',
  ]),
  msg([
    'SIP/2.0 401 Unauthorized',
    'Via: SIP/2.0/TCP client.example.com:5061;branch=z9hG4bKreg',
    'From: <sip:bob@example.com>;tag=reg1',
    'To: <sip:bob@example.com>;tag=srv',
    'Call-ID: reg-1',
    'CSeq: 2 REGISTER',
    'WWW-Authenticate: Digest realm="example.com", qop="auth,auth-int",',
    '  nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="", algorithm=MD5',
  ]),
  msg([
    'REFER sip:agent@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKref',
    'Max-Forwards: 70',
    'From: <sip:a@example.com>;tag=1',
    'To: <sip:agent@example.com>;tag=2',
    'Call-ID: refer-1',
    'CSeq: 5 REFER',
    'r: <sip:sales@example.com?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>',
    'b: <sip:a@example.com>',
    'X-UUID: 1234-5678',
  ]),
  Buffer.from([
    'NOTIFY sip:agent@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKnot',
    'From: <sip:a@example.com>;tag=1',
    'To: <sip:agent@example.com>;tag=2',
    'Call-ID: notify-1',
    'CSeq: 6 NOTIFY',
    'Event: refer',
    'Subscription-State: active;expires=60',
    'Content-Type: message/sipfrag',
    '', 'SIP/2.0 200 OK\r\n',
  ].join(CRLF)),
];

const TOKENS = [
  '\r\n', '\r\n\r\n', '\r\n ', '\n', '\r', ' ', '\t', ':', ';', ',', '"', '\\', '<', '>', '@', '[', ']',
  '=', '/', '?', '&', '%', '\0', 'SIP/2.0', 'SIP/2.0 ', 'z9hG4bK', ';branch=', ';rport', ';tag=',
  'Content-Length: ', 'Content-Length: 99999', 'l: 5', 'CSeq: ', 'Via: ', 'v: SIP/2.0/UDP ',
  'Call-ID: ', 'From: ', 'To: ', '4294967296', '-1', '65536', '999', '0', 'INVITE', 'ACK',
  'sip:', 'sips:', 'tel:', '[::1]', ':5060', 'ë', '💥', '\ufeff', '\xff\xfe',
];

let state = seed0;
function rnd(n: number): number {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state % n;
}
const pick = <T>(a: T[]): T => a[rnd(a.length)];

function lines(b: Buffer): string[] {
  return b.toString('latin1').split('\r\n');
}
const fromLines = (ls: string[]): Buffer => Buffer.from(ls.join('\r\n'), 'latin1');

function mutate(input: Buffer): Buffer {
  let b = input;
  const rounds = 1 + rnd(4);
  for (let r = 0; r < rounds; r++) {
    const len = b.length;
    switch (rnd(12)) {
      case 0: { // bit/byte flips
        b = Buffer.from(b);
        for (let i = 0, n = 1 + rnd(4); i < n && len; i++) b[rnd(len)] ^= 1 << rnd(8);
        break;
      }
      case 1: { // random byte overwrite
        b = Buffer.from(b);
        for (let i = 0, n = 1 + rnd(8); i < n && len; i++) b[rnd(len)] = rnd(256);
        break;
      }
      case 2: // truncation
        b = b.subarray(0, rnd(len + 1));
        break;
      case 3: { // insert a token
        const at = rnd(len + 1);
        b = Buffer.concat([b.subarray(0, at), Buffer.from(pick(TOKENS), 'utf8'), b.subarray(at)]);
        break;
      }
      case 4: { // insert random bytes
        const at = rnd(len + 1);
        const ins = Buffer.alloc(1 + rnd(16));
        for (let i = 0; i < ins.length; i++) ins[i] = rnd(256);
        b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
        break;
      }
      case 5: { // delete a range
        const at = rnd(len + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(len, at + 1 + rnd(20)))]);
        break;
      }
      case 6: { // duplicate a header line
        const ls = lines(b);
        const i = rnd(ls.length);
        ls.splice(rnd(ls.length + 1), 0, ls[i]);
        b = fromLines(ls);
        break;
      }
      case 7: { // remove a line
        const ls = lines(b);
        ls.splice(rnd(ls.length), 1);
        b = fromLines(ls);
        break;
      }
      case 8: { // swap two lines
        const ls = lines(b);
        const i = rnd(ls.length);
        const j = rnd(ls.length);
        [ls[i], ls[j]] = [ls[j], ls[i]];
        b = fromLines(ls);
        break;
      }
      case 9: { // splice with another seed
        const o = pick(SEEDS);
        b = Buffer.concat([b.subarray(0, rnd(len + 1)), o.subarray(rnd(o.length + 1))]);
        break;
      }
      case 10: { // fold a line (turn a space into CRLF + SP/HT)
        const s = b.toString('latin1');
        const i = s.indexOf(' ', rnd(s.length + 1));
        if (i >= 0) b = Buffer.from(s.slice(0, i) + (rnd(2) ? '\r\n ' : '\r\n\t') + s.slice(i + 1), 'latin1');
        break;
      }
      default: { // change a number
        const s = b.toString('latin1');
        const nums = [...s.matchAll(/\d+/g)];
        if (nums.length) {
          const m = pick(nums);
          const rep = pick(['0', '-1', '4294967296', '99999999999999999999', '1e3', ' ', '', String(rnd(100000))]);
          b = Buffer.from(s.slice(0, m.index) + rep + s.slice(m.index! + m[0].length), 'latin1');
        }
      }
    }
  }
  return b;
}

/** Run one input; returns an error description for anything but a clean result or SipParseError. */
function check(input: Buffer): string | undefined {
  const only = (fn: () => unknown, what: string): string | undefined => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof SipParseError)) return `${what}: ${(e as Error)?.stack ?? String(e)}`;
    }
    return undefined;
  };
  let parsed;
  try {
    parsed = parseSipMessage(input);
  } catch (e) {
    if (e instanceof SipParseError) {
      if (typeof e.message !== 'string' || !e.message) return 'SipParseError without a reason';
      return undefined;
    }
    return `parseSipMessage threw ${(e as Error)?.stack ?? String(e)}`;
  }
  let wire: Buffer;
  try {
    wire = parsed.toBuffer();
    parsed.toString();
    void parsed.cseq;
    void parsed.fromTag;
    void parsed.toTag;
  } catch (e) {
    return `serialization threw ${(e as Error)?.stack ?? String(e)}`;
  }
  try {
    parseSipMessage(wire);
  } catch (e) {
    return `re-parse of own serialization failed: ${(e as Error)?.message}\n--- serialized:\n${wire.toString('latin1')}`;
  }
  for (const v of parsed.getAll('Via')) {
    const r = only(() => parseVia(v), 'parseVia');
    if (r) return r;
  }
  for (const n of ['From', 'To', 'Contact', 'Record-Route', 'Route', 'Refer-To']) {
    for (const v of parsed.getAll(n)) {
      const r = only(() => parseNameAddr(v), `parseNameAddr(${n})`);
      if (r) return r;
    }
  }
  if (parsed.uri) {
    const r = only(() => parseUri(parsed.uri!), 'parseUri');
    if (r) return r;
  }
  return undefined;
}

const deadline = Date.now() + seconds * 1000;
let execs = 0;
let crashes = 0;
// Seeds must parse cleanly.
for (const s of SEEDS) {
  const r = check(s);
  execs++;
  try {
    parseSipMessage(s);
  } catch (e) {
    console.error(`seed does not parse: ${(e as Error).message}`);
    crashes++;
  }
  if (r) crashes++;
}
const corpus = [...SEEDS];
outer: while (crashes === 0) {
  for (let k = 0; k < 256; k++) {
    const input = mutate(pick(corpus));
    execs++;
    const r = check(input);
    if (r) {
      crashes++;
      console.error(`CRASH (seed ${seed0}, exec ${execs}): ${r}`);
      console.error(`input hex: ${input.toString('hex')}`);
      break outer;
    }
    // Keep some parseable mutants as new seeds (bounded), to go deeper.
    if (corpus.length < 500 && rnd(64) === 0) {
      try {
        parseSipMessage(input);
        corpus.push(input);
      } catch {
        /* not kept */
      }
    }
  }
  if (Date.now() >= deadline) break;
}
console.log(JSON.stringify({ target: 'sip-parser', execs, crashes, seconds, seed: seed0, corpus: corpus.length }));
process.exit(crashes ? 1 : 0);
