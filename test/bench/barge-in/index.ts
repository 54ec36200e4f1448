/**
 * Barge-in through the live media path, measured as the caller hears it: an
 * in-process MediaEngine with VAD on, one UDP peer per session that decodes
 * every outbound RTP packet. Each trial: the session plays a long flite prompt;
 * after ~0.8 s the peer sends a corpus utterance (flite voices, clean and with
 * noise, phone line) as 20 ms PCMU RTP. Every received packet is classified
 * against the prompt (agentLevels): full level, ducked (≥ 6 dB down), silent
 * (keep-alive: the agent stopped) or unknown (a quiet stretch of the prompt).
 *
 * - reaction = send instant of the packet holding the audible onset (speech above
 *   the item's own noise) → arrival of the last full-level agent packet before the
 *   agent yielded for good (ducked or stopped until the barge-in stopped it); also
 *   from the clean recording's onset (first 20 ms above -45 dBFS).
 * - audio kept (backchannel/noise set, per item class): of the agent packets that
 *   arrived from the item's first packet to 400 ms after its last, the share that
 *   carried agent audio (kept) and the share at full level.
 * - false barge-ins: backchannel/noise items that took the turn (speechEnd).
 *
 * Trials run `--parallel` at a time (the VAD runs are batched as in production).
 *
 *   npm run bench -- barge-in [--trials all] [--parallel 10]
 *                             [--configs 'pauseOnsetMs=96,pauseDuckDb=0|default']
 *                             [--minInterruptionMs 300,150] [--pauseOnsetMs 96,32] [--pauseDuckDb 0,15]
 *   npm run bench -- barge-in --set short-answers [--variants 'default|minSpeechMs=160,...']
 *   npm run bench -- barge-in --set cue [--configs ...]
 *
 * `--set short-answers`: short "Yes."/"No."/"Yep." after a read-back in 15 and 5 dB
 * noise, espeak-ng and flite voices: answers that formed a turn, false turns on the same
 * noise alone (short-answers.ts); one row per variant of the tunables.
 * `--set cue`: the yield decision's own latency per config, offline (Silero over the
 * corpus, the native TurnState frame by frame, no network, no load from the box; levels
 * are not fed, so the level cue is off): p50/p90/p95 from the audible onset.
 *
 * Each config (`--configs`, '|'-separated, 'default' = the defaults; or every
 * minInterruptionMs × pauseOnsetMs × pauseDuckDb triple) is one row; the trials of
 * all rows run interleaved in one pool, so load from elsewhere on the box weighs
 * on every row alike. pauseOnsetMs 0 = no pause-first (the agent yields only at
 * the barge-in); pauseDuckDb 0 = pause-first silences the agent, > 0 = it ducks.
 * Without options: the former defaults (hard pause at 96 ms, 320 ms hold) against the current ones.
 *
 * BARGE_DETAIL=1 prints every trial (slowest first) with its events.
 *
 * Last stdout line: JSON.
 */
import { loadavg } from 'node:os';
import { MediaEngine, synthesize } from '../../../src/media/index.ts';
import { native } from '../../../src/media/native.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { TURN_DEFAULTS, resolveTurnTunables, type TurnTunables } from '../../../src/vad/policy.ts';
import { buildCorpus, readItem, type CorpusItem } from '../../audio/corpus.ts';
import { RtpPeer, agentLevels, agentPrompt, audibleOnsetSample, onsetSample, pool, sleep, waitFor, type AgentLevel } from './peer.ts';

