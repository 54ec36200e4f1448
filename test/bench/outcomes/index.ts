/**
 * Benchmark: call outcomes over voices the agent was never tuned on.
 *
 *   npm run bench -- outcomes [--quick] [--voices espeak:en-us@150,flite:kal,…] [--noise clean,15,5]
 *                             [--lanes reorder-accept,status-keyed,…] [--voices-per-cell 2|all]
 *                             [--calls-per-cell 1] [--concurrency 4] [--max-turns 6] [--timeout 900] [--verbose]
 *
 * Calls: for every lane and noise level, `--voices-per-cell` voices (a rotation through
 * `--voices`, so each lane meets different ones; `all` = every voice, the default when
 * `--voices` is given), each `--calls-per-cell` times. Default: the 12 lanes × clean and
 * 15 dB × 2 of the 8 voices = 48 calls (≈ 8 min on 2 cores at 4 at a time); `--quick`: 12
 * lanes × clean × 1 voice = 12 calls (≈ 2 min).
 *
 * Two servers (built-in SIP edge, embedded defaults: rules agent, pocketsphinx, flite, VAD),
 * one with its clock inside business hours, one after hours (VOICE_AGENT_NOW), each with its
 * own CRM/ERP SQLite file and REP_URI pointing at the bench's reps' phones (rep.ts). Scripted
 * multi-turn SIP calls (the product's test caller, PCMU, RFC 4733 DTMF) from Dana Reyes
 * (Acme Plumbing Supply), one per (lane, voice, noise level, repetition), `--concurrency` at
 * a time. The caller's audio is espeak-ng (variants and speeds) or flite at 8 kHz, clean or with
 * sox pink noise at the given SNR (audio.ts). The caller (lanes.ts) listens to what the agent
 * asks — from the agent's prompt text in the server log, for turn-taking only — and answers as
 * a person would.
 *
 * The judge is outside the agent (judge.ts): the CRM/ERP database (voice order rows and their
 * lines, attributed to the call by their idempotency key; after-hours cases; `handoff`
 * activities) and the reps' phones (the INVITE that carried the screen pop). Order status
 * writes nothing, so it is judged by the caller's ear: the agent's answer after the PO,
 * transcribed by the caller with the local recogniser, must say the order's state. A voice
 * order whose lines differ from what the caller wanted is a WRONG ORDER (counted apart, in any
 * lane). Turns to success: caller turns up to the one after which the judge first saw the
 * goal. Reply latency: end of the caller's speech (its last speech packet sent) → first voiced
 * agent packet at the caller's RTP socket, 700 ms endpointing included.
 *
 * A call ends at --max-turns caller turns (a caller who is not understood hangs up); each turn
 * the caller spent keying digits the agent asked for moves that limit one turn on, up to 3
 * (KEYED_EXTRA): a caller following the keypad prompts is getting somewhere.
 *
 * Last stdout line: JSON {"bench":"outcomes","totals":{…},"by_lane":{…},"by_voice":{…},"by_noise":{…},"cells":[…]}.
 */
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { placeCall, type AgentSegment } from '../../../src/cli/caller.ts';
import { nowMs } from '../../../src/cli/rtp.ts';
import { agentVocabulary } from '../../../src/cli/conversation.ts';
import type { SttProvider, Vocabulary } from '../../../src/stt/types.ts';
import { freePort, freePortBlock, type PortRange } from '../../helpers/ports.ts';
import { startServer, type ServerHandle } from '../../helpers/server.ts';
import { CallerVoices, DEFAULT_VOICES, haveTools, isUnseen, parseVoice } from './audio.ts';
import { CALLER, LANES, newCallerState, respond, type Action, type Lane } from './lanes.ts';
import { Judge, type Verdict } from './judge.ts';
import { RepPhones } from './rep.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    voices: { type: 'string' },
    noise: { type: 'string' },
    lanes: { type: 'string' },
    'calls-per-cell': { type: 'string' },
    'voices-per-cell': { type: 'string' },
    concurrency: { type: 'string' },
    'max-turns': { type: 'string', default: '6' },
    timeout: { type: 'string', default: '900' },
    verbose: { type: 'boolean', default: false },
  },
});

