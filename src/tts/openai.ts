/**
 * Text-to-speech through an OpenAI-compatible `/v1/audio/speech` endpoint (the `openai`
 * SDK; any base URL), `response_format: 'pcm'` (24 kHz s16le mono), resampled to the call's
 * rate **as the response body streams in**: the first PCM of a sentence is yielded before
 * the endpoint has finished synthesising it. One request per sentence; the next sentences'
 * requests run ahead (lookahead) while the current one plays.
 *
 * Deadlines per sentence: `firstAudioMs` from the request to its first PCM and between two
 * chunks of it (a stalled stream), `timeoutMs` for the whole sentence. A missed deadline,
 * an HTTP error or a refused connection rejects with a {@link SpeechProviderError} whose
 * `reason` says which (the fallback in src/speech counts it).
 */
import OpenAI from 'openai';
import { logger } from '../ops/log.ts';
import { resample } from './resample.ts';
import { StreamResampler } from './stream-resample.ts';
import { streamPipeline } from './stream-pipeline.ts';
import { SpeechProviderError, speechFailureReason } from '../speech/errors.ts';
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
  /** Longest time for one whole sentence (request to last PCM), ms. @defaultValue 8000 */
  timeoutMs?: number;
  /** Longest wait for a sentence's first PCM after its request, and between two of its chunks, ms. @defaultValue 1500 */
  firstAudioMs?: number;
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
export const OPENAI_TTS_DEFAULTS = Object.freeze({ model: 'gpt-4o-mini-tts', voice: 'alloy', timeoutMs: 8000, firstAudioMs: 1500, maxRetries: 0, readCodes: true, lookahead: 2 });

/** Smallest piece yielded while a sentence streams (20 ms at 8 kHz); the last piece may be shorter. */
const MIN_CHUNK_MS = 20;

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
      firstAudioMs: opts.firstAudioMs ?? OPENAI_TTS_DEFAULTS.firstAudioMs,
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

  /**
   * One sentence → PCM at `sampleRate`, yielded as the response body arrives (pieces of at
   * least 20 ms). Rejects with a {@link SpeechProviderError} on a missed deadline, an HTTP
   * error or a connection failure; ends quietly when `signal` aborts.
   */
  async *stream(sentence: string, sampleRate: number, voice: string, signal?: AbortSignal): AsyncGenerator<Int16Array> {
    const t0 = performance.now();
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let missed: string | null = null;
    const deadline = (ms: number, what: string): NodeJS.Timeout => setTimeout(() => {
      missed = `timed out after ${ms} ms (${what})`;
      ctl.abort();
    }, ms);
    const whole = deadline(this.o.timeoutMs, 'whole sentence');
    let gap = deadline(this.o.firstAudioMs, 'no audio yet');
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let first = true;
    try {
      const res = await this.client.audio.speech.create(
        { model: this.o.model, voice: voice as 'alloy', input: sentence, response_format: 'pcm' },
        { timeout: this.o.timeoutMs, signal: ctl.signal },
      );
      if (!res.body) throw new Error('the response has no body');
      reader = res.body.getReader();
      // the SDK lets go of our signal once the headers are in: a deadline or an abort must
      // end a pending read itself
      const r = reader;
      if (ctl.signal.aborted) void r.cancel().catch(() => {});
      else ctl.signal.addEventListener('abort', () => void r.cancel().catch(() => {}), { once: true });
      const rs = new StreamResampler(OPENAI_PCM_RATE, sampleRate);
      const min = (sampleRate * MIN_CHUNK_MS) / 1000;
      let carry: number | null = null; // odd byte left from the previous read
      let pending: Int16Array[] = [];
      let pendingLen = 0;
      const take = (): Int16Array => {
        const out = new Int16Array(pendingLen);
        let off = 0;
        for (const p of pending) { out.set(p, off); off += p.length; }
        pending = [];
        pendingLen = 0;
        return out;
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (ctl.signal.aborted) break;
        clearTimeout(gap);
        gap = deadline(this.o.firstAudioMs, 'stream stalled');
        let bytes = value;
        if (carry !== null) {
          const b = new Uint8Array(bytes.length + 1);
          b[0] = carry;
          b.set(bytes, 1);
          bytes = b;
          carry = null;
        }
        if (bytes.length & 1) {
          carry = bytes[bytes.length - 1]!;
          bytes = bytes.subarray(0, bytes.length - 1);
        }
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const pcm = new Int16Array(bytes.length >> 1);
        for (let i = 0; i < pcm.length; i++) pcm[i] = dv.getInt16(i * 2, true);
        const out = rs.push(pcm);
        if (out.length) { pending.push(out); pendingLen += out.length; }
        if (pendingLen >= min) {
          if (first) {
            first = false;
            log.debug('first speech audio', { ms: Math.round(performance.now() - t0) });
          }
          yield take();
        }
      }
      if (missed) throw new Error(missed);
      if (signal?.aborted) return;
      const tail = rs.flush();
      if (tail.length) { pending.push(tail); pendingLen += tail.length; }
      if (pendingLen) yield take();
    } catch (err) {
      if (signal?.aborted && !missed) return;
      const reason = missed ? 'timeout' : speechFailureReason(err);
      const e = err as Error & { status?: number };
      const why = missed ?? (e instanceof OpenAI.APIConnectionTimeoutError
        ? `timed out after ${this.o.timeoutMs} ms`
        : e.status ? `HTTP ${e.status}: ${e.message}` : e.message);
      log.warn('speech synthesis failed', { model: this.o.model, baseURL: this.client.baseURL, ms: Math.round(performance.now() - t0), reason, err: why });
      throw new SpeechProviderError(`text-to-speech (${this.client.baseURL}/audio/speech, model ${this.o.model}) failed: ${why}`, reason, { cause: err });
    } finally {
      clearTimeout(whole);
      clearTimeout(gap);
      signal?.removeEventListener('abort', onAbort);
      if (!ctl.signal.aborted) ctl.abort(); // consumer stopped early: drop the connection
      void reader?.cancel().catch(() => {});
    }
  }

  /** The sentences `text` is spoken as (codes read character by character when `readCodes`). */
  sentences(text: string): string[] {
    return splitSentences(this.o.readCodes ? speakCodes(text) : text);
  }

  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const voice = opts.voice ?? this.o.voice;
    return streamPipeline(this.sentences(text), (s, signal) => this.stream(s, opts.sampleRate, voice, signal), {
      lookahead: this.o.lookahead,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }
}
