/**
 * Benchmark: turn-gap overhead through the whole live path, as the caller hears it.
 *
 *   npm run bench -- turn-gap [--calls 1,100,400] [--turns 5] [--min-turns 20] [--stagger ms]
 *                             [--reply-ms 400] [--caller-procs 4] [--caller-nice -10]
 *
 * The app runs in a child process (./server.ts): built-in SIP edge + drachtio-srf app +
 * native media + native VAD (Silero, batched) + the real DialogueController, with instant
 * stubs for STT (fixed transcript), the agent (one `say` per turn) and TTS (a precomputed
 * 440 Hz tone), so model time is excluded and the endpointing decision is the real VAD's.
 * The calls are placed over SIP by caller processes (./caller.ts, one per 100 calls, at most
 * --caller-procs): paced 20 ms PCMU RTP from one shared timer per process, silence between
 * utterances, the level of each received packet checked as it arrives. A single caller
 * process with one timer per call (src/cli/caller.ts placeCall) could not drive 100 calls on
 * this box without its own event loop delaying the instants it measures.
 *
 * Each call speaks `--turns` utterances (flite voices kal/slt/rms/awb, synthesized through
 * the addon, trimmed after the last voiced 20 ms frame), each followed by silence until the
 * agent's reply has played and gone quiet; calls start spread over `--stagger` ms (default
 * 1000 for one call, else 4000, about one turn cycle, so turns of different calls do not
 * line up). For concurrency N a round of N calls repeats until at least `--min-turns` turns
 * were measured.
 *
 * Per turn:
 *   gap      = send instant of our last voiced packet → arrival of the first voiced
 *              (RMS > 200) reply packet (the agent sends G.711 digital silence otherwise);
 *   overhead = gap − endpointSilenceMs (the session's TurnTunables, reported by the server).
 * The server also reports its `gapMs` (DialogueController 'turn': endpoint decision → first
 * reply audio queued) and the instant of the session's 'speechEnd' and of the first play():
 * the gap is split into
 *   endpoint = last voiced packet sent → speechEnd in JS, minus endpointSilenceMs
 *              (32 ms VAD frames, Silero's tail past the word end, hand-over to JS),
 *   server   = speechEnd → first reply audio queued (STT/agent/TTS stubs, controller),
 *   out      = first reply audio queued → first reply packet received by the caller
 *              (20 ms pacing tick, loopback, the caller's event loop).
 * Every instant is process.hrtime (CLOCK_MONOTONIC), one clock for all processes.
 *
 * The caller processes run at nice -10 (--caller-nice; when allowed): they stand in for far ends that do not
 * share the server's CPU, so on a busy box the server waits, not the callers' clocks.
 * Health: each caller process reports its event-loop delay (p99 beyond the monitor period),
 * CPU and the share of packets sent ≥ 5 ms late; a loop p99 above 10 ms marks the run's
 * caller side overloaded (its instants are late, so the numbers are not the server's alone).
 * The server reports its JS loop delay and CPU; the 1-minute load average is taken at the
 * start and end of each run.
 *
 * Progress on stderr. Last stdout line: JSON
 *   {"bench":"turn-gap","target_p95_ms":25,"endpoint_silence_ms":700,"runs":[{"calls":1,
 *    "turns":N,"overhead_ms":{"p50","p95","p99","max"},"split_p50_ms":{endpoint,server,out},
 *    "split_p95_ms":{…},"caller":{procs,loop_p99_ms,cpu_pct,late_send_pct,overloaded},
 *    "server":{cpu_pct,loop_p99_ms,…},"loadavg_1m_start",…},…],"caller_healthy":bool,"pass":bool}
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CallOutcome, DoneMsg, RunMsg } from './caller.ts';
import { g711Decode, g711Encode, nowMs, rmsLevel } from '../../../src/cli/rtp.ts';
import { synthesize, type Voice } from '../../../src/media/index.ts';
import { native } from '../../../src/media/native.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { VAD_FRAME_MS, VadBatcher, vadGeometry } from '../../../src/vad/batch.ts';
import { resolveTurnTunables } from '../../../src/vad/policy.ts';
import { freePort, freePortBlock } from '../../helpers/ports.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1,100' },
    turns: { type: 'string', default: '5' },
    'min-turns': { type: 'string', default: '20' },
    /** calls start spread over this many ms; default: 1000 for one call, else one turn cycle (4000) */
    stagger: { type: 'string' },
    /** nice of the caller processes (0: same as the server's JS thread) */
    'caller-nice': { type: 'string', default: '-10' },
    /** most caller processes (one per 100 calls up to this) */
    'caller-procs': { type: 'string', default: '4' },
    'reply-ms': { type: 'string', default: '400' },
    /** give up (kill the server, exit 1) after this many seconds */
    timeout: { type: 'string', default: '300' },
  },
});
const CALLS = values.calls!.split(',').map(Number).filter((n) => n > 0);
const TURNS = Number(values.turns);
const MIN_TURNS = Number(values['min-turns']);
const STAGGER_MS = values.stagger === undefined ? undefined : Number(values.stagger);
const CALLER_PROCS = Math.max(1, Number(values['caller-procs']));
const REPLY_MS = Number(values['reply-ms']);
const TARGET_P95_MS = 25;
/** A caller process whose event loop p99 exceeds this makes the run's caller side 'overloaded'. */
const CALLER_LOOP_P99_LIMIT_MS = 10;
/** Our frames above this RMS count as voiced (RtpSender.voicedRms, which stamps lastVoicedAt). */
const VOICED_RMS = 300;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};
const r1 = (x: number): number => Math.round(x * 10) / 10;
const dist = (v: number[]): { p50: number; p95: number; p99: number; max: number; n: number } => ({
  p50: r1(pct(v, 50)), p95: r1(pct(v, 95)), p99: r1(pct(v, 99)), max: r1(v.length ? Math.max(...v) : NaN), n: v.length,
});

