/**
 * What carriers and PBXs send, as SIPp flows against a freshly started server (built-in
 * edge): session timers (RFC 4028: refreshes by the caller, by us, missing refresh → BYE,
 * 422), UPDATE (RFC 3311), reliable provisionals (RFC 3262: 100rel/PRACK) and early media
 * (183 with SDP). The first server runs with a short session-timer minimum (SESSION_MIN_SE=2,
 * so intervals of a few seconds are accepted) and rings 300 ms before answering; the second
 * has early media on for one trunk (the test callers' address).
 */
import t from 'tap';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';

if (!haveSipp()) {
  requireTool(t, 'SIPp session timer, 100rel and early media flows', false, 'sipp', 'sip-tester');
} else {
  let server: ServerHandle;
  t.before(async () => {
    server = await startServer({ LOG_LEVEL: 'info', SESSION_MIN_SE: '2', SESSION_EXPIRES: '1800', ANSWER_DELAY_MS: '300' });
  });
  t.teardown(async () => {
    await server?.stop();
  });
  const target = (): string => `127.0.0.1:${server.sipPort}`;
  /** The CDR line of the SIPp call (its Call-ID ends with the SIPp pid/host part). */
  const cdrOf = async (re: RegExp): Promise<string> => server.waitForLog(re, 5000);

  t.test('session timer, caller refreshes: UPDATE without SDP, re-INVITE, UPDATE with SDP keep a 6 s session up for 9 s', async (t) => {
    const r = await runSipp('uac-session-timer', { target: target(), timeoutSec: 30 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /answer_se=6;refresher=uac require=timer/, '200 names the caller as refresher and requires timer');
    t.match(r.log, /update_se=6;refresher=uac/, 'UPDATE refresh answered with Session-Expires');
    t.match(r.log, /reinvite_se=6;refresher=uac/, 're-INVITE refresh answered with Session-Expires');
    t.match(r.log, /update_sdp=a=recvonly/, 'UPDATE with an offer gets an SDP answer');
  });

  t.test('session timer, caller stops refreshing: BYE with a Reason after 4 s, CDR reason session-expired', async (t) => {
    const r = await runSipp('uac-session-timer-expire', { target: target(), timeoutSec: 20 });
    t.equal(r.code, 0, sippMessage(r));
    t.notMatch(r.log, /bye_too_early/, 'no BYE before 3 s');
    t.match(r.log, /bye_reason=session timer/, 'BYE carries a Reason naming the session timer');
    t.ok(await cdrOf(/msg=cdr[^\n]*reason=session-expired/), 'CDR says session-expired');
  });

  t.test('session timer, we refresh: UPDATE refused 501 → re-INVITE with our SDP, every half interval', async (t) => {
    const r = await runSipp('uac-session-timer-uas', { target: target(), timeoutSec: 30 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /answer_se=4;refresher=uas/, '200 makes us the refresher');
    t.match(r.log, /update_se=4;refresher=uac/, 'first refresh: UPDATE');
    t.equal((r.log.match(/reinvite_se=4;refresher=uac reinvite_offer=m=audio/g) ?? []).length, 2, 'then re-INVITEs offering our SDP');
  });

  t.test('session timer: Session-Expires below our Min-SE → 422 with Min-SE, the retry is answered', async (t) => {
    const r = await runSipp('uac-session-timer-422', { target: target(), timeoutSec: 20 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /min_se=2\b/, '422 carries our Min-SE (2 s on this server)');
    t.match(r.log, /answer_se=2;refresher=uac/, 'the retry with Session-Expires: 2 is answered');
    t.match(server.log(), /rejecting INVITE: 422/, 'the 422 is logged');
  });

  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`100rel over ${transport}: the caller requires it; the 180 comes with RSeq, PRACK → 200, then the 200 to the INVITE`, async (t) => {
      const r = await runSipp('uac-100rel', { target: target(), transport, timeoutSec: 20 });
      t.equal(r.code, 0, sippMessage(r));
      t.match(r.log, /rseq=\d+ require=100rel/, 'reliable 180');
      t.match(r.log, /prack_ok[\s\S]*final_sdp=m=audio \d+ RTP\/AVP 0/, 'PRACK answered, then the call answered');
    });
  }

  t.test('early media (per trunk): 183 with our SDP, reliable (PRACK) when the caller supports 100rel, unreliable otherwise; the 200 repeats the SDP', async (t) => {
    const em = await startServer({
      LOG_LEVEL: 'info', TRUNKS: '[{name: lab, sources: [127.0.0.1/32], earlyMedia: true}]', ANSWER_DELAY_MS: '300',
    });
    t.teardown(() => em.stop());
    const r = await runSipp('uac-early-media', { target: `127.0.0.1:${em.sipPort}`, timeoutSec: 20 });
    t.equal(r.code, 0, sippMessage(r));
    const early = /early_sdp=(m=audio \d+ RTP\/AVP \d+) rseq=(\d+) require=100rel/.exec(r.log);
    t.ok(early, '183 with SDP, RSeq and Require: 100rel');
    t.match(r.log, /prack_ok/, 'PRACK answered');
    t.equal(/final_sdp=(m=audio \d+ RTP\/AVP \d+)/.exec(r.log)?.[1], early?.[1], 'the 200 carries the same media line');
    t.match(em.log(), /early media: 183 with our SDP[^\n]*reliable=true/, 'logged');

    const u = await runSipp('uac-early-media-unreliable', { target: `127.0.0.1:${em.sipPort}`, timeoutSec: 20 });
    t.equal(u.code, 0, sippMessage(u));
    t.match(u.log, /early_sdp=m=audio \d+ RTP\/AVP 0 rseq=(\s|$)/m, 'unreliable 183: no RSeq');
    t.match(u.log, /final_sdp=m=audio/, 'answered without a PRACK');
  });
}
