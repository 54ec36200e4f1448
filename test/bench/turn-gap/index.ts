/**
 * Benchmark: turn-gap overhead through the whole live path, as the caller hears it.
 *
 *   npm run bench -- turn-gap [--calls 1,100] [--turns 5] [--min-turns 20] [--stagger 1000] [--reply-ms 400]
 *
 * The app runs in a child process (./server.ts): built-in SIP edge + drachtio-srf app +
 * native media + native VAD (Silero, batched) + the real DialogueController, with instant
 * stubs for STT (fixed transcript), the agent (one `say` per turn) and TTS (a precomputed
 * 440 Hz tone), so model time is excluded and the endpointing decision is the real VAD's.
 * This process places the calls over SIP with the product's test caller (src/cli/caller.ts:
 * paced 20 ms PCMU RTP, silence between utterances, recorder with arrival times).
 *
 * Each call speaks `--turns` utterances (flite voices kal/slt/rms/awb, synthesized through
 * the addon, trimmed after the last voiced 20 ms frame), each followed by silence until the
 * agent's reply has played and gone quiet; calls start staggered over `--stagger` ms. For
 * concurrency N a round of N calls repeats until at least `--min-turns` turns were measured.
 *
 * Per turn:
 *   gap      = send instant of our last voiced packet → arrival of the first voiced
 *              (RMS > 200) reply packet (the agent sends G.711 digital silence otherwise);
 *   overhead = gap − endpointSilenceMs (the session's TurnTunables, reported by the server).
 * The server also reports its `gapMs` (DialogueController 'turn': endpoint decision → first
 * reply audio queued) and, on the shared monotonic clock, the instant of the session's
 * 'speechEnd' and of the first play(): the gap is split into
 *   endpoint = last voiced packet sent → speechEnd in JS, minus endpointSilenceMs
 *              (inbound jitter buffer, 32 ms VAD frames, Silero's tail past the word end,
 *              hand-over to JS),
 *   server   = speechEnd → first reply audio queued (STT/agent/TTS stubs, controller),
 *   out      = first reply audio queued → first reply packet received by the caller
 *              (20 ms pacing tick, loopback, the caller's event loop).
 *
 * Progress on stderr. Last stdout line: JSON
 *   {"bench":"turn-gap","target_p95_ms":40,"endpoint_silence_ms":700,"runs":[{"calls":1,
 *    "turns":N,"overhead_ms":{"p50","p95","p99","max"},...}],"pass":bool}
 */
import { fork, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { placeCall, type CallResult } from '../../../src/cli/caller.ts';
import { g711Decode, g711Encode, nowMs, rmsLevel } from '../../../src/cli/rtp.ts';
import { synthesize, type Voice } from '../../../src/media/index.ts';
import { native } from '../../../src/media/native.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { VAD_CONTEXT, VAD_FRAME, VAD_FRAME_MS, VAD_WINDOW, VadBatcher } from '../../../src/vad/batch.ts';
import { TURN_DEFAULTS } from '../../../src/vad/policy.ts';
import { freePort, freePortBlock } from '../../helpers/ports.ts';

const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '1,100' },
    turns: { type: 'string', default: '5' },
    'min-turns': { type: 'string', default: '20' },
    stagger: { type: 'string', default: '1000' },
    'reply-ms': { type: 'string', default: '400' },
    /** give up (kill the server, exit 1) after this many seconds */
    timeout: { type: 'string', default: '300' },
  },
});
const CALLS = values.calls!.split(',').map(Number).filter((n) => n > 0);
const TURNS = Number(values.turns);
const MIN_TURNS = Number(values['min-turns']);
const STAGGER_MS = Number(values.stagger);
const REPLY_MS = Number(values['reply-ms']);
const TARGET_P95_MS = 40;
/** Our frames above this RMS count as voiced (RtpSender.voicedRms, which stamps lastVoicedAt). */
const VOICED_RMS = 300;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
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
 * probabilities of the same audio (G.711 round trip, resampled to 16 kHz, then silence),
 * minus the audio's end and the endpointing silence: Silero's tail past the last voiced
 * frame plus the 32 ms framing, with no network, jitter buffer or hand-over. Frames start
 * at the audio's first sample here; on the line the phase is arbitrary (±16 ms).
 */
