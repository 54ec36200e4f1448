/**
 * Turn-taking policy glue between tenant config, the STT layer and the
 * native per-call state machine (`native/vad/turn_state.h`, `TurnState`).
 *
 * The state machine itself runs in native code on the media thread, so the
 * barge-in flush happens the moment it fires. This module holds what JS
 * decides: the tunables (per tenant, validated exactly like the C++
 * `validateTunables`), the event bit layout the native side reports, and the
 * "partial transcript ends in digits" test that extends endpointing while a
 * caller reads out a PO or phone number.
 *
 * The defaults depend on the model rate (`VOICE_VAD_RATE`, {@link turnDefaults}): Silero's
 * 8 kHz mode holds its probability higher after a word than the 16 kHz mode, so at 8 kHz the
 * thresholds are higher (0.6 / 0.6), chosen so that voiced durations — what minSpeechMs,
 * minInterruptionMs and falseInterruptionMinSpeechMs are measured in — keep every
 * backchannel of the real-audio corpus a frame under falseInterruptionMinSpeechMs
 * (src/vad/README.md, "8 kHz as the default").
 */
import { vadSampleRate, type VadSampleRate } from './rate.ts';

/** Per-tenant turn-taking tunables; mirror of C++ `voice::vad::TurnTunables`. Durations round up to 32 ms frames. */
export interface TurnTunables {
  /**
   * Speech probability at or above which a silent stream counts as speech.
   * At 8 kHz 0.6 (the deactivation threshold there is 0.6, and may not exceed it).
   * @defaultValue 0.5 (16 kHz), 0.6 (8 kHz)
   */
  activationThreshold: number;
  /**
   * Probability below which an ongoing utterance counts as silence
   * (hysteresis; must not exceed activationThreshold). At 8 kHz the default
   * is min(0.6, activationThreshold): Silero's 8 kHz mode decays ~1-2 frames
   * later after a word; 0.6 keeps every corpus backchannel at least one frame
   * under falseInterruptionMinSpeechMs at every frame phase (src/vad/README.md).
   * @defaultValue 0.35 (16 kHz), 0.6 (8 kHz)
   */
  deactivationThreshold: number;
  /**
   * Voiced time before an utterance becomes a caller turn (speech start)
   * while the agent is silent. A short answer in noise ("Yes." at 15 dB SNR)
   * stays voiced for only 160-224 ms; noise, tones and music never reach it.
   * @defaultValue 128
   */
  minSpeechMs: number;
  /**
   * Silence that abandons an onset not yet confirmed as a turn.
   * @defaultValue 96
   */
  onsetMaxGapMs: number;
  /**
   * Silence after speech that ends the caller's turn.
   * @defaultValue 700
   */
  endpointSilenceMs: number;
  /**
   * Endpointing silence while the partial transcript ends in digits
   * (PO numbers, phone numbers), so callers reading numbers with pauses are
   * not cut off. Must be >= endpointSilenceMs.
   * @defaultValue 1500
   */
  digitsEndpointSilenceMs: number;
  /**
   * Voiced time over an interruptible agent prompt before barge-in fires
   * (outbound audio flushed). Shorter sounds are backchannels.
   * @defaultValue 300
   */
  minInterruptionMs: number;
  /**
   * A barged-in turn with less voiced time than this in total ends as a false
   * interruption: the agent resumes or repeats the cut sentence. Silero's
   * probability stays high ~100-200 ms past a word's end, so a spoken "okay"
   * counts ~500-650 ms here. 0 disables.
   * @defaultValue 700
   */
  falseInterruptionMinSpeechMs: number;
  /**
   * Frames (32 ms) before the first voiced frame included in the utterance
   * handed to STT.
   * @defaultValue 2
   */
  preRollFrames: number;
  /**
   * Pause-first: voiced time of an onset over an interruptible prompt after
   * which the agent's audio ducks (pauseDuckDb) or pauses (queue kept) — what
   * the caller perceives as the agent yielding. Taking the turn (barge-in)
   * still needs minInterruptionMs; an onset that dies earlier (backchannel,
   * cough) resumes the prompt after pauseHoldMs of silence. One frame: a
   * wrong duck costs only level. 0 disables.
   * @defaultValue 32
   */
  pauseOnsetMs: number;
  /**
   * Pause-first: silence after an abandoned onset before the ducked (or
   * paused) prompt comes back to full level (or resumes where it stopped).
   * @defaultValue 700
   */
  pauseHoldMs: number;
  /**
   * Pause-first level cue: a frame also counts toward pauseOnsetMs when the
   * model gives it at least this probability (below the activation
   * threshold) and it is loud: pauseCueSnrDb above the line's noise floor
   * (the quietest 32 ms frame of the last second) and at least -50 dBFS.
   * Catches quiet or aspirated onsets ("wh-", "h-") that Silero believes only
   * once the vowel comes, 150-250 ms later. It only pauses the prompt: taking
   * the turn still needs minInterruptionMs at the real thresholds, and a cue
   * that dies resumes the prompt after pauseHoldMs (once per loud stretch:
   * music or a tone that keeps the cue up does not pause it again). 0 disables.
   * @defaultValue 0.15
   */
  pauseCueProb: number;
  /**
   * Pause-first level cue: how far above the noise floor a frame must be, dB.
   * @defaultValue 20
   */
  pauseCueSnrDb: number;
  /**
   * Pause-first as a duck: at the pause cue the prompt's level is lowered by
   * this many dB (ramped over 5 ms) and it keeps playing; when the onset dies
   * it ramps back up. Only a confirmed barge-in (minInterruptionMs) stops the
   * agent. Noise, a cough or a backchannel then costs the caller a few hundred
   * ms of a quieter agent instead of a gap. 0 = the pause silences the prompt
   * (it resumes where it stopped).
   * @defaultValue 15
   */
  pauseDuckDb: number;
  /**
   * Endpointing is what the caller hears: the reply should start
   * endpointSilenceMs after they stopped talking. Up to this much of the
   * receive path's measured delay (jitter-buffer delay + VAD hand-over + the
   * model's ~1-frame tail) is taken off the silence counted in VAD frames —
   * never more than half of it. 0 = off (count the full silence in media time).
   * @defaultValue 160
   */
  latencyCompensationMs: number;
}

