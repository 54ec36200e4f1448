/**
 * MAX_CALL_SECONDS=2: the server hangs up (BYE) a call that lasts too long, and releases it.
 * Also runs SIPp's waiting caller (uac-wait-bye) against the same limit.
 */
import t from 'tap';
import { placeCall } from '../helpers/caller.ts';
import { udpFree } from '../helpers/ports.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';

let server: ServerHandle;
t.before(async () => {
  server = await startServer({ MAX_CALL_SECONDS: '2', RTP_TIMEOUT_SECONDS: '30' });
});
t.teardown(async () => {
  await server?.stop();
});

t.test('server BYEs after MAX_CALL_SECONDS', async (t) => {
  const r = await placeCall({ port: server.sipPort, maxCallMs: 8000 });
  t.equal(r.status, 200);
  t.equal(r.hangup, 'server', 'the server hung up');
  t.ok(r.byeAfterAnswerMs !== undefined && r.byeAfterAnswerMs >= 1800 && r.byeAfterAnswerMs <= 3500,
    `BYE ~2 s after answer (${r.byeAfterAnswerMs?.toFixed(0)} ms)`);
  t.ok(r.serverBye?.get('Reason'), `BYE carries a Reason (${r.serverBye?.get('Reason')})`);
  const line = await server.waitForLog(new RegExp(`msg=cdr.*${r.callId}|${r.callId}.*msg=cdr`), 3000).catch(() => '');
  t.match(line, /reason=max-duration/, 'CDR says max-duration');
  const last = r.packets.at(-1);
  t.ok(!last || r.byeAfterAnswerMs === undefined || last.arrivalMs <= r.packets[0]!.arrivalMs + r.byeAfterAnswerMs + 200, 'no RTP long after the BYE');
  if (r.remoteMedia) {
    let free = false;
    for (let i = 0; i < 20 && !free; i++) {
      free = await udpFree(r.remoteMedia.port);
      if (!free) await new Promise((res) => setTimeout(res, 100));
    }
    t.ok(free, 'server RTP port released');
  }
});

t.test('SIPp caller that never hangs up gets the server BYE', { skip: requireTool(t, 'max call duration', haveSipp(), 'sipp', 'sip-tester') }, async (t) => {
  const r = await runSipp('uac-wait-bye', { target: `127.0.0.1:${server.sipPort}`, timeoutSec: 15 });
  t.equal(r.code, 0, sippMessage(r));
});
