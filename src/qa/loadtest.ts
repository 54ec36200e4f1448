/**
 * `voice-agent loadtest` — drive a running server with SIPp callers that carry real audio
 * (sip-config/sipp/uac-load-audio.xml playing a pcap made from our own utterances and RFC 4733
 * digits) and report what a QA lead hands on: answered %, setup time p50/p95 (SIPp's own
 * INVITE → 200 timing), calls by outcome, turn gap p50/p95, barge-ins and MOS (from the
 * server's /metrics, before/after deltas), server CPU and RSS over time (sampled from
 * /metrics while the run lasts). Text on stdout, a JSON object as the last line, and in the
 * run directory: report.json, a self-contained report.html with plots (setup-time histogram,
 * CPU and RSS over time), SIPp's statistics CSV, its per-call response times and error trace.
 *
 *   voice-agent loadtest --target HOST:PORT [--ops-url URL] [--profile status|reorder|silent]
 *                        [--cps N] [--concurrency N] [--calls N] [--duration MS] [--dnis N]
 *                        [--caller E164] [--transport udp|tcp] [--out DIR] [--make-media]
 *                        [--impair PROFILE [--impair-seed N]]   (SIPp's SIP and RTP through the impairment relay, UDP)
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { callerStream, rtpPcapPackets, type CallerStep } from './pcap.ts';
import { ImpairRelay, PROFILES, type RelayStats } from './impair.ts';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCENARIO = path.join(ROOT, 'sip-config', 'sipp', 'uac-load-audio.xml');

/** What the SIPp caller says, by profile. */
export const CALLER_PROFILES: Record<string, { describe: string; steps: Array<{ silenceMs: number } | { say: string } | { dtmf: string }> }> = {
  status: {
    describe: 'asks for order status, keys PO 12345#',
    steps: [{ silenceMs: 5000 }, { say: 'What is the status of my order' }, { silenceMs: 4000 }, { dtmf: '12345#' }, { silenceMs: 1000 }],
  },
  reorder: {
    describe: 'reorders twenty of HX-4410, confirms the read-back',
    steps: [{ silenceMs: 5000 }, { say: 'I would like to reorder twenty of H X four four one zero' }, { silenceMs: 8000 }, { say: 'Yes, that is correct.' }, { silenceMs: 1000 }],
  },
  silent: { describe: 'says nothing (signalling and outbound media only)', steps: [{ silenceMs: 2000 }] },
};

export interface LoadtestOptions {
  target?: string;
  opsUrl?: string;
  profile: string;
  cps: number;
  concurrency: number;
  calls: number;
  durationMs: number;
  dnis: string;
  caller: string;
  transport: 'udp' | 'tcp';
  out: string;
  sampleMs: number;
  makeMediaOnly: boolean;
  /** put the impairment relay (src/qa/impair.ts) between SIPp and the server with this profile */
  impair?: string;
  /** seed of the relay @defaultValue 1 */
  impairSeed?: number;
}

/** Parsed Prometheus text: series key (name + sorted labels) → value. */
export type Scrape = Map<string, number>;

export function parseMetrics(text: string): Scrape {
  const m: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const x = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!x) continue;
    const v = Number(x[3]);
    if (Number.isFinite(v) || x[3] === '+Inf') m.set(`${x[1]}${x[2] ?? ''}`, v);
  }
  return m;
}

/** Sum of the series of `name` whose labels match `where` (all given labels equal). */
export function sumSeries(s: Scrape, name: string, where: Record<string, string> = {}): number {
  let sum = 0;
  for (const [k, v] of s) {
    if (!(k === name || k.startsWith(`${name}{`))) continue;
    if (Object.entries(where).every(([l, want]) => k.includes(`${l}="${want}"`))) sum += v;
  }
  return sum;
}

/** Values of one label across the series of `name`, summed per value. */
export function byLabel(s: Scrape, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of s) {
    if (!k.startsWith(`${name}{`)) continue;
    const val = new RegExp(`${label}="([^"]*)"`).exec(k)?.[1];
    if (val !== undefined) out[val] = (out[val] ?? 0) + v;
  }
  return out;
}

