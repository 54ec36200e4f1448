/**
 * Benchmark: a SIP flood against the built-in edge while calls are up, and what memory does
 * after floods.
 *
 * Phase A — absorb: `--calls` (20) real calls from the trunk source 127.0.0.1 (SIPp uac-pcmu:
 * PCMU with speech, the agent greets and answers) are up; then SIPp floods INVITEs from an
 * unknown source (127.0.0.2) at `--rate` (2500/s) for `--seconds` (10), fire-and-forget (no
 * retransmissions, no ACK). The edge drops them (ACL, then the per-source ban, before
 * parsing). Reported: the rate SIPp sent, the rate the edge absorbed (dropped + refused per
 * second, from /metrics), the server's CPU during the flood, and the media pacing of the live
 * calls — p50/p99 of `voice_agent_media_loop_lateness_seconds` over a window without the flood
 * and over the flood window (bucket bound it falls in, and an estimate interpolated inside it).
 *
 * Phase B — memory: `--floods` (3) floods of `--flood-invites` (2000) INVITEs at
 * `--flood-rate` (300/s) from the trunk source (exempt from the rate limit, so every INVITE
 * goes through the edge, the transaction layer and the app: up to MAX_CALLS (400) are answered
 * 200 and never ACKed — they end as no-ack after 64·T1 — the rest get 503). After each flood,
 * once every call has ended, the transactions have expired and `--quiet` seconds passed, the server's VmRSS
 * (/proc/<pid>/status), the V8 heap in use and the external/arrayBuffer memory are read;
 * RSS after flood 3 vs after flood 1 says whether memory is bounded (allocator high-water
 * mark, reused) or leaking (grows per flood). `--allocator` runs the server on glibc malloc as
 * is (default), with `MALLOC_ARENA_MAX=2`, or with jemalloc preloaded (Debian libjemalloc2),
 * to tell freed-but-kept allocator memory from a leak.
 *
 *   npm run bench -- flood [--rate 2500] [--seconds 10] [--calls 20] [--floods 3]
 *                          [--flood-invites 2000] [--flood-rate 300] [--settle 45] [--quiet 20]
 *                          [--allocator glibc|arena2|jemalloc]
 *
 * Last stdout line: {"bench":"flood", "absorb":{…}, "pacing":{…}, "memory":{…}, "counters":{…}}
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { RANGES, freePortBlock } from '../../helpers/ports.ts';
import { startServer, type ServerHandle } from '../../helpers/server.ts';
import { haveSipp, runSipp, type SippResult } from '../../helpers/sipp.ts';
import { buckets, metric, series } from '../../helpers/metrics.ts';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '2500' },
    seconds: { type: 'string', default: '10' },
    calls: { type: 'string', default: '20' },
    floods: { type: 'string', default: '3' },
    'flood-invites': { type: 'string', default: '2000' },
    'flood-rate': { type: 'string', default: '300' },
    settle: { type: 'string', default: '45' },
    quiet: { type: 'string', default: '20' },
    allocator: { type: 'string', default: 'glibc' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const CALLS = Number(values.calls);
const FLOODS = Number(values.floods);
const FLOOD_INVITES = Number(values['flood-invites']);
const FLOOD_RATE = Number(values['flood-rate']);
const SETTLE_S = Number(values.settle);
/** Seconds of quiet after the last call ended before memory is read (V8's memory reducer and the allocator's decay run on idle time). */
const QUIET_S = Number(values.quiet);
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const ALLOCATOR_ENV: Record<string, Record<string, string>> = {
  glibc: {}, arena2: { MALLOC_ARENA_MAX: '2' },
  // a background thread purges freed pages while the process is quiet (jemalloc's default only purges on allocation activity)
  jemalloc: { LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0' },
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;
const LATENESS = 'voice_agent_media_loop_lateness_seconds';

/** p-quantile of the observations between two scrapes: the bucket bound, and a linear estimate inside the bucket. */
function quantile(before: Map<number, number>, after: Map<number, number>, q: number): { le_ms: number; est_ms: number; samples: number } {
  const les = [...after.keys()].sort((a, b) => a - b);
  const d = (le: number): number => (after.get(le) ?? 0) - (before.get(le) ?? 0);
  const total = d(Infinity);
  if (total <= 0) return { le_ms: NaN, est_ms: NaN, samples: 0 };
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const c = d(le);
    if (c >= q * total) {
      if (le === Infinity) return { le_ms: Infinity, est_ms: Infinity, samples: total };
      const frac = c === prevCount ? 1 : (q * total - prevCount) / (c - prevCount);
      return { le_ms: round(le * 1000, 3), est_ms: round((prevLe + frac * (le - prevLe)) * 1000, 3), samples: total };
    }
    prevLe = le;
    prevCount = c;
  }
  return { le_ms: Infinity, est_ms: Infinity, samples: total };
}

function memOf(pid: number): { rss_mb: number; hwm_mb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss_mb: round(kb('VmRSS') / 1024, 1), hwm_mb: round(kb('VmHWM') / 1024, 1) };
}