const watchdog = setTimeout(() => {
  log(`turn-gap: timed out after ${values.timeout} s`);
  server?.kill('SIGKILL');
  process.exit(1);
}, Number(values.timeout) * 1000);
watchdog.unref();

// ---- caller audio ----------------------------------------------------------------------

const PHRASES = [
  'I would like to reorder twenty cases.',
  'Can you check the status of my order?',
  'Please transfer me to my sales rep.',
  'Yes, that is correct, go ahead.',
  'What is the ship date for the gaskets?',
  'This is Dana from Midwest Supply.',
];
const VOICES: Voice[] = ['kal', 'slt', 'rms', 'awb'];

/** Speech cut to 20 ms frames: from 100 ms before the first voiced frame to the end of the last voiced one. */
function trimSpeech(pcm: Int16Array): Int16Array {
  const voiced: number[] = [];
  for (let f = 0; (f + 1) * 160 <= pcm.length; f++) {
    if (rmsLevel(g711Decode(g711Encode(pcm.subarray(f * 160, (f + 1) * 160), 0), 0)) > VOICED_RMS) voiced.push(f);
  }
  if (!voiced.length) throw new Error('synthesized speech has no voiced frame');
  const first = Math.max(0, voiced[0]! - 5);
  return pcm.slice(first * 160, (voiced[voiced.length - 1]! + 1) * 160);
}

setLogLevel('warn');
const speech: { name: string; pcm: Int16Array }[] = [];
for (const voice of VOICES) {
  for (const [i, text] of PHRASES.entries()) speech.push({ name: `${voice}-${i}`, pcm: trimSpeech(await synthesize(text, { voice })) });
}
const durs = speech.map((s) => s.pcm.length / 8);
log(`turn-gap: ${speech.length} utterances (flite ${VOICES.join('/')}), ${Math.round(Math.min(...durs))}-${Math.round(Math.max(...durs))} ms each`);

/**
 * Offline, per utterance: when the default turn machine would fire speechEnd on Silero's
 * probabilities of the same audio (G.711 round trip, at the model's rate, then silence),
 * minus the audio's end and the endpointing silence: Silero's tail past the last voiced
 * frame plus the 32 ms framing, with no network, jitter buffer or hand-over. Frames start
 * at the audio's first sample here; on the line the phase is arbitrary (±16 ms).
 */
