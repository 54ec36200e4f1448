/**
 * Scale-out: the Kamailio front (sip-config/kamailio/kamailio.cfg) in front of two voice-agent
 * nodes on one shared Redis, SIPp callers with RTP through the front.
 *   - 40 calls: both nodes take calls, every call completes, each BYE reaches the node that
 *     answered the call (its CDR line says the caller hung up);
 *   - kill -9 of one node during a run: every INVITE still gets a 200 (failover to the
 *     survivor within the front's timer), new calls go to the survivor once the probe or the
 *     first failed INVITE took the dead node out; the failover time is printed;
 *   - drain (SIGTERM, DRAIN_SECONDS > 0): the draining node takes no new call, its live calls
 *     finish with their BYE, the other node takes the rest, and the drained node exits 0.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { runSipp, sippMessage, type SippResult } from '../helpers/sipp.ts';
import { haveKamailio, startKamailio, type KamailioHandle } from '../helpers/kamailio.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

const PROBE_INTERVAL_S = 1;
const FR_TIMER_MS = 2000;
const FR_INV_TIMER_MS = 4000;

const missing = [
  !haveKamailio() && 'kamailio (Debian package kamailio)',
  spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error !== undefined && 'sipp (Debian package sip-tester)',
].filter(Boolean);

interface CallLine {
  callId: string;
  node: string;
  /** INVITE sent / 200 received, epoch ms */
  t0: number;
  t1: number;
}

function parseCalls(r: SippResult): CallLine[] {
  const ms = (s: string): number => {
    const [sec, us] = s.split(':');
    return Number(sec) * 1000 + Number(us) / 1000;
  };
  const out: CallLine[] = [];
  for (const m of r.log.matchAll(/call=(\S+) node=(\S+) t0=(\S+) t1=(\S+)/g)) {
    out.push({ callId: m[1]!, node: m[2]!, t0: ms(m[3]!), t1: ms(m[4]!) });
  }
  return out;
}

function byeStatus(r: SippResult): Map<string, string> {
  return new Map([...r.log.matchAll(/bye=(\S+) status=(\d+)/g)].map((m) => [m[1]!, m[2]!]));
}

/** Call-IDs of the calls a node's CDR lines record as ended by the caller's BYE, with the caller's RTP packets received. */
function byeCdrs(node: ServerHandle): Map<string, number> {
  const ids = new Map<string, number>();
  for (const line of node.log().split('\n')) {
    if (!/msg="?cdr/.test(line)) continue;
    const id = /callId="?([^"\s]+)/.exec(line)?.[1];
    const reason = /reason="?([^"\s]+)/.exec(line)?.[1];
    const packetsIn = Number(/packetsIn=(\d+)/.exec(line)?.[1] ?? 0);
    if (id && reason === 'caller-bye') ids.set(id, packetsIn);
  }
  return ids;
}

interface Cluster {
  redis: TestRedis;
  nodes: ServerHandle[];
  front: KamailioHandle;
  /** `127.0.0.1:port` of node i as the 200's Contact shows it. */
  addr(i: number): string;
  stop(): Promise<void>;
}

async function cluster(env: Record<string, string> = {}): Promise<Cluster> {
  const redis = await startTestRedis();
  const nodeEnv = { REDIS_URL: redis.url, ...env };
  const nodes = await Promise.all([startServer(nodeEnv, { rtpPorts: 100 }), startServer(nodeEnv, { rtpPorts: 100 })]);
  // one call straight to each node first: its greeting is synthesized (and cached) once, so the
  // first calls through the front do not find a node whose event loop is busy with it
  await Promise.all(nodes.map((n) => runSipp('uac-pcmu', { target: `${n.host}:${n.sipPort}`, durationMs: 300, timeoutSec: 20 })));
  const front = await startKamailio({
    nodes: nodes.map((n, i) => ({ host: n.host, port: n.sipPort, name: `node${i + 1}` })),
    probeInterval: PROBE_INTERVAL_S,
    frTimerMs: FR_TIMER_MS,
    frInvTimerMs: FR_INV_TIMER_MS,
  });
  // both nodes up in the dispatcher before the first call (one probe round)
  await new Promise((r) => setTimeout(r, PROBE_INTERVAL_S * 1000 + 200));
  return {
    redis, nodes, front,
    addr: (i) => `${nodes[i]!.host}:${nodes[i]!.sipPort}`,
    stop: async () => {
      await front.stop();
      await Promise.all(nodes.map((n) => n.stop(3000)));
      await redis.stop();
    },
  };
}

