/**
 * What carriers and PBXs really send, against a freshly started server (built-in edge):
 * caller identity and dialed number in the forms trunks use (tel: URIs, %-escaped users,
 * user=phone, P-Asserted-Identity, Privacy); SIP-I multipart bodies (SDP + ISUP).
 */
import t from 'tap';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';

if (!haveSipp()) {
  t.test('trunk flows', { skip: 'sipp not on PATH (Debian package sip-tester)' }, () => {});
} else {
  let server: ServerHandle;
  t.before(async () => {
    server = await startServer({ LOG_LEVEL: 'info' });
  });
  t.teardown(async () => {
    await server?.stop();
  });
  const target = (): string => `127.0.0.1:${server.sipPort}`;
  const identityCall = (keys: { ruri: string; from: string; to: string; h1?: string; h2?: string }) => runSipp('uac-carrier-identity', {
    target: target(), durationMs: 2500, timeoutSec: 25,
    args: ['-key', 'ruri', keys.ruri, '-key', 'from', keys.from, '-key', 'to', keys.to,
      '-key', 'h1', keys.h1 ?? 'X-None: 1', '-key', 'h2', keys.h2 ?? 'X-None: 2'],
  });
  /** Server log since `from`, once the CDR of the call that ended last is written. */
  const logSince = async (from: number): Promise<string> => {
    for (let i = 0; i < 50 && !/msg="?cdr/.test(server.log().slice(from)); i++) await new Promise((r) => setTimeout(r, 100));
    return server.log().slice(from);
  };

  t.test('tel: Request-URI and From → tenant of +1-800-555-0111, caller identified by the CRM', async (t) => {
    const before = server.log().length;
    const r = await identityCall({ ruri: 'tel:+1-800-555-0111', from: 'tel:+1-415-555-0142', to: 'tel:+1-800-555-0111' });
    t.equal(r.code, 0, sippMessage(r));
    const log = await logSince(before);
    t.match(log, /msg="?call start"?[^\n]*from="?\+14155550142[^\n]*to="?\+18005550111[^\n]*tenant="?northwind-status/, 'tenant by the tel: Request-URI, numbers in E.164');
    t.match(log, /caller identified by number[^\n]*account="?ACC-10042/, 'From: <tel:…> identified by the CRM');
  });

  t.test('%-escaped sip: Request-URI with user=phone → its tenant; PAI + Privacy: id → anonymous in logs, identified', async (t) => {
    const before = server.log().length;
    const r = await identityCall({
      ruri: `sip:%2B18005550111@127.0.0.1:${server.sipPort};user=phone`, from: 'sip:anonymous@anonymous.invalid', to: 'sip:%2B18005550111@127.0.0.1;user=phone',
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
      const before = server.log().length;
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
}
