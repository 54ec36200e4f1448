/**
 * What carriers and PBXs really send, against a freshly started server (built-in edge):
 * caller identity and dialed number in the forms trunks use (tel: URIs, %-escaped users,
 * user=phone, P-Asserted-Identity, Privacy); SIP-I multipart bodies (SDP + ISUP); re-INVITE
 * codec change, o= version rules and 488 (the glare flows need to make our side send a
 * re-INVITE and run in-process: sipp-glare.test.ts).
 */
import t from 'tap';
import { runSipp, sippMessage, sippSuite } from '../helpers/sipp.ts';

const suite = sippSuite(t, 'trunk flows', { LOG_LEVEL: 'info' });
if (suite) {
  const { target } = suite;
  const identityCall = (keys: { ruri: string; from: string; to: string; h1?: string; h2?: string }) => runSipp('uac-carrier-identity', {
    target: target(), durationMs: 2500, timeoutSec: 25,
    args: ['-key', 'ruri', keys.ruri, '-key', 'from', keys.from, '-key', 'to', keys.to,
      '-key', 'h1', keys.h1 ?? 'X-None: 1', '-key', 'h2', keys.h2 ?? 'X-None: 2'],
  });
  /** Server log since `from`, once the CDR of the call that ended last is written. */
  const logSince = async (from: number): Promise<string> => {
    for (let i = 0; i < 50 && !/msg="?cdr/.test(suite.server.log().slice(from)); i++) await new Promise((r) => setTimeout(r, 100));
    return suite.server.log().slice(from);
  };

  t.test('tel: Request-URI and From → tenant of +1-800-555-0111, caller identified by the CRM', async (t) => {
    const before = suite.server.log().length;
    const r = await identityCall({ ruri: 'tel:+1-800-555-0111', from: 'tel:+1-415-555-0142', to: 'tel:+1-800-555-0111' });
    t.equal(r.code, 0, sippMessage(r));
    const log = await logSince(before);
    t.match(log, /msg="?call start"?[^\n]*from="?\+14155550142[^\n]*to="?\+18005550111[^\n]*tenant="?northwind-status/, 'tenant by the tel: Request-URI, numbers in E.164');
    t.match(log, /caller identified by number[^\n]*account="?ACC-10042/, 'From: <tel:…> identified by the CRM');
  });

  t.test('%-escaped sip: Request-URI with user=phone → its tenant; PAI + Privacy: id → anonymous in logs, identified', async (t) => {
    const before = suite.server.log().length;
    const r = await identityCall({
      ruri: `sip:%2B18005550111@127.0.0.1:${suite.server.sipPort};user=phone`, from: 'sip:anonymous@anonymous.invalid', to: 'sip:%2B18005550111@127.0.0.1;user=phone',
      h1: 'P-Asserted-Identity: <sip:+14155550142@carrier.example;user=phone>', h2: 'Privacy: id',
    });
    t.equal(r.code, 0, sippMessage(r));
    const log = await logSince(before);
    t.match(log, /msg="?call start"?[^\n]*from="?anonymous[^\n]*tenant="?northwind-status/, 'tenant by the escaped Request-URI');
    t.match(log, /caller identified by number[^\n]*account="?ACC-10042/, 'the network-asserted number still reaches the CRM');
    t.notMatch(log, /4155550142/, 'the withheld number is in no log line');
  });

  for (const transport of ['udp', 'tcp'] as const) {
    t.test(`${transport}: SIP-I INVITE (multipart/mixed: SDP + binary ISUP) → 200 with our SDP, audio both ways`, async (t) => {
      const before = suite.server.log().length;
      const r = await runSipp('uac-sipi-multipart', { target: target(), transport, durationMs: 2500, timeoutSec: 25 });
      t.equal(r.code, 0, sippMessage(r));
      t.match(r.log, /answer application\/sdp m=audio \d+ RTP\/AVP 0\b/, '200 carries our SDP (application/sdp, PCMU)');
      const log = await logSince(before);
      t.match(log, /msg="?call start"?[^\n]*body="?multipart\/mixed \(\+application\/isup\)/, 'the ISUP part is recorded');
      const cdr = /msg="?cdr"?[^\n]*packetsIn=(\d+) packetsOut=(\d+)/.exec(log);
      t.ok(cdr, 'CDR written');
      t.ok(Number(cdr?.[1]) > 0, `caller audio reached us (packetsIn=${cdr?.[1]})`);
      t.ok(Number(cdr?.[2]) > 0, `our audio went out (packetsOut=${cdr?.[2]})`);
    });
  }

  t.test('re-INVITE: PCMU → PCMA switches the media codec; same o= version changes nothing; G.729 only → 488, call goes on', async (t) => {
    const before = suite.server.log().length;
    const r = await runSipp('uac-reinvite-codec', { target: target(), durationMs: 1500, timeoutSec: 30 });
    t.equal(r.code, 0, sippMessage(r));
    t.match(r.log, /v_initial=1\b/, 'our first answer: o= version 1');
    t.match(r.log, /v_pcma=2 m_pcma=m=audio \d+ RTP\/AVP 8\b/, 'codec change: answered PCMA, version 2');
    t.match(r.log, /v_refresh=2 m_refresh=m=audio \d+ RTP\/AVP 8\b/, 'refresh with the same o= version: same answer, version stays 2');
    t.match(r.log, /g729=488/, 'no acceptable codec → 488');
    const log = await logSince(before);
    t.match(log, /media codec switched[^\n]*from="?PCMU\/0"?[^\n]*to="?PCMA\/8/, 'the media session switched codec');
    t.match(log, /re-INVITE rejected: 488[^\n]*codec="?PCMA/, '488 logged; the call stays on PCMA');
    const cdr = /msg="?cdr"?[^\n]*/.exec(log)?.[0] ?? '';
    t.match(cdr, /codec="?PCMA/, 'the CDR shows the codec the call ended on');
    t.match(cdr, /reason="?caller-bye/, 'the caller hung up normally after the 488');
  });
}
