// DTMF by SIP INFO: the body parser, the media/SIP merge (one press = one digit), and a
// Call answering in-dialog INFOs with its digits arriving on a real media session as the
// same 'dtmfStart'/'dtmf' events an RFC 4733 digit produces.
// Port range for this file: 21800-21899.
import t from 'tap';
import dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { dtmfInfoBody } from '../../src/call/dtmf-info.ts';
import { DtmfMerge } from '../../src/media/dtmf-merge.ts';
import { Call } from '../../src/call/call.ts';
import { negotiate } from '../../src/sdp/index.ts';
import { MediaEngine, type DtmfEvent } from '../../src/media/index.ts';
import type { Tenant } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { rtpPacket } from '../../src/cli/rtp.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('INFO bodies', async (t) => {
  t.same(dtmfInfoBody('application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), { kind: 'digit', digit: '5', durationMs: 160 });
  t.same(dtmfInfoBody('Application/DTMF-Relay; charset=utf-8', 'signal= #\nduration=250'), { kind: 'digit', digit: '#', durationMs: 250 }, 'case, spaces, parameters');
  t.same(dtmfInfoBody('application/dtmf-relay', 'Signal=*'), { kind: 'digit', digit: '*', durationMs: 100 }, 'no Duration: 100 ms');
  t.same(dtmfInfoBody('application/dtmf-relay', 'Signal=11\r\nDuration=100'), { kind: 'digit', digit: '#', durationMs: 100 }, 'RFC 4733 event number 11 = #');
  t.same(dtmfInfoBody('application/dtmf-relay', 'Signal=a'), { kind: 'digit', digit: 'A', durationMs: 100 });
  t.same(dtmfInfoBody('application/dtmf', '5'), { kind: 'digit', digit: '5', durationMs: 100 });
  t.same(dtmfInfoBody('application/dtmf', ' 7\r\n'), { kind: 'digit', digit: '7', durationMs: 100 });
  t.same(dtmfInfoBody('application/dtmf', 'Signal=9\r\nDuration=80'), { kind: 'digit', digit: '9', durationMs: 80 }, 'relay format under application/dtmf');
  t.equal(dtmfInfoBody('application/dtmf-relay', 'Signal=16').kind, 'ignored', 'hook flash');
  t.equal(dtmfInfoBody('application/dtmf-relay', 'Signal=X').kind, 'malformed');
  t.equal(dtmfInfoBody('application/dtmf-relay', 'Duration=100').kind, 'malformed');
  t.equal(dtmfInfoBody('application/dtmf', '55').kind, 'malformed');
  t.equal(dtmfInfoBody('application/dtmf', '').kind, 'malformed');
  t.same(dtmfInfoBody(undefined, ''), { kind: 'empty' }, 'keep-alive INFO');
  t.same(dtmfInfoBody('application/media_control+xml', '<media_control/>'), { kind: 'unsupported', contentType: 'application/media_control+xml' });
  t.same(dtmfInfoBody(undefined, 'Signal=5'), { kind: 'unsupported', contentType: '(none)' }, 'a body without a type is not guessed at');
});

t.test('merge: a press signalled in the media and by INFO counts once', async (t) => {
  let now = 0;
  const m = new DtmfMerge(() => now);
  const out: string[] = [];
  const ev = (path: 'media' | 'sip', kind: 'start' | 'end', d: string): void => {
    if ((kind === 'start' ? m.start(path, d) : m.end(path, d))) out.push(`${path}:${kind}:${d}`);
  };
  // INFO first (at key-down), the RFC 4733 event a moment later: the media copy is dropped, end too.
  ev('sip', 'start', '5'); ev('sip', 'end', '5');
  now = 3; ev('media', 'start', '5');
  now = 120; ev('media', 'end', '5');
  // media first: the INFO is dropped
  now = 2000; ev('media', 'start', '7');
  now = 2001; ev('sip', 'start', '7'); ev('sip', 'end', '7');
  now = 2100; ev('media', 'end', '7');
  // the same key twice, one path only: two digits
  now = 4000; ev('sip', 'start', '1'); ev('sip', 'end', '1');
  now = 4200; ev('sip', 'start', '1'); ev('sip', 'end', '1');
  // a different key from the other path is never merged
  now = 4300; ev('media', 'start', '2'); now = 4400; ev('media', 'end', '2');
  // outside the window: a new press
  now = 9000; ev('media', 'start', '5'); now = 9100; ev('media', 'end', '5');
  t.same(out, [
    'sip:start:5', 'sip:end:5',
    'media:start:7', 'media:end:7',
    'sip:start:1', 'sip:end:1', 'sip:start:1', 'sip:end:1',
    'media:start:2', 'media:end:2',
    'media:start:5', 'media:end:5',
  ]);
});

