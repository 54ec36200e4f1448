/**
 * Speech-to-text through an OpenAI-compatible `/v1/audio/transcriptions` endpoint (the
 * `openai` SDK; any base URL). The utterance is buffered and sent as one WAV at end of
 * speech. The tenant vocabulary becomes the `prompt` (SKU codes, account names), which
 * biases Whisper-style models towards them.
 */
import OpenAI, { toFile } from 'openai';
import { logger } from '../ops/log.ts';
import { BufferedSttStream } from './buffer.ts';
import { pcmToWav } from './wav.ts';
import type { SttProvider, SttResult, SttStream, SttStreamOptions, Vocabulary } from './types.ts';

const log = logger('stt');

export interface OpenAiSttOptions {
  /** API base URL, e.g. `http://127.0.0.1:8000/v1`. @defaultValue process.env.OPENAI_BASE_URL, else the SDK's default */
  baseURL?: string;
  /** @defaultValue process.env.OPENAI_API_KEY, else 'none' (local servers) */
  apiKey?: string;
  /** Transcription model. @defaultValue 'whisper-1' */
  model?: string;
  /** Whole-request timeout, ms. @defaultValue 10000 */
  timeoutMs?: number;
  /** Retries on connection errors / 5xx (each within the timeout budget of its own). @defaultValue 0 */
  maxRetries?: number;
  /** Longest prompt built from the vocabulary, characters. @defaultValue 400 */
  maxPromptChars?: number;
  /** Use this client instead of building one. */
  client?: OpenAI;
}

/** Defaults of {@link OpenAiSttOptions}. */
export const OPENAI_STT_DEFAULTS = Object.freeze({ model: 'whisper-1', timeoutMs: 10_000, maxRetries: 0, maxPromptChars: 400 });

/** A short comma-separated hint list from the vocabulary (codes first, then names). */
export function vocabularyPrompt(v: Vocabulary | undefined, maxChars: number = OPENAI_STT_DEFAULTS.maxPromptChars): string | undefined {
  if (!v) return undefined;
  const items = [...(v.skus ?? []).map((s) => s.sku), ...(v.poNumbers ?? []), ...(v.accounts ?? []).map((a) => a.name), ...(v.names ?? [])];
  let out = '';
  for (const it of items) {
    const next = out ? `${out}, ${it}` : it;
    if (next.length > maxChars) break;
    out = next;
  }
  return out || undefined;
}

export class OpenAiStt implements SttProvider {
  readonly name = 'openai';
  readonly client: OpenAI;
  private readonly model: string;
  private readonly timeoutMs: number;
  private readonly maxPromptChars: number;

  constructor(opts: OpenAiSttOptions = {}) {
    this.client = opts.client ?? new OpenAI({
      baseURL: opts.baseURL ?? process.env.OPENAI_BASE_URL,
      apiKey: opts.apiKey ?? process.env.OPENAI_API_KEY ?? 'none',
      maxRetries: opts.maxRetries ?? OPENAI_STT_DEFAULTS.maxRetries,
    });
    this.model = opts.model ?? OPENAI_STT_DEFAULTS.model;
    this.timeoutMs = opts.timeoutMs ?? OPENAI_STT_DEFAULTS.timeoutMs;
    this.maxPromptChars = opts.maxPromptChars ?? OPENAI_STT_DEFAULTS.maxPromptChars;
  }

  /** Transcribe one whole utterance. */
  async transcribe(pcm: Int16Array, sampleRate: number, opts: { language?: string; vocabulary?: Vocabulary; signal?: AbortSignal } = {}): Promise<Omit<SttResult, 'ms'>> {
    if (pcm.length === 0) return { text: '', confidence: 0, inDomain: false };
    const file = await toFile(pcmToWav(pcm, sampleRate), 'utterance.wav', { type: 'audio/wav' });
    const language = opts.language?.split('-')[0]?.toLowerCase();
    const prompt = vocabularyPrompt(opts.vocabulary, this.maxPromptChars);
    const t0 = performance.now();
    try {
      const res = await this.client.audio.transcriptions.create(
        { file, model: this.model, response_format: 'json', ...(language ? { language } : {}), ...(prompt ? { prompt } : {}) },
        { timeout: this.timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) },
      );
      const text = (typeof res === 'string' ? res : res.text ?? '').trim();
      return { text, confidence: text ? 1 : 0, inDomain: text !== '' };
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const e = err as Error & { status?: number };
      const why = e instanceof OpenAI.APIConnectionTimeoutError
        ? `timed out after ${this.timeoutMs} ms`
        : e.status ? `HTTP ${e.status}: ${e.message}` : e.message;
      log.warn('transcription failed', { model: this.model, baseURL: this.client.baseURL, ms: Math.round(performance.now() - t0), err: why });
      throw new Error(`speech-to-text (${this.client.baseURL}/audio/transcriptions, model ${this.model}) failed: ${why}`, { cause: err });
    }
  }

  createStream(opts: SttStreamOptions): SttStream {
    return new OpenAiSttStream(this, opts);
  }
}

class OpenAiSttStream extends BufferedSttStream {
  constructor(private readonly engine: OpenAiStt, private readonly opts: SttStreamOptions) {
    super(opts.sampleRate);
  }
  protected recognize(pcm: Int16Array, signal: AbortSignal): Promise<Omit<SttResult, 'ms'>> {
    return this.engine.transcribe(pcm, this.opts.sampleRate, {
      ...(this.opts.language ? { language: this.opts.language } : {}),
      ...(this.opts.vocabulary ? { vocabulary: this.opts.vocabulary } : {}),
      signal,
    });
  }
}
