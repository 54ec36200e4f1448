/**
 * Local text-to-speech for the languages flite lacks: espeak-ng (Debian libespeak-ng,
 * linked into the native addon), synthesised off the JS thread and streamed by sentence,
 * resampled natively from espeak-ng's 22.05 kHz to the call's rate.
 *
 * libespeak-ng is not reentrant, so the addon serialises every call into it behind one
 * process-wide mutex (native/espeak_tts.cc): sentences of all live calls are synthesised
 * one at a time on the libuv pool; each is short (see README "Languages and voices" for the
 * measured real-time factor), and the sentence pipeline keeps the next sentence in work
 * while the current one plays.
 */
import { native } from '../media/native.ts';
import { sentencePipeline } from './pipeline.ts';
import { splitSentences } from './text.ts';
import type { TtsOptions, TtsProvider } from './types.ts';

export interface EspeakTtsOptions {
  /** espeak-ng voice when the call does not name one (`espeak-ng --voices` lists them; `+f3` picks a variant). @defaultValue 'es-419' */
  voice?: string;
  /** Speaking rate, words per minute (80-450). @defaultValue 160 (a little slower than espeak-ng's 175: telephone band) */
  wpm?: number;
  /** Pitch 0-100. @defaultValue 50 */
  pitch?: number;
  /**
   * Read codes (PO12345, HX-4410, 4+ digit numbers) one character at a time, in the voice's
   * own language ("P O uno dos tres…" with a Spanish voice) instead of as one big number.
   * @defaultValue true
   */
  readCodes?: boolean;
  /** Sentences synthesised ahead of the one being played. @defaultValue 2 */
  lookahead?: number;
}

/** Defaults of {@link EspeakTtsOptions}. */
export const ESPEAK_TTS_DEFAULTS = Object.freeze({ voice: 'es-419', wpm: 160, pitch: 50, readCodes: true, lookahead: 2 });

/** Same shapes as src/tts/text.ts CODE: letters+digits, long mixed codes, 4+ digits. */
const CODE = /\b(?:[A-Za-z]{1,4}-?\d{2,}[A-Za-z0-9-]*|(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{6,}|\d{4,})\b/g;

/**
 * Codes spelled out character by character with spaces ("PO12345" → "P O 1 2 3 4 5"), so
 * espeak-ng names each letter and digit in the voice's language; separators become pauses.
 */
export function spaceCodes(text: string): string {
  return text.replace(CODE, (m) => m.replace(/[^A-Za-z0-9]/g, '').toUpperCase().split('').join(' '));
}

/** Voices already checked with the library (the check takes the espeak-ng lock). */
const known = new Map<string, string | null>();

/** null when espeak-ng has `voice`, else why not. Start-up/config validation only. */
export function espeakVoiceProblem(voice: string): string | null {
  if (!known.has(voice)) known.set(voice, native.espeakVoiceKnown(voice));
  return known.get(voice)!;
}

export class EspeakTts implements TtsProvider {
  readonly name = 'espeak-ng';
  private readonly o: Required<EspeakTtsOptions>;

  constructor(opts: EspeakTtsOptions = {}) {
    this.o = {
      voice: opts.voice ?? ESPEAK_TTS_DEFAULTS.voice,
      wpm: opts.wpm ?? ESPEAK_TTS_DEFAULTS.wpm,
      pitch: opts.pitch ?? ESPEAK_TTS_DEFAULTS.pitch,
      readCodes: opts.readCodes ?? ESPEAK_TTS_DEFAULTS.readCodes,
      lookahead: opts.lookahead ?? ESPEAK_TTS_DEFAULTS.lookahead,
    };
  }

  /** One sentence → PCM at `sampleRate` (what the pipeline calls; exposed for references in tests). */
  speak(sentence: string, sampleRate: 8000 | 16000, voice = this.o.voice): Promise<Int16Array> {
    return native.espeakSynthesize(sentence, { voice, wpm: this.o.wpm, pitch: this.o.pitch }, sampleRate);
  }

  /** The sentences `text` is spoken as (codes spaced out when `readCodes`). */
  sentences(text: string): string[] {
    return splitSentences(this.o.readCodes ? spaceCodes(text) : text);
  }

  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const voice = opts.voice ?? this.o.voice;
    const problem = espeakVoiceProblem(voice);
    if (problem) throw new Error(problem);
    return sentencePipeline(this.sentences(text), (s) => this.speak(s, opts.sampleRate, voice), {
      lookahead: this.o.lookahead,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
}
