/**
 * Benchmark: overload admission at twice the call limit — does every INVITE get a final
 * answer, and do the admitted calls keep their outbound pacing?
 *
 *   npm run bench -- admission [--limit 100] [--factor 2] [--rate 40] [--seconds 12]
 *
 * Starts the real server (built-in edge, VAD on) with MAX_CALLS=limit, then SIPp places
 * limit × factor calls (sip-config/sipp/uac-admission.xml: caller audio from a pcap, each
 * admitted call held `seconds`) at `rate` calls/s. Measured from outside:
 * - every call's final response (SIPp logs `admitted` / `refused Retry-After: …`), calls that
 *   got neither fail in SIPp's statistics;
 * - the server's `voice_agent_media_loop_lateness_seconds` histogram from /metrics, read before
 *   and after the run: the p99 send lateness of the admitted calls' RTP during the run
 *   (bucket resolution: 0.1, 0.25, 0.5, 1, 2, 5, 10 … ms — reported as "under" the bound);
 * - refusals counted by reason on /metrics.
 * Last stdout line is JSON:
 *   {"bench":"admission","limit":N,"offered":M,"admitted":A,"refused":R,"unanswered":U,
 *    "retry_after_s":[…],"pacing_p99_under_ms":x,"late_over_2ms_pct":y,"rejected_by_reason":{…}}
 */
import { parseArgs } from 'node:util';
import { startServer } from '../helpers/server.ts';
import { runSipp } from '../helpers/sipp.ts';

const { values } = parseArgs({
  options: {
    limit: { type: 'string', default: '100' },
    factor: { type: 'string', default: '2' },
    rate: { type: 'string', default: '40' },
    seconds: { type: 'string', default: '12' },
  },
});
const LIMIT = Number(values.limit);
const OFFERED = Math.round(LIMIT * Number(values.factor));
const RATE = Number(values.rate);
const HOLD_S = Number(values.seconds);

interface Hist { bounds: number[]; cum: number[]; count: number }

function histogram(text: string, name: string): Hist {
  const bounds: number[] = [];
  const cum: number[] = [];
  let count = 0;
  for (const line of text.split('\n')) {
    const b = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (b) {
      if (b[1] === '+Inf') count = Number(b[2]);
      else {
        bounds.push(Number(b[1]));
        cum.push(Number(b[2]));
      }
    }
  }
  return { bounds, cum, count };
}

function counters(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*${label}="([^"]+)"[^}]*\\} (\\S+)$`, 'gm'))) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

async function main(): Promise<void> {
  const server = await startServer({ MAX_CALLS: String(LIMIT), LOG_LEVEL: 'warn' }, { rtpPorts: Math.max(200, 2 * OFFERED + 20) });
  try {
    const metrics = async (): Promise<string> => (await fetch(`${server.opsUrl}/metrics`)).text();
    const name = 'voice_agent_media_loop_lateness_seconds';
    const before = histogram(await metrics(), name);
    const r = await runSipp('uac-admission', {
      target: `127.0.0.1:${server.sipPort}`, calls: OFFERED, limit: OFFERED, rate: RATE,
      durationMs: HOLD_S * 1000, timeoutSec: Math.ceil(OFFERED / RATE + HOLD_S + 30),
    });
    const text = await metrics();
    const after = histogram(text, name);
    const n = after.count - before.count;
    const delta = after.cum.map((c, i) => c - (before.cum[i] ?? 0));
    const p99Idx = delta.findIndex((c) => c >= 0.99 * n);
    const over2 = n > 0 ? (n - (delta[after.bounds.indexOf(0.002)] ?? n)) / n : 0;
    const admitted = (r.log.match(/^.*admitted$/gm) ?? []).length;
    const refusedLines = r.log.match(/refused Retry-After: *\d+/g) ?? [];
    const retry = refusedLines.map((l) => Number(/(\d+)$/.exec(l)?.[1]));
    const result = {
      bench: 'admission',
      limit: LIMIT,
      offered: OFFERED,
      admitted,
      refused: refusedLines.length,
      unanswered: OFFERED - admitted - refusedLines.length,
      sipp_exit: r.code,
      retry_after_s: [...new Set(retry)].sort((a, b) => a - b),
      packets_measured: n,
      pacing_p99_under_ms: p99Idx >= 0 ? after.bounds[p99Idx]! * 1000 : null,
      late_over_2ms_pct: Math.round(over2 * 10000) / 100,
      rejected_by_reason: counters(text, 'voice_agent_invites_rejected_total', 'reason'),
    };
    process.stderr.write(`admission: limit ${LIMIT}, offered ${OFFERED} at ${RATE}/s: admitted ${admitted}, refused ${refusedLines.length} (Retry-After ${result.retry_after_s.join(',')} s), unanswered ${result.unanswered}; ` +
      `RTP send lateness p99 under ${result.pacing_p99_under_ms} ms over ${n} packets, ${result.late_over_2ms_pct} % over 2 ms\n`);
    console.log(JSON.stringify(result));
  } finally {
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  console.log(JSON.stringify({ bench: 'admission', error: String((e as Error)?.message ?? e).split('\n')[0] }));
  process.exit(1);
});
