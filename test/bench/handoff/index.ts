/**
 * Benchmark: warm hand-off to a human rep, end to end over SIP.
 *
 *   npm run bench -- handoff [--calls 20] [--concurrency 1,10] [--warmup 1] [--tone-ms 400] [--stagger 100]
 *                            [--full-greeting] [--timeout 600]
 *
 * One server (built-in SIP edge, embedded defaults, REP_URI → a SIPp UAS playing the rep's
 * phone with sip-config/sipp/uas-rep-answer.xml and `-rtp_echo`; one SIPp process per pass
 * answers all of its calls: `-m calls -l concurrency`). Per pass `--calls` callers (Dana
 * Reyes, the demo tenant's DID, the product's test caller src/cli/caller.ts) with at most
 * K in flight (the first K starts spaced `--stagger` ms apart), each one:
 *   the greeting starts → DTMF 0 (cuts the greeting, "press 0 for a person"; with
 *   `--full-greeting` only after all of it, as test/e2e/handoff.test.ts does — ~7 s more
 *   per call) → the server dials the rep (screen-pop headers) → SIPp rings 300 ms,
 *   answers → native bridge → the rest of the handshake plays (the caller waits for the
 *   server's `msg=transfer`, logged once it has played out, then for 300 ms of quiet) → the
 *   caller sends a 1.4 kHz tone → SIPp echoes it → quiet for 300 ms → the caller hangs up.
 *
 * Measured per hand-off:
 *   trigger_to_ring_ms  server log `msg="hand-off connected" … triggerToRingMs=` (hand-off
 *                       decided → 180 from the rep; Date.now() in the server, 1 ms steps),
 *   answer_to_bridge_ms the same line's `bridgeMs=` (200 from the rep → native bridge up),
 *   trigger_to_answer_ms its `answerMs=` (includes SIPp's fixed 300 ms ring),
 *   echo_rtt_ms         caller side: the first tone packet leaving the caller's socket →
 *                       arrival of the first received packet whose audio is the tone
 *                       (Goertzel share of 1.4 kHz > 0.3 and RMS > 200): caller → server
 *                       (jitter buffer) → bridge → rep leg → SIPp echo → rep leg → bridge →
 *                       caller, both server legs' packetization included.
 * A hand-off failed when the server did not log `hand-off connected` for the call (it logged
 * `hand-off failed`, the call did not set up, no greeting, or a timeout); a connected call
 * whose tone never came back counts in `no_echo`. Percentiles are nearest-rank (p95 of 20
 * samples is the 19th smallest).
 *
 * `--warmup` hand-offs run first on the same server (own SIPp) and are not reported: the
 * first call of a fresh server pays for module loading and first synthesis.
 *
 * Progress on stderr. Last stdout line: JSON
 *   {"bench":"handoff","runs":[{"concurrency":1,"calls":20,"failed_handoffs":0,"no_echo":0,
 *    "trigger_to_ring_ms":{"p50","p95","max","n"},"answer_to_bridge_ms":{…},"echo_rtt_ms":{…},…}],…}
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeAudio, placeCall, type CallResult } from '../../helpers/caller.ts';
import { freePort, freePortBlock, type PortRange } from '../../helpers/ports.ts';
import { startServer, type ServerHandle } from '../../helpers/server.ts';
import { SIPP_DIR, haveSipp, scenarioPath } from '../../helpers/sipp.ts';
import { nowMs, rmsLevel } from '../../../src/cli/rtp.ts';
import { tone, toneShare } from '../../helpers/audio.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '1,10' },
    warmup: { type: 'string', default: '1' },
    'tone-ms': { type: 'string', default: '400' },
    /** listen to the whole greeting before keying 0 (default: key 0 as soon as the agent speaks) */
    'full-greeting': { type: 'boolean', default: false },
    stagger: { type: 'string', default: '100' },
    /** give up (kill everything, exit 1) after this many seconds */
    timeout: { type: 'string', default: '600' },
  },
});
const CALLS = Math.max(1, Number(values.calls));
const CONCURRENCY = values.concurrency!.split(',').map(Number).filter((n) => n > 0);
const WARMUP = Math.max(0, Number(values.warmup));
const TONE_MS = Math.max(100, Number(values['tone-ms']));
const STAGGER_MS = Math.max(0, Number(values.stagger));
const FULL_GREETING = values['full-greeting'] === true;

