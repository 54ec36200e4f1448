/**
 * Shared plumbing of the buffering STT streams: collects the utterance's PCM, enforces a
 * length cap, runs `recognize` once at end(), and turns abort() into an AbortError.
 */
import { EventEmitter } from 'node:events';
import type { SttResult, SttStream, SttStreamEvents } from './types.ts';

/**
 * Longest utterance kept, seconds; later audio is dropped (the VAD should have ended the
 * turn long before).
 * @defaultValue 30
 */
export const MAX_UTTERANCE_S = 30;

export class AbortError extends Error {
  override name = 'AbortError';
  constructor(message = 'speech-to-text stream aborted') {
    super(message);
  }
}

/** Base for streams that recognise the whole utterance after end of speech. */
export abstract class BufferedSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private chunks: Int16Array[] = [];
  private samples = 0;
  private state: 'open' | 'ended' | 'aborted' = 'open';
  protected readonly abortController = new AbortController();
  readonly maxSamples: number;

  constructor(readonly sampleRate: 8000 | 16000, maxSeconds = MAX_UTTERANCE_S) {
    super();
    this.maxSamples = Math.round(maxSeconds * sampleRate);
  }

  push(pcm: Int16Array): void {
    if (this.state !== 'open' || pcm.length === 0) return;
    const room = this.maxSamples - this.samples;
    if (room <= 0) return;
    const part = pcm.length > room ? pcm.subarray(0, room) : pcm;
    this.chunks.push(part.slice()); // copy: callers reuse their frame buffers
    this.samples += part.length;
  }

  /** Number of samples buffered so far. */
  get length(): number {
    return this.samples;
  }

  async end(): Promise<SttResult> {
    if (this.state === 'aborted') throw new AbortError();
    if (this.state === 'ended') throw new Error('end() already called on this stream');
    this.state = 'ended';
    const pcm = new Int16Array(this.samples);
    let off = 0;
    for (const c of this.chunks) {
      pcm.set(c, off);
      off += c.length;
    }
    this.chunks = [];
    const t0 = performance.now();
    const signal = this.abortController.signal;
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(new AbortError());
      signal.addEventListener('abort', () => reject(new AbortError()), { once: true });
    });
    aborted.catch(() => {}); // only observed through the race below
    const r = await Promise.race([this.recognize(pcm, signal), aborted]);
    return { ...r, ms: performance.now() - t0 };
  }

  abort(): void {
    if (this.state === 'aborted') return;
    this.state = 'aborted';
    this.chunks = [];
    this.abortController.abort();
  }

  /** Recognise the whole utterance (PCM at {@link sampleRate}). */
  protected abstract recognize(pcm: Int16Array, signal: AbortSignal): Promise<Omit<SttResult, 'ms'>>;
}
