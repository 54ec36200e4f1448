/**
 * Benchmark: call setups per second through the SIP edge, measured with SIPp.
 *
 * For each rate (calls per second) SIPp places `rate × seconds` calls (uac-load scenario:
 * INVITE with PCMU SDP → 200 → ACK → hold while the server streams its greeting → BYE)
 * against one freshly started server. A rate passes when every call succeeded.
 * When a `drachtio` binary is on PATH the same runs go through a real drachtio-server too
 * (EDGE=drachtio) and the ratio is reported.
 *
 *   npm run bench -- sip-setup [--rates 50,100,150,200,250,300] [--seconds 10] [--hold 1000] [--edge builtin|drachtio|both]
 *
 * Last stdout line:
 *   {"bench":"sip-setup","edge":"builtin","max_cps_zero_fail":N,"runs":[{cps,calls,ok,failed,...}],...}
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { drachtioBinary, startDrachtio, type DrachtioHandle } from '../helpers/drachtio.ts';
import { RANGES, freePortBlock } from '../helpers/ports.ts';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp } from '../helpers/sipp.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '50,100,150,200,250,300' },
    seconds: { type: 'string', default: '10' },
    hold: { type: 'string', default: '1000' },
    edge: { type: 'string', default: 'both' },
    'stop-after-failures': { type: 'string', default: '2' },
  },
});
const rates = values.rates!.split(',').map(Number).filter((n) => n > 0);
const seconds = Number(values.seconds);
const holdMs = Number(values.hold);

interface Run {
  cps: number;
  calls: number;
  ok: number;
  failed: number;
  /** SIPp's cumulative call rate: calls / whole run time (includes the last calls' hold, so below `cps`). */
  sipp_call_rate: number;
  rtd_avg_ms: number;
  retransmissions: number;
  unexpected: number;
  timeouts: number;
  wall_s: number;
  sipp_exit: number | null;
  /** 1-minute load average when the run started (other processes on the box skew results). */
  loadavg_1m: number;
}

function hmsToMs(v: string | undefined): number {
  // SIPp durations: HH:MM:SS:uuuuuu
  const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(v ?? '');
  if (!m) return NaN;
  return ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]) / 1000;
}

interface EdgeResult {
  edge: string;
  /** Highest rate such that it and every lower rate had 0 failed calls. */
  max_cps_zero_fail: number;
  /** Highest rate that had 0 failed calls (a lower one may have failed, e.g. under outside load). */
  highest_zero_fail_cps: number;
  runs: Run[];
}

async function benchEdge(edge: 'builtin' | 'drachtio'): Promise<EdgeResult> {
  let drachtio: DrachtioHandle | undefined;
  let server: ServerHandle | undefined;
  const rtp = await freePortBlock(RANGES.rtp, 1000);
  const env: Record<string, string> = { LOG_LEVEL: 'info', RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), RTP_TIMEOUT_SECONDS: '30', MAX_CALL_SECONDS: '120' };
  let target: string;
  if (edge === 'drachtio') {
    drachtio = await startDrachtio();
    server = await startServer({ ...env, EDGE: 'drachtio', DRACHTIO_HOST: '127.0.0.1', DRACHTIO_PORT: String(drachtio.adminPort), DRACHTIO_SECRET: drachtio.secret });
    target = `127.0.0.1:${drachtio.sipPort}`;
  } else {
    server = await startServer(env);
    target = `127.0.0.1:${server.sipPort}`;
  }
  const runs: Run[] = [];
  let best = 0;
  let consecutive = 0;
  let broken = false;
  let failuresInRow = 0;
  try {
    for (const cps of rates) {
      const calls = Math.round(cps * seconds);
      const load = Number(loadavg()[0]!.toFixed(2));
      const t0 = Date.now();
      const r = await runSipp('uac-load', {
        target, calls, rate: cps, durationMs: holdMs, limit: Math.ceil(cps * (holdMs / 1000 + 3) * 2),
        timeoutSec: seconds + Math.ceil(holdMs / 1000) + 30,
      });
      const run: Run = {
        cps, calls, ok: r.successful, failed: r.failed,
        sipp_call_rate: Number(Number(r.stats.CallRate ?? 0).toFixed(1)),
        rtd_avg_ms: Number(hmsToMs(r.stats.ResponseTime1).toFixed(2)),
        retransmissions: Number(r.stats.Retransmissions ?? 0),
        unexpected: Number(r.stats.FailedUnexpectedMessage ?? 0),
        timeouts: Number(r.stats.FailedTimeoutOnRecv ?? 0),
        wall_s: Number(((Date.now() - t0) / 1000).toFixed(1)),
        sipp_exit: r.code,
        loadavg_1m: load,
      };
      runs.push(run);
      process.stderr.write(`sip-setup ${edge}: ${JSON.stringify(run)}\n`);
      if (r.failed === 0 && r.successful === calls) {
        best = Math.max(best, cps);
        if (!broken) consecutive = cps;
        failuresInRow = 0;
      } else {
        broken = true;
        if (r.errors) process.stderr.write(`first errors:\n${r.errors.slice(0, 1500)}\n`);
        if (++failuresInRow >= Number(values['stop-after-failures'])) break;
      }
      await new Promise((res) => setTimeout(res, 2000)); // let calls drain
    }
  } finally {
    await server?.stop();
    await drachtio?.stop();
  }
  return { edge, max_cps_zero_fail: consecutive, highest_zero_fail_cps: best, runs };
}

async function main(): Promise<void> {
  if (!haveSipp()) {
    console.log(JSON.stringify({ bench: 'sip-setup', error: 'sipp not on PATH (Debian package sip-tester)' }));
    process.exit(1);
  }
  const builtin = await benchEdge('builtin');
  const out: Record<string, unknown> = { bench: 'sip-setup', ...builtin, hold_ms: holdMs, seconds_per_rate: seconds };
  if (values.edge !== 'builtin') {
    if (drachtioBinary()) {
      const peer = await benchEdge('drachtio');
      out.peer = peer;
      out.ratio_builtin_vs_drachtio = peer.max_cps_zero_fail ? Number((builtin.max_cps_zero_fail / peer.max_cps_zero_fail).toFixed(2)) : null;
    } else {
      out.peer = { edge: 'drachtio', skipped: 'drachtio not on PATH' };
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((err: unknown) => {
  console.error(err);
  console.log(JSON.stringify({ bench: 'sip-setup', error: String((err as Error)?.message ?? err).split('\n')[0] }));
  process.exit(1);
});