export const TURN_DEFAULTS: Readonly<TurnTunables> = Object.freeze({
  activationThreshold: 0.5,
  deactivationThreshold: 0.35,
  minSpeechMs: 128,
  onsetMaxGapMs: 96,
  endpointSilenceMs: 700,
  digitsEndpointSilenceMs: 1500,
  minInterruptionMs: 300,
  falseInterruptionMinSpeechMs: 700,
  preRollFrames: 2,
  pauseOnsetMs: 32,
  pauseHoldMs: 700,
  latencyCompensationMs: 160,
  pauseCueProb: 0.15,
  pauseCueSnrDb: 20,
  pauseDuckDb: 15,
});

/**
 * Tunables that differ at Silero's 8 kHz mode. Everything else is {@link TURN_DEFAULTS}.
 * Chosen by sweeping the whole real-audio corpus offline at 8 kHz, each item through a µ-law
 * round trip at all eight 4 ms frame phases (`npm run bench -- vad/rate-sweep`,
 * src/vad/README.md "8 kHz as the default").
 */
export const TURN_DEFAULTS_8K: Readonly<Pick<TurnTunables, 'activationThreshold' | 'deactivationThreshold'>> = Object.freeze({
  activationThreshold: 0.6,
  deactivationThreshold: 0.6,
});

/**
 * The default tunables at a model rate (default: `VOICE_VAD_RATE`). At 8 kHz the
 * deactivation threshold defaults to min({@link TURN_DEFAULTS_8K}, the activation threshold
 * in effect), so a tenant that lowers only the activation threshold stays valid.
 */
export function turnDefaults(rate: VadSampleRate = vadSampleRate(), overrides: Partial<TurnTunables> = {}): TurnTunables {
  if (rate !== 8000) return { ...TURN_DEFAULTS };
  const act = overrides.activationThreshold ?? TURN_DEFAULTS_8K.activationThreshold;
  return {
    ...TURN_DEFAULTS,
    activationThreshold: TURN_DEFAULTS_8K.activationThreshold,
    deactivationThreshold: Math.min(TURN_DEFAULTS_8K.deactivationThreshold, act),
  };
}

/** Validate like the native side; returns null when fine, else the reason. */
export function validateTurnTunables(t: TurnTunables): string | null {
  const inRange = (v: number, lo: number, hi: number): boolean => Number.isFinite(v) && v >= lo && v <= hi;
  if (!(t.activationThreshold > 0 && t.activationThreshold <= 1)) return 'activationThreshold must be in (0, 1]';
  if (!(t.deactivationThreshold > 0 && t.deactivationThreshold <= t.activationThreshold)) {
    return 'deactivationThreshold must be in (0, activationThreshold]';
  }
  if (!inRange(t.minSpeechMs, 0, 10000)) return 'minSpeechMs must be in [0, 10000]';
  if (!inRange(t.onsetMaxGapMs, 0, 2000)) return 'onsetMaxGapMs must be in [0, 2000]';
  if (!inRange(t.endpointSilenceMs, 32, 10000)) return 'endpointSilenceMs must be in [32, 10000]';
  if (!inRange(t.digitsEndpointSilenceMs, t.endpointSilenceMs, 20000)) {
    return 'digitsEndpointSilenceMs must be in [endpointSilenceMs, 20000]';
  }
  if (!inRange(t.minInterruptionMs, 0, 10000)) return 'minInterruptionMs must be in [0, 10000]';
  if (!inRange(t.falseInterruptionMinSpeechMs, 0, 10000)) return 'falseInterruptionMinSpeechMs must be in [0, 10000]';
  if (!Number.isInteger(t.preRollFrames) || !inRange(t.preRollFrames, 0, 32)) return 'preRollFrames must be an integer in [0, 32]';
  if (!inRange(t.pauseOnsetMs, 0, 10000)) return 'pauseOnsetMs must be in [0, 10000]';
  if (!inRange(t.pauseHoldMs, 0, 10000)) return 'pauseHoldMs must be in [0, 10000]';
  if (!inRange(t.latencyCompensationMs, 0, 1000)) return 'latencyCompensationMs must be in [0, 1000]';
  if (!inRange(t.pauseCueProb, 0, 1)) return 'pauseCueProb must be in [0, 1]';
  if (!inRange(t.pauseCueSnrDb, 0, 90)) return 'pauseCueSnrDb must be in [0, 90]';
  if (!inRange(t.pauseDuckDb, 0, 60)) return 'pauseDuckDb must be in [0, 60]';
  return null;
}

