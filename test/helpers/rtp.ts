/**
 * RTP test tools: parse packets, record a stream with arrival times, send a paced stream,
 * and summarise timing / header sanity of what was received.
 */
import { createSocket, type Socket } from 'node:dgram';
import { rtpPacket } from './pcap.ts';

/** One received RTP packet. */
export interface RtpRecord {
  seq: number;
  ts: number;
  marker: boolean;
  pt: number;
  ssrc: number;
  /** Arrival time in ms (monotonic clock, fractional). */
  arrivalMs: number;
  payload: Buffer;
  /** Sender address:port. */
  from: string;
}

/** Parse an RTP packet (v2, CSRCs and header extension skipped, padding removed); undefined if not RTP. */
export function parseRtp(buf: Buffer): Omit<RtpRecord, 'arrivalMs' | 'from'> | undefined {
  if (buf.length < 12 || buf[0]! >> 6 !== 2) return undefined;
  const cc = buf[0]! & 0x0f;
  let off = 12 + cc * 4;
  if (buf[0]! & 0x10) {
    if (buf.length < off + 4) return undefined;
    off += 4 + buf.readUInt16BE(off + 2) * 4;
  }
  let end = buf.length;
  if (buf[0]! & 0x20) end -= buf[end - 1]!;
  if (off > end) return undefined;
  return {
    seq: buf.readUInt16BE(2),
    ts: buf.readUInt32BE(4),
    marker: (buf[1]! & 0x80) !== 0,
    pt: buf[1]! & 0x7f,
    ssrc: buf.readUInt32BE(8),
    payload: Buffer.from(buf.subarray(off, end)),
  };
}

/** Monotonic milliseconds. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Records every RTP packet that arrives on a socket. */
export class RtpRecorder {
  readonly packets: RtpRecord[] = [];
  /** Non-RTP datagrams seen (e.g. RTCP is RTP-shaped; counted separately by PT 200-204). */
  rtcp = 0;
  private listeners = new Set<(p: RtpRecord) => void>();

  constructor(readonly socket: Socket) {
    socket.on('message', (msg, rinfo) => {
      const arrivalMs = nowMs();
      const p = parseRtp(msg);
      if (!p) return;
      if (p.pt >= 72 && p.pt <= 76) {
        this.rtcp++;
        return;
      }
      const rec: RtpRecord = { ...p, arrivalMs, from: `${rinfo.address}:${rinfo.port}` };
      this.packets.push(rec);
      for (const l of this.listeners) l(rec);
    });
  }

  /** Bind a new UDP socket (port 0 = any) and record on it. */
  static async bind(port = 0, address = '127.0.0.1'): Promise<RtpRecorder> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, address, () => {
        s.off('error', reject);
        resolve();
      });
    });
    return new RtpRecorder(s);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Call `fn` for each packet from now on; returns an unsubscribe function. */
  onPacket(fn: (p: RtpRecord) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      /* already closed */
    }
  }
}

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