async function offlineVadExtra(utts: Int16Array[]): Promise<number[]> {
  const b = await VadBatcher.create(); // at the product's model rate (VOICE_VAD_RATE)
  const sr = b.options.sampleRate;
  const { frame: VAD_FRAME, context: VAD_CONTEXT, window: VAD_WINDOW } = vadGeometry(sr);
  const t = resolveTurnTunables();
  const endpointF = Math.ceil(t.endpointSilenceMs / VAD_FRAME_MS);
  const pcm = utts.map((u) => {
    const g = g711Decode(g711Encode(u, 0), 0);
    const x = sr === 8000 ? g : native.resample(g, 8000, sr);
    const out = new Int16Array(x.length + sr * 1.5);
    out.set(x);
    return out;
  });
  const ids = utts.map((_, i) => i + 1);
  ids.forEach((id) => b.addStream(id));
  const frames = Math.min(...pcm.map((p) => Math.floor(p.length / VAD_FRAME)));
  const state = utts.map(() => ({ speech: false, silence: 0, endFrame: -1 }));
  const packed = new Float32Array(ids.length * VAD_WINDOW);
  for (let f = 0; f < frames && state.some((s) => s.endFrame < 0); f++) {
    pcm.forEach((p, i) => {
      for (let k = 0; k < VAD_WINDOW; k++) {
        const n = f * VAD_FRAME - VAD_CONTEXT + k;
        packed[i * VAD_WINDOW + k] = n < 0 ? 0 : p[n]! / 32768;
      }
    });
    const probs = await b.runBatch(ids, packed);
    state.forEach((s, i) => {
      if (s.endFrame >= 0) return;
      const pr = probs[i]!;
      if (!s.speech) {
        if (pr >= t.activationThreshold) s.speech = true;
      } else if (pr >= t.deactivationThreshold) s.silence = 0;
      else if (++s.silence >= endpointF) s.endFrame = f;
    });
  }
  await b.close();
  return state.map((s, i) => (s.endFrame < 0 ? NaN : (s.endFrame + 1) * VAD_FRAME_MS - utts[i]!.length / 8 - t.endpointSilenceMs));
}
const vadExtra = await offlineVadExtra(speech.map((s) => s.pcm));
log(`turn-gap: offline VAD speechEnd after audio end − ${resolveTurnTunables().endpointSilenceMs} ms (Silero tail + framing): p50 ${r1(pct(vadExtra, 50))} ms, range ${r1(Math.min(...vadExtra))}..${r1(Math.max(...vadExtra))} ms`);

// ---- the server ------------------------------------------------------------------------

interface ServerTurn { at: number; timing: { gapMs: number; endpointSilenceMs: number; sttMs: number; replyMs: number }; jitter: { bufferDelayMs: number; targetDelayMs: number; jitterMs: number } | null }
interface ServerCall { tunables: { endpointSilenceMs: number } | null; vad: boolean; speechEnds: number[]; turns: ServerTurn[] }
const serverCalls = new Map<string, ServerCall>();
const callOf = (id: string): ServerCall => {
  let c = serverCalls.get(id);
  if (!c) serverCalls.set(id, (c = { tunables: null, vad: false, speechEnds: [], turns: [] }));
  return c;
};
let statsWaiter: ((m: Record<string, unknown>) => void) | null = null;

