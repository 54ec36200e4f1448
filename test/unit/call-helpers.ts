/** Shared bits of the Call tests: a fake clock. */
import type { CallClock } from '../../src/call/call.ts';

type Timer = { at: number; fn: () => void; every?: number };

/**
 * A clock whose timers fire only from advance(), in due-time order, intervals re-armed; time
 * starts at `t` ms. Timers armed while advancing fire in the same advance when they fall due.
 */
export class FakeClock implements CallClock {
  private seq = 0;
  timers = new Map<number, Timer>();
  constructor(public t = 0) {}
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): unknown { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(h: unknown): void { this.timers.delete(h as number); }
  setInterval(fn: () => void, ms: number): unknown { const id = ++this.seq; this.timers.set(id, { at: this.t + ms, fn, every: ms }); return id; }
  clearInterval(h: unknown): void { this.timers.delete(h as number); }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.t = next[1].at;
      if (next[1].every) next[1].at += next[1].every; else this.timers.delete(next[0]);
      next[1].fn();
    }
    this.t = end;
  }
}
