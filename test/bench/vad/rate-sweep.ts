/**
 * Turn-taking thresholds per model rate, offline (`npm run bench -- vad/rate-sweep`): the
 * whole real-audio corpus (test/audio/corpus.ts: 72 speech, 3 digits, 13 non-speech and 32
 * backchannel items) and the short answers of `vad-short-answers` ("Yes."/"No."/"Yep.", six
 * voices, 15 dB pink noise, and that noise alone), each as the live path gets it — 8 kHz,
 * one more µ-law round trip (the RTP leg), upsampled for the 16 kHz model — and at each of
 * the eight 4 ms phases of the 32 ms frames (0-224 samples of silence before it: a call's
 * frames do not start where the item starts, and a word's voiced count moves by a frame with
 * the phase). Batched Silero at 8 and 16 kHz once, then the native TurnState (vad_test turn)
 * per candidate. No network, no live path: the numbers depend only on the audio and the
 * model, not on the box's load. Counts are over item × phase.
 *
 * For each rate × (activation, deactivation) it reports the corpus checks of `vad-audio`
 * and `vad-short-answers` that fail, and the margins:
 * - backchannels over the agent: longest voiced time against falseInterruptionMinSpeechMs
 *   (above it the backchannel takes the turn);
 * - speech over the agent: shortest voiced time of a real turn against that same limit;
 * - speech with the agent silent: longest stretch below the deactivation threshold inside a
 *   turn, against endpointSilenceMs (above it the turn is cut in two);
 * - short answers: turns formed, shortest voiced; noise alone: turns formed;
 * - non-speech: highest probability (against the activation threshold);
 * - voiced durations against 16 kHz at the defaults (mean difference in frames over every
 *   utterance both rates close the same number of times), and where turns end;
 * - onset: first frame at or above the activation threshold against 16 kHz's (mean, ms) —
 *   the duck over the agent's prompt and the barge-in count from it.
 *
 *   npm run bench -- vad/rate-sweep [--pairs 0.5/0.35,0.6/0.6,...]   (activation/deactivation at 8 kHz)
 *
 * Last stdout line: JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { native } from '../../../src/media/native.ts';
import { setLogLevel } from '../../../src/ops/log.ts';
import { VadBatcher, vadGeometry, type VadSampleRate } from '../../../src/vad/batch.ts';
import { TURN_DEFAULTS, TurnEvent, resolveTurnTunables, type TurnTunables } from '../../../src/vad/policy.ts';
import { buildCorpus, readItem, type CorpusItem } from '../../audio/corpus.ts';
import { buildShortAnswers } from '../../audio/short-answers.ts';
import { probabilities, turnEvents, type TurnEventRec } from '../../audio/pipeline.ts';

setLogLevel('silent');
const { values } = parseArgs({
  options: { pairs: { type: 'string', default: '0.5/0.35,0.5/0.45,0.5/0.5,0.55/0.55,0.6/0.5,0.6/0.6,0.65/0.65' } },
});
/** Candidate (activation, deactivation) pairs at 8 kHz. */
const PAIRS = values.pairs.split(',').map((x) => x.split('/').map(Number) as [number, number]);

// --- the short answers of test/unit/vad-short-answers.test.ts (test/audio/short-answers.ts) ---
const dir = mkdtempSync(join(tmpdir(), 'rate-sweep-'));
const { answers, alone } = buildShortAnswers(dir);

