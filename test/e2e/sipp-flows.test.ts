/**
 * SIPp call flows against a freshly started server (built-in edge), UDP and TCP:
 * answered call with media, CANCEL, OPTIONS, malformed INVITE, PCMA-only, G.729-only.
 */
import t from 'tap';
import { startServer } from '../helpers/server.ts';
import { runSipp, sippMessage, sippSuite } from '../helpers/sipp.ts';

const suite = sippSuite(t, 'SIPp call flows', { LOG_LEVEL: 'info' });
if (suite) {
  const { target } = suite;

  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`${transport}: INVITE → 200 → ACK → audio → BYE (PCMU)`, async (t) => {
      const r = await runSipp('uac-pcmu', { target: target(), transport, durationMs: 3000, timeoutSec: 20 });
      t.equal(r.code, 0, sippMessage(r));
      t.equal(r.successful, 1, 'one successful call');
      t.match(r.log, /RTP\/AVP 0/, 'answer selected PCMU');
    });

    t.test(`${transport}: OPTIONS → 200`, async (t) => {
      const r = await runSipp('uac-options', { target: target(), transport, timeoutSec: 10 });
      t.equal(r.code, 0, sippMessage(r));
    });
  }

  t.test('CANCEL before answer → 200 (CANCEL) + 487', async (t) => {
    // A server that rings for 3 s before answering, so the CANCEL always wins.
    const ringing = await startServer({ LOG_LEVEL: 'info', ANSWER_DELAY_MS: '3000' });
    t.teardown(() => ringing.stop());
    const r = await runSipp('uac-cancel', { target: `127.0.0.1:${ringing.sipPort}`, timeoutSec: 15 });
    t.equal(r.code, 0, sippMessage(r));
    const outcome = /outcome=(\S+)/.exec(r.log)?.[1];
    t.equal(outcome, '487', 'INVITE ended with 487 Request Terminated after the CANCEL');
    const cdr = await ringing.waitForLog(/msg=cdr[^\n]*reason=canceled/, 5000);
    t.ok(cdr, 'CDR line says the call was canceled');
  });

  t.test('malformed INVITE (bad CSeq) → 400 with a reason', async (t) => {
    const r = await runSipp('uac-malformed', { target: target(), timeoutSec: 10 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /SIP\/2\.0 400 \S+/, 'status line logged');
  });

  t.test('PCMA-only offer → 200 with PCMA', async (t) => {
    const r = await runSipp('uac-pcma', { target: target(), durationMs: 2000, timeoutSec: 15 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /RTP\/AVP 8/, 'answer selected PCMA');
  });

  t.test('G.729-only offer → 488 with Reason', async (t) => {
    const r = await runSipp('uac-g729', { target: target(), timeoutSec: 10 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /488 Reason: \S+/, 'Reason header present');
    t.match(suite.server.log(), /488|codec|no common/i, 'server logged the rejection');
  });

  t.test('server still healthy after the flows (OPTIONS)', async (t) => {
    const r = await runSipp('uac-options', { target: target(), timeoutSec: 10 });
    t.equal(r.code, 0, sippMessage(r));
  });
}
