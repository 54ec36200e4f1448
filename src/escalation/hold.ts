/**
 * Hold audio while the rep's phone rings: a soft repeating arpeggio, synthesised once
 * (8 kHz, about −22 dBFS), queued on the caller's media session as uninterruptible audio
 * (caller speech must not "barge into" hold music) and topped up by a 1 s supervision timer.
 * The native media thread paces it like any other audio; the timer only keeps the queue
 * filled.
 */

/** One loop of hold audio, 8 kHz mono. */
let cached: Int16Array | null = null;
export function holdLoop(): Int16Array {
  if (cached) return cached;
  const rate = 8000;
  // A major-seventh arpeggio, 250 ms per note, each with a soft attack and decay.
  const notes = [261.63, 329.63, 392.0, 493.88, 392.0, 329.63, 293.66, 349.23, 440.0, 523.25, 440.0, 349.23];
  const noteLen = rate / 4;
  const out = new Int16Array(notes.length * noteLen);
  const amp = 0.08 * 32767;
  notes.forEach((f, n) => {
    for (let i = 0; i < noteLen; i++) {
      const t = i / rate;
      const env = Math.min(1, i / 160) * Math.exp(-3.2 * t);
      const v = Math.sin(2 * Math.PI * f * t) + 0.25 * Math.sin(4 * Math.PI * f * t);
      out[n * noteLen + i] = Math.round(amp * env * v);
    }
  });
  cached = out;
  return out;
}

export interface HoldMedia {
  play(pcm: Int16Array, opts?: { uninterruptible?: boolean }): void;
  flush(): void;
  readonly queuedMs?: number;
}

/** Plays hold audio on `media` until `stop()`. */
export class HoldPlayer {
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  /** @param keepMs audio kept queued ahead. @defaultValue 4000 */
  constructor(private readonly media: HoldMedia, private readonly keepMs = 4000) {}

  start(): void {
    if (this.timer || this.stopped) return;
    this.topUp();
    this.timer = setInterval(() => this.topUp(), 1000);
    this.timer.unref();
  }

  get playing(): boolean {
    return this.timer !== null;
  }

  /** Stop and drop what is queued. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const was = this.timer !== null;
    this.timer = null;
    if (was) {
      try {
        this.media.flush();
      } catch { /* session closed */ }
    }
  }

  private topUp(): void {
    const loop = holdLoop();
    try {
      let q = this.media.queuedMs ?? 0;
      while (q < this.keepMs) {
        this.media.play(loop, { uninterruptible: true });
        q += loop.length / 8;
      }
    } catch {
      this.stop();
    }
  }
}