// Port ranges of this bench (apart from the test suites' ones).
const SIP: PortRange = { min: 18600, max: 18699 };
const CONTROL: PortRange = { min: 19600, max: 19699 };
const REP_SIP: PortRange = { min: 18800, max: 18899 };
const SERVER_RTP: PortRange = { min: 36000, max: 36799 };
const CALLER_RTP: PortRange = { min: 36800, max: 36999 };
const SIPP_MEDIA: PortRange = { min: 37000, max: 37999 };

const DANA = '+14155550142';
/** a Wednesday 08:00 in California: Acme's business hours, so DTMF 0 reaches the rep */
const OPEN_AT = '2026-12-02T16:00:00Z';
const TONE_HZ = 1400;
/** a received packet is the echoed tone when 1.4 kHz holds this share of its energy (and it is voiced) */
const TONE_SHARE = 0.3;
const VOICED_RMS = 200;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** nearest-rank percentile */
const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : NaN;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const dist = (v: number[]): { p50: number; p95: number; max: number; n: number } => ({
  p50: r1(pct(v, 50)), p95: r1(pct(v, 95)), max: r1(v.length ? Math.max(...v) : NaN), n: v.length,
});

const tmp = mkdtempSync(path.join(tmpdir(), 'bench-handoff-'));
let server: ServerHandle | undefined;
const sippProcs = new Set<ChildProcess>();
const cleanup = (): void => {
  for (const p of sippProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
};
process.once('exit', cleanup);

const watchdog = setTimeout(() => {
  log(`handoff: timed out after ${values.timeout} s`);
  server?.proc.kill('SIGKILL');
  process.exit(1);
}, Number(values.timeout) * 1000);
watchdog.unref();

// ---- audio ------------------------------------------------------------------------------

const TONE = tone(TONE_HZ, TONE_MS);

// ---- the rep's phone (SIPp) -------------------------------------------------------------

interface Rep {
  port: number;
  /** SIPp's exit (code or signal name) and its counters; kills SIPp if still running after `graceMs` */
  finish(graceMs?: number): Promise<{ exit: number | string | null; successful: number; failed: number; errors: string }>;
}

function lastStats(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return {};
  const head = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const out: Record<string, string> = {};
  head.forEach((h, i) => {
    if (h.endsWith('(C)')) out[h.slice(0, -3)] = last[i] ?? '';
  });
  return out;
}

/** One SIPp UAS on `port` answering `calls` rep calls, `limit` at a time, echoing their RTP. */
async function startRep(port: number, calls: number, limit: number, timeoutSec: number): Promise<Rep> {
  const mediaPort = await freePort(SIPP_MEDIA, 'udp', 4);
  const controlPort = await freePort(CONTROL, 'udp');
  const dir = mkdtempSync(path.join(tmp, 'sipp-'));
  const stats = path.join(dir, 'stats.csv');
  const errors = path.join(dir, 'errors.log');
  const args = [
    '-sf', scenarioPath('uas-rep-answer'),
    '-i', '127.0.0.1', '-mi', '127.0.0.1', '-p', String(port), '-mp', String(mediaPort), '-cp', String(controlPort),
    '-t', 'u1', '-m', String(calls), '-l', String(limit), '-rtp_echo',
    '-timeout', `${timeoutSec}s`, '-timeout_error', '-nostdin',
    '-trace_stat', '-stf', stats, '-fd', '1',
    '-trace_err', '-error_file', errors,
  ];
  const child = spawn('sipp', args, { cwd: SIPP_DIR, stdio: ['ignore', 'ignore', 'pipe'] });
  sippProcs.add(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string | null>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
      resolve(null);
    });
    child.on('close', (code, signal) => resolve(code ?? signal));
  });
  await sleep(300); // SIPp binds its port
  if (child.exitCode !== null) throw new Error(`sipp exited at once (${child.exitCode}): ${stderr.slice(0, 1000)}`);
  return {
    port,
    finish: async (graceMs = 3000) => {
      const t = setTimeout(() => child.kill('SIGTERM'), graceMs);
      const t2 = setTimeout(() => child.kill('SIGKILL'), graceMs + 3000);
      const exit = await exited;
      clearTimeout(t);
      clearTimeout(t2);
      sippProcs.delete(child);
      const s = lastStats(stats);
      const errs = (existsSync(errors) ? readFileSync(errors, 'utf8') : '') + stderr;
      return { exit, successful: Number(s.SuccessfulCall ?? 0), failed: Number(s.FailedCall ?? 0), errors: errs };
    },
  };
}

