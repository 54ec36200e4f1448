/**
 * Text-to-speech through an OpenAI-compatible `/v1/audio/speech` endpoint (the `openai`
 * SDK; any base URL), `response_format: 'pcm'` (24 kHz s16le mono), resampled to the call's
 * rate. One request per sentence, pipelined, so the first sentence plays while later ones
 * are still being generated.
 */
import OpenAI from 'openai';
import { logger } from '../ops/log.ts';
import { sentencePipeline } from './pipeline.ts';
import { resample } from './resample.ts';
import { speakCodes, splitSentences } from './text.ts';
import type { TtsOptions, TtsProvider } from './types.ts';

const log = logger('tts');

/** Rate of `response_format: 'pcm'` in the OpenAI audio API. */
export const OPENAI_PCM_RATE = 24000;

export interface OpenAiTtsOptions {
  /** @defaultValue process.env.OPENAI_BASE_URL, else the SDK's default */
  baseURL?: string;
  /** @defaultValue process.env.OPENAI_API_KEY, else 'none' */
  apiKey?: string;
  /** @defaultValue 'gpt-4o-mini-tts' */
  model?: string;
  /** @defaultValue 'alloy' */
  voice?: string;
  /** Timeout per sentence request, ms. @defaultValue 8000 */
  timeoutMs?: number;
  /** @defaultValue 0 */
  maxRetries?: number;
  /** Read codes (PO numbers, SKUs) character by character. @defaultValue true */
  readCodes?: boolean;
  /** Sentences requested ahead of the one being played. @defaultValue 2 */
  lookahead?: number;
  /** Use this client instead of building one. */
  client?: OpenAI;
}

/** Defaults of {@link OpenAiTtsOptions}. */
export const OPENAI_TTS_DEFAULTS = Object.freeze({ model: 'gpt-4o-mini-tts', voice: 'alloy', timeoutMs: 8000, maxRetries: 0, readCodes: true, lookahead: 2 });

export class OpenAiTts implements TtsProvider {
  readonly name = 'openai';
  readonly client: OpenAI;
  private readonly o: Required<Omit<OpenAiTtsOptions, 'client' | 'baseURL' | 'apiKey'>>;

  constructor(opts: OpenAiTtsOptions = {}) {
    this.client = opts.client ?? new OpenAI({
      baseURL: opts.baseURL ?? process.env.OPENAI_BASE_URL,
      apiKey: opts.apiKey ?? process.env.OPENAI_API_KEY ?? 'none',
      maxRetries: opts.maxRetries ?? OPENAI_TTS_DEFAULTS.maxRetries,
    });
    this.o = {
      model: opts.model ?? OPENAI_TTS_DEFAULTS.model,
      voice: opts.voice ?? OPENAI_TTS_DEFAULTS.voice,
      timeoutMs: opts.timeoutMs ?? OPENAI_TTS_DEFAULTS.timeoutMs,
      maxRetries: opts.maxRetries ?? OPENAI_TTS_DEFAULTS.maxRetries,
      readCodes: opts.readCodes ?? OPENAI_TTS_DEFAULTS.readCodes,
      lookahead: opts.lookahead ?? OPENAI_TTS_DEFAULTS.lookahead,
    };
  }

  /** One sentence → PCM at `sampleRate`. */
  async speak(sentence: string, sampleRate: number, voice: string, signal?: AbortSignal): Promise<Int16Array> {
    const t0 = performance.now();
    try {
      const res = await this.client.audio.speech.create(
        { model: this.o.model, voice: voice as 'alloy', input: sentence, response_format: 'pcm' },
        { timeout: this.o.timeoutMs, ...(signal ? { signal } : {}) },
      );
      const buf = Buffer.from(await res.arrayBuffer());
      const pcm = new Int16Array(buf.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = buf.readInt16LE(i * 2);
      return await resample(pcm, OPENAI_PCM_RATE, sampleRate);
    } catch (err) {
      if (signal?.aborted) throw err;
      const e = err as Error & { status?: number };
      const why = e instanceof OpenAI.APIConnectionTimeoutError
        ? `timed out after ${this.o.timeoutMs} ms`
        : e.status ? `HTTP ${e.status}: ${e.message}` : e.message;
      log.warn('speech synthesis failed', { model: this.o.model, baseURL: this.client.baseURL, ms: Math.round(performance.now() - t0), err: why });
      throw new Error(`text-to-speech (${this.client.baseURL}/audio/speech, model ${this.o.model}) failed: ${why}`, { cause: err });
    }
  }

  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const voice = opts.voice ?? this.o.voice;
    const sentences = splitSentences(this.o.readCodes ? speakCodes(text) : text);
    return sentencePipeline(sentences, (s, signal) => this.speak(s, opts.sampleRate, voice, signal), {
      lookahead: this.o.lookahead,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
}
