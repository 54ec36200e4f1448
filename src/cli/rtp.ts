/**
 * The test caller's own RTP side (kept apart from the native media core on purpose, so the
 * caller checks the server with a second implementation): G.711 µ-law/A-law, RTP parsing,
 * a recorder with arrival times, a paced sender whose audio can be queued while it runs
 * (silence in between) and that sends RFC 4733 DTMF, and a WAV reader/writer.
 */
import { createSocket, type Socket } from 'node:dgram';
import { pcmToWav } from '../stt/wav.ts';

// ---- G.711 ------------------------------------------------------------------------------

const BIAS = 0x84;
const CLIP = 32635;

function ulawByte(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  if (s > CLIP) s = CLIP;
  s += BIAS;
  let exp = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exp > 0; mask >>= 1) exp--;
  return ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0f)) & 0xff;
}

function ulawSample(byte: number): number {
  const u = ~byte & 0xff;
  const mag = ((((u & 0x0f) << 3) + BIAS) << ((u >> 4) & 0x07)) - BIAS;
  return u & 0x80 ? -mag : mag;
}

function alawByte(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s >= 0 ? 0x80 : 0;
  if (s < 0) s = -s - 1;
  let out: number;
  if (s < 256) out = s >> 4;
  else {
    let exp = 1;
    for (let v = s >> 8; v > 1; v >>= 1) exp++;
    out = (exp << 4) | ((s >> (exp + 3)) & 0x0f);
  }
  return (out | sign) ^ 0x55;
}

function alawSample(byte: number): number {
  const a = byte ^ 0x55;
  const exp = (a >> 4) & 0x07;
  const man = a & 0x0f;
  const mag = exp === 0 ? (man << 4) + 8 : ((man << 4) + 0x108) << (exp - 1);
  return a & 0x80 ? mag : -mag;
}

export function g711Encode(pcm: Int16Array, pt: number): Buffer {
  const out = Buffer.alloc(pcm.length);
  const f = pt === 8 ? alawByte : ulawByte;
  for (let i = 0; i < pcm.length; i++) out[i] = f(pcm[i]!);
  return out;
}

export function g711Decode(buf: Uint8Array, pt: number): Int16Array {
  const out = new Int16Array(buf.length);
  const f = pt === 8 ? alawSample : ulawSample;
  for (let i = 0; i < buf.length; i++) out[i] = f(buf[i]!);
  return out;
}

/** Root-mean-square level (0 for empty input). */
export function rmsLevel(pcm: Int16Array): number {
  if (pcm.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < pcm.length; i++) s += pcm[i]! * pcm[i]!;
  return Math.sqrt(s / pcm.length);
}

// ---- RTP --------------------------------------------------------------------------------

/** One received RTP packet. */
export interface RtpRecord {
  seq: number;
  ts: number;
  marker: boolean;
  pt: number;
  ssrc: number;
  /** arrival, ms on the monotonic clock ({@link nowMs}) */
  arrivalMs: number;
  payload: Buffer;
  /** sender address:port */
  from: string;
}

/** Monotonic milliseconds. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Parse RTP (v2; CSRCs, extension and padding handled); undefined when not RTP. */
export function parseRtp(buf: Buffer): Omit<RtpRecord, 'arrivalMs' | 'from'> | undefined {
  if (buf.length < 12 || buf[0]! >> 6 !== 2) return undefined;
  let off = 12 + (buf[0]! & 0x0f) * 4;
  if (buf[0]! & 0x10) {
    if (buf.length < off + 4) return undefined;
    off += 4 + buf.readUInt16BE(off + 2) * 4;
  }
  let end = buf.length;
  if (buf[0]! & 0x20) end -= buf[end - 1]!;
  if (off > end) return undefined;
  return {
    seq: buf.readUInt16BE(2), ts: buf.readUInt32BE(4), marker: (buf[1]! & 0x80) !== 0, pt: buf[1]! & 0x7f,
    ssrc: buf.readUInt32BE(8), payload: Buffer.from(buf.subarray(off, end)),
  };
}