const sipPort = await freePort({ min: 17600, max: 17699 }, 'both');
const controlPort = await freePort({ min: 19600, max: 19699 }, 'tcp');
// Two ports per call (RTP + RTCP), split over the server's media threads, plus slack. The range
// sits below the kernel's ephemeral ports (32768+), which other processes' sockets take at random.
const rtpBlock = Math.max(500, Math.ceil((2 * Math.max(...CALLS) + 200) / 100) * 100);
const rtp = await freePortBlock({ min: 31000, max: 32767 }, rtpBlock);
const server: ChildProcess = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
  // TURN_GAP_CPU_PROF=<dir>: V8 CPU profile of the server process (its main JS thread), written on exit
  execArgv: ['--import', 'tsx', ...(process.env.TURN_GAP_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.TURN_GAP_CPU_PROF}`] : [])],
  env: {
    ...process.env, SIP_PORT: String(sipPort), DRACHTIO_PORT: String(controlPort),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), TURN_GAP_REPLY_MS: String(REPLY_MS),
  },
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
process.once('exit', () => server.kill('SIGKILL'));
const ready = await new Promise<{ scheduling: string }>((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`server exited (${code}) before it was ready`)));
  const onMsg = (m: Record<string, any>): void => {
    switch (m.t) {
      case 'batch': (m.items as Record<string, any>[]).forEach(onMsg); break;
      case 'ready': resolve(m as { scheduling: string }); break;
      case 'call': Object.assign(callOf(m.callId), { tunables: m.tunables, vad: m.vad }); break;
      case 'speechEnd': callOf(m.callId).speechEnds.push(m.at); break;
      case 'turn': callOf(m.callId).turns.push({ at: m.at, timing: m.timing, jitter: m.jitter }); break;
      case 'stats': statsWaiter?.(m); statsWaiter = null; break;
    }
  };
  server.on('message', onMsg);
});
const serverStats = (): Promise<Record<string, unknown>> => new Promise((resolve) => {
  statsWaiter = resolve;
  server.send({ t: 'stats' });
});
log(`turn-gap: server up (SIP udp/127.0.0.1:${sipPort}, media thread ${ready.scheduling}, reply tone ${REPLY_MS} ms)`);

// ---- calls ----------------------------------------------------------------------------

/** Scheduling priority of the caller processes (nice; the server's VAD threads run at -5). */
const CALLER_NICE = Number(values['caller-nice']);
let callerNice = 0;
/** One caller process per this many calls (at least one, at most --caller-procs). */
const CALLS_PER_PROC = 100;
const callers: ChildProcess[] = [];
process.once('exit', () => callers.forEach((c) => c.kill('SIGKILL')));
async function callerProcs(k: number): Promise<ChildProcess[]> {
  while (callers.length < k) {
    const c = fork(fileURLToPath(new URL('./caller.ts', import.meta.url)), [], {
      execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      c.once('exit', (code) => reject(new Error(`caller process exited (${code}) before it was ready`)));
      c.once('message', () => resolve());
    });
    try {
      // The callers stand in for the far ends, which do not share the server's CPU: ahead of
      // it (and of other work on the box) in the scheduler, so a busy box delays the server,
      // not the instants the callers take. Needs root or CAP_SYS_NICE; else they stay at 0.
      if (CALLER_NICE !== 0) setPriority(c.pid!, CALLER_NICE);
      callerNice = CALLER_NICE;
    } catch { callerNice = 0; }
    callers.push(c);
  }
  return callers.slice(0, k);
}

/** Place `n` calls (indices base..base+n-1) spread over `k` caller processes; start offsets i·stagger/n. */
async function round(n: number, k: number, base: number, staggerMs: number): Promise<DoneMsg[]> {
  const procs = await callerProcs(k);
  const startAt = nowMs() + 200;
  return Promise.all(procs.map((c, p) => new Promise<DoneMsg>((resolve, reject) => {
    const calls: RunMsg['calls'] = [];
    for (let i = p; i < n; i += k) calls.push({ index: base + i, offsetMs: (i * staggerMs) / n });
    const onExit = (code: number | null): void => reject(new Error(`caller process exited (${code}) mid-round`));
    c.once('exit', onExit);
    c.once('message', (m: DoneMsg) => {
      c.off('exit', onExit);
      resolve(m);
    });
    const msg: RunMsg = { t: 'run', port: sipPort, turns: TURNS, startAt, calls, speech: speech.map((s) => s.pcm) };
    c.send(msg);
  })));
}

interface Row { [k: string]: unknown }
const runs: Row[] = [];
let endpointSilenceMs = NaN;
for (const n of CALLS) {
  const rounds = Math.max(1, Math.ceil(MIN_TURNS / (n * TURNS)));
  log(`turn-gap: ${n} concurrent call(s) × ${TURNS} turns × ${rounds} round(s)…`);
  const load0 = loadavg()[0]!;
  await serverStats(); // reset the server's counters
  const k = Math.min(CALLER_PROCS, Math.max(1, Math.ceil(n / CALLS_PER_PROC)));
  const staggerMs = STAGGER_MS ?? (n === 1 ? 1000 : 4000);
  const t0 = nowMs();
  const outcomes: CallOutcome[] = [];
  const health: DoneMsg[] = [];
  for (let r = 0; r < rounds; r++) {
    const done = await round(n, k, r * n, staggerMs);
    health.push(...done);
    for (const d of done) outcomes.push(...d.outcomes);
  }
  const seconds = (nowMs() - t0) / 1000;
  const load1 = loadavg()[0]!;
  const sstats = await serverStats();
  const callerLoopP99 = Math.max(...health.map((h) => h.loop.p99));
  const callerOverloaded = callerLoopP99 > CALLER_LOOP_P99_LIMIT_MS;

  const overhead: number[] = [];
  const gaps: number[] = [];
  const serverGap: number[] = [];
  const epPart: number[] = [];
  const srvPart: number[] = [];
  const outPart: number[] = [];
  const jbDelay: number[] = [];
  const jbTarget: number[] = [];
  const rxJitter: number[] = [];
  const epRest: number[] = [];
  const byTurn = Array.from({ length: TURNS }, () => ({ overhead: [] as number[], jb: [] as number[] }));
  const vadPart: number[] = [];
  let failed = 0;
  let unpaired = 0;
  /** turns spoken while all N calls were up: after the last answer, before the first call's last reply */
  const steadyOverhead: number[] = [];
  const steadySplit = { endpoint: [] as number[], server: [] as number[], out: [] as number[] };
  const answered = outcomes.filter((o) => o.answeredAt > 0);
  const steady = n > 1 && answered.length === n
    ? { from: Math.max(...answered.map((o) => o.answeredAt)), to: Math.min(...answered.map((o) => o.turns.length ? o.turns[o.turns.length - 1]!.replyAt : Infinity)) }
    : null;
  let markers = 0;
  const eps = new Set<number>();
  for (const o of outcomes) {
    failed += o.failed;
    const sc = serverCalls.get(o.callId);
    const ep = sc?.tunables?.endpointSilenceMs ?? NaN;
    eps.add(ep);
    for (const st of sc?.turns ?? []) serverGap.push(st.timing.gapMs);
    o.turns.forEach((t) => {
      gaps.push(t.gapMs);
      overhead.push(t.gapMs - ep);
      byTurn[t.k]!.overhead.push(t.gapMs - ep);
      const inSteady = !!steady && t.lastVoicedAt >= steady.from && t.replyAt <= steady.to;
      if (inSteady) steadyOverhead.push(t.gapMs - ep);
      if (t.marker) markers++;
      // this turn's speechEnd and reply on the server: the last ones before the reply arrived
      // (the turns of one call do not overlap: each waits for the previous reply to end)
      const se = sc?.speechEnds.filter((x) => x > t.lastVoicedAt && x < t.replyAt).pop();
      const st = sc?.turns.filter((x) => se !== undefined && x.at >= se && x.at < t.replyAt).pop();
      if (se === undefined || !st) {
        unpaired++;
        return;
      }
      epPart.push(se - t.lastVoicedAt - ep);
      srvPart.push(st.at - se);
      outPart.push(t.replyAt - st.at);
      if (inSteady) {
        steadySplit.endpoint.push(se - t.lastVoicedAt - ep);
        steadySplit.server.push(st.at - se);
        steadySplit.out.push(t.replyAt - st.at);
      }
      vadPart.push(vadExtra[t.utt]!);
      if (st.jitter) {
        jbDelay.push(st.jitter.bufferDelayMs);
        byTurn[t.k]!.jb.push(st.jitter.bufferDelayMs);
        jbTarget.push(st.jitter.targetDelayMs);
        rxJitter.push(st.jitter.jitterMs);
        epRest.push(se - t.lastVoicedAt - ep - vadExtra[t.utt]!);
      }
    });
  }
  endpointSilenceMs = [...eps][0]!;
  const row: Row = {
    calls: n,
    turns: overhead.length,
    failed_turns: failed,
    setup_failed: outcomes.filter((o) => o.status !== 200).length,
    endpoint_silence_ms: eps.size === 1 ? endpointSilenceMs : [...eps],
    overhead_ms: dist(overhead),
    gap_ms: dist(gaps),
    server_gap_ms: dist(serverGap),
    split_p50_ms: { endpoint: r1(pct(epPart, 50)), server: r1(pct(srvPart, 50)), out: r1(pct(outPart, 50)) },
    split_p95_ms: { endpoint: r1(pct(epPart, 95)), server: r1(pct(srvPart, 95)), out: r1(pct(outPart, 95)) },
    /** caller turns without a matching server speechEnd/reply (no split for them) */
    split_turns_unpaired: unpaired,
    /** turns spoken while all N calls were up (none for 1 call): the steady state, without the ramp-up */
    steady_overhead_ms: dist(steadyOverhead),
    steady_split_p50_ms: { endpoint: r1(pct(steadySplit.endpoint, 50)), server: r1(pct(steadySplit.server, 50)), out: r1(pct(steadySplit.out, 50)) },
    steady_split_p95_ms: { endpoint: r1(pct(steadySplit.endpoint, 95)), server: r1(pct(steadySplit.server, 95)), out: r1(pct(steadySplit.out, 95)) },
    /** the endpoint part, explained: Silero tail + framing (offline, same audio, frames from the audio's start), rest (framing phase on the line, RTP in, hand-over to JS); the VAD reads ahead of the jitter buffer */
    endpoint_parts_p50_ms: { vad_offline: r1(pct(vadPart, 50)), rest: r1(pct(epRest, 50)) },
    jitter_buffer_delay_ms: dist(jbDelay),
    jitter_buffer_target_ms: dist(jbTarget),
    rx_jitter_rfc3550_ms: dist(rxJitter),
    /** per turn of a call (1st, 2nd, …): the first turns run while call setup still loads the caller */
    by_turn: byTurn.map((b, k) => ({ turn: k + 1, overhead_p50: r1(pct(b.overhead, 50)), overhead_p95: r1(pct(b.overhead, 95)), jitter_buffer_p95: r1(pct(b.jb, 95)) })),
    reply_marker_rate: overhead.length ? r1((markers / overhead.length) * 100) / 100 : NaN,
    /** the caller side: its processes, each one's event-loop delay and CPU; overloaded = some loop p99 > CALLER_LOOP_P99_LIMIT_MS (then arrival times carry caller delay) */
    caller: {
      procs: k, nice: callerNice, stagger_ms: staggerMs,
      loop_p99_ms: health.map((h) => h.loop.p99), loop_max_ms: health.map((h) => h.loop.max), cpu_pct: health.map((h) => h.cpuPct),
      late_send_pct: r1((health.reduce((a, h) => a + h.lateSends, 0) / Math.max(1, health.reduce((a, h) => a + h.sends, 0))) * 100),
      overloaded: callerOverloaded,
    },
    server: sstats && { cpu_pct: sstats.cpuPct, loop_p99_ms: sstats.loopP99Ms, loop_max_ms: sstats.loopMaxMs, pacing: sstats.pacing, vad: sstats.vad },
    loadavg_1m_start: r1(load0),
    loadavg_1m_end: r1(load1),
    seconds: r1(seconds),
  };
  runs.push(row);
  const o = row.overhead_ms as ReturnType<typeof dist>;
  const sg = row.server_gap_ms as ReturnType<typeof dist>;
  log(
    `  calls=${n}: ${o.n} turns (${failed} failed), endpointing ${endpointSilenceMs} ms; overhead p50 ${o.p50} p95 ${o.p95} p99 ${o.p99} max ${o.max} ms; ` +
      `server gapMs p50 ${sg.p50} p95 ${sg.p95} max ${sg.max}; split p50 endpoint+${r1(pct(epPart, 50))} server ${r1(pct(srvPart, 50))} out ${r1(pct(outPart, 50))} ms, p95 endpoint+${r1(pct(epPart, 95))} server ${r1(pct(srvPart, 95))} out ${r1(pct(outPart, 95))} ms; ` +
      `jitter buffer p50 ${r1(pct(jbDelay, 50))} p95 ${r1(pct(jbDelay, 95))} ms (rx jitter p50 ${r1(pct(rxJitter, 50))} ms); ${steadyOverhead.length ? `steady (all ${n} up) overhead p50 ${r1(pct(steadyOverhead, 50))} p95 ${r1(pct(steadyOverhead, 95))} ms over ${steadyOverhead.length} turns; ` : ''}server loop p99 ${sstats?.loopP99Ms} ms; caller ${k} proc(s) loop p99 ${callerLoopP99} ms; load ${r1(load0)}→${r1(load1)}; ${r1(seconds)} s`,
  );
  if (callerOverloaded) log(`  calls=${n}: CALLER SIDE OVERLOADED (a caller process's event-loop p99 ${callerLoopP99} ms > ${CALLER_LOOP_P99_LIMIT_MS} ms): its send and arrival instants are late, so these numbers are not the server's alone`);
}

server.send({ t: 'stop' });
await new Promise((r) => {
  const t = setTimeout(() => { server.kill('SIGKILL'); r(null); }, 5000);
  server.once('exit', () => { clearTimeout(t); r(null); });
});
const worstP95 = Math.max(...runs.map((r) => (r.overhead_ms as { p95: number }).p95));
console.log(JSON.stringify({
  bench: 'turn-gap',
  target_p95_ms: TARGET_P95_MS,
  endpoint_silence_ms: endpointSilenceMs,
  vad_offline_extra_ms: dist(vadExtra),
  turns_per_call: TURNS,
  reply_ms: REPLY_MS,
  media_scheduling: ready.scheduling,
  runs,
  /** false: some run's caller side was overloaded, so its numbers include the caller's own delay */
  caller_healthy: runs.every((r) => !(r.caller as { overloaded: boolean }).overloaded),
  pass: worstP95 <= TARGET_P95_MS,
}));
callers.forEach((c) => c.send({ t: 'exit' }));
process.exit(0);
