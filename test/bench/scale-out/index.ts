/**
 * Benchmark: scale-out through the Kamailio front. The same SIPp load against
 *   single — one voice-agent node, called directly;
 *   front  — Kamailio (sip-config/kamailio/kamailio.cfg, round-robin) + two nodes on one Redis;
 * in the same run, on the same box, step by step (each step on one topology, then on the other):
 *   - call setups per second: a ladder of rates, `--seconds` of calls each (uac-load: INVITE →
 *     200 → ACK → hold `--hold` ms while the node streams its greeting → BYE); the highest rate
 *     with every call successful (and every lower rate too) counts;
 *   - concurrent calls: `N` calls held long enough that all N are up at once (rate `--conc-rate`);
 *     the highest N with every call successful counts;
 *   - Kamailio's own CPU: its processes' CPU seconds as a share of everything the topology
 *     used (front + nodes) and as % of one core over the run, at the highest passing rate.
 * On a 2-core box both topologies share the same two cores, so the ratio measures what the
 * front and a second process cost or gain here, not what a second machine would add.
 *
 *   npm run bench -- scale-out [--rates 25,50,100,150,200] [--seconds 6] [--hold 1000]
 *                              [--concurrent 200,400,600,800] [--conc-rate 50] [--max-calls 400]
 *
 * Last stdout line:
 *   {"bench":"scale-out","single":{max_cps,max_concurrent,...},"front":{...,kamailio_cpu_share,...},
 *    "ratio_cps":R,"ratio_concurrent":R,...}
 */
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { haveKamailio, startKamailio, type KamailioHandle } from '../../helpers/kamailio.ts';
import { freePortBlock } from '../../helpers/ports.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';
import { startServer, type ServerHandle } from '../../helpers/server.ts';
import { haveSipp, runSipp } from '../../helpers/sipp.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '25,50,100,150,200' },
    seconds: { type: 'string', default: '6' },
    hold: { type: 'string', default: '1000' },
    concurrent: { type: 'string', default: '200,400,600,800' },
    'conc-rate': { type: 'string', default: '50' },
    'max-calls': { type: 'string', default: '400' },
  },
});
const rates = values.rates!.split(',').map(Number).filter((n) => n > 0);
const levels = values.concurrent!.split(',').map(Number).filter((n) => n > 0);
const seconds = Number(values.seconds);
const holdMs = Number(values.hold);
const concRate = Number(values['conc-rate']);
const TICK = 100; // USER_HZ on Linux
/** RTP ports of this benchmark's nodes (outside the test suites' ranges). */
const BENCH_RTP = { min: 44000, max: 46999 };

/** utime+stime (s) of `pid` and, with `children`, of every process whose parent is `pid`. */
function cpuSeconds(pid: number, children = false): number {
  const read = (p: number): { ppid: number; cpu: number } | null => {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / TICK };
    } catch {
      return null;
    }
  };
  let total = read(pid)?.cpu ?? 0;
  if (children) {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const st = read(Number(d));
      if (st && st.ppid === pid) total += st.cpu;
    }
  }
  return total;
}

interface Topology {
  name: 'single' | 'front';
  target: string;
  nodes: ServerHandle[];
  front?: KamailioHandle;
  redis?: TestRedis;
}

async function start(name: Topology['name']): Promise<Topology> {
  const env = async (): Promise<Record<string, string>> => {
    // three nodes are up at once, 1000 ports each (400 calls): a range of the benchmark's own
    const rtp = await freePortBlock(BENCH_RTP, 1000);
    return {
      LOG_LEVEL: 'info', RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
      RTP_TIMEOUT_SECONDS: '60', MAX_CALL_SECONDS: '300', MAX_CALLS: values['max-calls']!,
    };
  };
  if (name === 'single') {
    const node = await startServer(await env());
    await warm([node]);
    return { name, target: `127.0.0.1:${node.sipPort}`, nodes: [node] };
  }
  const redis = await startTestRedis();
  const nodes = [await startServer({ ...(await env()), REDIS_URL: redis.url }), await startServer({ ...(await env()), REDIS_URL: redis.url })];
  await warm(nodes);
  const front = await startKamailio({
    nodes: nodes.map((n, i) => ({ host: n.host, port: n.sipPort, name: `node${i + 1}` })),
    probeInterval: 2, frTimerMs: 2000, frInvTimerMs: 10000, workers: 4,
  });
  await new Promise((r) => setTimeout(r, 2500)); // one probe round: both nodes active
  return { name, target: front.target, nodes, front, redis };
}

