/**
 * A UDP "phone" for VAD/barge-in tests and the barge-in benchmark: sends a
 * continuous 20 ms PCMU stream (silence unless speech is queued, like a real
 * handset) to a media session and records every RTP packet it receives.
 * Pacing is drift-corrected against performance.now(); the media session's
 * jitter buffer absorbs the timer jitter.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { native } from '../../../src/media/native.ts';

export interface RxPacket {
  /** Arrival, performance.now() ms. */
  at: number;
  seq: number;
  /** Payload is exactly G.711 µ-law digital silence (the session's keep-alive). */
  silent: boolean;
  /** The payload decoded (PCMU → 8 kHz PCM): what the caller hears. */
  pcm: Int16Array;
}

const FRAME = 160;

export class RtpPeer {
  readonly received: RxPacket[] = [];
  private queue: { pcm: Int16Array; pos: number; onStart?: (at: number) => void }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private seq = Math.floor(Math.random() * 65535);
  private ts = Math.floor(Math.random() * 2 ** 31);
  private readonly ssrc = Math.floor(Math.random() * 2 ** 31);
  private next = 0;
  private dest = 0;

  private constructor(readonly sock: dgram.Socket) {
    sock.on('message', (m) => {
      if (m.length < 12) return;
      const payload = m.subarray(12);
      let silent = payload.length > 0;
      for (const b of payload) if (b !== 0xff) { silent = false; break; }
      this.received.push({ at: performance.now(), seq: m.readUInt16BE(2), silent, pcm: native.ulawDecode(payload) });
    });
  }

  static async open(): Promise<RtpPeer> {
    const sock = dgram.createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    return new RtpPeer(sock);
  }

  get port(): number {
    return this.sock.address().port;
  }

  /** Start streaming to 127.0.0.1:`port` (silence until something is queued). */
  start(port: number): void {
    this.dest = port;
    this.next = performance.now();
    const tick = (): void => {
      const now = performance.now();
      let n = 0;
      while (this.next <= now && n++ < 5) {
        this.sendFrame(this.next);
        this.next += 20;
      }
      if (now - this.next > 100) this.next = now; // stalled: do not burst
      this.timer = setTimeout(tick, Math.max(1, this.next - performance.now()));
    };
    tick();
  }

  /**
   * Queue 8 kHz speech after what is already queued. `onStart(at)` is called
   * with the send instant (performance.now() scale) of the packet holding
   * sample `markSample` (e.g. the acoustic onset); `onFrame(k, at)` with the
   * send instant of every 20 ms packet k of it.
   */
  say(pcm: Int16Array, onStart?: (at: number) => void, markSample = 0, onFrame?: (frame: number, at: number) => void): void {
    const mark = Math.floor(markSample / FRAME);
    let frame = 0;
    const item = { pcm, pos: 0, onStart: undefined as ((at: number) => void) | undefined };
    if (onStart || onFrame) {
      item.onStart = (at) => {
        onFrame?.(frame, at);
        if (frame++ === mark) onStart?.(at);
      };
    }
    this.queue.push(item);
  }

  /** Audio still queued, ms. */
  get queuedMs(): number {
    return this.queue.reduce((a, q) => a + (q.pcm.length - q.pos) / 8, 0);
  }

