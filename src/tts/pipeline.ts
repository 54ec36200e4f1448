/**
 * Sentence pipeline shared by the TTS providers: synthesises up to `lookahead` sentences
 * ahead of the one being consumed and yields them in order, so the first sentence is out
 * as soon as it is ready and later ones are (mostly) ready when the player wants them.
 */
export async function* sentencePipeline(
  sentences: readonly string[],
  synth: (sentence: string, signal: AbortSignal) => Promise<Int16Array>,
  opts: { lookahead?: number; signal?: AbortSignal } = {},
): AsyncGenerator<Int16Array> {
  const lookahead = Math.max(1, opts.lookahead ?? 2);
  const ctl = new AbortController();
  const onAbort = (): void => ctl.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const pending: Array<Promise<Int16Array>> = [];
  let next = 0;
  const fill = (): void => {
    while (pending.length < lookahead && next < sentences.length) {
      const p = synth(sentences[next++]!, ctl.signal);
      p.catch(() => {}); // observed when awaited; avoid unhandled rejections of abandoned ones
      pending.push(p);
    }
  };
  try {
    fill();
    while (pending.length > 0) {
      if (ctl.signal.aborted) return;
      const pcm = await pending.shift()!;
      if (ctl.signal.aborted) return;
      fill();
      yield pcm;
    }
  } finally {
    ctl.abort(); // consumer stopped early (barge-in) or done: cancel what is in flight
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
