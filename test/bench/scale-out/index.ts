/**
 * Benchmark: scale-out through the Kamailio front. The same SIPp load against
 *   single — one voice-agent node, called directly;
 *   front  — Kamailio (sip-config/kamailio/kamailio.cfg, round-robin) + two nodes on one Redis;
 * in the same run, on the same box:
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
import { RANGES, freePortBlock } from '../../helpers/ports.ts';
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
    const rtp = await freePortBlock(RANGES.rtp, 1000);
    return {
      LOG_LEVEL: 'info', RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
      RTP_TIMEOUT_SECONDS: '60', MAX_CALL_SECONDS: '300', MAX_CALLS: values['max-calls']!,
    };
  };
  if (name === 'single') {
    const node = await startServer(await env());
    return { name, target: `127.0.0.1:${node.sipPort}`, nodes: [node] };
  }
  const redis = await startTestRedis();
  const nodes = [await startServer({ ...(await env()), REDIS_URL: redis.url }), await startServer({ ...(await env()), REDIS_URL: redis.url })];
  const front = await startKamailio({
    nodes: nodes.map((n, i) => ({ host: n.host, port: n.sipPort, name: `node${i + 1}` })),
    probeInterval: 2, frTimerMs: 2000, frInvTimerMs: 10000, workers: 4,
  });
  await new Promise((r) => setTimeout(r, 2500)); // one probe round: both nodes active
  return { name, target: front.target, nodes, front, redis };
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

async function bench(name: Topology['name']): Promise<Record<string, unknown>> {
  const topo = await start(name);
  const rateRuns: RateRun[] = [];
  const concRuns: ConcRun[] = [];
  let maxCps = 0;
  let maxConc = 0;
  try {
    for (const cps of rates) {
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
      rateRuns.push(run);
      process.stderr.write(`scale-out ${name} rate: ${JSON.stringify(run)}\n`);
      await new Promise((res) => setTimeout(res, 2000));
      if (r.failed === 0 && r.successful === calls) maxCps = cps;
      else break;
    }
    for (const n of levels) {
      const hold = Math.ceil((n / concRate) * 1000) + 3000;
      const t0 = Date.now();
      const r = await runSipp('uac-load', {
        target: topo.target, calls: n, rate: concRate, durationMs: hold, limit: n + 10,
        timeoutSec: Math.ceil(hold / 1000) * 2 + 30,
      });
      const run: ConcRun = { concurrent: n, ok: r.successful, failed: r.failed, wall_s: Number(((Date.now() - t0) / 1000).toFixed(1)) };
      concRuns.push(run);
      process.stderr.write(`scale-out ${name} concurrent: ${JSON.stringify(run)}\n`);
      await new Promise((res) => setTimeout(res, 3000));
      if (r.failed === 0 && r.successful === n) maxConc = n;
      else break;
    }
  } finally {
    await stop(topo);
  }
  const out: Record<string, unknown> = { max_cps: maxCps, max_concurrent: maxConc, rate_runs: rateRuns, concurrent_runs: concRuns };
  const best = rateRuns.filter((r) => r.failed === 0 && r.ok === r.calls).pop();
  if (name === 'front' && best?.kamailio_cpu_s !== undefined) {
    out.kamailio_cpu_share = Number((best.kamailio_cpu_s / Math.max(0.01, best.kamailio_cpu_s + best.nodes_cpu_s)).toFixed(3));
    out.kamailio_core_percent = Number(((best.kamailio_cpu_s / best.wall_s) * 100).toFixed(1));
    out.kamailio_cpu_ms_per_call = Number(((best.kamailio_cpu_s * 1000) / best.calls).toFixed(3));
  }
  return out;
}

async function main(): Promise<void> {
  if (!haveSipp() || !haveKamailio()) {
    console.log(JSON.stringify({ bench: 'scale-out', error: 'needs sipp (sip-tester) and kamailio on PATH' }));
    process.exit(1);
  }
  const single = await bench('single');
  const front = await bench('front');
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