async function offlineVadExtra(utts: Int16Array[]): Promise<number[]> {
  const b = await VadBatcher.create();
  const t = TURN_DEFAULTS;
  const endpointF = Math.ceil(t.endpointSilenceMs / VAD_FRAME_MS);
  const pcm = utts.map((u) => {
    const x = native.resample(g711Decode(g711Encode(u, 0), 0), 8000, 16000);
    const out = new Int16Array(x.length + 16000 * 1.5);
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
log(`turn-gap: offline VAD speechEnd after audio end − ${TURN_DEFAULTS.endpointSilenceMs} ms (Silero tail + framing): p50 ${r1(pct(vadExtra, 50))} ms, range ${r1(Math.min(...vadExtra))}..${r1(Math.max(...vadExtra))} ms`);

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
  execArgv: ['--import', 'tsx'],
  env: {
    ...process.env, SIP_PORT: String(sipPort), DRACHTIO_PORT: String(controlPort),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max), TURN_GAP_REPLY_MS: String(REPLY_MS),
  },
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
process.once('exit', () => server.kill('SIGKILL'));
const ready = await new Promise<{ scheduling: string }>((resolve, reject) => {
  server.once('exit', (code) => reject(new Error(`server exited (${code}) before it was ready`)));
  server.on('message', (m: Record<string, any>) => {
    switch (m.t) {
      case 'ready': resolve(m as { scheduling: string }); break;
      case 'call': Object.assign(callOf(m.callId), { tunables: m.tunables, vad: m.vad }); break;
      case 'speechEnd': callOf(m.callId).speechEnds.push(m.at); break;
      case 'turn': callOf(m.callId).turns.push({ at: m.at, timing: m.timing, jitter: m.jitter }); break;
      case 'stats': statsWaiter?.(m); statsWaiter = null; break;
    }
  });
});
const serverStats = (): Promise<Record<string, unknown>> => new Promise((resolve) => {
  statsWaiter = resolve;
  server.send({ t: 'stats' });
});
log(`turn-gap: server up (SIP udp/127.0.0.1:${sipPort}, media thread ${ready.scheduling}, reply tone ${REPLY_MS} ms)`);

// ---- calls -----------------------------------------------------------------------------

interface CallerTurn { k: number; utt: number; lastVoicedAt: number; replyAt: number; gapMs: number; marker: boolean }
interface CallOutcome { result: CallResult; turns: CallerTurn[]; failed: number }

async function oneCall(index: number): Promise<CallOutcome> {
  const turns: CallerTurn[] = [];
  let failed = 0;
  const result = await placeCall({
    port: sipPort,
    maxCallMs: 120_000,
    async script(ctl) {
      await ctl.pause(300); // media up, jitter buffer primed with silence
      for (let k = 0; k < TURNS && !ctl.serverHungUp; k++) {
        const utt = (index * TURNS + k) % speech.length;
        await ctl.say(speech[utt]!.pcm);
        const seg = await ctl.waitForAgent({ silenceMs: 250, timeoutMs: 5000 });
        if (seg.timedOut || seg.gapMs === undefined) failed++;
        else turns.push({ k, utt, lastVoicedAt: seg.startMs - seg.gapMs, replyAt: seg.startMs, gapMs: seg.gapMs, marker: false });
        await ctl.pause(200 + Math.random() * 200);
      }
    },
  });
  // the first voiced reply packet should open a talkspurt (RTP marker bit)
  for (const t of turns) t.marker = result.packets.some((p) => p.arrivalMs === t.replyAt && p.marker);
  if (result.status !== 200) failed = TURNS;
  return { result, turns, failed };
}

interface Row { [k: string]: unknown }
const runs: Row[] = [];
let endpointSilenceMs = NaN;
for (const n of CALLS) {
  const rounds = Math.max(1, Math.ceil(MIN_TURNS / (n * TURNS)));
  log(`turn-gap: ${n} concurrent call(s) × ${TURNS} turns × ${rounds} round(s)…`);
  const load0 = loadavg()[0]!;
  await serverStats(); // reset the server's counters
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const t0 = nowMs();
  const outcomes: CallOutcome[] = [];
  for (let r = 0; r < rounds; r++) {
    outcomes.push(...await Promise.all(Array.from({ length: n }, async (_, i) => {
      await sleep((i * STAGGER_MS) / n);
      return oneCall(r * n + i);
    })));
  }
  const seconds = (nowMs() - t0) / 1000;
  loop.disable();
  const sstats = await serverStats();

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
  let markers = 0;
  const eps = new Set<number>();
  for (const o of outcomes) {
    failed += o.failed;
    const sc = serverCalls.get(o.result.callId);
    const ep = sc?.tunables?.endpointSilenceMs ?? NaN;
    eps.add(ep);
    for (const st of sc?.turns ?? []) serverGap.push(st.timing.gapMs);
    const paired = !!sc && o.failed === 0 && sc.turns.length === o.turns.length && sc.speechEnds.length === o.turns.length;
    if (!paired) unpaired++;
    o.turns.forEach((t, k) => {
      gaps.push(t.gapMs);
      overhead.push(t.gapMs - ep);
      byTurn[t.k]!.overhead.push(t.gapMs - ep);
      if (t.marker) markers++;
      if (!paired) return;
      const se = sc!.speechEnds[k]!;
      const st = sc!.turns[k]!;
      epPart.push(se - t.lastVoicedAt - ep);
      srvPart.push(st.at - se);
      outPart.push(t.replyAt - st.at);
      vadPart.push(vadExtra[t.utt]!);
      if (st.jitter) {
        jbDelay.push(st.jitter.bufferDelayMs);
        byTurn[t.k]!.jb.push(st.jitter.bufferDelayMs);
        jbTarget.push(st.jitter.targetDelayMs);
        rxJitter.push(st.jitter.jitterMs);
        epRest.push(se - t.lastVoicedAt - ep - st.jitter.bufferDelayMs - vadExtra[t.utt]!);
      }
    });
  }
  endpointSilenceMs = [...eps][0]!;
  const row: Row = {
    calls: n,
    turns: overhead.length,
    failed_turns: failed,
    setup_failed: outcomes.filter((o) => o.result.status !== 200).length,
    endpoint_silence_ms: eps.size === 1 ? endpointSilenceMs : [...eps],
    overhead_ms: dist(overhead),
    gap_ms: dist(gaps),
    server_gap_ms: dist(serverGap),
    split_p50_ms: { endpoint: r1(pct(epPart, 50)), server: r1(pct(srvPart, 50)), out: r1(pct(outPart, 50)) },
    split_p95_ms: { endpoint: r1(pct(epPart, 95)), server: r1(pct(srvPart, 95)), out: r1(pct(outPart, 95)) },
    split_calls_unpaired: unpaired,
    /** the endpoint part, explained: Silero tail + framing (offline, same audio), inbound jitter-buffer delay at the turn, rest (hand-over, batching) */
    endpoint_parts_p50_ms: { vad_offline: r1(pct(vadPart, 50)), jitter_buffer: r1(pct(jbDelay, 50)), rest: r1(pct(epRest, 50)) },
    jitter_buffer_delay_ms: dist(jbDelay),
    jitter_buffer_target_ms: dist(jbTarget),
    rx_jitter_rfc3550_ms: dist(rxJitter),
    /** per turn of a call (1st, 2nd, …): the first turns run while call setup still loads the caller */
    by_turn: byTurn.map((b, k) => ({ turn: k + 1, overhead_p50: r1(pct(b.overhead, 50)), overhead_p95: r1(pct(b.overhead, 95)), jitter_buffer_p95: r1(pct(b.jb, 95)) })),
    reply_marker_rate: overhead.length ? r1((markers / overhead.length) * 100) / 100 : NaN,
    caller_loop_delay_ms: { p99: r1(loop.percentile(99) / 1e6), max: r1(loop.max / 1e6) },
    server: sstats && { cpu_pct: sstats.cpuPct, loop_p99_ms: sstats.loopP99Ms, loop_max_ms: sstats.loopMaxMs, pacing: sstats.pacing, vad: sstats.vad },
    loadavg_1m_start: r1(load0),
    seconds: r1(seconds),
  };
  runs.push(row);
  const o = row.overhead_ms as ReturnType<typeof dist>;
  const sg = row.server_gap_ms as ReturnType<typeof dist>;
  log(
    `  calls=${n}: ${o.n} turns (${failed} failed), endpointing ${endpointSilenceMs} ms; overhead p50 ${o.p50} p95 ${o.p95} p99 ${o.p99} max ${o.max} ms; ` +
      `server gapMs p50 ${sg.p50} p95 ${sg.p95} max ${sg.max}; split p50 endpoint+${r1(pct(epPart, 50))} server ${r1(pct(srvPart, 50))} out ${r1(pct(outPart, 50))} ms; ` +
      `jitter buffer p50 ${r1(pct(jbDelay, 50))} p95 ${r1(pct(jbDelay, 95))} ms (rx jitter p50 ${r1(pct(rxJitter, 50))} ms); caller loop p99 ${(row.caller_loop_delay_ms as { p99: number }).p99} ms; ${r1(seconds)} s`,
  );
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
  pass: worstP95 <= TARGET_P95_MS,
}));
process.exit(0);
