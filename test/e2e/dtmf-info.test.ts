/**
 * DTMF by SIP INFO against a freshly started server (built-in edge): SIPp places a call
 * that offers no telephone-event and keys "12345#" as in-dialog INFOs
 * (sip-config/sipp/uac-info-dtmf.xml: both `application/dtmf-relay` and `application/dtmf`
 * bodies, a non-DTMF INFO and an empty one). Outside-visible effect:
 * every INFO is answered (200; 415 with Accept for the XML one) and the conversation
 * takes exactly one "12345" as a keyed turn (`msg="caller keyed" digits=12345`, logged by the
 * dialogue when it records the transcript entry with dtmf:true).
 */
import t from 'tap';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';

/** Overload admission off: a loaded test box must not turn these calls away (503); they test something else. */
const NO_ADMISSION = { ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0' };

if (!haveSipp()) {
  requireTool(t, 'DTMF by SIP INFO', false, 'sipp', 'sip-tester');
} else {
  let server: ServerHandle;
  t.before(async () => {
    server = await startServer({ LOG_LEVEL: 'info', VOICE_MEDIA_RT_PRIORITY: '0', ...NO_ADMISSION }, { rtpPorts: 20 });
  });
  t.teardown(async () => {
    await server?.stop();
  });

  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`${transport}: INFO digits reach the conversation once per press`, async (t) => {
      const mark = server.log().length;
      const r = await runSipp('uac-info-dtmf', { target: `127.0.0.1:${server.sipPort}`, transport, durationMs: 1500, timeoutSec: 30 });
      t.equal(r.code, 0, sippMessage(r));
      t.equal(r.successful, 1, 'every INFO answered as expected (200s, one 415)');
      t.match(r.log, /info415_accept=.*application\/dtmf-relay/, '415 names the DTMF bodies in Accept');
      const keyedRe = /msg="?caller keyed"?[^\n]*? digits=(\S+)/;
      for (let i = 0; i < 50 && !keyedRe.test(server.log().slice(mark)); i++) await new Promise((r) => setTimeout(r, 100));
      const log = server.log().slice(mark);
      const keyed = [...log.matchAll(new RegExp(keyedRe.source, 'g'))].map((m) => m[1]);
      t.same(keyed, ['12345'], 'the dialogue took one keyed turn "12345"');
      t.match(log, /msg="?SIP INFO rejected: 415"? .*contentType=application\/media_control\+xml/, '415 logged with the content type');
      t.notMatch(log, /msg="?SIP INFO rejected: 400/, 'no INFO was malformed');
    });
  }
}