async function scrape(s: ServerHandle): Promise<string> {
  return (await fetch(`${s.opsUrl}/metrics`)).text();
}

function rejections(m: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['voice_agent_sip_dropped_total', 'voice_agent_sip_refused_total', 'voice_agent_invites_rejected_total']) {
    for (const [labels, v] of Object.entries(series(m, name))) out[`${name.replace('voice_agent_', '')}{${labels}}`] = v;
  }
  out.sip_bans_total = metric(m, 'voice_agent_sip_bans_total');
  return out;
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) !== 0) out[k] = v - (a[k] ?? 0);
  return out;
}

/** Wait until no media session is open and the edge's transactions had time to expire. */
async function settle(s: ServerHandle, maxS: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < maxS * 1000) {
    if (metric(await scrape(s), 'voice_agent_media_sessions') === 0) break;
    await sleep(1000);
  }
  await sleep(QUIET_S * 1000); // Timer J/H leftovers; V8's idle GC and the allocator's decay
  return round((Date.now() - t0) / 1000, 1);
}

async function main(): Promise<void> {
  if (!haveSipp()) throw new Error('sipp not on PATH (Debian package sip-tester)');
  const allocatorEnv = ALLOCATOR_ENV[values.allocator!];
  if (!allocatorEnv) throw new Error(`--allocator must be one of ${Object.keys(ALLOCATOR_ENV).join(', ')}`);
  if (values.allocator === 'jemalloc' && !existsSync(JEMALLOC)) throw new Error(`${JEMALLOC} missing (Debian libjemalloc2)`);
  const rtp = await freePortBlock(RANGES.rtp, 900);
  const tmp = mkdtempSync(path.join(tmpdir(), 'bench-flood-'));
  const server = await startServer({
    CDR_DB: path.join(tmp, 'cdr.sqlite'), DATA_DIR: tmp, ...allocatorEnv,
    TRUNKS: '[{name: lab, sources: [127.0.0.1]}]',
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    RTP_TIMEOUT_SECONDS: '60', MAX_CALL_SECONDS: '300',
    // admitted calls are measured, not refused: load-based admission off (the call limit stays)
    ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0',
  }, { readyTimeoutMs: 60_000, rtpPorts: 900 });
  const pid = server.proc.pid!;
  const target = `127.0.0.1:${server.sipPort}`;
  try {
    await sleep(3000);
    const idle = memOf(pid);
    const idleHeap = metric(await scrape(server), 'voice_agent_nodejs_heap_size_used_bytes');

    // ── Phase A: live calls, then the flood
    const holdMs = (SECONDS + 25) * 1000;
    const live = runSipp('uac-pcmu', { target, calls: CALLS, rate: 10, limit: CALLS, durationMs: holdMs, timeoutSec: Math.ceil(holdMs / 1000) + 40 });
    await sleep(CALLS / 10 * 1000 + 6000); // all up, greetings playing
    const m0 = await scrape(server);
    await sleep(5000);
    const m1 = await scrape(server); // 5 s without the flood
    const cpu1 = metric(m1, 'voice_agent_process_cpu_seconds_total');
    const tFlood = Date.now();
    const flood: SippResult = await runSipp('uac-flood-invite', {
      target, localIp: '127.0.0.2', calls: RATE * SECONDS, rate: RATE, timeoutSec: SECONDS + 30,
      args: ['-nr', '-l', String(RATE * SECONDS)],
    });
    const floodS = (Date.now() - tFlood) / 1000;
    const m2 = await scrape(server);
    const cpu2 = metric(m2, 'voice_agent_process_cpu_seconds_total');
    const liveResult = await live;
    const sent = Number(flood.stats.OutgoingCall ?? flood.stats.TotalCallCreated ?? 0);
    const r1 = rejections(m1);
    const r2 = rejections(m2);
    const absorbed = Object.entries(diff(r1, r2)).filter(([k]) => k.startsWith('sip_dropped_total') || k.startsWith('sip_refused_total')).reduce((a, [, v]) => a + v, 0);
    const absorb = {
      sent: sent || RATE * SECONDS, seconds: round(floodS, 2),
      sent_per_s: Math.round((sent || RATE * SECONDS) / floodS),
      absorbed: absorbed, absorbed_per_s: Math.round(absorbed / floodS),
      server_cpu_pct: round(((cpu2 - cpu1) / floodS) * 100, 1),
      sipp_exit: flood.code,
    };
    const pacing = {
      live_calls: CALLS, live_calls_ok: liveResult.successful, live_calls_failed: liveResult.failed,
      without_flood: { p50: quantile(buckets(m0, LATENESS), buckets(m1, LATENESS), 0.5), p99: quantile(buckets(m0, LATENESS), buckets(m1, LATENESS), 0.99) },
      during_flood: { p50: quantile(buckets(m1, LATENESS), buckets(m2, LATENESS), 0.5), p99: quantile(buckets(m1, LATENESS), buckets(m2, LATENESS), 0.99) },
    };
    console.log(`absorb: ${JSON.stringify(absorb)}`);
    console.log(`pacing: ${JSON.stringify(pacing)}`);
    await settle(server, 60);

    // ── Phase B: floods through the whole stack, memory after each
    const memory: Array<Record<string, number | string | null>> = [];
    let before = await scrape(server);
    for (let i = 1; i <= FLOODS; i++) {
      const t0 = Date.now();
      const f = await runSipp('uac-flood-invite', {
        target, calls: FLOOD_INVITES, rate: FLOOD_RATE, timeoutSec: Math.ceil(FLOOD_INVITES / FLOOD_RATE) + 30,
        args: ['-nr', '-l', String(FLOOD_INVITES)],
      });
      const floodS2 = (Date.now() - t0) / 1000;
      const peak = memOf(pid);
      const settledS = await settle(server, SETTLE_S);
      const after = await scrape(server);
      const mem = memOf(pid);
      memory.push({
        flood: i, invites: FLOOD_INVITES, seconds: round(floodS2, 1), sipp_exit: f.code,
        rss_peak_mb: peak.rss_mb, rss_mb: mem.rss_mb, hwm_mb: mem.hwm_mb,
        heap_used_mb: round(metric(after, 'voice_agent_nodejs_heap_size_used_bytes') / 2 ** 20, 1),
        heap_total_mb: round(metric(after, 'voice_agent_nodejs_heap_size_total_bytes') / 2 ** 20, 1),
        external_mb: round(metric(after, 'voice_agent_nodejs_external_memory_bytes') / 2 ** 20, 1),
        settled_s: settledS,
        answered_then_no_ack: metric(after, 'voice_agent_calls_total', { outcome: 'failed' }) - metric(before, 'voice_agent_calls_total', { outcome: 'failed' }),
        refused: JSON.stringify(diff(rejections(before), rejections(after))),
      });
      console.log(`flood ${i}: ${JSON.stringify(memory.at(-1))}`);
      before = after;
    }
    const final = await scrape(server);
    const rss1 = Number(memory[0]?.rss_mb);
    const rssN = Number(memory.at(-1)?.rss_mb);
    console.log(JSON.stringify({
      bench: 'flood', allocator: values.allocator, loadavg_1m: round(loadavg()[0]!),
      absorb, pacing,
      memory: {
        idle_rss_mb: idle.rss_mb, idle_heap_used_mb: round(idleHeap / 2 ** 20, 1), floods: memory,
        rss_growth_flood1_to_last_mb: round(rssN - rss1, 1), rss_ratio_last_to_first: round(rssN / rss1, 3),
      },
      counters: rejections(final),
    }));
  } finally {
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