const engine = MediaEngine.create({ portMin: 21800, portMax: 21899 });
t.teardown(() => engine.close());
const tenant = { id: 't', name: 'T', isDefault: true, dids: [], language: 'en-US', greeting: 'Hi', voice: 'kal' } as unknown as Tenant;
const OFFER = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n';

class FakeDialog extends EventEmitter {
  local = { sdp: '' };
  destroy(): Promise<unknown> { return Promise.resolve({}); }
}

interface Sent { status: number; headers?: Record<string, string> }
function info(dialog: FakeDialog, contentType: string | undefined, body: string): Sent[] {
  const sent: Sent[] = [];
  const req = { body, get: (h: string) => (h.toLowerCase() === 'content-type' ? contentType : undefined) };
  dialog.emit('info', req, { send: (status: number, o?: { headers?: Record<string, string> }) => sent.push({ status, ...(o?.headers ? { headers: o.headers } : {}) }) });
  return sent;
}

t.test('Call: INFO digits arrive as the media session\'s dtmf events; other INFOs answered', async (t) => {
  const session = engine.createSession({ codec: 'PCMU', payloadType: 0, telephoneEventPayloadType: 101 });
  const dialog = new FakeDialog();
  const call = new Call({
    callId: 'info-1', from: '100', to: '200', tenant, session,
    negotiation: negotiate(OFFER, { local: { address: '127.0.0.1', port: session.localPort }, origin: { sessionId: '1', sessionVersion: 1 } }),
    advertisedAddress: '127.0.0.1', capabilities: {}, sdpSessionId: '1',
    synthesize: async () => new Int16Array(0),
  });
  call.attachDialog(dialog);
  const ends: DtmfEvent[] = [];
  const starts: string[] = [];
  session.on('dtmf', (e) => ends.push(e));
  session.on('dtmfStart', (e) => starts.push(e.digit));

  t.same(info(dialog, 'application/dtmf-relay', 'Signal=5\r\nDuration=160\r\n'), [{ status: 200 }]);
  t.same(info(dialog, 'application/dtmf', '#'), [{ status: 200 }]);
  t.same(starts, ['5', '#'], 'dtmfStart per press');
  t.same(ends, [{ digit: '5', durationMs: 160 }, { digit: '#', durationMs: 100 }], 'dtmf events: same shape as RFC 4733 ({digit, durationMs})');

  t.same(info(dialog, undefined, ''), [{ status: 200 }], 'empty INFO (keep-alive) → 200');
  const x = info(dialog, 'application/media_control+xml', '<media_control/>');
  t.equal(x[0]?.status, 415, 'XML INFO → 415');
  t.match(x[0]?.headers?.Accept, /application\/dtmf-relay.*application\/dtmf/, '415 carries Accept');
  t.equal(info(dialog, 'application/dtmf-relay', 'Signal=Q')[0]?.status, 400, 'DTMF body without a key → 400');
  t.equal(info(dialog, 'application/dtmf-relay', 'Signal=16')[0]?.status, 200, 'hook flash → 200, no digit');
  t.equal(ends.length, 2, 'no digits from the other INFOs');

  // The same press by RFC 4733 and by INFO (a gateway sending both): one digit.
  const sock = dgram.createSocket('udp4');
  sock.bind(0, '127.0.0.1');
  await once(sock, 'listening');
  const got = once(session, 'dtmf');
  t.same(info(dialog, 'application/dtmf-relay', 'Signal=9\r\nDuration=100'), [{ status: 200 }]);
  // RFC 4733 event 9: 5 packets of a growing duration, then the end three times (one timestamp)
  const ev = (dur: number, end: boolean) => Uint8Array.from([9, (end ? 0x80 : 0) | 10, dur >> 8, dur & 0xff]);
  const pkts = [160, 320, 480, 640, 800].map((d) => ev(d, false)).concat([ev(800, true), ev(800, true), ev(800, true)]);
  for (const [i, p] of pkts.entries()) {
    sock.send(rtpPacket(100 + i, 48000, 0x1234, 101, i === 0, p), session.localPort, '127.0.0.1');
    await sleep(2);
  }
  await got;
  await sleep(200);
  sock.close();
  t.same(ends.map((e) => e.digit), ['5', '#', '9'], 'the press signalled both ways is one digit');
  t.same(starts, ['5', '#', '9']);
  await call.hangup();
  t.equal(dialog.listenerCount('info'), 0, 'INFO listener removed at the end');
});
