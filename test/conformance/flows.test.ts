/**
 * Conformance: the same call flows, driven by SIPp against a small drachtio-srf app
 * (./app.ts), run through (a) the built-in SIP edge (src/sip-edge, in process) and (b) a real
 * drachtio-server when a `drachtio` binary is on PATH (skipped with a reason otherwise).
 * Outcomes (SIPp result + what drachtio-srf reported) must match the expected ones on each
 * edge, and match each other when both ran.
 */
import t, { type Test } from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';
import { SipEdge } from '../../src/sip-edge/index.ts';
import { drachtioBinary, startDrachtio } from '../helpers/drachtio.ts';
import { RANGES, freePort } from '../helpers/ports.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { ConformanceApp } from './app.ts';
import { requireTool } from '../helpers/require.ts';

interface Outcome {
  sippCode: number | null;
  app: string[];
  detail?: string;
}

interface Edge {
  sipPort: number;
  controlPort: number;
  secret: string;
  stop(): Promise<void>;
}

async function startBuiltin(): Promise<Edge> {
  const sipPort = await freePort(RANGES.sip, 'both');
  const edge = new SipEdge({
    sip: { address: '127.0.0.1', port: sipPort, transports: ['udp', 'tcp'] },
    control: { address: '127.0.0.1', port: 0, secret: 'cymru' },
  });
  await edge.start();
  return { sipPort: edge.sipPort, controlPort: edge.controlPort, secret: 'cymru', stop: () => edge.stop() };
}

async function startReal(): Promise<Edge> {
  const d = await startDrachtio();
  return { sipPort: d.sipPort, controlPort: d.adminPort, secret: d.secret, stop: () => d.stop() };
}

/** Expected app events per flow (what drachtio-srf reports on a conforming edge). */
const EXPECTED: Record<string, string[]> = {
  'caller-bye-udp': ['invite:answer', 'answered', 'destroy-by-caller'],
  'caller-bye-tcp': ['invite:answer', 'answered', 'destroy-by-caller'],
  'app-bye': ['invite:app-bye', 'answered', 'app-bye-sent'],
  cancel: ['invite:ring', 'cancel'],
  options: ['options'],
  'reject-488': ['invite:reject', 'rejected-488'],
  '100rel-early-media': ['invite:100rel', 'prack', 'answered', 'destroy-by-caller'],
  'uac-call': ['provisional:180', 'connected', 'remote-sdp-pcmu', 'bye-sent'],
};

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runFlows(t: Test, edge: Edge, app: ConformanceApp): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = {};
  const target = `127.0.0.1:${edge.sipPort}`;
  const since = (n: number): string[] => app.timeline.slice(n).map((s) => s.slice(s.indexOf(' ') + 1));

  const sippFlow = async (name: string, scenario: string, service: string, extra: { transport?: 'udp' | 'tcp'; check?: (log: string) => string | undefined } = {}): Promise<void> => {
    const before = app.timeline.length;
    const r = await runSipp(scenario, { target, service, transport: extra.transport, durationMs: 1000, timeoutSec: 15 });
    await settle(300);
    const detail = extra.check?.(r.log);
    out[name] = { sippCode: r.code, app: since(before), detail };
    t.equal(r.code, 0, sippMessage(r, `${name}: SIPp succeeded`));
    t.same(out[name]!.app, EXPECTED[name], `${name}: drachtio-srf events`);
  };

  await sippFlow('caller-bye-udp', 'uac-pcmu', 'answer');
  await sippFlow('caller-bye-tcp', 'uac-pcmu', 'answer', { transport: 'tcp' });
  await sippFlow('app-bye', 'uac-wait-bye', 'app-bye');
  await sippFlow('cancel', 'uac-cancel', 'ring', { check: (log) => /outcome=(\S+)/.exec(log)?.[1] });
  t.equal(out.cancel!.detail, '487', 'cancel: INVITE ended with 487');
  await sippFlow('options', 'uac-options', 'ping');
  await sippFlow('reject-488', 'uac-g729', 'reject', { check: (log) => /488 (Reason: .*)/.exec(log)?.[1] });
  t.ok(out['reject-488']!.detail, `reject-488: Reason header reached the caller (${out['reject-488']!.detail})`);
  // RFC 3262: reliable 183 with SDP → PRACK → 200 (PRACK) → 200 (INVITE) → ACK → BYE
  await sippFlow('100rel-early-media', 'uac-early-media', '100rel', { check: (log) => /rseq=(\d+) require=100rel/.test(log) ? 'reliable' : undefined });
  t.equal(out['100rel-early-media']!.detail, 'reliable', '100rel: the 183 came reliably');

  // UAC flow: the app calls a SIPp UAS.
  const uasPort = await freePort(RANGES.sip, 'udp');
  const uas = runSipp('uas-answer', { localPort: uasPort, timeoutSec: 15 });
  await settle(400);
  const evs = await app.placeCall(`sip:1001@127.0.0.1:${uasPort}`);
  const ur = await uas;
  out['uac-call'] = { sippCode: ur.code, app: evs };
  t.equal(ur.code, 0, sippMessage(ur, 'uac-call: SIPp UAS succeeded'));
  t.same(evs, EXPECTED['uac-call'], 'uac-call: drachtio-srf events');
  return out;
}

setLogLevel(process.env.LOG_LEVEL === 'debug' ? 'debug' : 'warn');

const results: Record<string, Record<string, Outcome>> = {};
const drachtio = drachtioBinary();

if (!haveSipp()) {
  requireTool(t, 'conformance flows', false, 'sipp', 'sip-tester');
} else {
  const edges: Array<{ name: string; start: () => Promise<Edge>; skip: string | false }> = [
    { name: 'builtin', start: startBuiltin, skip: false },
    { name: 'drachtio', start: startReal, skip: drachtio ? false : 'drachtio not on PATH (real drachtio-server not installed)' },
  ];
  for (const e of edges) {
    t.test(`flows through the ${e.name} edge`, { skip: e.skip }, async (t) => {
      const edge = await e.start();
      const app = new ConformanceApp();
      t.teardown(async () => {
        app.close();
        await edge.stop();
      });
      await app.connect('127.0.0.1', edge.controlPort, edge.secret);
      results[e.name] = await runFlows(t, edge, app);
    });
  }
  t.test('built-in edge and drachtio-server give the same outcomes', { skip: drachtio ? false : 'drachtio not on PATH' }, async (t) => {
    t.ok(results.builtin && results.drachtio, 'both edges ran');
    for (const flow of Object.keys(EXPECTED)) {
      t.same(results.builtin?.[flow], results.drachtio?.[flow], `${flow}: same outcome`);
    }
  });
}