const corpus = buildCorpus();
const all = [...corpus, ...answers, ...alone];
const PHASES = [0, 32, 64, 96, 128, 160, 192, 224];
/** probs.get(rate)[item][phase] */
const probs = new Map<VadSampleRate, number[][][]>();
const lines8 = all.map((it) => native.ulawDecode(native.ulawEncode(native.resample(readItem(it), 16000, 8000))));
for (const sr of [16000, 8000] as const) {
  const b = await VadBatcher.create({ sampleRate: sr });
  const { frame: FR, context: CX, window: W } = vadGeometry(sr);
  const streams = lines8.flatMap((line) => PHASES.map((ph) => {
    const a = new Int16Array(ph + line.length);
    a.set(line, ph);
    return sr === 8000 ? a : native.resample(a, 8000, 16000);
  }));
  const out = streams.map(() => [] as number[]);
  const ctx = streams.map(() => new Float32Array(CX));
  streams.forEach((_, i) => b.addStream(i + 1));
  const frames = Math.max(...streams.map((x) => Math.floor(x.length / FR)));
  for (let f = 0; f < frames; f++) {
    const ids = streams.flatMap((x, i) => ((f + 1) * FR <= x.length ? [i] : []));
    const packed = new Float32Array(ids.length * W);
    ids.forEach((i, j) => {
      packed.set(ctx[i]!, j * W);
      for (let k = 0; k < FR; k++) packed[j * W + CX + k] = streams[i]![f * FR + k]! / 32768;
      ctx[i]!.set(packed.subarray(j * W + FR, j * W + W));
    });
    const r = await b.runBatch(ids.map((i) => i + 1), packed);
    ids.forEach((i, j) => out[i]!.push(r[j]!));
  }
  await b.close();
  probs.set(sr, all.map((_, i) => PHASES.map((_, q) => out[i * PHASES.length + q]!)));
}
rmSync(dir, { recursive: true, force: true });

const has = (r: TurnEventRec[], ev: number): number => r.filter((e) => e.events & ev).length;
const CLOSE = TurnEvent.Backchannel | TurnEvent.FalseInterruption | TurnEvent.SpeechEnd;
const idxOf = (kind: CorpusItem['kind']): number[] => corpus.flatMap((it, i) => (it.kind === kind ? [i] : []));
const SA0 = corpus.length;
const ALONE0 = corpus.length + answers.length;

const atPhase = (sr: VadSampleRate, q: number): number[][] => probs.get(sr)!.map((x) => x[q]!);

/** Voiced frames of each closed utterance: speech and backchannels over the agent, short answers with it silent. */
function durations(sr: VadSampleRate, tun: Partial<TurnTunables>, q: number): number[][] {
  const p = atPhase(sr, q);
  return all.map((it, i) => {
    if (i >= ALONE0 || it.kind === 'nonspeech' || it.kind === 'digits') return [];
    const agent = i < SA0;
    return turnEvents(p[i]!, { agent }, tun, sr).filter((e) => e.events & CLOSE).map((e) => e.voicedMs / 32);
  });
}
const ref = PHASES.map((_, q) => durations(16000, {}, q));
const firstActive = (p: number[], act: number): number => p.findIndex((x) => x >= act);
const refOnsets = PHASES.map((_, q) => idxOf('speech').map((i) => firstActive(atPhase(16000, q)[i]!, TURN_DEFAULTS.activationThreshold)));
const refEnds = PHASES.map((_, q) => idxOf('speech').map((i) => turnEvents(atPhase(16000, q)[i]!, {}, {}, 16000).find((e) => e.events & TurnEvent.SpeechEnd)?.endFrame ?? NaN));

interface Row {
  sampleRate: VadSampleRate; activationThreshold: number; deactivationThreshold: number;
  failures: string[]; backchannelTurns: number; backchannelMaxVoicedMs: number; backchannelMaxItem: string; backchannelMarginMs: number;
  speechOverAgentMinVoicedMs: number; speechLongestInnerGapMs: number; innerGapMarginMs: number;
  shortAnswersFormed: string; shortAnswerMinVoicedMs: number; noiseAloneTurns: number; nonspeechMaxProb: number;
  voicedVs16kMeanFrames: number; turnEndVs16kMeanMs: number; turnEndVs16kRangeMs: [number, number]; onsetVs16kMeanMs: number;
}