  private sendFrame(at: number): void {
    const pcm = new Int16Array(FRAME);
    const q = this.queue[0];
    if (q) {
      pcm.set(q.pcm.subarray(q.pos, q.pos + FRAME));
      q.onStart?.(at);
      q.pos += FRAME;
      if (q.pos >= q.pcm.length) this.queue.shift();
    }
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = 0; // PCMU
    h.writeUInt16BE(this.seq & 0xffff, 2);
    h.writeUInt32BE(this.ts >>> 0, 4);
    h.writeUInt32BE(this.ssrc >>> 0, 8);
    this.seq++;
    this.ts += FRAME;
    this.sock.send(Buffer.concat([h, native.ulawEncode(pcm)]), this.dest, '127.0.0.1');
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private closed = false;

  /** Idempotent. */
  close(): void {
    this.stop();
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }

  /** Arrival time of the last non-silent packet received at or before `until` (ms), or -1. */
  lastAudioAt(until = Infinity): number {
    let t = -1;
    for (const p of this.received) if (!p.silent && p.at <= until) t = p.at;
    return t;
  }
}

/** Index of the first 20 ms frame whose RMS exceeds `dbfs` (acoustic onset), in samples; -1 if none. */
export function onsetSample(pcm: Int16Array, dbfs = -45): number {
  const thr = 32768 * 10 ** (dbfs / 20);
  for (let i = 0; i + 80 <= pcm.length; i += 80) {
    let s = 0;
    for (let j = i; j < Math.min(i + FRAME, pcm.length); j++) s += pcm[j]! * pcm[j]!;
    if (Math.sqrt(s / FRAME) > thr) return i;
  }
  return -1;
}

/**
 * Onset of the speech as it is present in a noisy item: the first 20 ms frame
 * (80-sample hop, like onsetSample) where the clean speech exceeds `dbfs` AND
 * is at least as strong as the noise under it (local SNR >= 0 dB, the usual
 * "speech-dominated" criterion). `noisy` = clean + noise, sample-aligned. For
 * a clean item this equals onsetSample(clean). A burst that lies under the
 * noise (e.g. an aspirated "wh-" at -40 dBFS in noise at -30 dBFS) is not in
 * the inbound audio in any detectable sense, so no detector can react to it.
 */
export function audibleOnsetSample(clean: Int16Array, noisy: Int16Array, dbfs = -45): number {
  const thr = 32768 * 10 ** (dbfs / 20);
  const n = Math.min(clean.length, noisy.length);
  for (let i = 0; i + 80 <= n; i += 80) {
    let s = 0;
    let e = 0;
    for (let j = i; j < Math.min(i + FRAME, n); j++) {
      s += clean[j]! * clean[j]!;
      const d = noisy[j]! - clean[j]!;
      e += d * d;
    }
    if (Math.sqrt(s / FRAME) > thr && s >= e) return i;
  }
  return -1;
}

/**
 * A long agent prompt: flite speech (looped to `seconds`) with a faint noise
 * floor (±24) so that no packet of it is pure µ-law silence — the peer can
 * then tell "agent audio" from the session's keep-alive silence exactly.
 */
export function agentPrompt(speech8k: Int16Array, seconds: number): Int16Array {
  const out = new Int16Array(seconds * 8000);
  let seed = 12345;
  for (let i = 0; i < out.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const v = speech8k[i % speech8k.length]! + ((seed >> 8) % 49) - 24;
    out[i] = Math.max(-32768, Math.min(32767, v));
  }
  return out;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** What the caller hears of the agent in one received packet (see agentLevels). */
export type AgentLevel = 'silent' | 'full' | 'ducked' | 'unknown';

/**
 * Classify every received packet against the prompt the session plays: the n-th
 * packet with agent audio carries prompt samples [160n, 160n + 160) (the outbound
 * queue is dequeued 160 samples a tick and kept in place while paused). Its gain
 * is the least-squares fit of what arrived onto that stretch of the prompt:
 * 'ducked' below `duckedBelowDb` (default -6 dB), else 'full'; 'unknown' where the
 * prompt itself is quieter than -40 dBFS (a pause between its words: no level to
 * compare); 'silent' for the session's keep-alive silence (agent stopped).
 */
export function agentLevels(received: RxPacket[], prompt: Int16Array, duckedBelowDb = -6): AgentLevel[] {
  const lim = 10 ** (duckedBelowDb / 20);
  const quiet = 32768 * 10 ** (-40 / 20);
  let n = 0;
  return received.map((p) => {
    if (p.silent) return 'silent';
    const ref = prompt.subarray(n * FRAME, n * FRAME + FRAME);
    n++;
    let rp = 0;
    let pp = 0;
    for (let i = 0; i < Math.min(ref.length, p.pcm.length); i++) {
      rp += p.pcm[i]! * ref[i]!;
      pp += ref[i]! * ref[i]!;
    }
    if (ref.length === 0 || Math.sqrt(pp / ref.length) < quiet) return 'unknown';
    return rp / pp < lim ? 'ducked' : 'full';
  });
}

/** Runs `fn` over `xs` with at most `n` in flight; results in input order. */
export async function pool<T, R>(xs: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(xs.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i]!);
    }
  }));
  return out;
}
