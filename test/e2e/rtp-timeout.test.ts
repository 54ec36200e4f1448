/**
 * RTP_TIMEOUT_SECONDS=2: a caller that sends no RTP is hung up (BYE) and the call released;
 * a caller that keeps sending RTP is not.
 */
import t from 'tap';
import { placeCall } from '../helpers/caller.ts';
import { udpFree } from '../helpers/ports.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ RTP_TIMEOUT_SECONDS: '2', MAX_CALL_SECONDS: '60' });
});
t.teardown(async () => {
  await server?.stop();
});

t.test('silent caller (no RTP) is hung up after RTP_TIMEOUT_SECONDS', async (t) => {
  const r = await placeCall({ port: server.sipPort, send: 'none', maxCallMs: 10000 });
  t.equal(r.status, 200);
  t.equal(r.hangup, 'server', 'the server hung up');
  t.ok(r.byeAfterAnswerMs !== undefined && r.byeAfterAnswerMs >= 1800 && r.byeAfterAnswerMs <= 4500,
    `BYE ~2 s after answer (${r.byeAfterAnswerMs?.toFixed(0)} ms)`);
  const line = await server.waitForLog(new RegExp(`msg=cdr.*${r.callId}|${r.callId}.*msg=cdr`), 3000).catch(() => '');
  t.match(line, /reason=rtp-timeout/, 'CDR says rtp-timeout');
  if (r.remoteMedia) {
    let free = false;
    for (let i = 0; i < 20 && !free; i++) {
      free = await udpFree(r.remoteMedia.port);
      if (!free) await new Promise((res) => setTimeout(res, 100));
    }
    t.ok(free, 'server RTP port released');
  }
});

t.test('caller sending RTP is not hung up by the RTP timer', async (t) => {
  const r = await placeCall({ port: server.sipPort, send: 'silence', hangupAfterMs: 3500 });
  t.equal(r.status, 200);
  t.equal(r.hangup, 'caller', 'the caller hung up, not the server');
  t.equal(r.byeStatus, 200);
});