function evaluate(sr: VadSampleRate, act: number, deact: number): Row {
  const tun: Partial<TurnTunables> = { activationThreshold: act, deactivationThreshold: deact };
  const full = resolveTurnTunables(tun, sr);
  const fails: string[] = [];
  let speechMin = Infinity;
  let gapMax = 0;
  const endDiff: number[] = [];
  const onsetDiff: number[] = [];
  const diffs: number[] = [];
  let nsMax = 0;
  let bcMax = 0;
  let bcMaxItem = '';
  let bcTurns = 0;
  let formedMin = Infinity;
  let saMin = Infinity;
  let aloneTurns = 0;
  for (let q = 0; q < PHASES.length; q++) {
    const p = atPhase(sr, q);
    const fail = (m: string): void => { fails.push(`${m} (phase ${PHASES[q]})`); };
    idxOf('speech').forEach((i, j) => {
      const it = corpus[i]!;
      const ev = turnEvents(p[i]!, {}, tun, sr);
      if (!(has(ev, TurnEvent.SpeechStart) === 1 && has(ev, TurnEvent.SpeechEnd) === 1 && ev.length === 2)) fail(`${it.name}: not one turn`);
      const end = ev.find((e) => e.events & TurnEvent.SpeechEnd);
      if (end) {
        let gap = 0;
        for (let f = end.startFrame; f <= end.endFrame; f++) gapMax = Math.max(gapMax, (gap = p[i]![f]! < deact ? gap + 1 : 0));
        endDiff.push((end.endFrame - refEnds[q]![j]!) * 32);
        onsetDiff.push((firstActive(p[i]!, act) - refOnsets[q]![j]!) * 32);
      }
      const ea = turnEvents(p[i]!, { agent: true }, tun, sr);
      if (!(has(ea, TurnEvent.BargeIn) && has(ea, TurnEvent.SpeechEnd) >= 1 && !has(ea, TurnEvent.FalseInterruption))) fail(`${it.name}: no barge-in turn`);
      const close = ea.find((e) => e.events & TurnEvent.SpeechEnd);
      if (close) speechMin = Math.min(speechMin, close.voicedMs);
      if (j < 12 && has(turnEvents(p[i]!, { agent: true, uninterruptible: true }, tun, sr), TurnEvent.BargeIn)) fail(`${it.name}: barge-in over an uninterruptible prompt`);
    });
    for (const i of idxOf('nonspeech')) {
      nsMax = Math.max(nsMax, ...p[i]!);
      if (turnEvents(p[i]!, {}, tun, sr).length || turnEvents(p[i]!, { agent: true }, tun, sr).length) fail(`${corpus[i]!.name}: events on non-speech`);
    }
    let bcShort = 0;
    for (const i of idxOf('backchannel')) {
      const ev = turnEvents(p[i]!, { agent: true }, tun, sr);
      const end = ev.find((e) => e.events & CLOSE);
      if (!end) fail(`${corpus[i]!.name}: not closed`);
      else if (end.voicedMs > bcMax) [bcMax, bcMaxItem] = [end.voicedMs, `${corpus[i]!.name} at phase ${PHASES[q]}`];
      if (end && end.voicedMs < full.minInterruptionMs) bcShort++;
      if (has(ev, TurnEvent.SpeechEnd)) bcTurns++;
      if (has(ev, TurnEvent.SpeechEnd)) fail(`${corpus[i]!.name}: backchannel taken as a turn (${end?.voicedMs} ms voiced)`);
    }
    if (bcShort < 4) fail(`only ${bcShort} backchannels shorter than minInterruptionMs`);
    for (const i of idxOf('digits')) {
      const plain = turnEvents(p[i]!, {}, tun, sr);
      const first = plain.find((e) => e.events & TurnEvent.SpeechStart)?.frame ?? 0;
      const ext = turnEvents(p[i]!, { digitsFrom: first }, tun, sr);
      const lastEnd = plain.filter((e) => e.events & TurnEvent.SpeechEnd).pop();
      if (has(plain, TurnEvent.SpeechEnd) < 3 || has(ext, TurnEvent.SpeechEnd) !== 1 || has(ext, TurnEvent.SpeechStart) !== 1 ||
        ext.find((e) => e.events & TurnEvent.SpeechEnd)?.endFrame !== lastEnd?.endFrame) fail(`${corpus[i]!.name}: digits`);
    }
    let formed = 0;
    answers.forEach((a, j) => {
      const ends = turnEvents(p[SA0 + j]!, {}, tun, sr).filter((e) => e.events & TurnEvent.SpeechEnd);
      if (ends.length === 1) formed++;
      if (ends.length > 1) fail(`${a.name}: ${ends.length} turns`);
      saMin = Math.min(saMin, ends[0]?.voicedMs ?? 0);
    });
    if (formed < answers.length - 1) fail(`short answers: ${formed}/${answers.length} formed a turn`);
    formedMin = Math.min(formedMin, formed);
    const at = alone.filter((_, j) => has(turnEvents(p[ALONE0 + j]!, {}, tun, sr), TurnEvent.SpeechEnd) > 0).length;
    if (at) fail(`noise alone: ${at} turns`);
    aloneTurns += at;
    const d = durations(sr, tun, q);
    diffs.push(...d.flatMap((x, i) => (x.length === ref[q]![i]!.length ? x.map((v, k) => v - ref[q]![i]![k]!) : [])));
  }
  return {
    sampleRate: sr, activationThreshold: act, deactivationThreshold: deact, failures: fails, backchannelTurns: bcTurns,
    backchannelMaxVoicedMs: bcMax, backchannelMaxItem: bcMaxItem, backchannelMarginMs: full.falseInterruptionMinSpeechMs - bcMax,
    speechOverAgentMinVoicedMs: speechMin, speechLongestInnerGapMs: gapMax * 32, innerGapMarginMs: full.endpointSilenceMs - gapMax * 32,
    shortAnswersFormed: `${formedMin}/${answers.length}`, shortAnswerMinVoicedMs: saMin, noiseAloneTurns: aloneTurns,
    nonspeechMaxProb: Math.round(nsMax * 100) / 100,
    voicedVs16kMeanFrames: Math.round((diffs.reduce((a, b) => a + b, 0) / Math.max(1, diffs.length)) * 100) / 100,
    turnEndVs16kMeanMs: Math.round(endDiff.reduce((a, b) => a + b, 0) / Math.max(1, endDiff.length)),
    turnEndVs16kRangeMs: [Math.min(...endDiff), Math.max(...endDiff)],
    onsetVs16kMeanMs: Math.round((onsetDiff.reduce((a, b) => a + b, 0) / Math.max(1, onsetDiff.length)) * 10) / 10,
  };
}

