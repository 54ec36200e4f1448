/**
 * Endpointing for the dialogue controller: where a caller's turn starts and ends, and when
 * the caller talks over the agent (barge-in). One internal interface, two sources:
 *
 * - {@link VadEndpointer}: the native media session's Silero VAD turn machine
 *   (`createSession({ vad })`): 'speechStart', 'speechEnd' (with the utterance), 'bargeIn',
 *   'falseInterruption'. The native core pauses / drops the outbound audio itself.
 * - {@link EnergyEndpointer}: the fallback when the session has no VAD. A frame (20 ms) is
 *   voiced when its RMS level is above `max(minRms, noiseFloor × snrRatio)`, where the noise
 *   floor follows the quietest frames (fast down, slow up). A turn starts after `minSpeechMs`
 *   of voiced frames (gaps up to `onsetMaxGapMs` allowed) and ends after `endpointSilenceMs`
 *   of unvoiced frames (`digitsEndpointSilenceMs` while digits are expected). While the agent
 *   is speaking, `minInterruptionMs` of voiced frames fire 'bargeIn'; the controller then
 *   drops the outbound audio itself (`nativeBargeIn` is false). Good enough for clean
 *   telephone audio; noisy lines want the VAD.
 *
 * {@link createEndpointer} picks the VAD when the session has it: switching is one line.
 */
import { EventEmitter } from 'node:events';

/** What an endpointer reports. */
export interface EndpointerEvents {
  /** a caller turn started */
  speechStart: [];
  /** the caller's turn ended; `audio` is the utterance as 8 kHz PCM */
  speechEnd: [ev: { audio: Int16Array; voicedMs: number }];
  /** the caller talks over the agent's audio (it has been paused when `nativeBargeIn`) */
  bargeIn: [];
  /** the barge-in was too short: the native core resumed the paused audio */
  falseInterruption: [];
  /** pause-first (native VAD): an onset over the reply paused its audio; 'bargeIn' or 'resume' follows */
  pause: [];
  /** pause-first: the onset died, the native core resumed the paused audio (or ended the duck) */
  resume: [];
  /**
   * pause-first as a duck (native VAD, `pauseDuckDb` > 0): an onset over the reply lowered its
   * level; the reply keeps playing (the controller keeps feeding it); 'bargeIn' or 'resume' follows
   */
  duck: [];
}

export interface Endpointer extends EventEmitter<EndpointerEvents> {
  /** The media core pauses/drops outbound audio on barge-in itself (VAD); else the controller flushes. */
  readonly nativeBargeIn: boolean;
  /** Name for logs: 'vad' | 'energy'. */
  readonly kind: string;
  /** Endpointing silence now in force, ms (for turn-gap accounting). */
  readonly endpointSilenceMs: number;
  /** The agent's audio is playing (barge-in detection for the energy fallback). */
  setAgentSpeaking(on: boolean): void;
  /** The caller is about to read digits: wait the longer endpointing silence. */
  setDigitsPending(on: boolean): void;
  close(): void;
}

/** The part of a media session an endpointer listens to. */
export interface EndpointMedia {
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
  /** present when the session runs the native VAD */
  readonly vad?: boolean;
  setDigitsPending?(on: boolean): void;
  /** present on media sessions that can put the extra pre-roll in front of VAD utterances themselves */
  setUtterancePreRoll?(ms: number): void;
  readonly turnTunables?: { endpointSilenceMs: number; digitsEndpointSilenceMs: number; pauseDuckDb?: number } | null;
}