const fail = (msg: string): never => {
  console.log(JSON.stringify({ bench: 'outcomes', error: msg }));
  process.exit(2);
};
const QUICK = values.quick === true;
const VOICES = (values.voices ?? DEFAULT_VOICES.join(','))
  .split(',').map((v) => v.trim()).filter(Boolean);
try {
  VOICES.forEach(parseVoice);
} catch (err) {
  fail((err as Error).message);
}
const NOISE: Array<number | undefined> = (values.noise ?? (QUICK ? 'clean' : 'clean,15')).split(',').map((n) => {
  const s = n.trim();
  if (s === 'clean') return undefined;
  const v = Number(s);
  if (!Number.isFinite(v)) fail(`--noise: bad level "${s}" (expected clean or an SNR in dB)`);
  return v;
});
const LANE_IDS = values.lanes ? values.lanes.split(',').map((s) => s.trim()) : LANES.map((l) => l.id);
for (const id of LANE_IDS) if (!LANES.some((l) => l.id === id)) fail(`--lanes: unknown lane "${id}" (lanes: ${LANES.map((l) => l.id).join(', ')})`);
const PER_CELL = Math.max(1, Number(values['calls-per-cell'] ?? 1));
/** voices per (lane, noise level): a rotation through --voices (each lane meets different ones), or all of them */
const VPC_ARG = values['voices-per-cell'] ?? (values.voices ? 'all' : QUICK ? '1' : '2');
if (VPC_ARG !== 'all' && !(Number(VPC_ARG) >= 1)) fail(`--voices-per-cell: expected a number ≥ 1 or "all", got "${VPC_ARG}"`);
const VPC = VPC_ARG === 'all' ? VOICES.length : Math.min(VOICES.length, Number(VPC_ARG));
const CONCURRENCY = Math.max(1, Number(values.concurrency ?? 4));
const MAX_TURNS = Math.max(2, Number(values['max-turns']));
const VERBOSE = values.verbose === true;

const SIP: PortRange = { min: 15200, max: 15299 };
const CONTROL: PortRange = { min: 15300, max: 15399 };
const REP_SIP: PortRange = { min: 15400, max: 15499 };
const SERVER_RTP: PortRange = { min: 42000, max: 42999 };
const CALLER_RTP: PortRange = { min: 43000, max: 43499 };

/** Wed 2 Dec 2026, 10:00 in Chicago: open. */
const OPEN_AT = '2026-12-02T16:00:00Z';
/** Wed 2 Dec 2026, 22:00 in Chicago: closed. */
const CLOSED_AT = '2026-12-03T04:00:00Z';
/**
 * Turns a caller spends keying digits the agent asked for (a part's digits, a quantity, a PO)
 * that do not count against --max-turns: the limit models a caller's patience with not being
 * understood, and one keying in what the agent asked for is getting somewhere — a keypad path
 * (part check, keyed part, part check, quantity check, read-back) is 6 turns on its own.
 */
const KEYED_EXTRA = 3;
/** quiet after the agent's speech that ends its turn */
const SILENCE_MS = 1300;
/** the caller's clips carry this much silence after the speech (audio.ts) */
const TAIL_PAD_MS = 120;

const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pct = (v: number[], p: number): number | null => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]! : null;
};

const tmp = mkdtempSync(path.join(tmpdir(), 'bench-outcomes-'));
const servers: ServerHandle[] = [];
let reps: RepPhones | undefined;
process.once('exit', () => {
  for (const s of servers) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});
const watchdog = setTimeout(() => {
  log(`outcomes: timed out after ${values.timeout} s`);
  process.exit(1);
}, Number(values.timeout) * 1000);
watchdog.unref();

interface Job {
  lane: Lane;
  voice: string;
  noise: number | undefined;
  rep: number;
  seq: number;
}

interface CallOutcome {
  lane: string;
  group: Lane['group'];
  voice: string;
  noise: string;
  callId: string;
  verdict: Verdict;
  turns: number;
  turnsToSuccess?: number;
  latenciesMs: number[];
  transcript: string[];
  /** what the server's recogniser heard (diagnostics, never judged) */
  heardByServer: string[];
  why?: string;
  seconds: number;
}

