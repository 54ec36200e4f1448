import t from 'tap';
import {
  FrameDecoder, encodeFrame, splitPayload, joinPayload, wireTime,
  sipFrame, sentResponseFrame, sentRequestFrame, replyFrame, newId, type WireMeta,
} from '../../src/sip-edge/wire.ts';

const utf8Payload = 'a2f4beb5-0006-4e96-bc25-395347f09d92|sip|x|\r\nSIP/2.0 200 OK\r\nFrom: "Zoë Probe" <sip:a@b>\r\nX-Note: café\r\n\r\n';

t.test('length prefix counts UTF-8 bytes, not characters', async (t) => {
  const f = encodeFrame(utf8Payload);
  const prefix = f.toString('latin1').split('#')[0];
  t.equal(Number(prefix), Buffer.byteLength(utf8Payload, 'utf8'));
  t.not(Number(prefix), utf8Payload.length, 'payload has multi-byte characters');
  const d = new FrameDecoder();
  const out = d.push(f);
  t.equal(out.length, 1);
  t.equal(out[0]!.toString('utf8'), utf8Payload);
});

t.test('several frames in one chunk', async (t) => {
  const frames = ['a|route|invite', 'b|route|options', utf8Payload, 'c|ping'];
  const d = new FrameDecoder();
  const out = d.push(Buffer.concat(frames.map((p) => encodeFrame(p))));
  t.same(out.map((b) => b.toString('utf8')), frames);
  t.equal(d.pending, 0);
});

t.test('frames split at every byte boundary (incl. inside a multi-byte char)', async (t) => {
  const frames = [utf8Payload, 'x|response|y|OK', utf8Payload];
  const all = Buffer.concat(frames.map((p) => encodeFrame(p)));
  for (const step of [1, 2, 3, 7, 50]) {
    const d = new FrameDecoder();
    const got: string[] = [];
    for (let i = 0; i < all.length; i += step) {
      for (const p of d.push(all.subarray(i, i + step))) got.push(p.toString('utf8'));
    }
    t.same(got, frames, `step ${step}`);
  }
});

t.test('garbage length prefix is a framing error', async (t) => {
  t.throws(() => new FrameDecoder().push(Buffer.from('abc#hello')), { name: 'WireFramingError' });
  t.throws(() => new FrameDecoder().push(Buffer.from('0#')), { name: 'WireFramingError' });
  t.throws(() => new FrameDecoder().push(Buffer.from('x'.repeat(40))), { name: 'WireFramingError' });
  t.throws(() => new FrameDecoder(100).push(Buffer.from('500#')), { name: 'WireFramingError' });
});

t.test('payload split into tokens and SIP part', async (t) => {
  const m = splitPayload(Buffer.from('id|sip|txn|\r\nBYE sip:x SIP/2.0\r\n\r\n'));
  t.same(m.tokens, ['id', 'sip', 'txn', '']);
  t.equal(m.sip!.toString(), 'BYE sip:x SIP/2.0\r\n\r\n');
  const n = splitPayload(Buffer.from('id|authenticate|cymru|'));
  t.same(n.tokens, ['id', 'authenticate', 'cymru', '']);
  t.equal(n.sip, undefined);
  t.equal(joinPayload(['a', 'b', '']).toString(), 'a|b|');
  t.equal(joinPayload(['a'], 'X').toString(), 'a\r\nX');
});

t.test('server frames have the reference token layouts', async (t) => {
  const meta: WireMeta = {
    source: 'network', bytes: 519, transport: 'udp', address: '127.0.0.1', port: 5062,
    time: '08:15:21.656228', transactionId: newId(), dialogId: '',
  };
  const sip = Buffer.from('INVITE sip:a@b SIP/2.0\r\n\r\n');
  const count = (b: Buffer): number => splitPayload(b).tokens.length;
  t.equal(count(sipFrame(meta, sip, { address: '127.0.0.1', port: 5090 })), 13, 'sip out-of-dialog = 13');
  t.equal(count(sipFrame(meta, sip)), 11, 'sip in-dialog = 11');
  t.equal(count(sentResponseFrame('m', { ...meta, source: 'application' }, sip)), 15, 'Msg sent: response = 15');
  t.equal(count(sentRequestFrame('m', { ...meta, source: 'application' }, sip)), 13, 'Msg sent: request = 13');
  t.equal(count(replyFrame('m', 'OK')), 4);
  t.equal(count(replyFrame('m', 'OK', 'pong')), 5);
  t.equal(count(replyFrame('m', 'NO', 'incorrect secret')), 5);
  const toks = splitPayload(sentResponseFrame('m', { ...meta, source: 'application' }, sip)).tokens;
  t.equal(toks[13], 'Msg sent:');
  t.equal(toks[14], '');
  t.match(toks[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

t.test('wire time is HH:MM:SS.ffffff', async (t) => {
  t.equal(wireTime(new Date(Date.UTC(2026, 10, 25, 8, 5, 1, 7))), '08:05:01.007000');
  t.match(wireTime(), /^\d{2}:\d{2}:\d{2}\.\d{6}$/);
});
