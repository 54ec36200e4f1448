/**
 * re-INVITE glare against SIPp (RFC 3261 §14): the app and the built-in edge run in-process
 * (the test makes our side re-INVITE the caller, offering PCMA only, as soon as the call is
 * up) with the real media core; SIPp is the caller (sip-config/sipp/uac-glare.xml).
 * Both directions: SIPp's re-INVITE crossing ours gets 491 from us; ours gets 491 from SIPp
 * and is retried after the §14.1 wait; SIPp's later re-INVITE is answered on the codec our
 * retried offer settled.
 */
import t from 'tap';
import { SipEdge } from '../../src/sip-edge/index.ts';
import { VoiceApp } from '../../src/sip/app.ts';
import { MediaEngine } from '../../src/media/index.ts';
import { defaultConfig, type Config } from '../../src/config.ts';
import { parseTenants } from '../../src/tenants/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import type { Call } from '../../src/call/call.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { RANGES, freePortBlock } from '../helpers/ports.ts';
import { requireTool } from '../helpers/require.ts';

setLogLevel(process.env.TEST_LOG === '1' ? 'debug' : 'silent');

if (!haveSipp()) {
  requireTool(t, 're-INVITE glare', false, 'sipp', 'sip-tester');
} else {
  t.test('glare both ways: 491 to the crossing re-INVITE, ours retried after the wait, then PCMA', async (t) => {
    const rtp = await freePortBlock(RANGES.rtp, 20);
    const engine = MediaEngine.create({ bindAddress: '127.0.0.1', portMin: rtp.min, portMax: rtp.max });
    t.teardown(() => engine.close());
    const edge = new SipEdge({ sip: { address: '127.0.0.1', port: 0, transports: ['udp', 'tcp'] }, control: { address: '127.0.0.1', port: 0, secret: 'cymru' } });
    await edge.start();
    t.teardown(() => edge.stop());
    const config: Config = { ...defaultConfig(), rtpTimeoutSeconds: 0 };
    config.drachtio = { host: '127.0.0.1', port: edge.controlPort, secret: 'cymru' };
    config.sip = { ...config.sip, port: edge.sipPort };
    const tenants = parseTenants({ tenants: [{ id: 'acme', name: 'Acme', default: true, greeting: 'Hello.' }] }, 'test.yaml');
    const app = new VoiceApp({ config, tenants, engine, synthesize: async () => new Int16Array(1600) });
    await app.connect();
    t.teardown(() => app.shutdown(1000));

    let call: Call | undefined;
    let outcome: Promise<number> | undefined;
    const switches: string[] = [];
    app.on('call', (c: Call) => {
      call = c;
      c.on('reinvite', (a: { codec: string }) => switches.push(a.codec));
      // our re-INVITE goes out once the caller's ACK is in (reoffer waits for it)
      c.once('answered', () => { outcome = c.reoffer({ codecs: ['PCMA'] }); });
    });

    for (const transport of ['udp', 'tcp'] as const) {
      switches.length = 0;
      const r = await runSipp('uac-glare', { target: `127.0.0.1:${edge.sipPort}`, transport, durationMs: 1000, timeoutSec: 30 });
      t.equal(r.code, 0, sippMessage(r, `${transport}: SIPp glare scenario succeeded`));
      t.match(r.log, /their_offer=m=audio \d+ RTP\/AVP 8 101/, `${transport}: our re-INVITE offers PCMA only`);
      t.match(r.log, /crossed=491/, `${transport}: SIPp's re-INVITE crossing ours got 491`);
      t.match(r.log, /retry_offer=m=audio \d+ RTP\/AVP 8 /, `${transport}: ours, refused with 491, came again with a fresh offer`);
      t.match(r.log, /ours_again=m=audio \d+ RTP\/AVP 8/, `${transport}: SIPp's later re-INVITE answered on PCMA`);
      t.equal(await outcome, 200, `${transport}: reoffer() resolved with the 200 of the retry`);
      t.equal(call?.audio.codec, 'PCMA', `${transport}: the call runs on PCMA`);
      t.same(switches.slice(0, 1), ['PCMA'], `${transport}: the answer to our retried offer was applied`);
      await call?.ended;
    }
  });
}