/** RTP header + payload. */
export function rtpPacket(seq: number, ts: number, ssrc: number, pt: number, marker: boolean, payload: Uint8Array): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  b[0] = 0x80;
  b[1] = (marker ? 0x80 : 0) | (pt & 0x7f);
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(ssrc >>> 0, 8);
  Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).copy(b, 12);
  return b;
}

/** Records every RTP packet arriving on a socket. */
export class RtpRecorder {
  readonly packets: RtpRecord[] = [];
  /** RTCP-looking datagrams seen (PT 72-76 in the RTP position) */
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

  /** Call `fn` for each packet from now on; returns the unsubscribe function. */
  onPacket(fn: (p: RtpRecord) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    try {
      this.socket.close();
    } catch { /* closed */ }
  }
}

export interface RtpSenderOptions {
  payloadType: number;
  /** Frames sent first (then `fill`, or whatever {@link RtpSender.enqueue} adds). */
  frames?: Buffer[];
  /** Payload when nothing is queued (e.g. G.711 silence); undefined = stop when the queue is empty. */
  fill?: Buffer;
  /** RFC 4733 payload type for {@link RtpSender.sendDtmf}. @defaultValue 101 */
  dtmfPayloadType?: number;
  ssrc?: number;
  /** @defaultValue 20 */
  ptimeMs?: number;
}

type Item = { kind: 'audio'; payload: Buffer; done?: () => void } | { kind: 'dtmf'; event: number; step: number; done?: () => void };

const DTMF_EVENTS = '0123456789*#ABCD';
/** DTMF tone length in packets (20 ms each) and end-packet repeats. */
const DTMF_PACKETS = 6;
const DTMF_END_REPEATS = 3;
const DTMF_GAP_PACKETS = 4;

/**
 * Paced RTP sender (drift-corrected JS timer: fine for a test caller, not for a product).
 * `enqueue()` adds audio behind what is queued; `sendDtmf()` adds RFC 4733 events.
 */
export class RtpSender {
  sent = 0;
  /** monotonic ms of the last sent frame whose audio was voiced (RMS above `voicedRms`) */
  lastVoicedAt = 0;
  voicedRms = 300;
  private timer?: NodeJS.Timeout;
  private seq = Math.floor(Math.random() * 0x10000);
  private ts = Math.floor(Math.random() * 0x100000000);
  private readonly ssrc: number;
  private readonly queue: Item[] = [];
  private stopped = false;
  private marker = true;

  constructor(private readonly socket: Socket, private readonly address: string, private readonly port: number, private readonly opts: RtpSenderOptions) {
    this.ssrc = opts.ssrc ?? Math.floor(Math.random() * 0x100000000);
    for (const f of opts.frames ?? []) this.queue.push({ kind: 'audio', payload: f });
  }

  /** Queue 8 kHz PCM (20 ms frames, the last padded); resolves when its last frame was sent. */
  enqueue(pcm: Int16Array): Promise<void> {
    return new Promise((resolve) => {
      const frames: Item[] = [];
      for (let i = 0; i < pcm.length; i += 160) {
        const f = new Int16Array(160);
        f.set(pcm.subarray(i, Math.min(i + 160, pcm.length)));
        frames.push({ kind: 'audio', payload: g711Encode(f, this.opts.payloadType) });
      }
      if (frames.length === 0) return resolve();
      frames[frames.length - 1]!.done = resolve;
      this.queue.push(...frames);
    });
  }

  /** Queue RFC 4733 digits (each ~120 ms + 80 ms gap); resolves when sent. */
  sendDtmf(digits: string): Promise<void> {
    return new Promise((resolve) => {
      const items: Item[] = [];
      for (const d of digits.toUpperCase()) {
        const ev = DTMF_EVENTS.indexOf(d);
        if (ev < 0) continue;
        for (let s = 0; s < DTMF_PACKETS + DTMF_END_REPEATS; s++) items.push({ kind: 'dtmf', event: ev, step: s });
        for (let g = 0; g < DTMF_GAP_PACKETS; g++) items.push({ kind: 'audio', payload: this.opts.fill ?? Buffer.alloc(160, 0xff) });
      }
      if (items.length === 0) return resolve();
      items[items.length - 1]!.done = resolve;
      this.queue.push(...items);
    });
  }

