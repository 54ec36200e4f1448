/**
 * Several voice-agent nodes behind ONE real drachtio-server (skipped, saying why, when no
 * `drachtio` binary is on PATH; see docs/SCALE.md "Several nodes behind one drachtio-server").
 *
 * (a) inbound connections: two nodes connect to drachtio-server's admin port (EDGE=drachtio);
 *     drachtio-server spreads new INVITEs over them. SIPp calls through drachtio-server: both
 *     nodes take calls, every call completes, each caller's BYE reaches the node that answered
 *     (that node's CDR says the caller hung up; the other node never saw the call).
 * (b) outbound connections: two nodes listen (DRACHTIO_MODE=outbound) and drachtio-server asks
 *     the request handler (src/sip/drachtio-router.ts, config sip-config/drachtio-outbound.conf.xml)
 *     which node takes each new request. Both nodes take calls; a draining node (SIGTERM with
 *     DRAIN_SECONDS) gets no new call while its live call finishes; after kill -9 of the last
 *     node up, drachtio-server answers new INVITEs 503 (the request handler's reject) instead of
 *     trying the dead node.
 */
import t, { type Test } from 'tap';
import { drachtioBinary, startDrachtio, type DrachtioHandle } from '../helpers/drachtio.ts';
import { RANGES, freePort } from '../helpers/ports.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage, type SippResult } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';
import { startDrachtioRouter, type DrachtioRouter } from '../../src/sip/drachtio-router.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel(process.env.LOG_LEVEL === 'debug' ? 'debug' : 'warn');
// four voice-agent processes and two drachtio-servers start one after another: minutes on a busy box
t.setTimeout(400_000);
const drachtio = drachtioBinary();
/** a busy 2-core box (other suites and benchmarks) can take more than the default 30 s to start a node */
const SLOW_START = { readyTimeoutMs: 90000 };
const SKIP = drachtio ? false : 'drachtio not on PATH (real drachtio-server not installed; docs/SCALE.md says how to build one)';

/** Call-IDs SIPp's uac-dispatch logged, with the BYE status of each. */
function sippCalls(r: SippResult): Map<string, string | undefined> {
  const byes = new Map([...r.log.matchAll(/bye=(\S+) status=(\d+)/g)].map((m) => [m[1]!, m[2]!]));
  return new Map([...r.log.matchAll(/call=(\S+) node=/g)].map((m) => [m[1]!, byes.get(m[1]!)]));
}

/** Call-IDs whose CDR line on this node says the caller's BYE ended the call. */
function callerByes(node: ServerHandle): Set<string> {
  const ids = new Set<string>();
  for (const line of node.log().split('\n')) {
    if (!/msg="?cdr/.test(line)) continue;
    const id = /callId="?([^"\s]+)/.exec(line)?.[1];
    if (id && /reason="?caller-bye/.test(line)) ids.add(id);
  }
  return ids;
}

/** Call-IDs this node answered (its `call answered` log lines). */
function answered(node: ServerHandle): Set<string> {
  const ids = new Set<string>();
  for (const line of node.log().split('\n')) {
    if (!/msg="?call answered/.test(line)) continue;
    const id = /callId="?([^"\s]+)/.exec(line)?.[1];
    if (id) ids.add(id);
  }
  return ids;
}

