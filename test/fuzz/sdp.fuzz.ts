/**
 * SDP fuzz target: `node --import tsx test/fuzz/sdp.fuzz.ts [seconds] [seed]`.
 *
 * Mutates seed offers (byte flips, line drops/dups/swaps, splices, token and number
 * substitutions, truncation) and feeds them to parseSdp and negotiate. Contract:
 *  - the only exception either may throw is SdpError;
 *  - a successful negotiation yields an answer that parses again, has as many m= lines as
 *    the offer, and exactly one active (port ≠ 0) m=audio line;
 *  - serializeSdp(parseSdp(x)) parses again to the same model.
 * Anything else is a crash: printed (JSON-escaped input) to stderr. The last stdout line is
 * machine-readable: `{"target":"sdp","execs":N,"crashes":0,"seconds":S,"seed":K}`; the exit
 * code is 1 when there were crashes.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseSdp, serializeSdp, negotiate, SdpError } from '../../src/sdp/index.ts';
import { rng } from './rng.ts';

const SEEDS: string[] = [
  'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n',
  'v=0\r\no=user1 53655765 2353687637 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n',
  'v=0\r\no=- 99 2 IN IP4 192.0.2.1\r\ns=call\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111 0 8 110\r\nc=IN IP4 192.0.2.1\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:110 telephone-event/48000\r\na=sendonly\r\nm=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n',
  'v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\na=inactive\r\nm=audio 7000 RTP/AVPF 18 0\r\na=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\nm=audio 0 RTP/AVP 0\r\n',
  'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 9 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\r\nm=audio 9000/2 RTP/AVP 0 96\r\na=rtpmap:96 PCMU/8000\r\n',
  'v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=application 9 UDP/BFCP *\nm=audio 6000 RTP/AVP 18\n',
];

const TOKENS = ['0', '8', '18', '96', '101', '111', '127', '128', '255', '-1', '65535', '65536', '99999999999999999999',
  'PCMU/8000', 'pcma/8000', 'opus/48000/2', 'telephone-event/8000', 'G729/8000', 'IN', 'IP4', 'IP6', '0.0.0.0', '::',
  'RTP/AVP', 'RTP/SAVP', 'sendonly', 'recvonly', 'inactive', 'a=', 'm=', 'c=', '/', ':', ' ', '', '\t', '\r', '\n', '\u0000',
  'é', '\u{1F600}', 'a=rtpmap:', 'a=fmtp:', 'm=audio', 'c=IN IP4', 'v=0', 'o=- 1 1 IN IP4 1.1.1.1', 'x'.repeat(300)];

function mutate(input: string, r: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const rounds = 1 + Math.floor(r() * 4);
  let s = input;
  for (let i = 0; i < rounds; i++) {
    const lines = s.split(/\r\n|\n/);
    const li = Math.floor(r() * lines.length);
    switch (Math.floor(r() * 11)) {
      case 0: { // flip a byte
        if (s.length === 0) break;
        const p = Math.floor(r() * s.length);
        s = s.slice(0, p) + String.fromCharCode(Math.floor(r() * 128)) + s.slice(p + 1);
        break;
      }
      case 1: lines.splice(li, 1); s = lines.join('\r\n'); break;
      case 2: lines.splice(li, 0, lines[li] ?? ''); s = lines.join('\r\n'); break;
      case 3: { const lj = Math.floor(r() * lines.length); [lines[li], lines[lj]] = [lines[lj]!, lines[li]!]; s = lines.join('\r\n'); break; }
      case 4: { // replace a space-separated field with a token
        const f = (lines[li] ?? '').split(' ');
        f[Math.floor(r() * f.length)] = pick(TOKENS);
        lines[li] = f.join(' ');
        s = lines.join('\r\n');
        break;
      }
      case 5: { // numbers → other numbers
        s = s.replace(/\d+/g, (m) => (r() < 0.2 ? pick(['0', '-1', '65536', '4294967296', '1e9', '007', '']) : m));
        break;
      }
      case 6: s = s.slice(0, Math.floor(r() * s.length)); break;
      case 7: { // splice a line from another seed
        const other = pick(SEEDS).split('\r\n');
        lines.splice(li, 0, pick(other));
        s = lines.join('\r\n');
        break;
      }
      case 8: lines.splice(li, 0, pick(['a=', 'm=', 'c=', 'a=rtpmap:', 'a=fmtp:']) + pick(TOKENS) + ' ' + pick(TOKENS)); s = lines.join('\r\n'); break;
      case 9: s = s.replace(/\r\n/g, r() < 0.5 ? '\n' : '\r'); break;
      default: { // insert a token at a random position
        const p = Math.floor(r() * (s.length + 1));
        s = s.slice(0, p) + pick(TOKENS) + s.slice(p);
      }
    }
  }
  return s;
}

interface Crash { input: string; error: string }

function check(input: string, crashes: Crash[]): void {
  const fail = (error: string): void => {
    if (crashes.length < 20) process.stderr.write(`CRASH ${error}\n  input=${JSON.stringify(input)}\n`);
    crashes.push({ input, error });
  };
  try {
    const sd = parseSdp(input);
    const again = parseSdp(serializeSdp(sd));
    if (!isDeepStrictEqual(again, sd)) fail('serialize/parse round trip changed the model');
  } catch (e) {
    if (!(e instanceof SdpError)) return fail(`parseSdp threw ${(e as Error)?.stack ?? String(e)}`);
  }
  for (const opus of [false, true]) {
    try {
      const n = negotiate(input, { local: { address: '127.0.0.1', port: 40000 }, capabilities: { opus } });
      const ans = parseSdp(n.sdp);
      const offer = parseSdp(input);
      if (ans.media.length !== offer.media.length) fail('answer m= line count differs from offer');
      const active = ans.media.filter((m) => m.port !== 0);
      if (active.length !== 1 || active[0]!.type.toLowerCase() !== 'audio') fail('answer must have exactly one active audio line');
      if (!['PCMU', 'PCMA', 'opus'].includes(n.audio.codec) || (n.audio.codec === 'opus' && !opus)) fail(`bad codec ${n.audio.codec}`);
    } catch (e) {
      if (!(e instanceof SdpError)) return fail(`negotiate threw ${(e as Error)?.stack ?? String(e)}`);
    }
  }
}

const seconds = Number(process.argv[2] ?? '10');
const seed = Number(process.argv[3] ?? process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const r = rng(seed);
const crashes: Crash[] = [];
const deadline = Date.now() + seconds * 1000;
let execs = 0;
for (const s of SEEDS) { check(s, crashes); execs++; }
while (Date.now() < deadline) {
  for (let i = 0; i < 200; i++) {
    const base = r() < 0.9 ? SEEDS[Math.floor(r() * SEEDS.length)]! : mutate(SEEDS[Math.floor(r() * SEEDS.length)]!, r);
    check(mutate(base, r), crashes);
    execs++;
  }
}
process.stdout.write(JSON.stringify({ target: 'sdp', execs, crashes: crashes.length, seconds, seed }) + '\n');
process.exitCode = crashes.length > 0 ? 1 : 0;
