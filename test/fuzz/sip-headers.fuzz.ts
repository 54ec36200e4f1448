/**
 * Fuzz target for the header- and body-level parsers behind the SIP parser:
 *
 *   node --import tsx test/fuzz/sip-headers.fuzz.ts [seconds=10] [seed]
 *
 * Mutates seed values (byte flips, truncation, insertion of separators and quotes, splices,
 * repetition, invalid UTF-8) and feeds each to the parser for that kind of value:
 *  - Authorization / Proxy-Authorization (parseDigest): returns credentials or undefined;
 *  - P-Asserted-Identity / Remote-Party-ID / From (splitHeaderList, parseNameAddr, parseUri,
 *    percentDecode, normalizeUriNumber): return values or null, never throw;
 *  - Content-Type and multipart bodies (parseContentType, splitMultipart, sdpFromBody): may
 *    throw only BodyError (or SdpError from the SDP inside);
 *  - a=crypto values (parseCryptoLine): a line or a reason, never a throw;
 *  - SIP INFO DTMF bodies (dtmfInfoBody): a result, never a throw;
 *  - drachtio wire framing (FrameDecoder.push) fed in random chunks: payloads or
 *    WireFramingError only, and the payloads it returns are exactly the framed bytes.
 * Anything else prints the input (JSON-escaped) and counts as a crash. The last line printed
 * is JSON: {"target":"sip-headers","execs":N,"crashes":0,"seconds":S,"seed":K,"perParser":{…}}
 */
import { setLogLevel } from '../../src/ops/log.ts';
import { parseDigest } from '../../src/sip/digest-auth.ts';
import { splitHeaderList, parseNameAddr, parseUri, percentDecode, normalizeUriNumber } from '../../src/sip/identity.ts';
import { parseContentType, splitMultipart, sdpFromBody, BodyError } from '../../src/sdp/body.ts';
import { parseCryptoLine } from '../../src/sdp/crypto.ts';
import { dtmfInfoBody } from '../../src/call/dtmf-info.ts';
import { FrameDecoder, WireFramingError, encodeFrame } from '../../src/sip-edge/wire.ts';
import { SdpError } from '../../src/sdp/index.ts';

setLogLevel('silent');

const seconds = Number(process.argv[2] ?? 10);
const seed0 = Number(process.argv[3] ?? (Date.now() % 0x7fffffff)) >>> 0 || 1;
let state = seed0;
const rnd = (): number => { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return (state >>> 0) / 0x100000000; };
const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n';
const SEEDS: Record<string, string[]> = {
  digest: [
    'Digest username="trunk1", realm="voice.example", nonce="abc123:1733570000:9f", uri="sip:+18005550111@10.0.0.1", response="0123456789abcdef0123456789abcdef", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"',
    'Digest username="a\\"b", realm="r", nonce="n", uri="sip:x", response="r", opaque="o"',
  ],
  identity: [
    '"Caller, Big" <sip:+14155550142@carrier.example;user=phone>;party=calling;privacy=off;screen=yes',
    '<tel:+1-415-555-0142;phone-context=+1>, <sip:%2B14155550142@gw.example>',
    'sip:anonymous@anonymous.invalid;tag=abc',
    '<sips:0049301234567@[2001:db8::1]:5061;transport=tls>',
  ],
  contentType: ['multipart/mixed; boundary="unique-boundary-1"', 'application/sdp', 'multipart/alternative;boundary=xyz;charset=utf-8'],
  multipart: [
    `--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\n${SDP}\r\n--unique-boundary-1\r\nContent-Type: application/ISUP;version=nxv3;base=etsi121\r\nContent-Disposition: signal;handling=optional\r\n\r\n\u0001\u0002\u0003\r\n--unique-boundary-1--\r\n`,
  ],
  crypto: ['1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32', '2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj KDR=4'],
  dtmf: ['Signal=5\r\nDuration=160\r\n', 'Signal= #\r\nDuration= 250', '5'],
  dtmfType: ['application/dtmf-relay', 'application/dtmf', 'audio/telephone-event'],
  wire: ['frame|one|two\r\nINVITE sip:x SIP/2.0', 'response|abc|1|2|\r\nSIP/2.0 200 OK'],
};
const TOKENS = ['"', '\\', '<', '>', ',', ';', '=', ':', '@', '%', '%2', '%zz', '\r\n', '\r\n ', '--', '[', ']', '|', '#', '\u0000', '\uFFFD', '\u00e9', 'inline:', 'boundary=', 'party=', 'user=phone', '+', ' '];

