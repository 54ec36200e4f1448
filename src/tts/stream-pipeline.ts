/**
 * Sentence pipeline for providers that stream each sentence in pieces: the current
 * sentence's pieces are yielded as they arrive while the next `lookahead - 1` sentences'
 * streams are already running and buffering, so sentence k+1 is (mostly) ready when
 * sentence k has been played. Errors surface when the consumer reaches the failed sentence
 * (after the pieces that arrived before the failure).
 */

/** A stream that starts consuming its source at once and buffers what arrives. */
export class Prefetch<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private done = false;
  private error: unknown = null;
  private wake: (() => void) | null = null;

  constructor(source: AsyncIterable<T>) {
    void (async () => {
      try {
        for await (const x of source) {
          this.items.push(x);
          this.notify();
        }
      } catch (err) {
        this.error = err ?? new Error('stream failed');
      } finally {
        this.done = true;
        this.notify();
      }
    })();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length) {
        yield this.items.shift()!;
        continue;
      }
      if (this.error) throw this.error;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

export async function* streamPipeline(
  sentences: readonly string[],
  open: (sentence: string, signal: AbortSignal) => AsyncIterable<Int16Array>,
  opts: { lookahead?: number; signal?: AbortSignal } = {},
): AsyncGenerator<Int16Array> {
  const lookahead = Math.max(1, opts.lookahead ?? 2);
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const jobs: Array<Prefetch<Int16Array>> = [];
  let next = 0;
  const fill = (): void => {
    while (jobs.length < lookahead && next < sentences.length) jobs.push(new Prefetch(open(sentences[next++]!, ctl.signal)));
  };
  try {
    fill();
    while (jobs.length) {
      if (ctl.signal.aborted) return;
      const job = jobs[0]!;
      for await (const pcm of job) {
        if (ctl.signal.aborted) return;
        yield pcm;
      }
      jobs.shift();
      fill();
    }
  } finally {
    ctl.abort(); // consumer stopped early (barge-in), failed, or done: cancel what is in flight
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
