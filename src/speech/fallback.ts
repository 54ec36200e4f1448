/**
 * Local fallback of a call's speech providers. One {@link SpeechFallback} per call wraps
 * the tenant's (cloud) STT and TTS with the local ones (pocketsphinx, flite):
 *
 * - TTS: the reply is split into sentences; each sentence is streamed from the primary
 *   (the next ones requested ahead). When a sentence fails — a missed deadline, an HTTP
 *   error, a refused connection — that sentence (from its start) and every later one is
 *   synthesised locally, and so is everything the agent says for the rest of the call.
 * - STT: each utterance's audio is kept while the primary recognises it; when the primary
 *   fails, the same audio is recognised locally, and the rest of the call is recognised
 *   locally.
 *
 * Each switch is logged once with the reason and counted in
 * `voice_agent_speech_fallbacks_total{kind,provider,reason}`. Aborts (barge-in, hang-up)
 * are not failures.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../ops/log.ts';
import { metrics } from '../ops/metrics.ts';
import type { SttProvider, SttResult, SttStream, SttStreamEvents, SttStreamOptions, Vocabulary } from '../stt/types.ts';
import type { TtsOptions, TtsProvider } from '../tts/types.ts';
import { splitSentences } from '../tts/text.ts';
import { Prefetch } from '../tts/stream-pipeline.ts';
import { speechFailureReason, type SpeechFailureReason } from './errors.ts';

export interface FallbackEvent {
  kind: 'stt' | 'tts';
  provider: string;
  reason: SpeechFailureReason;
  error: Error;
}

export interface SpeechFallbackOptions {
  log?: Logger;
  /** tenant id, for the log line */
  tenant?: string;
  /** Flite voice of the local TTS. @defaultValue the local provider's default */
  localVoice?: string;
  /** Sentences requested ahead from the primary TTS. @defaultValue 2 */
  lookahead?: number;
  /** Told once per kind when the call switches to local speech. */
  onFallback?: (ev: FallbackEvent) => void;
}

/** The per-call state: which kinds have fallen back. */
export class SpeechFallback {
  readonly stt: SttProvider;
  readonly tts: TtsProvider;
  /** kinds that run locally now, with why */
  readonly fellBack = new Map<'stt' | 'tts', SpeechFailureReason>();

  constructor(
    primary: { stt: SttProvider; tts: TtsProvider },
    local: { stt: SttProvider; tts: TtsProvider },
    private readonly opts: SpeechFallbackOptions = {},
  ) {
    this.stt = primary.stt === local.stt ? local.stt : new FallbackStt(primary.stt, local.stt, this);
    this.tts = primary.tts === local.tts ? local.tts : new FallbackTts(primary.tts, local.tts, this, opts.localVoice, opts.lookahead ?? 2);
  }

  /** A primary failed: switch this kind to local for the rest of the call (logged and counted once). */
  failed(kind: 'stt' | 'tts', provider: string, err: unknown): void {
    if (this.fellBack.has(kind)) return;
    const reason = speechFailureReason(err);
    this.fellBack.set(kind, reason);
    metrics.speechFallbacks.inc({ kind, provider, reason });
    const error = err instanceof Error ? err : new Error(String(err));
    this.opts.log?.warn(`${kind === 'stt' ? 'speech recognition' : 'speech synthesis'} provider failed; the rest of the call uses local speech`, {
      kind, provider, reason, ...(this.opts.tenant ? { tenant: this.opts.tenant } : {}), err: error,
    });
    this.opts.onFallback?.({ kind, provider, reason, error });
  }

  isLocal(kind: 'stt' | 'tts'): boolean {
    return this.fellBack.has(kind);
  }
}

function isAbort(err: unknown): boolean {
  return (err as Error | undefined)?.name === 'AbortError';
}

class FallbackTts implements TtsProvider {
  constructor(
    private readonly primary: TtsProvider,
    private readonly local: TtsProvider,
    private readonly state: SpeechFallback,
    private readonly localVoice: string | undefined,
    private readonly lookahead: number,
  ) {}