// ---- one hand-off -----------------------------------------------------------------------

interface Outcome {
  callId: string;
  connected: boolean;
  /** why it failed (or why the echo is missing) */
  why?: string;
  triggerToRingMs?: number;
  answerMs?: number;
  bridgeMs?: number;
  echoRttMs?: number;
  /** 1.4 kHz share of everything received in the tone window */
  echoShare?: number;
  /** caller-side phases, ms: answer → DTMF 0 sent, DTMF sent → connected logged, → handshake quiet, → tone done, whole call */
  phases: { greeting?: number; toConnected?: number; handshakeTail?: number; tone?: number; call?: number };
}

function field(line: string, name: string): number | undefined {
  const m = new RegExp(`\\b${name}=(\\d+(?:\\.\\d+)?)`).exec(line);
  return m ? Number(m[1]) : undefined;
}

async function handoff(s: ServerHandle, callerRtp: number): Promise<Outcome> {
  const out: Outcome = { callId: '', connected: false, phases: {} };
  const ph = out.phases;
  const c0 = nowMs();
  let toneSentAt = 0;
  let res: CallResult;
  try {
    res = await placeCall({
      port: s.sipPort, from: DANA, maxCallMs: 60000, rtpPort: callerRtp,
      onEvent: (e, d) => {
        if (e === 'invite') out.callId = (d as { callId: string }).callId;
      },
      script: async (ctl) => {
        let t = nowMs();
        // the agent is speaking (its first voiced packet), or has said all of the greeting
        const greeting = await ctl.waitForAgent({ timeoutMs: 30000, silenceMs: FULL_GREETING ? 1500 : 0 });
        if (greeting.timedOut) {
          out.why = 'no greeting';
          return;
        }
        await ctl.dtmf('0');
        ph.greeting = nowMs() - t;
        t = nowMs();
        const id = out.callId;
        // searched from now on: the trigger needs our DTMF, and these lines come ≥ 300 ms (the rep's ring) later
        const outcome = s.waitForLog(new RegExp(`msg="hand-off (?:connected|failed)"[^\\n]*callId=${id}\\b`), 30000, true).catch(() => '');
        // the dialogue logs `msg=transfer` once the handshake prompt has played out
        const played = s.waitForLog(new RegExp(`msg=transfer [^\\n]*callId=${id}\\b`), 30000, true).catch(() => '');
        const line = await outcome;
        if (!/msg="hand-off connected"/.test(line)) {
          out.why = line ? `hand-off failed: ${/why=(\S+)/.exec(line)?.[1] ?? '?'} ${/status=(\d+)/.exec(line)?.[1] ?? ''}`.trim() : 'no hand-off logged within 30 s';
          return;
        }
        out.connected = true;
        ph.toConnected = nowMs() - t;
        t = nowMs();
        out.triggerToRingMs = field(line, 'triggerToRingMs');
        out.answerMs = field(line, 'answerMs');
        out.bridgeMs = field(line, 'bridgeMs');
        // the rest of the handshake still plays (mixed into the bridge): wait for its end
        // (server side), then for its last packets to arrive and 300 ms of quiet; then the tone
        if (!(await played)) out.why = 'no msg=transfer (handshake played) logged';
        await ctl.waitForAgent({ timeoutMs: 5000, silenceMs: 300 });
        ph.handshakeTail = nowMs() - t;
        t = nowMs();
        // a one-frame say() resolves right after that frame left the socket; the rest follows it
        const first = ctl.say(TONE.subarray(0, 160)).then(() => { toneSentAt = nowMs(); });
        void ctl.say(TONE.subarray(160));
        await first;
        // the echo: voiced audio after our tone started, then quiet
        await ctl.waitForAgent({ timeoutMs: TONE_MS + 3000, silenceMs: 300 });
        ph.tone = nowMs() - t;
      },
    });
  } catch (err) {
    out.why = `caller: ${String((err as Error).message ?? err)}`;
    out.connected = false;
    return out;
  }
  ph.call = nowMs() - c0;
  if (res.status !== 200) {
    out.connected = false;
    out.why = `call setup ${res.status} ${res.reason}`.trim();
    return out;
  }
  if (res.scriptError) out.why = `script: ${res.scriptError.message}`;
  if (out.connected && toneSentAt > 0) {
    const after = res.packets.filter((p) => p.pt === (res.payloadType ?? 0) && p.arrivalMs >= toneSentAt && p.arrivalMs <= toneSentAt + TONE_MS + 2000);
    out.echoShare = Number(toneShare(decodeAudio(after, res.payloadType ?? 0), TONE_HZ).toFixed(3));
    const hit = after.find((p) => {
      const pcm = decodeAudio([p], res.payloadType ?? 0);
      return rmsLevel(pcm) > VOICED_RMS && toneShare(pcm, TONE_HZ) > TONE_SHARE;
    });
    if (hit) out.echoRttMs = hit.arrivalMs - toneSentAt;
    else out.why ??= `no echoed tone (share ${out.echoShare} over ${after.length} packets)`;
  } else if (out.connected) {
    out.why ??= 'tone not sent (call ended)';
  }
  return out;
}

