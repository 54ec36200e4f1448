/**
 * Streaming rational resampler for PCM that arrives in pieces (a streamed TTS response):
 * the same Hann-windowed sinc polyphase filter as {@link resampleTs}, but it keeps the input
 * tail between `push()` calls, so chunk boundaries leave no clicks and the output is the
 * same as resampling the whole signal at once.
 */

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

export class StreamResampler {
  private readonly L: number;
  private readonly M: number;
  private readonly half: number;
  private readonly h: Float64Array;
  /** input kept: buf[0] is input sample number `base` */
  private buf = new Int16Array(0);
  private base = 0;
  private inTotal = 0;
  /** next output sample number */
  private j = 0;

  /** @param zeroCrossings filter half-length in lower-rate samples. @defaultValue 16 */
  constructor(readonly inRate: number, readonly outRate: number, zeroCrossings = 16) {
    const g = gcd(inRate, outRate);
    this.L = outRate / g;
    this.M = inRate / g;
    const cutoff = Math.min(1 / this.L, 1 / this.M) * 0.9;
    this.half = Math.ceil(zeroCrossings * Math.max(this.L, this.M));
    this.h = new Float64Array(2 * this.half + 1);
    for (let k = -this.half; k <= this.half; k++) {
      const x = k * cutoff;
      const sinc = k === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const w = 0.5 + 0.5 * Math.cos((Math.PI * k) / (this.half + 1));
      this.h[k + this.half] = cutoff * sinc * w * this.L;
    }
  }

  /** Add input; returns the output samples that are now complete. */
  push(pcm: Int16Array): Int16Array {
    if (this.inRate === this.outRate) return pcm.slice();
    if (pcm.length) {
      const b = new Int16Array(this.buf.length + pcm.length);
      b.set(this.buf);
      b.set(pcm, this.buf.length);
      this.buf = b;
      this.inTotal += pcm.length;
    }
    return this.run(false);
  }

  /** End of input: the remaining output (the filter's tail against zeros). */
  flush(): Int16Array {
    if (this.inRate === this.outRate) return new Int16Array(0);
    return this.run(true);
  }

  private run(final: boolean): Int16Array {
    const { L, M, half, h } = this;
    const total = final ? Math.round((this.inTotal * L) / M) : Infinity;
    const out: number[] = [];
    for (;;) {
      if (this.j >= total) break;
      const t = this.j * M;
      const iMax = Math.floor((t + half) / L);
      if (!final && iMax >= this.inTotal) break; // needs input not yet here
      const iMin = Math.max(0, Math.ceil((t - half) / L));
      let acc = 0;
      const hi = Math.min(iMax, this.inTotal - 1);
      for (let i = iMin; i <= hi; i++) acc += this.buf[i - this.base]! * h[t - i * L + half]!;
      out.push(Math.max(-32768, Math.min(32767, Math.round(acc))));
      this.j++;
    }
    // drop input no later output needs
    const keepFrom = Math.max(this.base, Math.ceil((this.j * M - half) / L));
    const drop = Math.min(this.buf.length, keepFrom - this.base);
    if (drop > 0) {
      this.buf = this.buf.slice(drop);
      this.base += drop;
    }
    return Int16Array.from(out);
  }
}