const rows: Row[] = [evaluate(16000, TURN_DEFAULTS.activationThreshold, TURN_DEFAULTS.deactivationThreshold)];
for (const [act, deact] of PAIRS) rows.push(evaluate(8000, act, deact));
const d8 = resolveTurnTunables({}, 8000);
console.log(`falseInterruptionMinSpeechMs ${TURN_DEFAULTS.falseInterruptionMinSpeechMs}, endpointSilenceMs ${TURN_DEFAULTS.endpointSilenceMs}; ` +
  `8 kHz defaults: activation ${d8.activationThreshold}, deactivation ${d8.deactivationThreshold}\n`);
console.log(`${corpus.length} corpus items + ${answers.length} short answers + their noise alone, each at ${PHASES.length} frame phases; counts over item × phase\n`);
console.log('rate   act  deact  fails  bc turns  bc max (margin)        speech/agent min  inner gap (margin)  short  min   alone  ns max p  voiced vs 16k  turn end vs 16k       onset vs 16k');
for (const r of rows) {
  console.log(`${String(r.sampleRate).padEnd(6)} ${r.activationThreshold.toFixed(2)} ${r.deactivationThreshold.toFixed(2)}  ${String(r.failures.length).padStart(5)}  ${String(r.backchannelTurns).padStart(8)}  ` +
    `${`${r.backchannelMaxVoicedMs} (${r.backchannelMarginMs})`.padEnd(22)} ${String(r.speechOverAgentMinVoicedMs).padEnd(17)} ` +
    `${`${r.speechLongestInnerGapMs} (${r.innerGapMarginMs})`.padEnd(19)} ${r.shortAnswersFormed.padEnd(6)} ${String(r.shortAnswerMinVoicedMs).padEnd(5)} ` +
    `${String(r.noiseAloneTurns).padEnd(6)} ${r.nonspeechMaxProb.toFixed(2).padEnd(9)} ${r.voicedVs16kMeanFrames.toFixed(2).padStart(6)} fr      ` +
    `${`${r.turnEndVs16kMeanMs} ms [${r.turnEndVs16kRangeMs.join(', ')}]`.padEnd(21)} ${r.onsetVs16kMeanMs} ms`);
  for (const f of r.failures.slice(0, 8)) console.log(`    ${f}`);
  if (r.failures.length > 8) console.log(`    … ${r.failures.length - 8} more`);
}
console.log(JSON.stringify({ bench: 'vad/rate-sweep', corpusItems: corpus.length, shortAnswers: answers.length, phases: PHASES, rows }));