// ---- a pass -----------------------------------------------------------------------------

async function pass(s: ServerHandle, repPort: number, calls: number, k: number, label: string): Promise<{ outcomes: Outcome[]; rep: Awaited<ReturnType<Rep['finish']>>; seconds: number; load: number }> {
  // ~15 s per round of k calls is plenty; SIPp's -timeout is global (the pass kills it anyway)
  const rep = await startRep(repPort, calls, k + 2, Math.ceil(calls / k) * 20 + 60);
  const load = loadavg()[0]!;
  const t0 = Date.now();
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    await sleep(w * STAGGER_MS);
    for (;;) {
      const i = next++;
      if (i >= calls) return;
      const rtp = await freePort(CALLER_RTP, 'udp', 2);
      const o = await handoff(s, rtp);
      outcomes.push(o);
      log(`  ${label} #${i + 1}/${calls}: ${o.connected ? `ring ${o.triggerToRingMs} ms, bridge ${o.bridgeMs} ms, echo ${o.echoRttMs === undefined ? '—' : `${r1(o.echoRttMs)} ms`}` : 'FAILED'}${o.why ? ` (${o.why})` : ''}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(k, calls) }, (_, w) => worker(w)));
  const seconds = (Date.now() - t0) / 1000;
  const repResult = await rep.finish(3000);
  if (repResult.exit !== 0) log(`  ${label}: rep SIPp exit ${repResult.exit}, successful ${repResult.successful}, failed ${repResult.failed}${repResult.errors ? `\n${repResult.errors.slice(0, 1500)}` : ''}`);
  return { outcomes, rep: repResult, seconds, load };
}

// ---- main -------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!haveSipp()) {
    console.log(JSON.stringify({ bench: 'handoff', error: 'sipp not on PATH (Debian package sip-tester)' }));
    process.exit(1);
  }
  const rtp = await freePortBlock(SERVER_RTP, 200);
  // REP_URI names one port for the server's lifetime: each pass's SIPp binds it in turn.
  const fixedRepPort = await freePort(REP_SIP, 'udp');
  const t0 = Date.now();
  server = await startServer({
    SIP_PORT: String(await freePort(SIP, 'both')),
    DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), VOICE_AGENT_NOW: OPEN_AT,
    VOICE_MEDIA_RT_PRIORITY: '0', REP_URI: `sip:{extension}@127.0.0.1:${fixedRepPort}`, REP_RING_SECONDS: '20',
    MAX_CALL_SECONDS: '120',
  }, { readyTimeoutMs: 60000 });
  const s = server;
  log(`handoff: server up in ${((Date.now() - t0) / 1000).toFixed(1)} s (SIP udp/127.0.0.1:${s.sipPort}, rep sip:2101@127.0.0.1:${fixedRepPort}, RTP ${rtp.min}-${rtp.max})`);

  const runs: Record<string, unknown>[] = [];
  try {
    if (WARMUP > 0) {
      log(`handoff: ${WARMUP} warm-up hand-off(s), not reported…`);
      const w = await pass(s, fixedRepPort, WARMUP, 1, 'warm-up');
      const bad = w.outcomes.filter((o) => !o.connected);
      if (bad.length === w.outcomes.length) {
        log(`handoff: warm-up failed (${bad[0]?.why}); server log tail:\n${s.log().slice(-4000)}`);
        throw new Error(`warm-up hand-off failed: ${bad[0]?.why}`);
      }
    }
    for (const k of CONCURRENCY) {
      log(`handoff: ${CALLS} hand-offs, ${k} at a time…`);
      const p = await pass(s, fixedRepPort, CALLS, k, `k=${k}`);
      const ok = p.outcomes.filter((o) => o.connected);
      const failed = p.outcomes.filter((o) => !o.connected);
      const noEcho = ok.filter((o) => o.echoRttMs === undefined);
      const num = (f: (o: Outcome) => number | undefined): number[] => ok.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
      const row: Record<string, unknown> = {
        concurrency: k,
        calls: CALLS,
        connected: ok.length,
        failed_handoffs: failed.length,
        no_echo: noEcho.length,
        trigger_to_ring_ms: dist(num((o) => o.triggerToRingMs)),
        answer_to_bridge_ms: dist(num((o) => o.bridgeMs)),
        trigger_to_answer_ms: dist(num((o) => o.answerMs)),
        echo_rtt_ms: dist(num((o) => o.echoRttMs)),
        echo_share_min: ok.length ? Math.min(...num((o) => o.echoShare)) : null,
        /** caller-side p50 of each phase of a call (where the wall time goes) */
        phases_p50_ms: Object.fromEntries((['greeting', 'toConnected', 'handshakeTail', 'tone', 'call'] as const).map((k) => [k, r1(pct(ok.map((o) => o.phases[k]).filter((x): x is number => x !== undefined), 50))])),
        failures: [...failed, ...noEcho].map((o) => o.why ?? '?').slice(0, 10),
        rep_sipp: { exit: p.rep.exit, successful: p.rep.successful, failed: p.rep.failed },
        loadavg_1m_start: r1(p.load),
        seconds: r1(p.seconds),
      };
      runs.push(row);
      const d = (x: unknown): string => {
        const v = x as { p50: number; p95: number; max: number };
        return `p50 ${v.p50} p95 ${v.p95} max ${v.max}`;
      };
      log(`  k=${k}: ${ok.length}/${CALLS} connected, ${failed.length} failed, ${noEcho.length} without echo; trigger→ring ${d(row.trigger_to_ring_ms)} ms; answer→bridge ${d(row.answer_to_bridge_ms)} ms; echo ${d(row.echo_rtt_ms)} ms; ${r1(p.seconds)} s`);
    }
  } finally {
    await s.stop();
  }
  console.log(JSON.stringify({
    bench: 'handoff',
    calls_per_pass: CALLS,
    warmup: WARMUP,
    tone_hz: TONE_HZ,
    tone_ms: TONE_MS,
    rep_ring_ms: 300,
    full_greeting: FULL_GREETING,
    runs,
    failed_handoffs: runs.reduce((n, r) => n + (r.failed_handoffs as number), 0),
  }));
}

main().then(() => process.exit(0), (err: unknown) => {
  log(String((err as Error)?.stack ?? err));
  console.log(JSON.stringify({ bench: 'handoff', error: String((err as Error)?.message ?? err).split('\n')[0] }));
  void server?.stop(1000).finally(() => process.exit(1));
});