interface Env {
  open: ServerHandle & { db: string };
  closed?: ServerHandle & { db: string };
  voices: CallerVoices;
  stt: SttProvider | null;
  vocabulary: Vocabulary;
  judge: (s: ServerHandle & { db: string }) => Judge;
}

/** `agent said` lines for the call (from the server's text log), in order, starting at `from`. */
function agentLines(s: ServerHandle, callId: string, from: number): { texts: string[]; end: number } {
  const all = s.log();
  const chunk = all.slice(from);
  const cut = chunk.lastIndexOf('\n') + 1;
  const texts: string[] = [];
  for (const line of chunk.slice(0, cut).split('\n')) {
    if (!line.includes('msg="agent said"') || !line.includes(`callId=${callId}`)) continue;
    const m = / text=("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
    if (!m) continue;
    try {
      texts.push(m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1]!);
    } catch {
      /* not a JSON string */
    }
  }
  return { texts, end: from + cut };
}

async function transcribe(env: Env, pcm: Int16Array): Promise<string> {
  if (!env.stt || pcm.length === 0) return '';
  const s = env.stt.createStream({ sampleRate: 8000, vocabulary: env.vocabulary });
  for (let i = 0; i < pcm.length; i += 160) s.push(pcm.subarray(i, i + 160));
  try {
    return (await s.end()).text.toLowerCase();
  } catch {
    return '';
  }
}

async function runCall(env: Env, job: Job): Promise<CallOutcome> {
  const s = job.lane.night ? env.closed! : env.open;
  const judge = env.judge(s);
  const intent = job.lane.intent(job.rep + job.seq);
  const st = newCallerState(intent);
  const seed = job.seq + 1;
  const out: CallOutcome = {
    lane: job.lane.id, group: job.lane.group, voice: job.voice, noise: job.noise === undefined ? 'clean' : `${job.noise}dB`,
    callId: '', verdict: { success: false, wrongOrder: false, detail: 'not judged' }, turns: 0, latenciesMs: [], transcript: [], heardByServer: [], seconds: 0,
  };
  const t0 = Date.now();
  const heard: string[] = [];
  let logMark = s.log().length;
  const rtpPort = await freePort(CALLER_RTP, 'udp', 2);
  const res = await placeCall({
    port: s.sipPort, from: CALLER.ani, to: '18005550100', rtpPort, maxCallMs: 150_000,
    onEvent: (e, d) => {
      if (e === 'invite') out.callId = (d as { callId: string }).callId;
    },
    script: async (ctl) => {
      let speechEnd = 0;
      let lastWasSpeech = false;
      let keyedTurns = 0;
      const prompts: string[] = [];
      for (let turn = 0; ; turn++) {
        const seg: AgentSegment = await ctl.waitForAgent({ silenceMs: SILENCE_MS, timeoutMs: 20000 });
        if (!seg.timedOut && lastWasSpeech && speechEnd > 0 && seg.startMs > speechEnd) out.latenciesMs.push(Math.round(seg.startMs - speechEnd));
        // what the agent asked (turn-taking only)
        await sleep(30);
        const lines = agentLines(s, out.callId, logMark);
        logMark = lines.end;
        const agentText = lines.texts.join(' ');
        out.transcript.push(`agent: ${seg.timedOut ? '(silence)' : agentText}`);
        // the judge, outside the agent: has the goal been reached after `turn` caller turns?
        if (intent.kind === 'status' && !seg.timedOut && st.asked) heard.push(await transcribe(env, seg.pcm));
        const v = await judge.check(out.callId, intent, heard, st);
        if (v.success && out.turnsToSuccess === undefined) out.turnsToSuccess = out.turns;
        if (v.wrongOrder) break;
        if (v.success) st.reached = true;
        if (ctl.serverHungUp) break;
        if (v.handedOff) {
          await ctl.pause(500);
          break;
        }
        // a caller keying what the agent asked for is following it, not giving up: each keyed
        // answer moves the limit one turn on (up to KEYED_EXTRA)
        if (out.turns >= MAX_TURNS + Math.min(KEYED_EXTRA, keyedTurns)) {
          out.why = 'turn limit';
          break;
        }
        if (seg.timedOut && !agentText) {
          // dead air: say the request again once, like a person would
          out.transcript.push('caller: (hears nothing)');
        }
        // the same prompt three times running: a person gives up and hangs up
        prompts.push(agentText);
        if (prompts.length >= 3 && agentText && prompts.slice(-3).every((p) => p === agentText)) {
          out.why = 'the agent repeated itself three times; caller hung up';
          break;
        }
        const act: Action = respond(st, agentText, turn);
        st.last = act;
        if ('end' in act) break;
        out.turns++;
        if ('dtmf' in act) {
          keyedTurns++;
          out.transcript.push(`caller: [keys ${act.dtmf}]`);
          await ctl.dtmf(act.dtmf);
          lastWasSpeech = false;
        } else {
          out.transcript.push(`caller: ${act.say}`);
          const pcm = env.voices.say(job.voice, act.say, job.noise, seed + out.turns);
          await ctl.say(pcm);
          speechEnd = nowMs() - TAIL_PAD_MS;
          lastWasSpeech = true;
        }
        if (/goodbye/i.test('say' in act ? act.say : '')) {
          await ctl.waitForAgent({ silenceMs: 800, timeoutMs: 5000 });
          break;
        }
      }
    },
  });
  if (res.status !== 200) out.why = `call setup ${res.status} ${res.reason}`.trim();
  // diagnostics only (printed with failures): what the server's recogniser made of the caller
  for (const line of s.log().split('\n')) {
    if (!line.includes(`callId=${out.callId}`) || !/msg="caller (said|keyed)"/.test(line)) continue;
    const m = / (text|digits)=("(?:[^"\\]|\\.)*"|\S+)/.exec(line);
    if (m) out.heardByServer.push(m[2]!.replace(/^"|"$/g, ''));
  }
  if (res.scriptError) out.why = `script: ${res.scriptError.message}`;
  // hand-off records and cases land a moment after the call's last turn
  out.verdict = await judge.final(out.callId, intent, heard, st);
  if (out.verdict.success && out.turnsToSuccess === undefined) out.turnsToSuccess = out.turns;
  if (!out.verdict.success) out.turnsToSuccess = undefined;
  out.seconds = Math.round((Date.now() - t0) / 100) / 10;
  return out;
}

