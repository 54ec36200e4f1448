/**
 * Local text-to-speech (the embedded default): flite through the native addon
 * (`synthesize` in src/media, off the JS thread), streamed by sentence.
 */
import { synthesize, type Voice } from '../media/index.ts';
import { sentencePipeline } from './pipeline.ts';
import { speakCodes, splitSentences } from './text.ts';
import type { TtsOptions, TtsProvider } from './types.ts';

const VOICES: readonly Voice[] = ['kal', 'slt', 'rms', 'awb', 'kal16'];

export interface FliteTtsOptions {
  /** Voice when the call does not name one. @defaultValue 'kal' */
  voice?: Voice;
  /**
   * Read codes (PO12345, HX-4410, 4+ digit numbers) character by character
   * ("P O one two three four five") instead of letting flite say "twelve thousand…".
   * @defaultValue true
   */
  readCodes?: boolean;
  /** Sentences synthesised ahead of the one being played. @defaultValue 2 */
  lookahead?: number;
}

/** Defaults of {@link FliteTtsOptions}. */
export const FLITE_TTS_DEFAULTS = Object.freeze({ voice: 'kal' as Voice, readCodes: true, lookahead: 2 });

export class FliteTts implements TtsProvider {
  readonly name = 'flite';
  private readonly voice: Voice;
  private readonly readCodes: boolean;
  private readonly lookahead: number;

  constructor(opts: FliteTtsOptions = {}) {
    this.voice = opts.voice ?? FLITE_TTS_DEFAULTS.voice;
    this.readCodes = opts.readCodes ?? FLITE_TTS_DEFAULTS.readCodes;
    this.lookahead = opts.lookahead ?? FLITE_TTS_DEFAULTS.lookahead;
  }

  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const voice = (opts.voice ?? this.voice) as Voice;
    if (!VOICES.includes(voice)) throw new Error(`unknown flite voice '${voice}' (have ${VOICES.join(', ')})`);
    const sentences = splitSentences(this.readCodes ? speakCodes(text) : text);
    return sentencePipeline(sentences, (s) => synthesize(s, { voice, sampleRate: opts.sampleRate }), {
      lookahead: this.lookahead,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
}