/** Tunables of the energy fallback. */
export interface EnergyTunables {
  /** Absolute RMS floor a voiced frame must exceed (16-bit PCM). @defaultValue 400 */
  minRms: number;
  /** A voiced frame is this many times louder than the tracked noise floor. @defaultValue 3 */
  snrRatio: number;
  /** Voiced time that makes a turn. @defaultValue 160 */
  minSpeechMs: number;
  /** Unvoiced gap that abandons an onset. @defaultValue 100 */
  onsetMaxGapMs: number;
  /** Silence that ends a turn. @defaultValue 700 */
  endpointSilenceMs: number;
  /** Silence that ends a turn while digits are expected. @defaultValue 1500 */
  digitsEndpointSilenceMs: number;
  /** Voiced time over the agent's audio before barge-in. @defaultValue 300 */
  minInterruptionMs: number;
  /** Audio kept before the first voiced frame. @defaultValue 200 */
  preRollMs: number;
  /** Longest utterance kept (older audio is dropped). @defaultValue 15000 */
  maxUtteranceMs: number;
}

/** Defaults of {@link EnergyTunables}. */
export const ENERGY_DEFAULTS: Readonly<EnergyTunables> = Object.freeze({
  minRms: 400,
  snrRatio: 3,
  minSpeechMs: 160,
  onsetMaxGapMs: 100,
  endpointSilenceMs: 700,
  digitsEndpointSilenceMs: 1500,
  minInterruptionMs: 300,
  preRollMs: 200,
  maxUtteranceMs: 15000,
});

const FRAME = 160; // 20 ms at 8 kHz
const FRAME_MS = 20;

function rmsOf(pcm: Int16Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += pcm[i]! * pcm[i]!;
  return Math.sqrt(s / Math.max(1, to - from));
}

/** Energy-based endpointing over the session's 'audio' events (8 kHz PCM). */
export class EnergyEndpointer extends EventEmitter<EndpointerEvents> implements Endpointer {
  readonly nativeBargeIn = false;
  readonly kind = 'energy';
  readonly tunables: EnergyTunables;
  private noise = 0;
  private carry = new Int16Array(0);
  /** frames of the current onset / utterance */
  private frames: Int16Array[] = [];
  private pre: Int16Array[] = [];
  private inTurn = false;
  private voicedMs = 0;
  private onsetVoicedMs = 0;
  private gapMs = 0;
  private silenceMs = 0;
  private agentSpeaking = false;
  private bargedIn = false;
  private digits = false;
  private readonly onAudio = (pcm: Int16Array): void => this.push(pcm);

  constructor(private readonly media: EndpointMedia | null, tunables: Partial<EnergyTunables> = {}) {
    super();
    this.tunables = { ...ENERGY_DEFAULTS, ...tunables };
    media?.on('audio', this.onAudio);
  }

  get endpointSilenceMs(): number {
    return this.digits ? this.tunables.digitsEndpointSilenceMs : this.tunables.endpointSilenceMs;
  }

  setAgentSpeaking(on: boolean): void {
    this.agentSpeaking = on;
    if (!on) this.bargedIn = false;
  }

  setDigitsPending(on: boolean): void {
    this.digits = on;
  }

  /** Feed 8 kHz PCM (any length; cut into 20 ms frames). */
  push(pcm: Int16Array): void {
    let buf = pcm;
    if (this.carry.length) {
      buf = new Int16Array(this.carry.length + pcm.length);
      buf.set(this.carry);
      buf.set(pcm, this.carry.length);
    }
    let off = 0;
    for (; off + FRAME <= buf.length; off += FRAME) this.frame(buf.slice(off, off + FRAME));
    this.carry = buf.slice(off);
  }