function summarize(list: CallOutcome[]): Record<string, unknown> {
  const ok = list.filter((o) => o.verdict.success);
  const lat = list.flatMap((o) => o.latenciesMs);
  const tts = ok.map((o) => o.turnsToSuccess).filter((x): x is number => x !== undefined);
  return {
    calls: list.length,
    success: ok.length,
    success_pct: list.length ? Math.round((1000 * ok.length) / list.length) / 10 : null,
    turns_to_success_mean: tts.length ? Math.round((10 * tts.reduce((a, b) => a + b, 0)) / tts.length) / 10 : null,
    wrong_orders: list.filter((o) => o.verdict.wrongOrder).length,
    reply_latency_ms: { p50: pct(lat, 50), p95: pct(lat, 95), n: lat.length },
  };
}

function table(title: string, rows: Array<[string, Record<string, unknown>]>): void {
  log(`\n${title}`);
  log(`${'  '.padEnd(34)}calls  success   turns  wrong   latency p50/p95 ms`);
  for (const [k, r] of rows) {
    const l = r.reply_latency_ms as { p50: number | null; p95: number | null };
    log(`  ${k.padEnd(32)}${String(r.calls).padStart(5)}  ${`${r.success}/${r.calls} ${r.success_pct ?? '-'}%`.padStart(11)}  ${String(r.turns_to_success_mean ?? '-').padStart(5)}  ${String(r.wrong_orders).padStart(5)}   ${l.p50 ?? '-'}/${l.p95 ?? '-'}`);
  }
}