const until = async (what: string, ok: () => boolean, timeoutMs = 15000): Promise<void> => {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/** Every SIPp call on exactly one node, ended there by the caller's BYE (200). */
function checkOwnership(t: Test, calls: Map<string, string | undefined>, nodes: ServerHandle[]): number[] {
  const ended = nodes.map(callerByes);
  const per = nodes.map(() => 0);
  const wrong: string[] = [];
  for (const [id, bye] of calls) {
    const owners = ended.map((s, i) => (s.has(id) ? i : -1)).filter((i) => i >= 0);
    if (bye !== '200' || owners.length !== 1) wrong.push(`${id}: BYE ${bye ?? 'none'}, ended by the caller on ${owners.length} nodes`);
    else per[owners[0]!] += 1;
  }
  t.same(wrong, [], `each of ${calls.size} calls: BYE 200, and exactly one node (the one that answered) saw the caller hang up`);
  return per;
}

if (!haveSipp()) {
  requireTool(t, 'several nodes behind one drachtio-server', false, 'sipp', 'sip-tester');
} else {
  t.test('(a) inbound connections: two nodes connected to one drachtio-server', { skip: SKIP }, async (t) => {
    const d = await startDrachtio();
    const nodes: ServerHandle[] = [];
    t.teardown(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await d.stop();
    });
    for (let i = 0; i < 2; i++) {
      nodes.push(await startServer({ EDGE: 'drachtio', DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(d.adminPort), DRACHTIO_SECRET: d.secret }, SLOW_START));
    }
    const r = await runSipp('uac-dispatch', { target: `127.0.0.1:${d.sipPort}`, calls: 6, rate: 3, limit: 6, durationMs: 1500, timeoutSec: 40 });
    t.equal(r.code, 0, sippMessage(r, '6 calls through drachtio-server'));
    const calls = sippCalls(r);
    t.equal(calls.size, 6, 'every call answered');
    await new Promise((res) => setTimeout(res, 500));
    const per = checkOwnership(t, calls, nodes);
    t.ok(per[0]! > 0 && per[1]! > 0, `both nodes took calls (${per.join(' / ')})`);
  });

  t.test('(b) outbound connections: a request handler picks the node; a draining or dead node gets no new call', { skip: SKIP }, async (t) => {
    const nodes: ServerHandle[] = [];
    let router: DrachtioRouter | undefined;
    let d: DrachtioHandle | undefined;
    t.teardown(async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      await router?.close();
      await d?.stop();
    });
    const listenPorts: number[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort(RANGES.control, 'tcp');
      listenPorts.push(port);
      nodes.push(await startServer({
        EDGE: 'drachtio', DRACHTIO_MODE: 'outbound', DRACHTIO_LISTEN_ADDRESS: '127.0.0.1', DRACHTIO_LISTEN_PORT: String(port),
        DRACHTIO_SECRET: 'cymru', DRAIN_SECONDS: '30',
      }, SLOW_START));
    }
    const routerPort = await freePort(RANGES.control, 'tcp');
    router = await startDrachtioRouter({
      port: routerPort, probeIntervalMs: 200,
      nodes: nodes.map((n, i) => ({ uri: `127.0.0.1:${listenPorts[i]}`, opsUrl: n.opsUrl })),
    });
    const state = (i: number): string => router!.picker.nodes[i]!.state;
    await until('the request handler sees both nodes ready (/readyz 200)', () => state(0) === 'up' && state(1) === 'up', 30000);
    d = await startDrachtio({ requestHandler: router.url });
    const target = `127.0.0.1:${d.sipPort}`;

    // 1. both nodes take calls, each BYE reaches the node that answered
    const r1 = await runSipp('uac-dispatch', { target, calls: 6, rate: 3, limit: 6, durationMs: 1500, timeoutSec: 40 });
    t.equal(r1.code, 0, sippMessage(r1, '6 calls through drachtio-server with outbound connections'));
    const calls1 = sippCalls(r1);
    t.equal(calls1.size, 6, 'every call answered');
    await new Promise((res) => setTimeout(res, 500));
    const per = checkOwnership(t, calls1, nodes);
    t.ok(per[0]! > 0 && per[1]! > 0, `the request handler spread the calls over both nodes (${per.join(' / ')})`);
    t.equal(router.picker.nodes.reduce((s, n) => s + n.routed, 0) >= 6, true, 'drachtio-server asked the request handler for every call');

    // each call's connection is closed by its node once the call is over (no connection leak)
    const connected = (): string | undefined => [...d.log().matchAll(/count of connected clients is now: (\d+)/g)].pop()?.[1];
    await until('drachtio-server reports no open outbound connection', () => connected() === '0');
    t.equal(connected(), '0', 'the nodes closed every per-call connection once the calls ended');

    // 2. drain node 0 while it holds a live call
    const before = answered(nodes[0]!).size + answered(nodes[1]!).size;
    const long = runSipp('uac-dispatch', { target, calls: 4, rate: 10, limit: 4, durationMs: 6000, timeoutSec: 40 });
    // all four answered first: an INVITE routed to node 0 between the SIGTERM and the router's
    // next probe would get node 0's 503 (drachtio-server does not try another node)
    await until('the 4 long calls are up', () => answered(nodes[0]!).size + answered(nodes[1]!).size >= before + 4);
    const liveOn0 = [...answered(nodes[0]!)].filter((id) => !calls1.has(id));
    t.ok(liveOn0.length > 0, `node 0 holds live calls (${liveOn0.length}) when it is told to drain`);
    nodes[0]!.proc.kill('SIGTERM');
    await until('the request handler sees node 0 draining', () => state(0) !== 'up');
    t.equal(state(0), 'draining', 'node 0 is out as draining (its /readyz says so)');
    const r2 = await runSipp('uac-dispatch', { target, calls: 3, rate: 3, limit: 3, durationMs: 1000, timeoutSec: 30 });
    t.equal(r2.code, 0, sippMessage(r2, '3 calls while node 0 drains'));
    const calls2 = sippCalls(r2);
    t.equal(calls2.size, 3, 'every call answered');
    const on0 = [...calls2.keys()].filter((id) => answered(nodes[0]!).has(id));
    t.same(on0, [], 'no new call went to the draining node');
    t.equal([...calls2.keys()].filter((id) => answered(nodes[1]!).has(id)).length, 3, 'node 1 took every new call');
    const rl = await long;
    t.equal(rl.code, 0, sippMessage(rl, 'the calls up before the drain completed'));
    await new Promise((res) => setTimeout(res, 500));
    t.same(liveOn0.filter((id) => !callerByes(nodes[0]!).has(id)), [], 'the draining node\'s live call ended by the caller\'s BYE there');
    await until('the drained node exits by itself', () => nodes[0]!.proc.exitCode !== null || nodes[0]!.proc.signalCode !== null, 60000);
    t.equal(await nodes[0]!.stop(), 0, 'the drained node exited 0 once its calls ended');

    // 3. kill -9 of the last node: drachtio-server answers 503 (the request handler's reject)
    nodes[1]!.proc.kill('SIGKILL');
    await until('the request handler sees node 1 down', () => state(1) === 'down');
    // uac-dispatch expects a 200: the call fails, on the 503 the request handler asked for
    const r3 = await runSipp('uac-dispatch', { target, calls: 1, timeoutSec: 15 });
    t.equal(r3.failed, 1, 'the call was refused');
    t.match(r3.errors, /SIP\/2\.0 503 No voice-agent node available/, 'no node up: 503 from drachtio-server, as the request handler answered');
  });
}