  private frame(f: Int16Array): void {
    const t = this.tunables;
    const level = rmsOf(f, 0, f.length);
    // noise floor: follows quiet frames down at once, creeps up slowly
    if (this.noise === 0 || level < this.noise) this.noise = Math.max(1, level);
    else this.noise += (level - this.noise) * 0.01;
    const voiced = level > Math.max(t.minRms, this.noise * t.snrRatio);

    if (!this.inTurn) {
      if (voiced) {
        this.frames.push(f);
        this.onsetVoicedMs += FRAME_MS;
        this.gapMs = 0;
        if (this.onsetVoicedMs >= t.minSpeechMs) {
          this.inTurn = true;
          this.voicedMs = this.onsetVoicedMs;
          this.silenceMs = 0;
          this.frames = [...this.pre, ...this.frames];
          this.pre = [];
          this.emit('speechStart');
          this.checkBargeIn();
        }
      } else if (this.frames.length) {
        this.frames.push(f);
        this.gapMs += FRAME_MS;
        if (this.gapMs > t.onsetMaxGapMs) {
          // abandoned onset: its frames become pre-roll
          for (const x of this.frames) this.keepPre(x);
          this.frames = [];
          this.onsetVoicedMs = 0;
          this.gapMs = 0;
        }
      } else {
        this.keepPre(f);
      }
      return;
    }
    this.frames.push(f);
    if (this.frames.length * FRAME_MS > t.maxUtteranceMs) this.frames.shift();
    if (voiced) {
      this.voicedMs += FRAME_MS;
      this.silenceMs = 0;
      this.checkBargeIn();
      return;
    }
    this.silenceMs += FRAME_MS;
    if (this.silenceMs >= this.endpointSilenceMs) {
      // keep one frame after the last voiced one, drop the rest of the silence
      const keep = this.frames.length - Math.floor(this.silenceMs / FRAME_MS) + 1;
      const kept = this.frames.slice(0, Math.max(1, keep));
      const audio = new Int16Array(kept.length * FRAME);
      kept.forEach((x, i) => audio.set(x, i * FRAME));
      const voicedMs = this.voicedMs;
      this.inTurn = false;
      this.frames = [];
      this.pre = [];
      this.onsetVoicedMs = 0;
      this.voicedMs = 0;
      this.silenceMs = 0;
      this.digits = false;
      this.emit('speechEnd', { audio, voicedMs });
    }
  }

  private checkBargeIn(): void {
    if (this.agentSpeaking && !this.bargedIn && this.voicedMs >= this.tunables.minInterruptionMs) {
      this.bargedIn = true;
      this.emit('bargeIn');
    }
  }

  private keepPre(f: Int16Array): void {
    this.pre.push(f);
    const max = Math.max(0, Math.round(this.tunables.preRollMs / FRAME_MS));
    while (this.pre.length > max) this.pre.shift();
  }

  close(): void {
    this.media?.removeListener('audio', this.onAudio);
    this.removeAllListeners();
  }
}

/** Tunables of the VAD endpointer. */
export interface VadEndpointerOptions {
  /**
   * Audio added before the utterance the VAD hands over (taken from the session's 'audio'
   * stream, found by matching the utterance's first samples): the VAD's own pre-roll is
   * two 32 ms frames, and soft word onsets ("please", "that") start earlier than the first
   * frame it scores voiced — the recogniser then hears "wait the order" for "please place
   * the order"; an onset broken by a short pause is dropped by the VAD altogether. 0 turns
   * it off.
   * @defaultValue 600
   */
  extraPreRollMs?: number;
  /** Inbound audio kept for that, ms. @defaultValue 16000 */
  historyMs?: number;
}

/** The native VAD's turn events, re-emitted as an {@link Endpointer}. */
export class VadEndpointer extends EventEmitter<EndpointerEvents> implements Endpointer {
  readonly nativeBargeIn = true;
  readonly kind = 'vad';
  private digits = false;
  private readonly handlers: Array<[string, (...a: any[]) => void]>;
  private extraSamples: number;
  private readonly history: Int16Array;
  private total = 0;