/**
 * The defaults at the model rate ({@link turnDefaults}) overlaid with a tenant's overrides;
 * throws an Error naming the bad field.
 */
export function resolveTurnTunables(overrides: Partial<TurnTunables> = {}, rate: VadSampleRate = vadSampleRate()): TurnTunables {
  const t: TurnTunables = turnDefaults(rate, overrides);
  for (const k of Object.keys(TURN_DEFAULTS) as (keyof TurnTunables)[]) {
    if (overrides[k] !== undefined) t[k] = overrides[k];
  }
  const err = validateTurnTunables(t);
  if (err) throw new Error(`turn-taking tunables: ${err}`);
  return t;
}

/** Event bits reported per frame by the native `TurnState::push` (C++ `TurnEvent`). */
export const TurnEvent = Object.freeze({
  SpeechStart: 1 << 0,
  SpeechEnd: 1 << 1,
  BargeIn: 1 << 2,
  FalseInterruption: 1 << 3,
  Backchannel: 1 << 4,
});
export type TurnEventName = keyof typeof TurnEvent;

/** Names of the bits set in `bits`, in firing order (SpeechStart before BargeIn). */
export function turnEventNames(bits: number): TurnEventName[] {
  return (Object.keys(TurnEvent) as TurnEventName[]).filter((k) => (bits & TurnEvent[k]) !== 0);
}

const DIGIT_WORDS = new Set([
  'zero', 'oh', 'o', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
  'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
  'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety', 'hundred', 'thousand',
  'double', 'triple', 'dash', 'hyphen',
]);

/** Phrases after which a caller is about to read digits ("my PO number is …"). */
const DIGIT_LEADS = /(?:\bnumber|\bno\.?|\bp\s?o|\baccount|\bphone|\border|\bzip(?: code)?|\bextension|\bsku|\bpart)(?:\s+(?:is|was|it's|its))?$/;

/**
 * Whether the partial transcript ends in digits or in a phrase that announces
 * them ("my P O number is"): the STT layer passes this to the native
 * `setDigitsPending` on every partial.
 */
export function awaitingDigits(partial: string): boolean {
  const t = partial.toLowerCase().replace(/[.,;:!?]+$/g, '').trim();
  return endsInDigits(t) || DIGIT_LEADS.test(t);
}

const BACKCHANNEL_WORDS = new Set([
  'yeah', 'yes', 'yep', 'yup', 'ok', 'okay', 'right', 'sure', 'mhm', 'mm', 'hm', 'hmm', 'mm-hm', 'mm-hmm', 'uh-huh', 'uh', 'huh',
  'um', 'ah', 'oh', 'alright', 'got', 'it', 'i', 'see', 'cool', 'great', 'fine', 'good',
]);

/**
 * Whether a transcript holds nothing but backchannel words ("yeah", "mm-hm",
 * "okay, right", "I see"). The dialogue uses it after a barge-in: a turn that
 * is only a backchannel is handled like the native FalseInterruption (the
 * agent resumes); an empty transcript likewise.
 */
export function isBackchannel(transcript: string): boolean {
  const words = transcript.toLowerCase().replace(/[^a-z' -]+/g, ' ').split(/\s+/).filter(Boolean);
  return words.length <= 4 && words.every((w) => BACKCHANNEL_WORDS.has(w));
}

/**
 * Whether a partial transcript ends in digits (numerals or spoken digit
 * words: "my PO is one two three", "PO12345", "five five five dash"), in
 * which case the STT layer calls the native `setDigitsPending(true)` so
 * endpointing waits {@link TurnTunables.digitsEndpointSilenceMs}.
 */
export function endsInDigits(partial: string): boolean {
  const words = partial.toLowerCase().replace(/[.,;:!?]+$/g, '').trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return false;
  const last = words[words.length - 1]!;
  if (/\d$/.test(last)) return true;
  if (!DIGIT_WORDS.has(last)) return false;
  // A lone "o"/"oh" is an interjection unless another digit precedes it.
  if (last === 'o' || last === 'oh' || last === 'double' || last === 'triple' || last === 'dash' || last === 'hyphen') {
    const prev = words[words.length - 2];
    return prev !== undefined && (/\d$/.test(prev) || DIGIT_WORDS.has(prev));
  }
  return true;
}
