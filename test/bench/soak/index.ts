/**
 * `npm run bench -- soak [--minutes 10] [--concurrency 12] [--profile status] [--duration MS]`:
 * calls at a steady concurrency for a set time (SIPp with real caller audio through
 * `voice-agent loadtest`), against a server on embedded defaults started here, and the
 * server's RSS, open file descriptors, active handles, UDP sockets and CPU sampled all along.
 * A leak shows as growth: the report compares the first and last minute and fits a line
 * (least squares, after a one-minute warm-up) to each, per hour. JSON last line.
 */
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../../helpers/server.ts';
import { startTestRedis } from '../../helpers/redis.ts';
import { runLoadtest, type Sample } from '../../../src/qa/loadtest.ts';

const arg = (k: string, d: number): number => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const profile = (() => { const i = process.argv.indexOf('--profile'); return i > 0 ? process.argv[i + 1]! : 'status'; })();
const minutes = arg('minutes', 10);
const concurrency = arg('concurrency', 12);
const durationMs = arg('duration', 16000);
const cps = concurrency / (durationMs / 1000 + 1);
const calls = Math.max(1, Math.floor(minutes * 60 * cps));

/** UDP sockets the process holds (its socket fds matched against /proc/net/udp{,6}). */
function udpSockets(pid: number): number {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch { /* closed meanwhile */ }
    }
  } catch { return -1; }
  let n = 0;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
        const inode = line.trim().split(/\s+/)[9];
        if (inode && inodes.has(inode)) n++;
      }
    } catch { /* no IPv6 */ }
  }
  return n;
}

/** Slope per hour of y over t (seconds) by least squares. */
function slopePerHour(pts: Array<[number, number]>): number | null {
  if (pts.length < 3) return null;
  const n = pts.length;
  const mx = pts.reduce((a, p) => a + p[0], 0) / n;
  const my = pts.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0, sxx = 0;
  for (const [x, y] of pts) { sxy += (x - mx) * (y - my); sxx += (x - mx) ** 2; }
  return sxx ? Math.round((sxy / sxx) * 3600 * 100) / 100 : null;
}

const tmp = mkdtempSync(path.join(tmpdir(), 'soak-'));
const redis = await startTestRedis();
const server = await startServer({
  CDR_DB: path.join(tmp, 'cdr.sqlite'), CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
  VOICE_AGENT_NOW: '2026-12-02T16:00:00Z', VOICE_MEDIA_RT_PRIORITY: '0', LOG_LEVEL: 'info',
}, { readyTimeoutMs: 60000, rtpPorts: Math.max(200, concurrency * 4) });
const pid = server.proc.pid!;
const rows: Array<Sample & { udp: number }> = [];
console.log(`soak: ${minutes} min, ${concurrency} calls up (${cps.toFixed(2)} calls/s, ${durationMs} ms each, ${calls} calls), profile ${profile}, server pid ${pid}`);
try {
  const report = await runLoadtest({
    target: `127.0.0.1:${server.sipPort}`, opsUrl: server.opsUrl, profile, cps, concurrency, calls, durationMs,
    dnis: '18005550100', caller: '+14155550142', transport: 'udp', out: path.join(tmp, 'run'), sampleMs: 5000, makeMediaOnly: false,
  }, (s) => console.error(s), (s) => {
    const row = { ...s, udp: udpSockets(pid) };
    rows.push(row);
    if (rows.length % 12 === 0) console.log(`t=${s.t}s rss=${s.rssMb}MB fds=${s.fds} handles=${s.handles} udp=${row.udp} calls=${s.active} cpu=${s.cpuPct}%`);
  });
  const warm = rows.filter((r) => r.t >= 60 && r.t <= minutes * 60);
  const first = rows.filter((r) => r.t >= 60 && r.t < 120);
  const last = rows.filter((r) => r.t > minutes * 60 - 60 && r.t <= minutes * 60);
  const avg = (xs: Array<number | null>): number | null => { const v = xs.filter((x): x is number => typeof x === 'number'); return v.length ? Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 10) / 10 : null; };
  const metric = (k: 'rssMb' | 'fds' | 'handles' | 'udp' | 'cpuPct') => ({
    firstMinute: avg(first.map((r) => r[k])), lastMinute: avg(last.map((r) => r[k])),
    slopePerHour: slopePerHour(warm.filter((r) => typeof r[k] === 'number').map((r) => [r.t, r[k] as number])),
  });
  const out = {
    bench: 'soak', minutes, concurrency, profile, calls: report.sipp.created, answeredPct: report.sipp.answeredPct, failed: report.sipp.failed,
    outcomes: report.server?.outcomes, rssMb: metric('rssMb'), fds: metric('fds'), handles: metric('handles'), udpSockets: metric('udp'), cpuPct: metric('cpuPct'),
  };
  console.log(`answered ${report.sipp.answered}/${report.sipp.created}, failed ${report.sipp.failed}; outcomes ${JSON.stringify(report.server?.outcomes)}`);
  for (const k of ['rssMb', 'fds', 'handles', 'udpSockets', 'cpuPct'] as const) console.log(`${k.padEnd(10)} first minute ${out[k].firstMinute}, last minute ${out[k].lastMinute}, slope ${out[k].slopePerHour} per hour`);
  console.log(JSON.stringify(out));
} finally {
  await server.stop();
  await redis.stop();
  rmSync(tmp, { recursive: true, force: true });
}