if (missing.length > 0) {
  t.test('scale-out through Kamailio: tools installed', async (tt) => {
    tt.fail(`not installed: ${missing.join(', ')} (make test installs them)`);
  });
} else {
  t.test('40 calls with RTP through the front: both nodes answer, every call completes, BYE reaches the owner', async (t) => {
    const c = await cluster();
    t.teardown(() => c.stop());
    const r = await runSipp('uac-dispatch', { target: c.front.target, calls: 40, rate: 10, limit: 30, durationMs: 2500, timeoutSec: 60 });
    t.equal(r.code, 0, sippMessage(r));
    t.equal(r.successful, 40, '40 successful calls');
    const calls = parseCalls(r);
    t.equal(calls.length, 40, 'every call logged its answering node');
    const per = [0, 1].map((i) => calls.filter((x) => x.node === c.addr(i)));
    t.ok(per[0]!.length >= 10 && per[1]!.length >= 10, `both nodes took calls (${per[0]!.length} / ${per[1]!.length})`);
    t.equal(per[0]!.length + per[1]!.length, 40, 'every 200 came from one of the two nodes');
    const bye = byeStatus(r);
    t.equal([...bye.values()].filter((s) => s === '200').length, 40, 'every BYE answered 200');
    // the owning node saw the caller's BYE (its CDR line)
    await new Promise((res) => setTimeout(res, 500));
    for (const i of [0, 1]) {
      const ended = byeCdrs(c.nodes[i]!);
      const notThere = per[i]!.filter((x) => !ended.has(x.callId));
      t.same(notThere.map((x) => x.callId), [], `node${i + 1}: each of its ${per[i]!.length} calls ended by the caller's BYE there`);
      const silent = per[i]!.filter((x) => (ended.get(x.callId) ?? 0) < 50);
      t.same(silent.map((x) => x.callId), [], `node${i + 1}: the caller's RTP reached it on every call`);
    }
  });

  t.test('kill -9 of a node mid-run: every INVITE answered, new calls go to the survivor', async (t) => {
    const c = await cluster();
    t.teardown(() => c.stop());
    const run = runSipp('uac-dispatch', { target: c.front.target, calls: 50, rate: 10, limit: 40, durationMs: 1500, timeoutSec: 60 });
    // let calls land on both nodes, then kill node 1 hard
    const answered = (n: ServerHandle): number => (n.log().match(/msg="?call answered/g) ?? []).length;
    const base = answered(c.nodes[0]!);
    for (let i = 0; i < 150 && answered(c.nodes[0]!) < base + 5; i++) await new Promise((res) => setTimeout(res, 100));
    const port = c.nodes[0]!.sipPort;
    const down = c.front.waitForLog(new RegExp(`node down sip:127\\.0\\.0\\.1:${port}|node sip:127\\.0\\.0\\.1:${port}\\S* failed for`), 15000, true);
    const tKill = Date.now();
    c.nodes[0]!.proc.kill('SIGKILL');
    await down;
    const failoverMs = Date.now() - tKill;
    const r = await run;
    const calls = parseCalls(r);
    t.equal(calls.length, 50, `every INVITE got a 200 (${calls.length} of 50)\n${sippMessage(r)}`);
    const after = calls.filter((x) => x.t0 > tKill);
    t.ok(after.length >= 10, `calls placed after the kill: ${after.length}`);
    t.same(after.filter((x) => x.node !== c.addr(1)).map((x) => x.callId), [], 'every call placed after the kill was answered by the survivor');
    const worstSetup = Math.max(...calls.map((x) => x.t1 - x.t0));
    // an INVITE sent to the dead node waits for the front's timer (FR_TIMER_MS without a 100 Trying,
    // FR_INV_TIMER_MS when the node died between its 100 and its 200), then goes to the survivor:
    // far inside the caller's INVITE timeout (64·T1 = 32 s)
    t.ok(worstSetup < FR_INV_TIMER_MS + 2000, `worst INVITE → 200 time ${Math.round(worstSetup)} ms (front timers ${FR_TIMER_MS} / ${FR_INV_TIMER_MS} ms)`);
    // once the front knows (probe or the first timed-out INVITE), new calls go straight to the survivor
    const settled = calls.filter((x) => x.t0 > tKill + failoverMs + 200);
    const slow = settled.filter((x) => x.t1 - x.t0 > FR_TIMER_MS * 0.8);
    t.same(slow.map((x) => Math.round(x.t1 - x.t0)), [], `calls placed after the dead node was taken out were not delayed by it (${settled.length} calls)`);
    t.ok(failoverMs <= PROBE_INTERVAL_S * 1000 + FR_TIMER_MS + 1500, `dead node taken out ${failoverMs} ms after kill -9 (probe ${PROBE_INTERVAL_S * 1000} ms + timer ${FR_TIMER_MS} ms)`);
    const bye = byeStatus(r);
    const onSurvivor = calls.filter((x) => x.node === c.addr(1));
    t.same(onSurvivor.filter((x) => bye.get(x.callId) !== '200').map((x) => x.callId), [], 'every call on the survivor ended with BYE 200');
    t.comment(`failover: dead node out of the dispatcher ${failoverMs} ms after kill -9; worst INVITE → 200 ${Math.round(worstSetup)} ms; ` +
      `${calls.filter((x) => x.node === c.addr(0)).length} calls were up on the dead node (their BYE: ${[...bye.values()].filter((s) => s === '408').length}× 408 from the front)`);
  });

  t.test('drain (SIGTERM): the draining node takes no new call, its live calls finish, the other takes the rest', async (t) => {
    const c = await cluster({ DRAIN_SECONDS: '30' });
    t.teardown(() => c.stop());
    const run = runSipp('uac-dispatch', { target: c.front.target, calls: 40, rate: 8, limit: 40, durationMs: 3000, timeoutSec: 60 });
    const answered = (n: ServerHandle): number => (n.log().match(/msg="?call answered/g) ?? []).length;
    const base = answered(c.nodes[0]!);
    for (let i = 0; i < 150 && answered(c.nodes[0]!) < base + 5; i++) await new Promise((res) => setTimeout(res, 100));
    const port = c.nodes[0]!.sipPort;
    const down = c.front.waitForLog(new RegExp(`node down sip:127\\.0\\.0\\.1:${port}|node sip:127\\.0\\.0\\.1:${port}\\S* failed for`), 15000, true);
    const tTerm = Date.now();
    c.nodes[0]!.proc.kill('SIGTERM');
    const drainedMs = await down.then(() => Date.now() - tTerm);
    const r = await run;
    t.equal(r.code, 0, sippMessage(r));
    const calls = parseCalls(r);
    t.equal(calls.length, 40, 'every call answered');
    const a = c.addr(0);
    const before = calls.filter((x) => x.node === a);
    t.ok(before.length >= 3, `the draining node had live calls (${before.length})`);
    // an INVITE that reached node 1 after the SIGTERM got 503 there and went to node 2
    t.same(calls.filter((x) => x.node === a && x.t1 > tTerm + 300).map((x) => x.callId), [], 'no call answered by the draining node after SIGTERM');
    t.ok(calls.filter((x) => x.t0 > tTerm).length >= 10, 'calls kept coming after the SIGTERM');
    const bye = byeStatus(r);
    t.same(calls.filter((x) => bye.get(x.callId) !== '200').map((x) => `${x.callId} on ${x.node}: BYE ${bye.get(x.callId) ?? 'none'}`), [],
      'every call, the draining node\'s included, ended with BYE 200');
    const code = await new Promise((res) => {
      if (c.nodes[0]!.proc.exitCode !== null) res(c.nodes[0]!.proc.exitCode);
      else c.nodes[0]!.proc.once('exit', (cd) => res(cd));
    });
    t.equal(code, 0, 'the drained node exited 0');
    t.match(c.nodes[0]!.log(), /drained: no calls left/, 'it left when its last call ended');
    const ended = byeCdrs(c.nodes[0]!);
    t.same(before.filter((x) => !ended.has(x.callId)).map((x) => x.callId), [], 'its calls ended by the caller\'s BYE, not by the drain');
    t.comment(`drain: front took the node out ${drainedMs} ms after SIGTERM`);
  });
}