  /** Audio still queued, ms. */
  get queuedMs(): number {
    return this.queue.length * (this.opts.ptimeMs ?? 20);
  }

  start(): void {
    const ptime = this.opts.ptimeMs ?? 20;
    const t0 = nowMs();
    let dtmfTs = 0;
    const tick = (): void => {
      if (this.stopped) return;
      const item = this.queue.shift();
      let pkt: Buffer | undefined;
      if (item?.kind === 'dtmf') {
        if (item.step === 0) dtmfTs = this.ts;
        const end = item.step >= DTMF_PACKETS - 1;
        const dur = Math.min(DTMF_PACKETS, item.step + 1) * 160;
        const p = Buffer.from([item.event, (end ? 0x80 : 0) | 10, (dur >> 8) & 0xff, dur & 0xff]);
        pkt = rtpPacket(this.seq, dtmfTs, this.ssrc, this.opts.dtmfPayloadType ?? 101, item.step === 0, p);
        this.ts = (this.ts + 160) >>> 0;
      } else {
        const payload = item?.payload ?? this.opts.fill;
        if (!payload) return;
        if (item && rmsLevel(g711Decode(payload, this.opts.payloadType)) > this.voicedRms) this.lastVoicedAt = nowMs();
        pkt = rtpPacket(this.seq, this.ts, this.ssrc, this.opts.payloadType, this.marker, payload);
        this.marker = false;
        this.ts = (this.ts + payload.length) >>> 0;
      }
      this.seq = (this.seq + 1) & 0xffff;
      this.sent++;
      this.socket.send(pkt, this.port, this.address);
      item?.done?.();
      const next = t0 + this.sent * ptime;
      this.timer = setTimeout(tick, Math.max(0, next - nowMs()));
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const i of this.queue.splice(0)) i.done?.();
  }
}

// ---- WAV --------------------------------------------------------------------------------

/** Mono 16-bit PCM → WAV bytes. */
export const wavBytes = pcmToWav;

/** WAV bytes (PCM 16-bit, any channel count: the first channel is kept) → samples + rate. */
export function parseWav(buf: Buffer): { pcm: Int16Array; sampleRate: number } {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12;
  let fmt: { channels: number; rate: number; bits: number; format: number } | undefined;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'fmt ') {
      fmt = { format: buf.readUInt16LE(body), channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt) throw new Error('WAV data before fmt');
      if (fmt.format !== 1 || fmt.bits !== 16) throw new Error('only 16-bit PCM WAV is supported');
      const frames = Math.floor(Math.min(size, buf.length - body) / (2 * fmt.channels));
      const pcm = new Int16Array(frames);
      for (let i = 0; i < frames; i++) pcm[i] = buf.readInt16LE(body + i * 2 * fmt.channels);
      return { pcm, sampleRate: fmt.rate };
    }
    off = body + size + (size & 1);
  }
  throw new Error('WAV without data');
}

/** Linear-interpolation resample to 8 kHz (a quick fallback; `voice-agent call` uses the filtered resampler of src/tts). */
export function to8k(pcm: Int16Array, rate: number): Int16Array {
  if (rate === 8000) return pcm;
  const n = Math.floor((pcm.length * 8000) / rate);
  const out = new Int16Array(n);
  const step = rate / 8000;
  for (let i = 0; i < n; i++) {
    const x = i * step;
    const i0 = Math.floor(x);
    const f = x - i0;
    out[i] = Math.round((pcm[i0] ?? 0) * (1 - f) + (pcm[Math.min(i0 + 1, pcm.length - 1)] ?? 0) * f);
  }
  return out;
}