  constructor(private readonly media: EndpointMedia, opts: VadEndpointerOptions = {}) {
    super();
    this.extraSamples = Math.max(0, Math.round((opts.extraPreRollMs ?? 600) * 8));
    // The media session adds the pre-roll from its own ring when it can (no 'audio' events are
    // then needed: a session without an 'audio' listener gets none); otherwise it is matched
    // in a copy of the 'audio' stream here.
    if (this.extraSamples > 0 && this.extraSamples <= 2000 * 8 && media.setUtterancePreRoll) {
      media.setUtterancePreRoll(Math.round(this.extraSamples / 8));
      this.extraSamples = 0;
    }
    this.history = new Int16Array(this.extraSamples > 0 ? Math.round((opts.historyMs ?? 16000) * 8) : 0);
    this.handlers = [
      ['speechStart', () => this.emit('speechStart')],
      ['speechEnd', (ev: { audio: Int16Array; voicedMs: number }) => {
        this.digits = false;
        this.emit('speechEnd', { audio: this.extend(ev.audio), voicedMs: ev.voicedMs });
      }],
      ['bargeIn', () => this.emit('bargeIn')],
      ['falseInterruption', () => this.emit('falseInterruption')],
      // With a duck the core lowers the reply instead of pausing it: the reply keeps playing, so
      // the controller must not hold back its next audio (the queue would run dry: a gap).
      ['pause', () => ((this.media.turnTunables?.pauseDuckDb ?? 0) > 0 ? this.emit('duck') : this.emit('pause'))],
      ['resume', () => this.emit('resume')],
    ];
    if (this.extraSamples > 0) this.handlers.push(['audio', (pcm: Int16Array) => this.keep(pcm)]);
    for (const [e, h] of this.handlers) media.on(e, h);
  }

  private keep(pcm: Int16Array): void {
    const h = this.history;
    const n = h.length;
    for (let i = 0; i < pcm.length; i++) h[(this.total + i) % n] = pcm[i]!;
    this.total += pcm.length;
  }

  /** The utterance with up to `extraPreRollMs` of the audio that preceded it. */
  extend(u: Int16Array): Int16Array {
    const h = this.history;
    const n = h.length;
    const W = 32;
    if (this.extraSamples === 0 || u.length < W * 2 || this.total < u.length) return u;
    // a probe window with some signal (an all-zero window matches anywhere)
    let p = 0;
    while (p + W <= u.length) {
      let e = 0;
      for (let i = 0; i < W; i++) e += Math.abs(u[p + i]!);
      if (e > W * 8) break;
      p += W;
    }
    if (p + W > u.length) return u;
    const oldest = Math.max(0, this.total - n);
    // newest match first: the utterance is recent
    for (let s = this.total - W; s >= oldest; s--) {
      let ok = true;
      for (let i = 0; i < W && ok; i++) ok = h[(s + i) % n] === u[p + i];
      if (!ok) continue;
      const start = s - p;
      const extra = Math.min(this.extraSamples, start - oldest);
      if (extra <= 0) return u;
      const out = new Int16Array(extra + u.length);
      for (let i = 0; i < extra; i++) out[i] = h[(start - extra + i) % n]!;
      out.set(u, extra);
      return out;
    }
    return u;
  }

  get endpointSilenceMs(): number {
    const t = this.media.turnTunables;
    if (!t) return ENERGY_DEFAULTS.endpointSilenceMs;
    return this.digits ? t.digitsEndpointSilenceMs : t.endpointSilenceMs;
  }

  setAgentSpeaking(): void { /* the native turn machine sees the outbound queue itself */ }

  setDigitsPending(on: boolean): void {
    this.digits = on;
    try {
      this.media.setDigitsPending?.(on);
    } catch { /* session closed */ }
  }

  close(): void {
    for (const [e, h] of this.handlers) this.media.removeListener(e, h);
    this.removeAllListeners();
  }
}

/** The VAD endpointer when the session runs the native VAD, else the energy fallback. */
export function createEndpointer(media: EndpointMedia, energy: Partial<EnergyTunables> = {}, vad: VadEndpointerOptions = {}): Endpointer {
  return media.vad ? new VadEndpointer(media, vad) : new EnergyEndpointer(media, energy);
}