/** One call straight to each node: its greeting is synthesized and cached before the ladder. */
async function warm(nodes: ServerHandle[]): Promise<void> {
  await Promise.all(nodes.map((n) => runSipp('uac-load', { target: `${n.host}:${n.sipPort}`, durationMs: 300, timeoutSec: 20 })));
}

async function stop(t: Topology): Promise<void> {
  await t.front?.stop();
  await Promise.all(t.nodes.map((n) => n.stop(5000)));
  await t.redis?.stop();
}

interface RateRun {
  cps: number;
  calls: number;
  ok: number;
  failed: number;
  wall_s: number;
  nodes_cpu_s: number;
  kamailio_cpu_s?: number;
  loadavg_1m: number;
}

interface ConcRun {
  concurrent: number;
  ok: number;
  failed: number;
  wall_s: number;
}

/** The commonest SIPp failure lines of a run (what the callers saw). */
function whyFailed(errors: string): string {
  const counts = new Map<string, number>();
  for (const m of errors.matchAll(/while expecting '(\d+)' \(index \d+\), received '([^\r\n']*)|(\S+ timed out[^\r\n]*)/g)) {
    const k = m[3] ? m[3].replace(/\d+-\d+@\S+/g, '') : `expected ${m[1]}, got ${m[2]}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return JSON.stringify([...counts].sort((x, y) => y[1] - x[1]).slice(0, 4));
}

/** One step for one topology: a rate run. */
async function rateRun(topo: Topology, cps: number): Promise<RateRun> {
  const calls = Math.round(cps * seconds);
  const load = Number(loadavg()[0]!.toFixed(2));
  const n0 = topo.nodes.reduce((s, n) => s + cpuSeconds(n.proc.pid!), 0);
  const k0 = topo.front ? cpuSeconds(topo.front.proc.pid!, true) : 0;
  const t0 = Date.now();
  const r = await runSipp('uac-load', {
    target: topo.target, calls, rate: cps, durationMs: holdMs, limit: Math.ceil(cps * (holdMs / 1000 + 3) * 2),
    timeoutSec: seconds + Math.ceil(holdMs / 1000) + 30,
  });
  const run: RateRun = {
    cps, calls, ok: r.successful, failed: r.failed, wall_s: Number(((Date.now() - t0) / 1000).toFixed(1)),
    nodes_cpu_s: Number((topo.nodes.reduce((s, n) => s + cpuSeconds(n.proc.pid!), 0) - n0).toFixed(2)),
    ...(topo.front ? { kamailio_cpu_s: Number((cpuSeconds(topo.front.proc.pid!, true) - k0).toFixed(2)) } : {}),
    loadavg_1m: load,
  };
  process.stderr.write(`scale-out ${topo.name} rate: ${JSON.stringify(run)}\n`);
  if (r.failed > 0) process.stderr.write(`  why: ${whyFailed(r.errors)}\n`);
  await new Promise((res) => setTimeout(res, 2000));
  return run;
}

/** One step for one topology: `n` calls up at once. */
async function concRun(topo: Topology, n: number): Promise<ConcRun> {
  const hold = Math.ceil((n / concRate) * 1000) + 3000;
  const t0 = Date.now();
  const r = await runSipp('uac-load', {
    target: topo.target, calls: n, rate: concRate, durationMs: hold, limit: n + 10,
    timeoutSec: Math.ceil(hold / 1000) * 2 + 30,
  });
  const run: ConcRun = { concurrent: n, ok: r.successful, failed: r.failed, wall_s: Number(((Date.now() - t0) / 1000).toFixed(1)) };
  process.stderr.write(`scale-out ${topo.name} concurrent: ${JSON.stringify(run)}\n`);
  if (r.failed > 0) process.stderr.write(`  why: ${whyFailed(r.errors)}\n`);
  await new Promise((res) => setTimeout(res, 3000));
  return run;
}

const passed = (r: { ok: number; failed: number }, want: number): boolean => r.failed === 0 && r.ok === want;

/**
 * Both topologies are up for the whole run and every step runs on one, then at once on the
 * other, so a busy moment on the shared box hits both alike; each ladder stops at its first
 * failed step.
 */
async function benchBoth(): Promise<Record<Topology['name'], Record<string, unknown>>> {
  const topos = [await start('single'), await start('front')];
  const res = new Map(topos.map((t) => [t.name, { rate: [] as RateRun[], conc: [] as ConcRun[], maxCps: 0, maxConc: 0, rateOn: true, concOn: true }]));
  try {
    for (const cps of rates) {
      for (const t of topos) {
        const x = res.get(t.name)!;
        if (!x.rateOn) continue;
        const run = await rateRun(t, cps);
        x.rate.push(run);
        if (passed(run, run.calls)) x.maxCps = cps;
        else x.rateOn = false;
      }
    }
    for (const n of levels) {
      for (const t of topos) {
        const x = res.get(t.name)!;
        if (!x.concOn) continue;
        const run = await concRun(t, n);
        x.conc.push(run);
        if (passed(run, n)) x.maxConc = n;
        else x.concOn = false;
      }
    }
  } finally {
    for (const t of topos) await stop(t);
  }
  const out = {} as Record<Topology['name'], Record<string, unknown>>;
  for (const t of topos) {
    const x = res.get(t.name)!;
    const o: Record<string, unknown> = { max_cps: x.maxCps, max_concurrent: x.maxConc, rate_runs: x.rate, concurrent_runs: x.conc };
    const best = x.rate.filter((r) => passed(r, r.calls)).pop();
    if (t.name === 'front' && best?.kamailio_cpu_s !== undefined) {
      o.kamailio_cpu_share = Number((best.kamailio_cpu_s / Math.max(0.01, best.kamailio_cpu_s + best.nodes_cpu_s)).toFixed(3));
      o.kamailio_core_percent = Number(((best.kamailio_cpu_s / best.wall_s) * 100).toFixed(1));
      o.kamailio_cpu_ms_per_call = Number(((best.kamailio_cpu_s * 1000) / best.calls).toFixed(3));
    }
    out[t.name] = o;
  }
  return out;
}

async function main(): Promise<void> {
  if (!haveSipp() || !haveKamailio()) {
    console.log(JSON.stringify({ bench: 'scale-out', error: 'needs sipp (sip-tester) and kamailio on PATH' }));
    process.exit(1);
  }
  const { single, front } = await benchBoth();
  const ratio = (a: unknown, b: unknown): number | null => (Number(b) > 0 ? Number((Number(a) / Number(b)).toFixed(2)) : null);
  console.log(JSON.stringify({
    bench: 'scale-out', seconds_per_rate: seconds, hold_ms: holdMs, max_calls_per_node: Number(values['max-calls']),
    single, front,
    ratio_cps: ratio(front.max_cps, single.max_cps),
    ratio_concurrent: ratio(front.max_concurrent, single.max_concurrent),
  }));
}

main().catch((err: unknown) => {
  console.error(err);
  console.log(JSON.stringify({ bench: 'scale-out', error: String((err as Error)?.message ?? err).split('\n')[0] }));
  process.exit(1);
});