/** A quantile from the difference of two scrapes of a histogram (linear within the bucket). */
export function histogramQuantile(before: Scrape, after: Scrape, name: string, q: number): number | null {
  const buckets = new Map<number, number>();
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}_bucket{`)) continue;
    const le = /le="([^"]+)"/.exec(k)?.[1];
    if (!le) continue;
    const bound = le === '+Inf' ? Infinity : Number(le);
    buckets.set(bound, (buckets.get(bound) ?? 0) + v - (before.get(k) ?? 0));
  }
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return prevBound;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevBound + ((rank - prevCount) / inBucket) * (bound - prevBound) : bound;
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

export function quantile(xs: number[], q: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  s.close();
  return p;
}
async function freeTcpPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const p = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}

/** Write the scenario (with the call length) and media/load-caller.pcap for `profile` into `dir`. */
export async function makeMedia(dir: string, profile: string, durationMs: number): Promise<{ pcapMs: number }> {
  const p = CALLER_PROFILES[profile];
  if (!p) throw new Error(`unknown --profile "${profile}" (known: ${Object.keys(CALLER_PROFILES).join(', ')})`);
  mkdirSync(path.join(dir, 'media'), { recursive: true });
  const { FliteTts } = await import('../tts/flite.ts');
  const tts = new FliteTts({ voice: 'kal' });
  const steps: CallerStep[] = [];
  for (const s of p.steps) {
    if ('say' in s) {
      const chunks: Int16Array[] = [];
      for await (const c of tts.synthesize(s.say, { sampleRate: 8000 })) chunks.push(c);
      const pcm = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) { pcm.set(c, o); o += c.length; }
      steps.push({ pcm });
    } else steps.push(s);
  }
  const packets = callerStream(steps);
  writeFileSync(path.join(dir, 'media', 'load-caller.pcap'), rtpPcapPackets(packets));
  const xml = readFileSync(SCENARIO, 'utf8').replace(/(<recv request="BYE" timeout=")\d+(")/, `$1${Math.round(durationMs)}$2`);
  writeFileSync(path.join(dir, 'uac-load-audio.xml'), xml);
  return { pcapMs: (packets.at(-1)?.atMs ?? 0) + 20 };
}

/** One sample of the server while the run lasts (from /metrics). */
export interface Sample { t: number; cpuPct: number | null; rssMb: number | null; active: number | null; fds: number | null; handles: number | null }

async function scrape(opsUrl: string): Promise<Scrape | null> {
  try {
    const r = await fetch(`${opsUrl.replace(/\/$/, '')}/metrics`, { signal: AbortSignal.timeout(2000), headers: process.env.OPS_TOKEN ? { authorization: `Bearer ${process.env.OPS_TOKEN}` } : {} });
    return r.ok ? parseMetrics(await r.text()) : null;
  } catch {
    return null;
  }
}

export interface LoadtestReport {
  profile: string;
  target: string;
  cps: number;
  concurrency: number;
  calls: number;
  durationMs: number;
  sipp: { exitCode: number | null; created: number; successful: number; failed: number; answered: number; answeredPct: number; setupMs: { p50: number | null; p95: number | null; max: number | null } };
  server: null | {
    outcomes: Record<string, number>;
    turnGapMs: { p50: number | null; p95: number | null };
    setupMs: { p50: number | null; p95: number | null };
    bargeIns: number;
    mos: { mean: number | null; p50: number | null };
    cpuPct: { mean: number | null; max: number | null };
    rssMb: { start: number | null; end: number | null; max: number | null };
  };
  /** the impairment relay's counters when --impair was given */
  network: RelayStats | null;
  samples: Sample[];
  setupSamplesMs: number[];
  dir: string;
}

/** Run one load test; resolves to the report (also written as report.json and report.html). */
export async function runLoadtest(o: LoadtestOptions, log: (s: string) => void = () => {}, onSample?: (s: Sample) => void): Promise<LoadtestReport> {
  mkdirSync(o.out, { recursive: true });
  const { pcapMs } = await makeMedia(o.out, o.profile, o.durationMs);
  if (o.durationMs < pcapMs + 1000) log(`note: --duration ${o.durationMs} ms is shorter than the caller's audio (${pcapMs} ms)`);
  const target = o.target!;
  const host = target.split(':')[0]!;
  // a bad network in between: SIPp talks to the relay, the relay to the server
  let relay: ImpairRelay | undefined;
  let sippTarget = target;
  if (o.impair) {
    relay = new ImpairRelay({ host: /^127\./.test(host) ? '127.0.0.1' : '0.0.0.0', target: { host, port: Number(target.split(':')[1]) }, profile: o.impair, seed: o.impairSeed ?? 1 });
    await relay.start();
    sippTarget = `${/^127\./.test(host) ? '127.0.0.1' : host}:${relay.sipPort}`;
    log(`impairment relay ${o.impair} (seed ${o.impairSeed ?? 1}) on ${sippTarget} → ${target}`);
  }
  const localIp = /^127\./.test(host) ? '127.0.0.1' : undefined;
  const before = o.opsUrl ? await scrape(o.opsUrl) : null;
  if (o.opsUrl && !before) log(`warning: ${o.opsUrl}/metrics did not answer: no server-side figures`);
  const samples: Sample[] = [];
  const t0 = Date.now();
  let lastCpu = before ? sumSeries(before, 'voice_agent_process_cpu_seconds_total') : null;
  let lastT = t0;
  const sampler = o.opsUrl ? setInterval(() => {
    void scrape(o.opsUrl!).then((s) => {
      if (!s) return;
      const now = Date.now();
      const cpu = sumSeries(s, 'voice_agent_process_cpu_seconds_total');
      const pct = lastCpu !== null ? Math.round(((cpu - lastCpu) / ((now - lastT) / 1000)) * 1000) / 10 : null;
      lastCpu = cpu;
      lastT = now;
      samples.push({
        t: Math.round((now - t0) / 100) / 10, cpuPct: pct, rssMb: Math.round(sumSeries(s, 'voice_agent_process_resident_memory_bytes') / 1e5) / 10,
        active: sumSeries(s, 'voice_agent_calls_active'), fds: sumSeries(s, 'voice_agent_process_open_fds'), handles: sumSeries(s, 'voice_agent_nodejs_active_handles_total'),
      });
      onSample?.(samples.at(-1)!);
    });
  }, o.sampleMs) : undefined;

  const [sipPort, mediaPort, ctlPort] = await Promise.all([o.transport === 'tcp' ? freeTcpPort() : freeUdpPort(), freeUdpPort(), freeUdpPort()]);
  const args = [
    sippTarget, '-sf', 'uac-load-audio.xml', '-s', o.dnis, '-key', 'caller', o.caller,
    '-r', String(o.cps), '-l', String(o.concurrency), '-m', String(o.calls),
    '-p', String(sipPort), '-mp', String(mediaPort - (mediaPort % 2)), '-cp', String(ctlPort),
    '-t', o.transport === 'tcp' ? 't1' : 'u1',
    '-trace_stat', '-stf', 'stats.csv', '-fd', '1', '-trace_rtt', '-rtt_freq', '1', '-trace_err', '-error_file', 'errors.log',
    '-timeout', `${Math.ceil(o.calls / o.cps + o.durationMs / 1000 + 60)}s`, '-nostdin',
    ...(localIp ? ['-i', localIp, '-mi', localIp] : []),
  ];
  log(`sipp ${args.join(' ')}`);
  const exitCode = await new Promise<number | null>((resolve) => {
    const p = spawn('sipp', args, { cwd: o.out, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e) => { log(`sipp did not start: ${e.message} (Debian package sip-tester)`); resolve(null); });
    p.on('exit', (c) => { if (err.trim()) writeFileSync(path.join(o.out, 'sipp-stderr.log'), err); resolve(c); });
  });
  // let the server finish its records of the last calls
  if (o.opsUrl) await new Promise((r) => setTimeout(r, 1500));
  if (sampler) clearInterval(sampler);
  const after = o.opsUrl ? await scrape(o.opsUrl) : null;
  const network = relay ? relay.stats() : null;
  await relay?.stop();

  // SIPp's statistics: the last line of the CSV, and every call's INVITE → 200 time
  const files = readdirSync(o.out);
  const statFile = files.find((f) => f === 'stats.csv') ?? files.find((f) => f.endsWith('_.csv'));
  let created = 0, successful = 0, failed = 0;
  if (statFile) {
    const lines = readFileSync(path.join(o.out, statFile), 'utf8').trim().split('\n');
    const head = lines[0]!.split(';');
    const last = lines.at(-1)!.split(';');
    const col = (n: string): number => Number(last[head.indexOf(n)] ?? 0);
    created = col('TotalCallCreated');
    successful = col('SuccessfulCall(C)');
    failed = col('FailedCall(C)');
  }
  const setupSamplesMs: number[] = [];
  const rttFile = files.find((f) => f.endsWith('_rtt.csv'));
  if (rttFile) {
    // Date_ms;response_time_ms;rtd_no
    for (const line of readFileSync(path.join(o.out, rttFile), 'utf8').split('\n').slice(1)) {
      const f = line.split(';');
      const v = Number(f[1]);
      if (f.length >= 3 && f[1] !== '' && Number.isFinite(v)) setupSamplesMs.push(v);
    }
  }
  const answered = setupSamplesMs.length;
  const sipp = {
    exitCode, created, successful, failed, answered,
    answeredPct: created ? Math.round((answered / created) * 1000) / 10 : 0,
    setupMs: { p50: quantile(setupSamplesMs, 0.5), p95: quantile(setupSamplesMs, 0.95), max: setupSamplesMs.length ? Math.max(...setupSamplesMs) : null },
  };
  let server: LoadtestReport['server'] = null;
  if (before && after) {
    const outcomes: Record<string, number> = {};
    const a = byLabel(after, 'voice_agent_calls_total', 'outcome');
    const b = byLabel(before, 'voice_agent_calls_total', 'outcome');
    for (const [k, v] of Object.entries(a)) if (v - (b[k] ?? 0) > 0) outcomes[k] = v - (b[k] ?? 0);
    const ms = (x: number | null): number | null => (x === null ? null : Math.round(x * 10000) / 10);
    const mosCount = sumSeries(after, 'voice_agent_call_mos_count') - sumSeries(before, 'voice_agent_call_mos_count');
    const mosSum = sumSeries(after, 'voice_agent_call_mos_sum') - sumSeries(before, 'voice_agent_call_mos_sum');
    const cpu = samples.map((s) => s.cpuPct).filter((x): x is number => x !== null);
    const rss = samples.map((s) => s.rssMb).filter((x): x is number => x !== null);
    server = {
      outcomes,
      turnGapMs: { p50: ms(histogramQuantile(before, after, 'voice_agent_turn_gap_seconds', 0.5)), p95: ms(histogramQuantile(before, after, 'voice_agent_turn_gap_seconds', 0.95)) },
      setupMs: { p50: ms(histogramQuantile(before, after, 'voice_agent_call_setup_seconds', 0.5)), p95: ms(histogramQuantile(before, after, 'voice_agent_call_setup_seconds', 0.95)) },
      bargeIns: sumSeries(after, 'voice_agent_barge_ins_total') - sumSeries(before, 'voice_agent_barge_ins_total'),
      mos: { mean: mosCount > 0 ? Math.round((mosSum / mosCount) * 100) / 100 : null, p50: histogramQuantile(before, after, 'voice_agent_call_mos', 0.5) },
      cpuPct: { mean: cpu.length ? Math.round((cpu.reduce((x, y) => x + y, 0) / cpu.length) * 10) / 10 : null, max: cpu.length ? Math.max(...cpu) : null },
      rssMb: { start: rss[0] ?? null, end: rss.at(-1) ?? null, max: rss.length ? Math.max(...rss) : null },
    };
    if (server.mos.p50 !== null) server.mos.p50 = Math.round(server.mos.p50 * 100) / 100;
  }
  const report: LoadtestReport = {
    profile: o.profile, target, cps: o.cps, concurrency: o.concurrency, calls: o.calls, durationMs: o.durationMs,
    sipp, server, network, samples, setupSamplesMs, dir: o.out,
  };
  writeFileSync(path.join(o.out, 'report.json'), JSON.stringify(report, null, 2));
  writeFileSync(path.join(o.out, 'report.html'), reportHtml(report));
  return report;
}

