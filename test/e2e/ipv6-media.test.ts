/**
 * IPv6 end to end: SIPp over IPv6 loopback (SIP on [::1]) offers media with `c=IN IP6 ::1`
 * (sip-config/sipp/uac-ipv6-media.xml) for an RTP peer that is this test's own UDP6 socket.
 * - A server with an IPv6 media address (RTP_ADDRESS6=::1) answers 200 with `c=IN IP6 ::1`;
 *   its greeting reaches the peer over IPv6, and the peer's audio (DTMF tones: no
 *   telephone-event was offered) reaches the server, which decodes the keys into a turn.
 * - A server without one answers 488 with a Reason and a `Warning: 301` and logs why —
 *   never a 200 whose audio could not flow.
 */
import t from 'tap';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { dtmfTones } from '../helpers/dtmf-tones.ts';
import { ulawDecode, ulawEncode } from '../helpers/g711.ts';
import { rtpPacket } from '../../src/cli/rtp.ts';
import { requireTool } from '../helpers/require.ts';

/** Overload admission off: a loaded test box must not turn these calls away (503); they test something else. */
const NO_ADMISSION = { ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0' };

async function haveIpv6Loopback(): Promise<boolean> {
  const s = dgram.createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(0, '::1', () => resolve());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

const skip = requireTool(t, 'IPv6 media', haveSipp(), 'sipp', 'sip-tester') || (!(await haveIpv6Loopback()) ? 'no IPv6 loopback (::1) on this host' : false);

t.test('c=IN IP6 offer with an IPv6 media address: 200 with c=IN IP6, audio both ways', { skip }, async (t) => {
  const server: ServerHandle = await startServer({ SIP_ADDRESS: '::1', RTP_ADDRESS6: '::1', VOICE_MEDIA_RT_PRIORITY: '0', ...NO_ADMISSION }, { rtpPorts: 20 });
  t.teardown(() => server.stop());
  const mark = server.log().length;

  // The caller's RTP endpoint: a UDP6 socket. Symmetric RTP: it answers to where the
  // server's packets come from, so it needs nothing from the SDP answer.
  const peer = dgram.createSocket('udp6');
  peer.bind(0, '::1');
  await once(peer, 'listening');
  const tones = dtmfTones('2580#', { leadMs: 600, toneMs: 100, gapMs: 100 });
  const frames: Buffer[] = [];
  for (let i = 0; i + 160 <= tones.length; i += 160) frames.push(Buffer.from(ulawEncode(tones.subarray(i, i + 160))));
  let from: { address: string; port: number } | null = null;
  let received = 0;
  let voiced = 0;
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  peer.on('message', (msg, rinfo) => {
    if (msg.length < 12 + 160 || (msg[1]! & 0x7f) !== 0) return;
    received++;
    const pcm = ulawDecode(msg.subarray(12, 12 + 160));
    let e = 0;
    for (const v of pcm) e += v * v;
    if (Math.sqrt(e / pcm.length) > 300) voiced++;
    if (!from) {
      from = { address: rinfo.address, port: rinfo.port };
      timer = setInterval(() => {
        if (sent >= frames.length) return clearInterval(timer);
        peer.send(rtpPacket(1000 + sent, sent * 160, 0x600d, 0, sent === 0, frames[sent]!), from!.port, from!.address);
        sent++;
      }, 20);
    }
  });
  t.teardown(() => {
    clearInterval(timer);
    peer.close();
  });

  const r = await runSipp('uac-ipv6-media', {
    target: `[::1]:${server.sipPort}`, localIp: '::1', durationMs: 4000, timeoutSec: 30,
    args: ['-key', 'rtp_port', String(peer.address().port)],
  });
  t.equal(r.code, 0, sippMessage(r));
  t.match(r.log, /outcome=200 answer=c=IN IP6 ::1 /, 'answered with c=IN IP6 ::1');
  t.equal((from as { address: string } | null)?.address, '::1', 'the server\'s RTP came from ::1');
  t.ok(received >= 100, `the peer received ${received} RTP packets over IPv6`);
  t.ok(voiced >= 25, `${voiced} of them carried the greeting (voiced)`);
  t.equal(sent, frames.length, `the peer sent its ${sent} packets`);
  const log = server.log().slice(mark);
  t.match(log, /msg="?call start"?[^\n]* rtp=::1:\d+/, 'call start names the IPv6 media address');
  const cdr = /msg=cdr[^\n]* packetsIn=(\d+)/.exec(await server.waitForLog(/msg=cdr/, 10000));
  t.ok(cdr && Number(cdr[1]) >= sent - 5, `the server received the peer's packets (cdr packetsIn=${cdr?.[1]})`);
  t.match(log, /msg="?caller keyed"?[^\n]* digits=2580/, 'and decoded its audio: the keyed tones became digits');
});

t.test('c=IN IP6 offer without an IPv6 media address: 488 with Reason and Warning 301, warn log', { skip }, async (t) => {
  const server: ServerHandle = await startServer({ SIP_ADDRESS: '::1', VOICE_MEDIA_RT_PRIORITY: '0', ...NO_ADMISSION }, { rtpPorts: 20 });
  t.teardown(() => server.stop());
  const r = await runSipp('uac-ipv6-media', {
    target: `[::1]:${server.sipPort}`, localIp: '::1', durationMs: 1000, timeoutSec: 20, args: ['-key', 'rtp_port', '27998'],
  });
  t.equal(r.code, 0, sippMessage(r));
  t.match(r.log, /outcome=488 reason=SIP;cause=488;text="[^"]*IPv6[^"]*"/, 'Reason names the IPv6 problem');
  t.match(r.log, /warning=301 \S+ "/, 'Warning 301 (incompatible network address formats)');
  const line = await server.waitForLog(/level=warn[^\n]*rejecting INVITE: 488[^\n]*IPv6/, 5000);
  t.match(line, /rtp\.address6/, `the warn line says what to configure: ${line.replace(/^.*?msg=/, 'msg=')}`);
  t.notMatch(server.log(), /msg="?call start/, 'no call was set up');
});