setLogLevel('silent');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const TRIALS_ARG = arg('trials', 'all');
const PARALLEL = Number(arg('parallel', '10'));
/** 'k=v,k=v' → tunables ('default' or '' = the defaults). */
const parseTun = (spec: string): Partial<TurnTunables> => {
  const o: Record<string, number> = {};
  if (spec && spec !== 'default') for (const kv of spec.split(',')) o[kv.split('=')[0]!.trim()] = Number(kv.split('=')[1]);
  return o as Partial<TurnTunables>;
};
/** One row per config; their trials run interleaved in one pool, so a busy box weighs on all alike. */
const CONFIGS: Partial<TurnTunables>[] = process.argv.includes('--configs')
  ? arg('configs', 'default').split('|').map(parseTun)
  : process.argv.some((a) => /^--(minInterruptionMs|pauseOnsetMs|pauseDuckDb)$/.test(a))
    ? arg('minInterruptionMs', String(TURN_DEFAULTS.minInterruptionMs)).split(',').flatMap((mi) =>
      arg('pauseOnsetMs', String(TURN_DEFAULTS.pauseOnsetMs)).split(',').flatMap((po) =>
        arg('pauseDuckDb', String(TURN_DEFAULTS.pauseDuckDb)).split(',').map((d) =>
          ({ minInterruptionMs: Number(mi), pauseOnsetMs: Number(po), pauseDuckDb: Number(d) }))))
    : [{ pauseOnsetMs: 96, pauseHoldMs: 320, pauseDuckDb: 0 }, {}];

const pct = (v: number[], p: number): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

const corpus = buildCorpus();
const to8 = (it: CorpusItem): Int16Array => native.resample(readItem(it), 16000, 8000);
const speechItems = corpus.filter((c) => c.kind === 'speech');
/** Default: every speech item once (120: 4 voices × 6 phrases × clean + 4 noise conditions). */
const TRIALS = TRIALS_ARG === 'all' ? speechItems.length : Number(TRIALS_ARG);
const cleanOf = (it: CorpusItem): CorpusItem => corpus.find((c) => c.name === it.name.replace(/-[a-z]+\d+$/, '-clean'))!;
const onsetCache = new Map<string, number>();
const onsetOf = (it: CorpusItem): number => {
  const c = cleanOf(it);
  if (!onsetCache.has(c.name)) onsetCache.set(c.name, onsetSample(to8(c)));
  return onsetCache.get(c.name)!;
};
/** Audible onset (see audibleOnsetSample): where the speech rises above the item's own noise. */
const audibleCache = new Map<string, number>();
const audibleOnsetOf = (it: CorpusItem): number => {
  if (!audibleCache.has(it.name)) audibleCache.set(it.name, audibleOnsetSample(to8(cleanOf(it)), to8(it)));
  return audibleCache.get(it.name)!;
};
const bcItems = corpus.filter((c) => c.kind === 'backchannel' || c.kind === 'nonspeech');

const engine = MediaEngine.create({ portMin: 22400, portMax: 22999 });
await engine.vadReady();
const prompt = agentPrompt(await synthesize(
  'Thank you for calling Midwest Supply. Our offices are open from eight to six. ' +
    'You can place an order, check the status of an order, or speak with your sales representative.',
  { voice: 'kal' },
), 15);

