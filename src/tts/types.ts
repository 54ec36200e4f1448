/**
 * Text-to-speech provider interface, streaming by sentence: `synthesize()` yields one PCM
 * chunk per sentence, in order, the first as soon as it is ready (later sentences are
 * synthesised while earlier ones play). Providers: `flite.ts` (local, default),
 * `openai.ts` (OpenAI-compatible `/v1/audio/speech`, pcm).
 */
export interface TtsOptions {
  /** Rate of the PCM yielded (8 kHz for G.711 calls). */
  sampleRate: 8000 | 16000;
  /** Provider voice name (flite: kal, slt, rms, awb, kal16; OpenAI: alloy, …). */
  voice?: string;
  /** BCP 47 language of the text when it is not the call's (a language-routing TTS picks its voice). */
  language?: string;
  /** Stop synthesising (barge-in, hang-up): the iterator ends without error. */
  signal?: AbortSignal;
}

export interface TtsProvider {
  readonly name: string;
  /** Mono 16-bit PCM at `opts.sampleRate`, one chunk per sentence. */
  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array>;
}