  /** the engine speaking now: the primary's name, the local one's after a fallback */
  get name(): string {
    return this.state.isLocal('tts') ? this.local.name : this.primary.name;
  }

  private localOpts(opts: TtsOptions): TtsOptions {
    const { voice: _voice, ...rest } = opts;
    return this.localVoice ? { ...rest, voice: this.localVoice } : rest;
  }

  async *synthesize(text: string, opts: TtsOptions): AsyncGenerator<Int16Array> {
    if (this.state.isLocal('tts')) {
      yield* this.local.synthesize(text, this.localOpts(opts));
      return;
    }
    const sentences = splitSentences(text);
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const jobs: Array<Prefetch<Int16Array>> = [];
    let next = 0;
    const open = (s: string): Prefetch<Int16Array> => {
      try {
        return new Prefetch(this.primary.synthesize(s, { ...opts, signal: ctl.signal }));
      } catch (err) {
        // a provider that throws before streaming (e.g. an unknown voice)
        return new Prefetch((async function* (): AsyncGenerator<Int16Array> { throw err; })());
      }
    };
    const fill = (): void => {
      while (jobs.length < this.lookahead && next < sentences.length) jobs.push(open(sentences[next++]!));
    };
    try {
      fill();
      for (let k = 0; jobs.length; k++) {
        if (ctl.signal.aborted) return;
        try {
          for await (const pcm of jobs[0]!) {
            if (ctl.signal.aborted) return;
            yield pcm;
          }
        } catch (err) {
          if (ctl.signal.aborted || isAbort(err)) return;
          this.state.failed('tts', this.primary.name, err);
          ctl.abort(); // drop the requests running ahead
          // the failed sentence again from its start, and the rest, locally
          yield* this.local.synthesize(sentences.slice(k).join(' '), this.localOpts(opts));
          return;
        }
        jobs.shift();
        fill();
      }
    } finally {
      ctl.abort();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

class FallbackStt implements SttProvider {
  constructor(private readonly primary: SttProvider, private readonly local: SttProvider, private readonly state: SpeechFallback) {}

  /** the engine recognising now: the primary's name, the local one's after a fallback */
  get name(): string {
    return this.state.isLocal('stt') ? this.local.name : this.primary.name;
  }

  createStream(opts: SttStreamOptions): SttStream {
    if (this.state.isLocal('stt')) return this.local.createStream(opts);
    let primary: SttStream;
    try {
      primary = this.primary.createStream(opts);
    } catch (err) {
      this.state.failed('stt', this.primary.name, err);
      return this.local.createStream(opts);
    }
    return new FallbackSttStream(primary, () => this.local.createStream(opts), (err) => this.state.failed('stt', this.primary.name, err));
  }

  prepare(vocabulary?: Vocabulary): Promise<void> {
    return Promise.all([this.primary.prepare?.(vocabulary), this.local.prepare?.(vocabulary)]).then(() => undefined);
  }
}

/** Keeps the utterance's audio so the local recogniser can take it over. */
class FallbackSttStream extends EventEmitter<SttStreamEvents> implements SttStream {
  private readonly audio: Int16Array[] = [];
  private local: SttStream | null = null;
  private aborted = false;

  constructor(private readonly primary: SttStream, private readonly makeLocal: () => SttStream, private readonly onFail: (err: unknown) => void) {
    super();
    primary.on('partial', (t) => this.emit('partial', t));
  }

  push(pcm: Int16Array): void {
    if (this.aborted || pcm.length === 0) return;
    this.audio.push(pcm.slice());
    this.primary.push(pcm);
  }

  async end(): Promise<SttResult> {
    const t0 = performance.now();
    try {
      return await this.primary.end();
    } catch (err) {
      if (this.aborted || isAbort(err)) throw err;
      this.onFail(err);
      const local = (this.local = this.makeLocal());
      for (const a of this.audio) local.push(a);
      const r = await local.end();
      return { ...r, ms: performance.now() - t0 };
    }
  }

  abort(): void {
    this.aborted = true;
    this.primary.abort();
    this.local?.abort();
  }
}
