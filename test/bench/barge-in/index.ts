/**
 * Barge-in reaction time through the live media path: an in-process
 * MediaEngine with VAD on, one UDP peer per session. Each trial: the session
 * plays a long flite prompt; after ~0.8 s the peer sends a corpus utterance
 * (flite voices, clean and with noise, phone line) as 20 ms PCMU RTP;
 * reaction = send instant of the packet holding the acoustic onset (first
 * 20 ms above -45 dBFS in the clean version) → arrival of the last outbound
 * packet carrying agent audio (the session then sends keep-alive silence).
 * Trials run `--parallel` at a time (so the VAD runs are batched as in
 * production). Also runs the backchannel/noise set over the prompt and
 * counts taken turns (prompt dropped = false barge-in) and pauses.
 *
 *   npm run bench -- barge-in [--trials all] [--parallel 10] [--minInterruptionMs 300,150] [--pauseOnsetMs 96,0]
 *
 * Every minInterruptionMs × pauseOnsetMs pair is one row (pauseOnsetMs 0 = no
 * pause-first: the agent stops only at the barge-in). With pause-first the
 * reaction is the pause; "paused" counts backchannel/noise items that paused
 * (pause or bargeIn) without taking the turn.
 *
 * BARGE_DETAIL=1 prints every trial (slowest first) with its events.
 *
 * Last stdout line: JSON.
 */
import { MediaEngine, synthesize } from '../../../src/media/index.ts';
import { native } from '../../../src/media/native.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { TURN_DEFAULTS, type TurnTunables } from '../../../src/vad/policy.ts';
import { buildCorpus, readItem, type CorpusItem } from '../../audio/corpus.ts';
import { RtpPeer, agentPrompt, audibleOnsetSample, onsetSample, sleep, waitFor } from './peer.ts';

setLogLevel('silent');

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
const TRIALS_ARG = arg('trials', 'all');
const PARALLEL = Number(arg('parallel', '10'));
const MIN_INT = arg('minInterruptionMs', '300,150').split(',').map(Number);
const PAUSE_ONSET = arg('pauseOnsetMs', '96,0').split(',').map(Number);

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

interface Trial {
  item: string;
  /** Audible onset (speech above the item's own noise) → last agent audio packet; null without a barge-in. */
  reactionMs: number | null;
  /** Onset of the clean recording (first 20 ms above -45 dBFS, even under the noise) → last agent audio packet. */
  reactionCleanMs: number | null;
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
    const endIdx = events.indexOf('speechEnd');
    return {
      item: item.name,
      reactionMs: bargedIn ? last - at(audible) : null,
      reactionCleanMs: bargedIn ? last - at(onset) : null,
      firstStopMs: firstStop ? firstStop - at(audible) : null,
      events,
      audioAfterTurn: endIdx >= 0 && last > eventAt[endIdx]!,
    };
  } finally {
    peer.close();
    s.close();
  }
}

async function pool<T, R>(xs: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i]!);
    }
  }));
  return out;
}

const results: Record<string, unknown>[] = [];
for (const minInterruptionMs of MIN_INT) for (const pauseOnsetMs of PAUSE_ONSET) {
  const tun: Partial<TurnTunables> = { minInterruptionMs, pauseOnsetMs };
  const items = Array.from({ length: TRIALS }, (_, i) => speechItems[(i * 7) % speechItems.length]!);
  const t0 = Date.now();
  const trials = await pool(items, PARALLEL, (it) => trial(it, tun, onsetOf(it), audibleOnsetOf(it)));
  if (process.env.BARGE_DETAIL) {
    for (const r of [...trials].sort((a, b) => (b.reactionMs ?? 1e9) - (a.reactionMs ?? 1e9))) {
      console.log(`  ${r.item}: reaction ${r.reactionMs?.toFixed(0) ?? '-'} ms (clean onset ${r.reactionCleanMs?.toFixed(0) ?? '-'} ms), ` +
        `first stop event ${r.firstStopMs?.toFixed(0) ?? '-'} ms, ${r.events.join(' ')}${r.audioAfterTurn ? ' AUDIO AFTER TURN' : ''}`);
    }
  }
  const reactions = trials.map((r) => r.reactionMs).filter((x): x is number => x !== null);
  const reactionsClean = trials.map((r) => r.reactionCleanMs).filter((x): x is number => x !== null);
  const bc = await pool(bcItems, PARALLEL, (it) => trial(it, tun, 0, 0));
  const bcOnly = bcItems.map((it, i) => ({ it, r: bc[i]! }));
  const taken = bcOnly.filter(({ r }) => r.events.includes('speechEnd'));
  const paused = bcOnly.filter(({ r }) => r.events.includes('bargeIn') || r.events.includes('pause'));
  if (process.env.BARGE_DETAIL) console.log(`  backchannel/noise items that paused: ${paused.map(({ it }) => it.name).join(' ')}`);
  const row = {
    tunables: { ...TURN_DEFAULTS, ...tun },
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
    seconds: (Date.now() - t0) / 1000,
  };
  console.log(
    `minInterruptionMs=${minInterruptionMs} pauseOnsetMs=${pauseOnsetMs}: barge-in ${reactions.length}/${trials.length}, reaction p50 ${row.reactionP50Ms} ms ` +
      `p95 ${row.reactionP95Ms} ms max ${row.reactionMaxMs} ms (from the clean onset: p50 ${row.reactionCleanOnsetP50Ms} p95 ${row.reactionCleanOnsetP95Ms} ms)` +
      `${row.audioAfterTurn.length ? `, agent audio after the turn: ${row.audioAfterTurn.join(' ')}` : ''}; backchannel/noise set: ${taken.length}/${bcItems.length} turns taken, ` +
      `${row.pausedThenResumed} paused+resumed (${row.seconds.toFixed(0)} s)`,
  );
  results.push(row);
}
const vs = engine.vadStats();
engine.close();
console.log(JSON.stringify({ bench: 'barge-in', parallel: PARALLEL, vad: { handovers: vs.handovers, skipped: vs.skipped, maxBatch: vs.batcher?.maxBatch }, results }));