/** The report as text lines. */
export function reportText(r: LoadtestReport): string {
  const s = r.server;
  const lines = [
    `load test: ${r.calls} calls, profile ${r.profile} (${CALLER_PROFILES[r.profile]?.describe}), ${r.cps} calls/s, at most ${r.concurrency} up, ${r.durationMs} ms each, against ${r.target}`,
    `answered: ${r.sipp.answered}/${r.sipp.created} (${r.sipp.answeredPct} %); SIPp successful ${r.sipp.successful}, failed ${r.sipp.failed}`,
    `setup time (SIPp INVITE → 200): p50 ${r.sipp.setupMs.p50} ms, p95 ${r.sipp.setupMs.p95} ms, max ${r.sipp.setupMs.max} ms`,
  ];
  if (r.network) {
    const n = r.network;
    lines.push(`network (impair ${n.profile}, seed ${n.seed}): caller → server ${n.up.forwarded}/${n.up.received} packets forwarded, ${n.up.dropped} dropped, ${n.up.duplicated} duplicated, ${n.up.reordered} reordered; server → caller ${n.down.dropped} dropped`);
  }
  if (s) {
    lines.push(
      `outcomes (server): ${Object.entries(s.outcomes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      `turn gap (server): p50 ${s.turnGapMs.p50} ms, p95 ${s.turnGapMs.p95} ms; barge-ins ${s.bargeIns}; MOS mean ${s.mos.mean}`,
      `server CPU: mean ${s.cpuPct.mean} %, max ${s.cpuPct.max} % of one core; RSS ${s.rssMb.start} → ${s.rssMb.end} MB (max ${s.rssMb.max})`,
    );
  } else lines.push('server: no /metrics (pass --ops-url for outcomes, turn gap, MOS, CPU and RSS)');
  lines.push(`files: ${r.dir}/report.html, report.json, stats.csv, SIPp rtt and error logs`);
  return lines.join('\n');
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** An SVG line plot of (x, y) points. */
function linePlot(title: string, pts: Array<[number, number]>, xLabel: string, yLabel: string): string {
  const W = 560, H = 220, L = 50, B = 30, T = 24, R = 10;
  if (!pts.length) return `<figure><figcaption>${esc(title)}: no samples</figcaption></figure>`;
  const xMax = Math.max(1, ...pts.map((p) => p[0]));
  const yMax = Math.max(1, ...pts.map((p) => p[1])) * 1.1;
  const X = (x: number): number => L + (x / xMax) * (W - L - R);
  const Y = (y: number): number => H - B - (y / yMax) * (H - B - T);
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
<text x="${L - 4}" y="${Y(yMax / 1.1) + 4}" text-anchor="end" font-size="10">${(yMax / 1.1).toFixed(1)}</text><text x="${L - 4}" y="${H - B + 4}" text-anchor="end" font-size="10">0</text>
<text x="${W - R}" y="${H - 8}" text-anchor="end" font-size="10">${xMax.toFixed(0)} ${esc(xLabel)}</text><text x="12" y="${T + 10}" font-size="10">${esc(yLabel)}</text>
<path d="${d}" fill="none" stroke="#2a6fdb" stroke-width="1.8"/></svg></figure>`;
}

/** An SVG histogram of values. */
function histogram(title: string, xs: number[], unit: string): string {
  const W = 560, H = 220, L = 50, B = 30, T = 24, R = 10;
  if (!xs.length) return `<figure><figcaption>${esc(title)}: no samples</figcaption></figure>`;
  const max = Math.max(...xs);
  const bins = 20;
  const width = Math.max(1, Math.ceil(max / bins));
  const counts = Array(bins).fill(0) as number[];
  for (const x of xs) counts[Math.min(bins - 1, Math.floor(x / width))]!++;
  const cMax = Math.max(...counts);
  const bw = (W - L - R) / bins;
  const bars = counts.map((c, i) => {
    const h = (c / cMax) * (H - B - T);
    return `<rect x="${(L + i * bw + 1).toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="#3b9c6d"><title>${i * width}–${(i + 1) * width} ${unit}: ${c}</title></rect>`;
  }).join('');
  return `<figure><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${esc(title)}</text>${bars}
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/>
<text x="${L}" y="${H - 8}" font-size="10">0</text><text x="${W - R}" y="${H - 8}" text-anchor="end" font-size="10">${bins * width} ${esc(unit)}</text>
<text x="${L - 4}" y="${T + 10}" text-anchor="end" font-size="10">${cMax}</text></svg></figure>`;
}

/** One self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched). */
export function reportHtml(r: LoadtestReport): string {
  const rows = reportText(r).split('\n').map((l) => `<li>${esc(l)}</li>`).join('\n');
  const cpu = r.samples.filter((s) => s.cpuPct !== null).map((s) => [s.t, s.cpuPct!] as [number, number]);
  const rss = r.samples.filter((s) => s.rssMb !== null).map((s) => [s.t, s.rssMb!] as [number, number]);
  const active = r.samples.filter((s) => s.active !== null).map((s) => [s.t, s.active!] as [number, number]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>voice-agent load test — ${esc(r.profile)} × ${r.calls}</title>
<style>body{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}ul{padding-left:1.2em}figure{display:inline-block;margin:.5em 1em .5em 0}pre{background:#f4f4f4;padding:.6em;overflow:auto}</style></head>
<body><h1>voice-agent load test</h1>
<ul>${rows}</ul>
${histogram('Setup time (INVITE → 200), per call', r.setupSamplesMs, 'ms')}
${linePlot('Server CPU, % of one core', cpu, 's', '%')}
${linePlot('Server RSS, MB', rss, 's', 'MB')}
${linePlot('Calls up', active, 's', 'calls')}
<h2>Machine-readable</h2><pre>${esc(JSON.stringify({ ...r, samples: undefined, setupSamplesMs: undefined }, null, 2))}</pre>
</body></html>
`;
}

function usage(msg?: string): number {
  if (msg) process.stderr.write(`voice-agent loadtest: ${msg}\n`);
  process.stderr.write(`usage: voice-agent loadtest --target HOST:PORT [--ops-url URL] [--profile ${Object.keys(CALLER_PROFILES).join('|')}]
         [--cps N] [--concurrency N] [--calls N] [--duration MS] [--dnis N] [--caller E164]
         [--transport udp|tcp] [--out DIR] [--sample-ms MS] [--impair PROFILE [--impair-seed N]]
       voice-agent loadtest --make-media [--profile P] [--duration MS] --out DIR   (scenario + pcap only, for sipp by hand)
`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const a: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--help' || k === '-h') return usage(), 0;
    if (k === '--make-media') { a['make-media'] = '1'; continue; }
    if (!k.startsWith('--')) return usage(`unexpected argument "${k}"`);
    a[k.slice(2)] = argv[++i] ?? '';
  }
  const num = (k: string, d: number, min = 1): number => {
    if (a[k] === undefined) return d;
    const n = Number(a[k]);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${k} must be a number ≥ ${min}, got "${a[k]}"`);
    return n;
  };
  let o: LoadtestOptions;
  try {
    o = {
      target: a.target, opsUrl: a['ops-url'], profile: a.profile ?? 'status',
      cps: num('cps', 2, 0.01), concurrency: num('concurrency', 20), calls: num('calls', 20), durationMs: num('duration', 25000, 1000),
      dnis: a.dnis ?? '18005550100', caller: a.caller ?? '+14155550142',
      transport: (a.transport ?? 'udp') as 'udp' | 'tcp',
      out: path.resolve(a.out ?? path.join('var', 'loadtest', new Date().toISOString().replace(/[:.]/g, '-'))),
      sampleMs: num('sample-ms', 1000, 100), makeMediaOnly: a['make-media'] === '1',
      ...(a.impair !== undefined ? { impair: a.impair, impairSeed: num('impair-seed', 1, 0) } : {}),
    };
    if (o.impair !== undefined && o.transport !== 'udp') throw new Error('--impair relays UDP only: leave --transport at udp');
    if (o.impair !== undefined && !PROFILES[o.impair]) throw new Error(`unknown --impair profile "${o.impair}" (known: ${Object.keys(PROFILES).join(', ')})`);
    if (!CALLER_PROFILES[o.profile]) throw new Error(`unknown --profile "${o.profile}" (known: ${Object.keys(CALLER_PROFILES).join(', ')})`);
    if (!['udp', 'tcp'].includes(o.transport)) throw new Error(`--transport must be udp or tcp, got "${a.transport}"`);
    if (!o.makeMediaOnly && !/^[^:\s]+:\d+$/.test(o.target ?? '')) throw new Error(`--target must be HOST:PORT, got "${o.target ?? ''}"`);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (o.makeMediaOnly) {
    const { pcapMs } = await makeMedia(o.out, o.profile, o.durationMs);
    copyFileSync(SCENARIO, path.join(o.out, 'uac-load-audio.original.xml'));
    process.stdout.write(`wrote ${o.out}/uac-load-audio.xml and media/load-caller.pcap (${pcapMs} ms of caller audio, profile ${o.profile})\n`);
    return 0;
  }
  const report = await runLoadtest(o, (s) => process.stderr.write(`${s}\n`));
  process.stdout.write(reportText(report) + '\n');
  const { samples: _s, setupSamplesMs: _x, ...json } = report;
  process.stdout.write(JSON.stringify(json) + '\n');
  // SIPp's own convention: 0 every call succeeded, 1 some failed; anything else: it could not run
  return report.sipp.exitCode === 0 ? 0 : report.sipp.exitCode === 1 ? 1 : 2;
}
