/**
 * RTP test tools: parse packets, record a stream with arrival times, send a paced stream,
 * and summarise timing / header sanity of what was received.
 */
import type { Socket } from 'node:dgram';
import { nowMs, rtpPacket, type RtpRecord } from '../../src/cli/rtp.ts';

/** One received RTP packet. */

// Parsing and recording are shared with the `voice-agent call` CLI.
export { nowMs, parseRtp, RtpRecorder, type RtpRecord } from '../../src/cli/rtp.ts';

export interface RtpSenderOptions {
  payloadType: number;
  /** Frames to send, 160 bytes each for G.711 at 20 ms; repeated/padded by `fill` when exhausted. */
  frames?: Buffer[];
  /** Payload used when `frames` is exhausted (e.g. µ-law silence 0xff). Stop when undefined. */
  fill?: Buffer;
  ssrc?: number;
  /** @defaultValue 20 */
  ptimeMs?: number;
}

/**
 * Sends a paced RTP stream from `socket` to `address:port` (a test tool: paced by a
 * drift-corrected JS timer, which is fine for a caller but not for the product).
 */
export class RtpSender {
  sent = 0;
  private timer?: NodeJS.Timeout;
  private seq = Math.floor(Math.random() * 0x10000);
  private ts = Math.floor(Math.random() * 0x100000000);
  private readonly ssrc: number;
  private idx = 0;
  private stopped = false;

  constructor(private readonly socket: Socket, private readonly address: string, private readonly port: number, private readonly opts: RtpSenderOptions) {
    this.ssrc = opts.ssrc ?? Math.floor(Math.random() * 0x100000000);
  }

  start(): void {
    const ptime = this.opts.ptimeMs ?? 20;
    const t0 = nowMs();
    const tick = (): void => {
      if (this.stopped) return;
      const frames = this.opts.frames ?? [];
      const payload = this.idx < frames.length ? frames[this.idx] : this.opts.fill;
      if (!payload) return;
      const pkt = rtpPacket(this.seq, this.ts, this.ssrc, this.opts.payloadType, this.sent === 0, payload);
      this.seq = (this.seq + 1) & 0xffff;
      this.ts = (this.ts + payload.length) >>> 0;
      this.idx++;
      this.sent++;
      this.socket.send(pkt, this.port, this.address);
      const next = t0 + this.sent * ptime;
      this.timer = setTimeout(tick, Math.max(0, next - nowMs()));
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** Percentile (0-100) of numbers by nearest rank on a sorted copy. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

export interface StreamAnalysis {
  packets: number;
  ssrcs: number[];
  payloadTypes: number[];
  /** Inter-arrival intervals in ms. */
  intervalsMs: number[];
  medianIntervalMs: number;
  p99IntervalMs: number;
  /** |interval - ptime| in microseconds, per interval. */
  pacingErrorUs: number[];
  /** Every packet's seq is the previous + 1 (mod 2^16) in arrival order. */
  seqMonotonic: boolean;
  /** Timestamp step between consecutive packets (the set of distinct steps). */
  tsSteps: number[];
  firstMarker: boolean;
  /** Audio duration covered by the packets (packets × ptime), ms. */
  durationMs: number;
}

/** Summarise a received stream (packets in arrival order). */
export function analyzeStream(packets: RtpRecord[], ptimeMs = 20): StreamAnalysis {
  const intervals: number[] = [];
  const errs: number[] = [];
  let seqOk = true;
  const steps = new Set<number>();
  for (let i = 1; i < packets.length; i++) {
    const a = packets[i - 1]!;
    const b = packets[i]!;
    const d = b.arrivalMs - a.arrivalMs;
    intervals.push(d);
    errs.push(Math.abs(d - ptimeMs) * 1000);
    if (((a.seq + 1) & 0xffff) !== b.seq) seqOk = false;
    steps.add((b.ts - a.ts) >>> 0);
  }
  return {
    packets: packets.length,
    ssrcs: [...new Set(packets.map((p) => p.ssrc))],
    payloadTypes: [...new Set(packets.map((p) => p.pt))],
    intervalsMs: intervals,
    medianIntervalMs: percentile(intervals, 50),
    p99IntervalMs: percentile(intervals, 99),
    pacingErrorUs: errs,
    seqMonotonic: seqOk,
    tsSteps: [...steps],
    firstMarker: packets.length > 0 && packets[0]!.marker,
    durationMs: packets.length * ptimeMs,
  };
}