const SET = arg('set', 'barge');
if (SET === 'short-answers') {
  // Short answers after a read-back, in noise (see short-answers.ts). Each --variants entry
  // ('|'-separated; 'default' or comma-separated key=value tunables) is one row.
  const { runShortAnswers, shortItems } = await import('./short-answers.ts');
  const items = shortItems();
  const rows: unknown[] = [];
  for (const v of arg('variants', 'default').split('|')) {
    const tun: Record<string, number> = {};
    if (v !== 'default') for (const kv of v.split(',')) tun[kv.split('=')[0]!] = Number(kv.split('=')[1]);
    const t0 = Date.now();
    const { summary, results } = await runShortAnswers(engine, prompt.subarray(0, 16000), tun, PARALLEL, items);
    if (process.env.BARGE_DETAIL) {
      for (const r of results) if (r.events.includes('speechEnd') === r.item.noiseOnly || process.env.BARGE_DETAIL === '2') console.log(`  ${r.item.name}: ${r.events.join(' ') || '-'} ${r.voicedMs || ''}`);
    }
    const t = summary.turns;
    console.log(`short answers [${v}]: turns formed ${Object.entries(t).map(([k, b]) => `${k} ${b.formed}/${b.items}`).join(', ')}; ` +
      `false turns on noise alone ${summary.falseTurns.formed}/${summary.falseTurns.items} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    rows.push({ variant: v, ...summary });
  }
  engine.close();
  console.log(JSON.stringify({ bench: 'barge-in', set: 'short-answers', parallel: PARALLEL, results: rows }));
  process.exit(0);
}

if (SET === 'cue') {
  // The cue's own latency, without the box: each corpus item's Silero probabilities (one
  // batched VadBatcher pass), the native TurnState driven frame by frame with the agent
  // speaking (vad_test turn); latency = end of the frame whose result made the agent yield
  // (the duck/pause in effect at the barge-in, else the barge-in) − the audible onset.
  // Levels are not fed here, so the level cue is off (the live path has it). One row per config.
  const { execFileSync } = await import('node:child_process');
  const { VadBatcher } = await import('../../../src/vad/batch.ts');
  const { probabilities, ensureVadTool } = await import('../../audio/pipeline.ts');
  const b = await VadBatcher.create();
  const probs = await probabilities(b, speechItems);
  b.close();
  const rows: unknown[] = [];
  for (const tun of CONFIGS) {
    const lat = speechItems.map((it, i) => {
      const lines = probs[i]!.map((p) => `${p} 1 0 0`).join('\n') + '\n';
      // the tunables the engine resolves at the model's rate (8 kHz: its own deactivation threshold)
      const full = resolveTurnTunables(tun, b.options.sampleRate);
      const out = execFileSync(ensureVadTool(), ['turn', ...Object.entries(full).map(([k, v]) => `${k}=${v}`)], { input: lines })
        .toString().trim().split('\n').map((l) => l.split(' ').map(Number));
      let yieldF = -1;
      let bargeF = -1;
      out.forEach((x, f) => {
        if (bargeF >= 0) return;
        if (x[5]) yieldF = f; // pause/duck
        if (x[6]) yieldF = -1; // resumed: that one did not count
        if (x[0]! & 4) bargeF = f;
      });
      const f = yieldF >= 0 ? yieldF : bargeF;
      return f < 0 ? NaN : (f + 1) * 32 - audibleOnsetOf(it) / 8;
    }).filter((x) => !Number.isNaN(x));
    const row = { sampleRate: b.options.sampleRate, tunables: resolveTurnTunables(tun, b.options.sampleRate), items: lat.length, cueP50Ms: Math.round(pct(lat, 50)), cueP90Ms: Math.round(pct(lat, 90)), cueP95Ms: Math.round(pct(lat, 95)), cueMaxMs: Math.round(Math.max(...lat)) };
    console.log(`cue [${Object.entries(tun).map(([k, v]) => `${k}=${v}`).join(',') || 'default'}]: ${lat.length} items, latency from the audible onset p50 ${row.cueP50Ms} p90 ${row.cueP90Ms} p95 ${row.cueP95Ms} max ${row.cueMaxMs} ms`);
    rows.push(row);
  }
  engine.close();
  console.log(JSON.stringify({ bench: 'barge-in', set: 'cue', results: rows }));
  process.exit(0);
}

interface Trial {
  item: string;
  /** Audible onset (speech above the item's own noise) → last full-level agent packet before it yielded; null without a barge-in. */
  reactionMs: number | null;
  /** Onset of the clean recording (first 20 ms above -45 dBFS, even under the noise) → the same packet. */
  reactionCleanMs: number | null;
  /** Agent packets from the item's first packet to 400 ms after its last: all, with agent audio, at full level. */
  window: { packets: number; audible: number; full: number };
  /** Audible onset → the first pause/bargeIn event in JS. */
  firstStopMs: number | null;
  events: string[];
  /** Agent audio arrived after the turn ended (speechEnd): the interrupted prompt came back. */
  audioAfterTurn: boolean;
}

async function trial(item: CorpusItem, tun: Partial<TurnTunables>, onset: number, audible: number): Promise<Trial> {
  const s = engine.createSession({ codec: 'PCMU', payloadType: 0, vad: tun });
  const peer = await RtpPeer.open();
  const events: string[] = [];
  const eventAt: number[] = [];
  const sentAt: number[] = [];
  let firstStop = 0;
  for (const e of ['speechStart', 'speechEnd', 'bargeIn', 'falseInterruption', 'backchannel', 'pause', 'resume'] as const) {
    s.on(e, () => {
      events.push(e);
      eventAt.push(performance.now());
      if ((e === 'pause' || e === 'bargeIn') && !firstStop && sentAt.length) firstStop = performance.now();
    });
  }
  try {
    s.setRemote('127.0.0.1', peer.port);
    peer.start(s.localPort);
    s.play(prompt);
    await sleep(800 + Math.random() * 200);
    const pcm = to8(item);
    peer.say(pcm, undefined, 0, (k, at) => (sentAt[k] = at));
    await waitFor(() => peer.queuedMs === 0, pcm.length / 8 + 3000);
    await sleep(400);
    const at = (sample: number): number => sentAt[Math.floor(Math.max(0, sample) / 160)] ?? NaN;
    const bargedIn = events.includes('bargeIn');
    const last = peer.lastAudioAt();
    const rx = peer.received;
    const lv: AgentLevel[] = agentLevels(rx, prompt);
    // The last full-level packet before the agent yielded for good: back from its last audio
    // packet over ducked (and unknown: a quiet stretch of the prompt) packets.
    let li = -1;
    for (let k = rx.length - 1; k >= 0; k--) if (lv[k] !== 'silent') { li = k; break; }
    let fi = li;
    while (fi > 0 && lv[fi] !== 'full') fi--;
    const yieldAt = fi >= 0 ? rx[fi]!.at : last;
    const from = sentAt[0] ?? Infinity;
    const to = (sentAt[sentAt.length - 1] ?? -Infinity) + 400;
    const window = { packets: 0, audible: 0, full: 0 };
    rx.forEach((p, k) => {
      if (p.at < from || p.at > to) return;
      window.packets++;
      if (lv[k] !== 'silent') window.audible++;
      if (lv[k] === 'full' || lv[k] === 'unknown') window.full++;
    });
    const endIdx = events.indexOf('speechEnd');
    return {
      item: item.name,
      reactionMs: bargedIn ? yieldAt - at(audible) : null,
      reactionCleanMs: bargedIn ? yieldAt - at(onset) : null,
      window,
      firstStopMs: firstStop ? firstStop - at(audible) : null,
      events,
      audioAfterTurn: endIdx >= 0 && last > eventAt[endIdx]!,
    };
  } finally {
    peer.close();
    s.close();
  }
}

/** Item class of the backchannel/noise set, for audio kept per class. */
const classOf = (it: CorpusItem): string => {
  if (it.kind === 'backchannel') return it.condition === 'clean' ? 'backchannel-clean' : 'backchannel-noisy';
  if (/hold/.test(it.name)) return 'music';
  if (/tone/.test(it.name)) return 'tone';
  if (/silence|floor/.test(it.name)) return 'quiet';
  return 'noise';
};
const pctOf = (a: number, b: number): number => (b ? Math.round((1000 * a) / b) / 10 : NaN);

const results: Record<string, unknown>[] = [];
const items = Array.from({ length: TRIALS }, (_, i) => speechItems[(i * 7) % speechItems.length]!);
const t0 = Date.now();
const allSpeech = await pool(items.flatMap((it) => CONFIGS.map((c, ci) => ({ it, c, ci }))), PARALLEL,
  ({ it, c, ci }) => trial(it, c, onsetOf(it), audibleOnsetOf(it)).then((r) => ({ ci, r })));
const allBc = await pool(bcItems.flatMap((it) => CONFIGS.map((c, ci) => ({ it, c, ci }))), PARALLEL,
  ({ it, c, ci }) => trial(it, c, 0, 0).then((r) => ({ ci, r })));
const seconds = (Date.now() - t0) / 1000;
for (const [ci, tun] of CONFIGS.entries()) {
  const trials = allSpeech.filter((x) => x.ci === ci).map((x) => x.r);
  const full = resolveTurnTunables(tun);
  const { minInterruptionMs, pauseOnsetMs, pauseDuckDb } = full;
  if (process.env.BARGE_DETAIL) {
    for (const r of [...trials].sort((a, b) => (b.reactionMs ?? 1e9) - (a.reactionMs ?? 1e9))) {
      console.log(`  ${r.item}: reaction ${r.reactionMs?.toFixed(0) ?? '-'} ms (clean onset ${r.reactionCleanMs?.toFixed(0) ?? '-'} ms), ` +
        `first stop event ${r.firstStopMs?.toFixed(0) ?? '-'} ms, ${r.events.join(' ')}${r.audioAfterTurn ? ' AUDIO AFTER TURN' : ''}`);
    }
  }
  const reactions = trials.map((r) => r.reactionMs).filter((x): x is number => x !== null);
  const reactionsClean = trials.map((r) => r.reactionCleanMs).filter((x): x is number => x !== null);
  const bc = allBc.filter((x) => x.ci === ci).map((x) => x.r);
  const bcOnly = bcItems.map((it, i) => ({ it, r: bc[i]! }));
  const taken = bcOnly.filter(({ r }) => r.events.includes('speechEnd'));
  const paused = bcOnly.filter(({ r }) => r.events.includes('bargeIn') || r.events.includes('pause'));
  if (process.env.BARGE_DETAIL) {
    for (const { it, r } of bcOnly) {
      if (r.window.audible < r.window.packets || r.window.full < r.window.packets) {
        console.log(`  ${it.name}: kept ${pctOf(r.window.audible, r.window.packets)} %, full level ${pctOf(r.window.full, r.window.packets)} %, ${r.events.join(' ')}`);
      }
    }
  }
  const keptBy: Record<string, { items: number; keptPct: number; fullLevelPct: number; worstKeptPct: number }> = {};
  const sum = (xs: { r: Trial }[], k: 'packets' | 'audible' | 'full'): number => xs.reduce((a, { r }) => a + r.window[k], 0);
  for (const cls of [...new Set(bcItems.map(classOf)), 'all']) {
    const xs = bcOnly.filter(({ it }) => cls === 'all' || classOf(it) === cls);
    keptBy[cls] = {
      items: xs.length,
      keptPct: pctOf(sum(xs, 'audible'), sum(xs, 'packets')),
      fullLevelPct: pctOf(sum(xs, 'full'), sum(xs, 'packets')),
      worstKeptPct: Math.min(...xs.map(({ r }) => pctOf(r.window.audible, r.window.packets))),
    };
  }
  const row = {
    tunables: full,
    trials: trials.length,
    bargedIn: reactions.length,
    reactionP50Ms: Math.round(pct(reactions, 50)),
    reactionP95Ms: Math.round(pct(reactions, 95)),
    reactionMaxMs: Math.round(Math.max(...reactions)),
    reactionCleanOnsetP50Ms: Math.round(pct(reactionsClean, 50)),
    reactionCleanOnsetP95Ms: Math.round(pct(reactionsClean, 95)),
    audioAfterTurn: trials.filter((r) => r.audioAfterTurn).map((r) => r.item),
    falseBargeIn: { items: bcItems.length, turnsTaken: taken.length, rate: taken.length / bcItems.length, takenBy: taken.map(({ it }) => it.name) },
    pausedThenResumed: paused.length - taken.length,
    pauseRate: (paused.length - taken.length) / bcItems.length,
    audioKept: keptBy,
  };
  const kept = Object.entries(keptBy).map(([k, v]) => `${k} ${v.keptPct}% (full ${v.fullLevelPct}%)`).join(', ');
  console.log(
    `[${Object.entries(tun).map(([k, v]) => `${k}=${v}`).join(',') || 'default'}] minInterruptionMs=${minInterruptionMs} pauseOnsetMs=${pauseOnsetMs} pauseDuckDb=${pauseDuckDb}: barge-in ${reactions.length}/${trials.length}, ` +
      `reaction p50 ${row.reactionP50Ms} ms p95 ${row.reactionP95Ms} ms max ${row.reactionMaxMs} ms (from the clean onset: p50 ${row.reactionCleanOnsetP50Ms} p95 ${row.reactionCleanOnsetP95Ms} ms)` +
      `${row.audioAfterTurn.length ? `, agent audio after the turn: ${row.audioAfterTurn.join(' ')}` : ''}; backchannel/noise set: ${taken.length}/${bcItems.length} turns taken, ` +
      `${row.pausedThenResumed} paused/ducked+resumed; agent audio kept: ${kept}`,
  );
  results.push(row);
}
const vs = engine.vadStats();
engine.close();
console.log(JSON.stringify({ bench: 'barge-in', parallel: PARALLEL, seconds, load1: loadavg()[0], vad: { handovers: vs.handovers, skipped: vs.skipped, maxBatch: vs.batcher?.maxBatch }, results }));