async function main(): Promise<void> {
  const tools = haveTools();
  if (!tools.sox || (!tools.espeak && VOICES.some(isUnseen)) || (!tools.flite && VOICES.some((v) => v.startsWith('flite:')))) {
    fail(`needs sox${VOICES.some(isUnseen) ? ', espeak-ng' : ''}${VOICES.some((v) => v.startsWith('flite:')) ? ', flite' : ''} on PATH (found: ${JSON.stringify(tools)})`);
  }
  const lanes = LANES.filter((l) => LANE_IDS.includes(l.id));
  const jobs: Job[] = [];
  let seq = 0;
  for (let rep = 0; rep < PER_CELL; rep++) {
    // the rotation keys on the lane's place in LANES, so a --lanes subset meets the same voices as the full run
    lanes.forEach((lane) => NOISE.forEach((noise, ni) => {
      const li = LANES.indexOf(lane);
      for (let k = 0; k < VPC; k++) {
        const voice = VPC === VOICES.length ? VOICES[k]! : VOICES[(li * VPC + k + ni * 3 + rep) % VOICES.length]!;
        jobs.push({ lane, voice, noise, rep, seq: seq++ });
      }
    }));
  }
  // interleave lanes so a slow stretch of the box does not hit one lane only
  jobs.sort((a, b) => (a.seq * 7919) % jobs.length - (b.seq * 7919) % jobs.length);
  log(`outcomes: ${jobs.length} calls (${lanes.length} lanes × ${NOISE.length} noise levels × ${VPC} of ${VOICES.length} voices × ${PER_CELL}), ${CONCURRENCY} at a time`);

  const audioDir = path.join(tmp, 'audio');
  mkdirSync(audioDir);
  const voices = new CallerVoices(audioDir);
  reps = await RepPhones.start(await freePort(REP_SIP, 'udp'));
  const start = async (name: string, now: string): Promise<ServerHandle & { db: string }> => {
    const db = path.join(tmp, `${name}.sqlite`);
    const rtp = await freePortBlock(SERVER_RTP, 120);
    const s = await startServer({
      SIP_PORT: String(await freePort(SIP, 'both')),
      DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
      RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
      CRM_DB: db, DATA_DIR: path.join(tmp, `${name}-var`), VOICE_AGENT_NOW: now,
      VOICE_MEDIA_RT_PRIORITY: '0', MAX_CALL_SECONDS: '180',
      REP_URI: `sip:{extension}@127.0.0.1:${reps!.port}`, REP_RING_SECONDS: '10',
    }, { readyTimeoutMs: 90000 });
    servers.push(s);
    return Object.assign(s, { db });
  };
  const t0 = Date.now();
  const needNight = lanes.some((l) => l.night);
  const [open, closed] = await Promise.all([start('open', OPEN_AT), needNight ? start('closed', CLOSED_AT) : Promise.resolve(undefined)]);
  log(`outcomes: server(s) up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  let stt: SttProvider | null = null;
  try {
    const { createStt } = await import('../../../src/stt/index.ts');
    stt = createStt('pocketsphinx') as SttProvider;
  } catch (err) {
    log(`outcomes: no local recogniser for the caller's ear (${(err as Error).message}): status lanes cannot succeed`);
  }
  const env: Env = {
    open: open!, ...(closed ? { closed } : {}), voices, stt, vocabulary: await agentVocabulary(),
    judge: (s) => new Judge(s.db, reps!),
  };

  // synthesize the openers up front (the CLIs take ~50–300 ms each)
  for (const j of jobs) for (const say of j.lane.intent(j.rep + j.seq).say.slice(0, 1)) voices.say(j.voice, say, j.noise, 1);

  const outcomes: CallOutcome[] = [];
  let next = 0;
  let done = 0;
  const tRun = Date.now();
  const loadStart = loadavg()[0]!;
  const worker = async (w: number): Promise<void> => {
    await sleep(w * 700);
    for (;;) {
      const i = next++;
      if (i >= jobs.length) return;
      const job = jobs[i]!;
      let o: CallOutcome;
      try {
        o = await runCall(env, job);
      } catch (err) {
        o = {
          lane: job.lane.id, group: job.lane.group, voice: job.voice, noise: job.noise === undefined ? 'clean' : `${job.noise}dB`, callId: '',
          verdict: { success: false, wrongOrder: false, detail: 'bench error' }, turns: 0, latenciesMs: [], transcript: [], heardByServer: [], why: String((err as Error).message ?? err), seconds: 0,
        };
      }
      outcomes.push(o);
      done++;
      const mark = o.verdict.wrongOrder ? 'WRONG ORDER' : o.verdict.success ? 'ok' : 'FAIL';
      log(`  [${done}/${jobs.length}] ${o.lane} ${o.voice} ${o.noise}: ${mark} (${o.verdict.detail}) turns ${o.turns}${o.turnsToSuccess !== undefined ? ` (success after ${o.turnsToSuccess})` : ''}, ${o.seconds} s${o.why ? `; ${o.why}` : ''}`);
      if (VERBOSE || (!o.verdict.success && o.transcript.length)) {
        for (const l of o.transcript) log(`        ${l}`);
        log(`        (server heard: ${o.heardByServer.map((h) => JSON.stringify(h)).join(', ')})`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs.length) }, (_, w) => worker(w)));
  } finally {
    await Promise.all(servers.map((s) => s.stop(3000)));
    reps.close();
  }
  const runSeconds = Math.round((Date.now() - tRun) / 1000);

  const group = <K extends string>(key: (o: CallOutcome) => K): Array<[K, Record<string, unknown>]> => {
    const m = new Map<K, CallOutcome[]>();
    for (const o of outcomes) m.set(key(o), [...(m.get(key(o)) ?? []), o]);
    return [...m.entries()].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([k, v]) => [k, summarize(v)]);
  };
  const byLane = group((o) => o.lane);
  const byVoice = group((o) => o.voice);
  const byNoise = group((o) => o.noise);
  const cells = group((o) => `${o.lane} | ${o.voice} | ${o.noise}`);
  const inLane = outcomes.filter((o) => o.group !== 'out');
  const unseen = (noise: string): CallOutcome[] => inLane.filter((o) => isUnseen(o.voice) && o.noise === noise);
  const targets = {
    in_lane_unseen_clean_pct: summarize(unseen('clean')).success_pct,
    in_lane_unseen_15dB_pct: summarize(unseen('15dB')).success_pct,
    wrong_orders: outcomes.filter((o) => o.verdict.wrongOrder).length,
    out_of_lane_handed_off: `${outcomes.filter((o) => o.group === 'out' && o.verdict.success).length}/${outcomes.filter((o) => o.group === 'out').length}`,
  };
  table('by lane', byLane);
  table('by voice', byVoice);
  table('by noise', byNoise);
  if (PER_CELL > 1 || VERBOSE) table('by lane | voice | noise', cells);
  log(`\ntargets: in-lane unseen clean ${targets.in_lane_unseen_clean_pct ?? '-'}% (≥ 90), at 15 dB ${targets.in_lane_unseen_15dB_pct ?? '-'}% (≥ 75), wrong orders ${targets.wrong_orders} (0), out of lane handed off ${targets.out_of_lane_handed_off} (all)`);
  log(`outcomes: ${outcomes.length} calls in ${runSeconds} s (load average ${loadStart.toFixed(1)} → ${loadavg()[0]!.toFixed(1)})`);
  console.log(JSON.stringify({
    bench: 'outcomes',
    voices: VOICES, voices_per_cell: VPC, noise: NOISE.map((n) => (n === undefined ? 'clean' : `${n}dB`)), lanes: lanes.map((l) => l.id), calls_per_cell: PER_CELL, concurrency: CONCURRENCY,
    seconds: runSeconds,
    /** the box's 1-minute load average when the calls started and ended (2 cores, shared) */
    loadavg_1m: [Math.round(loadStart * 10) / 10, Math.round(loadavg()[0]! * 10) / 10],
    totals: summarize(outcomes),
    in_lane: summarize(inLane),
    targets,
    by_lane: Object.fromEntries(byLane),
    by_voice: Object.fromEntries(byVoice),
    by_noise: Object.fromEntries(byNoise),
    cells: Object.fromEntries(cells),
  }));
}

main().then(() => process.exit(0), (err: unknown) => {
  log(String((err as Error)?.stack ?? err));
  console.log(JSON.stringify({ bench: 'outcomes', error: String((err as Error)?.message ?? err).split('\n')[0] }));
  for (const s of servers) s.proc.kill('SIGKILL');
  process.exit(1);
});