function mutate(s: string): string {
  let x = s;
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * (x.length + 1));
    switch (Math.floor(rnd() * 7)) {
      case 0: x = x.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 256)) + x.slice(at + 1); break;
      case 1: x = x.slice(0, at); break;
      case 2: x = x.slice(0, at) + pick(TOKENS) + x.slice(at); break;
      case 3: x = x.slice(0, at) + x.slice(at + 1 + Math.floor(rnd() * 8)); break;
      case 4: x = x + x.slice(at); break;
      case 5: { const o = pick(Object.values(SEEDS).flat()); x = x.slice(0, at) + o.slice(Math.floor(rnd() * o.length)); break; }
      default: x = x.slice(0, at) + pick(TOKENS).repeat(1 + Math.floor(rnd() * 50)) + x.slice(at);
    }
  }
  return x;
}

const perParser: Record<string, number> = {};
let execs = 0;
let crashes = 0;
function run(kind: string, input: unknown, f: () => void, allowed: Array<new (...a: never[]) => Error> = []): void {
  execs++;
  perParser[kind] = (perParser[kind] ?? 0) + 1;
  try {
    f();
  } catch (e) {
    if (allowed.some((c) => e instanceof c)) return;
    crashes++;
    console.error(`crash in ${kind}: ${(e as Error)?.stack ?? e}\ninput: ${JSON.stringify(input)}`);
  }
}

const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  for (let i = 0; i < 200; i++) {
    const d = mutate(pick(SEEDS.digest!));
    run('digest', d, () => { parseDigest(d); });
    const id = mutate(pick(SEEDS.identity!));
    run('identity', id, () => {
      for (const v of splitHeaderList(id)) {
        const na = parseNameAddr(v);
        const u = parseUri(na?.uri ?? v);
        percentDecode(v);
        if (u) normalizeUriNumber(u, pick(['US', 'DE', 'GB'] as const));
      }
    });
    const ct = mutate(pick(SEEDS.contentType!));
    const body = mutate(pick(SEEDS.multipart!));
    run('body', { ct, body }, () => {
      const c = parseContentType(ct);
      if (c.params?.boundary !== undefined) splitMultipart(body, String(c.params.boundary), c.type);
      sdpFromBody(ct, body);
    }, [BodyError, SdpError]);
    const cr = mutate(pick(SEEDS.crypto!));
    run('crypto', cr, () => { parseCryptoLine(cr); });
    const dt = mutate(pick(SEEDS.dtmf!));
    const dtt = rnd() < 0.8 ? pick(SEEDS.dtmfType!) : mutate(pick(SEEDS.dtmfType!));
    run('dtmf-info', { dt, dtt }, () => { dtmfInfoBody(dtt, dt); });
    // wire framing: valid frames, a mutated one in the middle, random chunking
    const payloads = [mutate(pick(SEEDS.wire!)), pick(SEEDS.wire!)];
    const stream = rnd() < 0.5
      ? Buffer.concat(payloads.map((p) => encodeFrame(p)))
      : Buffer.from(mutate(Buffer.concat(payloads.map((p) => encodeFrame(p))).toString('latin1')), 'latin1');
    run('wire', stream.toString('latin1'), () => {
      const dec = new FrameDecoder(4096);
      const got: Buffer[] = [];
      for (let o = 0; o < stream.length;) {
        const n = 1 + Math.floor(rnd() * 40);
        got.push(...dec.push(stream.subarray(o, o + n)));
        o += n;
      }
      if (stream.equals(Buffer.concat(payloads.map((p) => encodeFrame(p))))) {
        const want = payloads.map((p) => Buffer.from(p));
        if (got.length !== want.length || got.some((g, k) => !g.equals(want[k]!))) throw new Error('valid frames came back different');
      }
    }, [WireFramingError]);
  }
}
console.log(JSON.stringify({ target: 'sip-headers', execs, crashes, seconds, seed: seed0, perParser }));
process.exit(crashes > 0 ? 1 : 0);
