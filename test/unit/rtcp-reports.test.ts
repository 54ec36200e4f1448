// RTCP on port+1: two sessions exchange SR/RR; RTT from LSR/DLSR, loss and jitter parsed.
// Port range for this file: 21700-21799.
import t from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { MediaEngine } from '../../src/media/index.ts';
import { native } from '../../src/media/native.ts';

setLogLevel('silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const engine = MediaEngine.create({ portMin: 21700, portMax: 21799 });
t.teardown(() => engine.close());

t.test('SR/RR exchange between two sessions', async (t) => {
  const a = engine.createSession({ codec: 'PCMU', payloadType: 0, rtcpIntervalMs: 300 });
  const b = engine.createSession({ codec: 'PCMU', payloadType: 0, rtcpIntervalMs: 300, remote: { address: '127.0.0.1', port: a.localPort } });
  t.equal(a.rtcpPort, a.localPort + 1, 'RTCP on port + 1');
  a.setRemote('127.0.0.1', b.localPort);
  a.play(new Int16Array(16000).fill(500)); b.play(new Int16Array(16000).fill(500));
  await sleep(1800);
  for (const [name, s] of [['a', a], ['b', b]] as const) {
    const r = s.stats().rtcp!;
    t.ok(r.packetsOut >= 2 && r.packetsIn >= 2, `${name}: ${r.packetsOut} out, ${r.packetsIn} in`);
    t.ok(r.haveSr, `${name}: got a sender report`);
    t.ok(r.remoteReport && r.remoteReport.fractionLost === 0 && r.remoteReport.cumulativeLost === 0, `${name}: peer reports no loss`);
    t.ok(r.remoteReport?.rttMs !== null && r.remoteReport!.rttMs! >= 0 && r.remoteReport!.rttMs! < 50, `${name}: RTT ${r.remoteReport?.rttMs?.toFixed(2)} ms`);
  }
  a.close(); b.close();
});

t.test('parser rejects malformed compounds', async (t) => {
  t.equal(native.parseRtcp(Uint8Array.from([0x81, 0xc9, 0, 1, 0, 0, 0, 1])), 'bad-length');
  t.equal(native.parseRtcp(Uint8Array.from([0x40, 0xc9, 0, 1, 0, 0, 0, 1])), 'bad-version');
  t.equal(native.parseRtcp(Uint8Array.from([0x80, 0xca, 0, 1, 0, 0, 0, 1])), 'not-rtcp');
  const rr = native.parseRtcp(Uint8Array.from([0x80, 0xc9, 0, 1, 0, 0, 0, 9]));
  t.match(rr, { senderSsrc: 9, haveSr: false, packets: 1 });
});
