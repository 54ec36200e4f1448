// RTP header validation (native parser, the same code the fuzz target runs).
import t from 'tap';
import { native } from '../../src/media/native.ts';

function pkt(opts: { v?: number; p?: boolean; x?: boolean; cc?: number; m?: boolean; pt?: number; ext?: number[]; payload?: number[]; pad?: number; raw?: number[] } = {}): Uint8Array {
  const b: number[] = [];
  b.push(((opts.v ?? 2) << 6) | (opts.p ? 0x20 : 0) | (opts.x ? 0x10 : 0) | (opts.cc ?? 0));
  b.push((opts.m ? 0x80 : 0) | (opts.pt ?? 0));
  b.push(0x12, 0x34, 0, 0, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef);
  for (let i = 0; i < (opts.cc ?? 0) * 4; i++) b.push(i);
  if (opts.ext) b.push(...opts.ext);
  b.push(...(opts.payload ?? []));
  if (opts.pad !== undefined) { for (let i = 1; i < opts.pad; i++) b.push(0); b.push(opts.pad); }
  b.push(...(opts.raw ?? []));
  return Uint8Array.from(b);
}

t.test('valid packets', async (t) => {
  const r = native.parseRtp(pkt({ m: true, pt: 8, payload: [1, 2, 3] }));
  t.same(r, { marker: true, payloadType: 8, seq: 0x1234, timestamp: 800, ssrc: 0xdeadbeef, csrcCount: 0, payloadOffset: 12, payloadLength: 3 });
  const full = native.parseRtp(pkt({ cc: 2, x: true, ext: [0xbe, 0xde, 0, 1, 9, 9, 9, 9], p: true, pad: 4, payload: [7, 7] }));
  t.match(full, { csrcCount: 2, payloadOffset: 12 + 8 + 8, payloadLength: 2 }, 'CSRCs, extension and padding skipped');
  t.match(native.parseRtp(pkt()), { payloadLength: 0 }, 'empty payload is valid');
});

t.test('garbage is rejected with a reason', async (t) => {
  t.equal(native.parseRtp(new Uint8Array(0)), 'too-short');
  t.equal(native.parseRtp(new Uint8Array(11).fill(0x80)), 'too-short');
  t.equal(native.parseRtp(pkt({ v: 1 })), 'bad-version');
  t.equal(native.parseRtp(pkt({ v: 0 })), 'bad-version');
  t.equal(native.parseRtp(pkt({ cc: 15 }).subarray(0, 20)), 'too-short', 'CSRC list past the end');
  t.equal(native.parseRtp(pkt({ x: true, ext: [0, 0] })), 'bad-extension', 'truncated extension header');
  t.equal(native.parseRtp(pkt({ x: true, ext: [0, 0, 0, 5, 1, 2, 3, 4] })), 'bad-extension', 'extension length past the end');
  t.equal(native.parseRtp(pkt({ p: true, payload: [1, 2], raw: [0] })), 'bad-padding', 'zero padding count');
  t.equal(native.parseRtp(pkt({ p: true, payload: [1, 2], raw: [9] })), 'bad-padding', 'padding larger than payload');
  t.equal(native.parseRtp(pkt({ m: true, pt: 72, payload: [0, 0, 0, 0] })), 'rtcp', 'RTCP SR multiplexed on the RTP port');
  t.equal(native.parseRtp(Uint8Array.from(Buffer.from('INVITE sip:x SIP/2.0\r\n'))), 'bad-version');
});
