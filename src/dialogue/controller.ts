/**
 * The dialogue controller: runs STT → agent → TTS for one live call.
 *
 * States: `listening` (waiting for the caller) → `thinking` (recognising the utterance,
 * running the agent turn) → `speaking` (reply audio queued on the media session) →
 * `listening` when the reply has played out; `ended` after hang-up / transfer / stop.
 *
 * - Turns come from an {@link Endpointer} (native VAD, or the energy fallback) and DTMF
 *   (digits collected until `#` or `dtmfTimeoutMs` of quiet).
 * - Agent actions: `say`/`filler` → TTS sentence by sentence into `media.play()` (queued
 *   behind what plays; the agent is not held up by synthesis); `tool` → transcript/logs;
 *   `take_message` → `enqueueCase` (durable queue); `transfer`/`hangup` → after the queued
 *   speech has played out, the `onTransfer`/`onHangup` hook.
 * - Barge-in: with the native VAD the core pauses the reply itself — at 'pause' (pause-first:
 *   a caller onset) or 'bargeIn' — and we hold further sentences; it resumes the reply at
 *   'resume' / 'falseInterruption' (we go on) and drops it at the new turn's 'speechEnd'
 *   (we abort the agent turn and the pending TTS). With the energy fallback the controller
 *   flushes the outbound queue itself at 'bargeIn'. A DTMF key over the reply interrupts too.
 * - The transcript (what the caller said, what was actually spoken, cut replies marked)
 *   is kept for the screen pop; `agent.state` holds the rest.
 * - No input: caller silence for `noInput.timeoutMs` after the agent spoke → "Sorry, I didn't
 *   catch that." + the last question again; after `noInput.reprompts`, a goodbye and hang-up.
 * - Per turn one `msg=turn` log line: endpointing silence, STT ms, agent ms to first audio,
 *   and `gapMs` = end of caller speech (endpoint decision) → first reply audio queued.
 */
import { EventEmitter } from 'node:events';
import { logger, type Logger } from '../ops/log.ts';
import { metrics, observeMs } from '../ops/metrics.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, CaseMessage, DialogueEntry, Expectation } from '../agent/types.ts';
import type { TransferOutcome, TransferRequest } from '../escalation/handoff.ts';
import { rmsDb } from '../escalation/triggers.ts';
import type { SttProvider, SttResult, Vocabulary } from '../stt/types.ts';
import type { TtsProvider } from '../tts/types.ts';
import { createEndpointer, type Endpointer, type EnergyTunables } from './endpoint.ts';

/** The part of a media session the controller drives (src/media MediaSession fits). */
export interface DialogueMedia {
  play(pcm: Int16Array, opts?: { uninterruptible?: boolean }): void;
  flush(): void;
  /** ms of audio still queued (used to know when speech has played out) */
  readonly queuedMs?: number;
  readonly vad?: boolean;
  setDigitsPending?(on: boolean): void;
  readonly turnTunables?: { endpointSilenceMs: number; digitsEndpointSilenceMs: number } | null;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeListener(event: string, listener: (...args: any[]) => void): unknown;
}

export type DialogueState = 'idle' | 'listening' | 'thinking' | 'speaking' | 'transferring' | 'ended';

/** Timing of one turn (also logged as `msg=turn`). */
export interface TurnTiming {
  turn: number;
  /** endpointing silence in force when the turn ended, ms */
  endpointSilenceMs: number;
  /** end of speech → transcript, ms */
  sttMs: number;
  /** transcript → first reply audio queued, ms (agent + TTS of the first sentence) */
  replyMs: number;
  /** end of speech (endpoint decision) → first reply audio queued, ms */
  gapMs: number;
}

export interface DialogueOptions {
  media: DialogueMedia;
  agent: Agent;
  /** the call as the agent sees it (handed to `agent.start`) */
  ctx: CallContext;
  stt: SttProvider;
  tts: TtsProvider;
  /** TTS voice. @defaultValue the provider's default */
  voice?: string;
  /** STT vocabulary of the tenant (keep the object stable: recognisers cache per object) */
  vocabulary?: Vocabulary;
  /** BCP 47 language for STT. @defaultValue agent.state.language */
  language?: string;
  /** @defaultValue createEndpointer(media, energy) */
  endpointer?: Endpointer;
  /** Energy fallback tunables (used when the session has no VAD). */
  energy?: Partial<EnergyTunables>;
  /**
   * The agent hands the caller to a person (after its last words played). While it runs the
   * dialogue is `transferring` (caller speech is not a turn). `{ ok: false }` (rep busy, no
   * answer) gives the caller back to the agent (`agent.handoffFailed`); resolving nothing
   * counts as done.
   */
  onTransfer?: (t: TransferRequest) => void | TransferOutcome | Promise<void | TransferOutcome>;
  /**
   * The agent decided to hand off (its handshake line is about to play): start what can
   * start early — the screen pop, ringing the rep. `onTransfer` follows after the playout.
   */
  onTransferStart?: (t: TransferRequest) => void;
  /** the agent ends the call (after its last words played) */
  onHangup?: (reason: string) => void | Promise<void>;
  /** durable message → CRM case (src/jobs CaseQueue.enqueueCase) */
  enqueueCase?: (message: CaseMessage) => Promise<unknown>;
  /** True while the agent's question takes one key (the recording consent): the first digit is the turn. @defaultValue never */
  singleKey?: () => boolean;
  /** DTMF digits end after this much quiet (or at `#`). @defaultValue 2500 */
  dtmfTimeoutMs?: number;
  /**
   * What to do with a transcript the recogniser flags off-topic (`inDomain: false`):
   * 'reprompt' hands the agent an empty turn (it asks again), 'pass' hands it the text.
   * @defaultValue 'pass'
   */
  outOfDomain?: 'reprompt' | 'pass';
  /**
   * Longest wait for queued speech to play out before a transfer/hang-up goes ahead anyway
   * (beyond the queued audio's own length).
   * @defaultValue 2000
   */
  playoutSlackMs?: number;
  /**
   * Dead-air guard: caller silence after the agent finished speaking → the `prompt` and the
   * agent's last question again; after `reprompts` of those, `goodbye` and hang up
   * (reason 'no input'). Caller speech onsets, DTMF and hand-offs stop the clock.
   * @defaultValue off (the call service passes the tenant's `noInput`: 8000 ms, 2 reprompts)
   */
  noInput?: NoInputOptions;
  log?: Logger;
  /** time source (tests) @defaultValue Date.now */
  now?: () => number;
}

/** See {@link DialogueOptions.noInput}. */
export interface NoInputOptions {
  /** caller silence before a reprompt, ms; 0 = off. @defaultValue 8000 */
  timeoutMs: number;
  /** reprompts before the agent gives up and hangs up. @defaultValue 2 */
  reprompts: number;
  /** @defaultValue "Sorry, I didn't catch that." */
  prompt?: string;
  /** @defaultValue "I'm not hearing anything, so I'll end the call now. Please call us back any time. Goodbye." */
  goodbye?: string;
}

export const NO_INPUT_PROMPT = "Sorry, I didn't catch that.";
export const NO_INPUT_GOODBYE = "I'm not hearing anything, so I'll end the call now. Please call us back any time. Goodbye.";

interface Reply {
  id: number;
  ac: AbortController;
  /** the agent loop (resolves when the turn's actions are consumed) */
  done: Promise<void>;
  spoken: DialogueEntry[];
}

/** The last sentence of an agent line that ends in a question ("… Shall I place the order?"). */
function lastQuestion(text: string): string {
  const m = /(?:^|[.!?]\s+)([^.!?]*\?)\s*$/.exec(text.trim());
  return (m?.[1] ?? text).trim();
}

/** What the agent asked for that is read out or keyed as digits (longer endpointing, a lone 0 is an answer). */
const DIGITS_EXPECTED = new Set<Expectation>(['po', 'digits', 'sku']);
const DIGIT_PROMPT = /\b(p\.? ?o\.?|purchase order|order|phone|callback|account|part)\b[^.?!]*\bnumber\b|\bdigit|\bkey it in\b|\bmarque\b[^.?!]*\bn[uú]mero\b/i;

export class DialogueController extends EventEmitter<{
  state: [DialogueState];
  transcript: [DialogueEntry];
  turn: [TurnTiming];
  ended: [{ how: 'hangup' | 'transfer' | 'stopped'; reason: string; target?: string }];
  transferFailed: [{ why: string; status?: number; target: string }];
}> {
  readonly transcript: DialogueEntry[] = [];
  readonly timings: TurnTiming[] = [];
  /** What the conversation used (the CDR): seconds of audio recognised, characters synthesised, barge-ins. */
  readonly usage = { sttSeconds: 0, ttsChars: 0, bargeIns: 0 };
  private _state: DialogueState = 'idle';
  private readonly opts: DialogueOptions;
  private readonly media: DialogueMedia;
  private readonly ep: Endpointer;
  private readonly log: Logger;
  private readonly now: () => number;
  private reply: Reply | null = null;
  private replySeq = 0;
  /** the TTS → play chain of the current reply */
  private speech: Promise<void> = Promise.resolve();
  private speechAbort: AbortController = new AbortController();
  /** paused by a (native) barge-in: hold further sentences until resolved */
  private hold: { promise: Promise<void>; release: () => void } | null = null;
  private bargedIn = false;
  private playEndsAt = 0;
  private playing = false;
  private utteranceSeq = 0;
  private dtmf = '';
  /** a transfer was decided: its handshake plays, caller input is not a turn any more */
  private handingOff = false;
  /** the agent's last words asked for a number */
  private expectDigits = false;
  private dtmfTimer: NodeJS.Timeout | null = null;
  /** uninterruptible lines (disclosures, goodbyes) still being synthesised, and when the queued ones end */
  private unintPending = 0;
  private unintEndsAt = 0;
  private noInputTimer: NodeJS.Timeout | null = null;
  /** reprompts in a row with no caller input between them */
  private noInputCount = 0;
  private turnNo = 0;
  private pendingTiming: { turn: number; endAt: number; sttMs: number; textAt: number; epMs: number } | null = null;
  private ending = false;
  /** agent lines still (maybe) playing → when their audio ends */
  private readonly endsAt = new Map<DialogueEntry, number>();
  private readonly playoutWaiters = new Set<() => void>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly onPlayoutDone = (): void => this.playoutDone();
  private readonly onDtmf = (ev: { digit: string }): void => this.dtmfDigit(ev.digit);
  private readonly onDtmfStart = (): void => {
    if (this.handingOff || this.uninterruptiblePlaying()) return;
    if (this._state === 'speaking' || this.playing) this.interrupt('dtmf');
  };

  constructor(opts: DialogueOptions) {
    super();
    this.opts = opts;
    this.media = opts.media;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? logger('dialogue', { callId: opts.agent.state.callId });
    this.ep = opts.endpointer ?? createEndpointer(opts.media, opts.energy);
    this.ep.on('speechStart', () => this.onSpeechStart());
    this.ep.on('speechEnd', (ev) => this.track(this.onSpeechEnd(ev.audio, ev.voicedMs)));
    this.ep.on('bargeIn', () => this.onBargeIn());
    this.ep.on('falseInterruption', () => this.onFalseInterruption());
    this.ep.on('pause', () => this.onPause());
    this.ep.on('resume', () => this.onResume());
    this.media.on('playoutDone', this.onPlayoutDone);
    this.media.on('dtmf', this.onDtmf);
    this.media.on('dtmfStart', this.onDtmfStart);
  }

  get state(): DialogueState {
    return this._state;
  }

  /** Which endpointing runs: 'vad' or 'energy'. */
  get endpointing(): string {
    return this.ep.kind;
  }

  /** The transcript as "caller: …\nagent: …" lines (screen pop, CRM case). */
  transcriptText(): string {
    return this.transcript.map((e) => `${e.role}: ${e.text}${e.interrupted ? ' [cut]' : ''}`).join('\n');
  }

  /** Identify + greet (agent.start), then listen. */
  async start(): Promise<void> {
    if (this._state !== 'idle') return;
    this.setState('thinking');
    await this.runReply(() => this.opts.agent.start(this.opts.ctx));
  }

  /** Hand the agent a turn directly (tests, text channels). */
  async turn(input: AgentTurn): Promise<void> {
    if (this.isEnded()) return;
    await this.cancelReply('new turn');
    this.record({ role: 'caller', text: input.text || input.dtmf || '', at: this.now(), ...(input.dtmf && !input.text ? { dtmf: true } : {}), ...(input.confidence !== undefined ? { confidence: input.confidence } : {}) });
    this.setState('thinking');
    await this.runReply((signal) => this.opts.agent.turn(input, signal));
  }

  /**
   * End the call politely now (drain deadline): stop whatever the agent is doing, say `text`
   * (uninterruptible) and hang up after it played. Returns false when the agent is not the
   * one on the line (a hand-off is under way or done, or the call already ended) — the caller
   * of this then hangs up itself.
   */
  async endWith(text: string, reason: string): Promise<boolean> {
    if (this.isEnded() || this.handingOff || this._state === 'transferring') return false;
    this.clearNoInput();
    await this.cancelReply(reason);
    if (this.isEnded()) return false;
    this.log.info('agent ends the call', { reason });
    this.setState('thinking');
    this.track(this.runReply(async function* (): AsyncGenerator<AgentAction> {
      yield { type: 'say', text, final: true, uninterruptible: true };
      yield { type: 'hangup', reason };
    }));
    return true;
  }

  /** Stop everything (call ended). Idempotent. */
  async stop(reason = 'call ended'): Promise<void> {
    if (this.isEnded() && this.ending) return;
    this.ending = true;
    this.reply?.ac.abort();
    this.speechAbort.abort();
    this.releaseHold();
    if (this.dtmfTimer) clearTimeout(this.dtmfTimer);
    this.clearNoInput();
    this.ep.close();
    this.media.removeListener('playoutDone', this.onPlayoutDone);
    this.media.removeListener('dtmf', this.onDtmf);
    this.media.removeListener('dtmfStart', this.onDtmfStart);
    if (!this.isEnded()) {
      this.setState('ended');
      this.emit('ended', { how: 'stopped', reason });
    }
  }

  /** Resolves when nothing is in flight: recognition, agent turn, speech synthesis. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.inflight.size) await Promise.allSettled([...this.inflight]);
      const r = this.reply;
      if (r) await r.done.catch(() => {});
      await this.speech;
      if (this.inflight.size === 0 && this.reply === null) return;
      if (this.reply === r && this.inflight.size === 0) return;
    }
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    p.catch((err: unknown) => this.log.error('turn failed', { err: err as Error })).finally(() => this.inflight.delete(p));
  }

  // ---- turns ----------------------------------------------------------------------------

  private onSpeechStart(): void {
    if (this.isEnded()) return;
    this.clearNoInput();
    this.log.info('speech start', { state: this._state });
  }

  private async onSpeechEnd(audio: Int16Array, voicedMs: number): Promise<void> {
    if (this.isEnded() || this._state === 'transferring') return;
    if (this.handingOff) {
      this.log.debug('caller spoke during the hand-off handshake; not a turn', { voicedMs });
      return;
    }
    const seq = ++this.utteranceSeq;
    if (this.uninterruptiblePlaying()) {
      // a legal disclosure is not cut: the turn is taken once it has played
      await this.uninterruptiblePlayed();
      if (this.isEnded() || (this._state as DialogueState) === 'transferring' || this.handingOff || seq !== this.utteranceSeq) return;
    }
    const endAt = this.now();
    const epMs = this.ep.endpointSilenceMs;
    if (this.playing && !this.bargedIn && !this.ep.nativeBargeIn) {
      // energy fallback: a short sound over the reply that never reached barge-in (backchannel)
      this.log.info('short sound over the reply ignored', { voicedMs });
      return;
    }
    if (this.bargedIn || this._state === 'speaking' || this._state === 'thinking') {
      // a new caller turn over a reply: the reply is over (the native core dropped its audio)
      await this.cancelReply(this.bargedIn ? 'barge-in' : 'caller spoke');
    }
    this.bargedIn = false;
    this.setState('thinking');
    const stream = this.opts.stt.createStream({
      sampleRate: 8000,
      ...(this.opts.vocabulary ? { vocabulary: this.opts.vocabulary } : {}),
      language: this.opts.language ?? this.opts.agent.state.language,
      expect: this.opts.agent.state.expect ?? 'open',
      // the identified account's recent order lines: their SKUs first in a per-state grammar
      ...(this.opts.agent.state.history?.length ? { history: this.opts.agent.state.history } : {}),
    });
    for (let i = 0; i < audio.length; i += 160) stream.push(audio.subarray(i, Math.min(audio.length, i + 160)));
    this.usage.sttSeconds += audio.length / 8000;
    let text = '';
    let confidence = 0;
    let inDomain = true;
    let alternatives: SttResult['alternatives'];
    try {
      const r = await stream.end();
      text = r.text.trim();
      confidence = r.confidence;
      inDomain = r.inDomain;
      alternatives = r.alternatives;
    } catch (err) {
      if (this.isEnded()) return;
      this.log.warn('speech recognition failed', { err: err as Error });
    }
    if (this.isEnded()) return;
    if (seq !== this.utteranceSeq) {
      this.log.info('utterance superseded by a newer one before it was answered', { text, voicedMs });
      return;
    }
    const sttMs = this.now() - endAt;
    this.log.info('caller said', { text, confidence: Math.round(confidence * 100) / 100, inDomain, voicedMs, sttMs });
    this.noInputCount = 0;
    this.record({ role: 'caller', text, at: endAt, confidence });
    const input: AgentTurn = {
      text: !inDomain && this.opts.outOfDomain === 'reprompt' ? '' : text, confidence,
      voice: { rmsDb: Math.round(rmsDb(audio) * 10) / 10, voicedMs },
      ...(this.expectDigits ? { expectingDigits: true } : {}),
      ...(!inDomain && text ? { offDomain: true } : {}),
      ...(alternatives?.length ? { alternatives } : {}),
      audio,
    };
    this.pendingTiming = { turn: ++this.turnNo, endAt, sttMs, textAt: this.now(), epMs };
    await this.runReply((signal) => this.opts.agent.turn(input, signal));
  }

  private dtmfDigit(digit: string): void {
    if (this.isEnded() || this._state === 'transferring' || this.handingOff) return;
    this.clearNoInput();
    if (this.dtmfTimer) clearTimeout(this.dtmfTimer);
    if (digit === '#') {
      this.flushDtmf();
      return;
    }
    this.dtmf += digit;
    if (this.dtmf.length === 1 && this.opts.singleKey?.() && !this.expectDigits) {
      // a one-key question (the recording consent: 1 / 2) is answered by the first key
      this.flushDtmf();
      return;
    }
    if (this.dtmf === '0' && !this.expectDigits) {
      // a lone 0 while no number was asked for: "operator", no need to wait for more keys
      this.flushDtmf();
      return;
    }
    this.dtmfTimer = setTimeout(() => this.flushDtmf(), this.opts.dtmfTimeoutMs ?? 2500);
  }

  private flushDtmf(): void {
    this.dtmfTimer = null;
    const digits = this.dtmf;
    this.dtmf = '';
    if (!digits || this.isEnded()) return;
    this.log.info('caller keyed', { digits });
    this.noInputCount = 0;
    const endAt = this.now();
    this.pendingTiming = { turn: ++this.turnNo, endAt, sttMs: 0, textAt: endAt, epMs: 0 };
    this.track((async () => {
      if (this.uninterruptiblePlaying()) await this.uninterruptiblePlayed();
      if (this.isEnded()) return;
      await this.cancelReply('dtmf');
      this.record({ role: 'caller', text: digits, at: endAt, dtmf: true });
      this.setState('thinking');
      await this.runReply((signal) => this.opts.agent.turn({ text: '', dtmf: digits, ...(this.expectDigits ? { expectingDigits: true } : {}) }, signal));
    })());
  }

  // ---- barge-in -------------------------------------------------------------------------

  private onBargeIn(): void {
    if (this.isEnded() || this.handingOff || this.uninterruptiblePlaying()) return;
    if (!this.playing && this._state !== 'speaking') return;
    this.log.info('barge-in', { native: this.ep.nativeBargeIn });
    this.usage.bargeIns++;
    metrics.bargeIns.inc();
    if (this.ep.nativeBargeIn) {
      // paused natively: hold further sentences until the turn ends or proves false
      this.bargedIn = true;
      this.holdSpeech();
    } else {
      this.interrupt('barge-in');
    }
  }

  /** Pause-first: the core paused the reply at an onset; hold further sentences. */
  private onPause(): void {
    if (this.handingOff) return;
    if (this.isEnded() || (!this.playing && this._state !== 'speaking')) return;
    this.log.info('reply paused at a caller onset');
    this.holdSpeech();
  }

  /** Pause-first: the onset died (backchannel, cough); the core resumed the reply. */
  private onResume(): void {
    if (this.bargedIn) return;
    this.log.info('reply resumed');
    this.releaseHold();
  }

  private holdSpeech(): void {
    if (this.hold) return;
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.hold = { promise, release };
  }

  private onFalseInterruption(): void {
    if (!this.bargedIn) return;
    this.log.info('false interruption; reply resumes');
    metrics.falseInterruptions.inc();
    this.bargedIn = false;
    this.releaseHold();
  }

  private releaseHold(): void {
    const h = this.hold;
    this.hold = null;
    h?.release();
  }

  /** Cut the reply now: drop queued audio, stop TTS and the agent turn. */
  private interrupt(why: string): void {
    this.log.info('reply interrupted', { why });
    this.media.flush();
    this.markCut();
    this.speechAbort.abort();
    this.reply?.ac.abort();
    this.playing = false;
    this.playEndsAt = 0;
    this.ep.setAgentSpeaking(false);
    this.releaseHold();
    if (this._state === 'speaking') this.setState('listening');
  }

  /** Mark the agent lines whose audio had not finished playing as cut. */
  private markCut(): void {
    const t = this.now();
    for (const [e, endsAt] of this.endsAt) if (t < endsAt) e.interrupted = true;
    this.endsAt.clear();
  }

  /** Abort the reply in progress and wait for its loop to stop. */
  private async cancelReply(why: string): Promise<void> {
    const r = this.reply;
    if (!r && !this.playing) return;
    if (this.playing || this.bargedIn) {
      this.media.flush();
      this.markCut();
    }
    this.speechAbort.abort();
    r?.ac.abort();
    this.releaseHold();
    this.playing = false;
    this.playEndsAt = 0;
    this.ep.setAgentSpeaking(false);
    if (r) {
      this.log.debug('reply cancelled', { why, reply: r.id });
      await r.done.catch(() => {});
      if (this.reply === r) this.reply = null;
    }
  }

  // ---- replies --------------------------------------------------------------------------

  private async runReply(make: (signal: AbortSignal) => AsyncIterable<AgentAction>): Promise<void> {
    const ac = new AbortController();
    this.speechAbort = new AbortController();
    this.speech = Promise.resolve();
    const reply: Reply = { id: ++this.replySeq, ac, done: Promise.resolve(), spoken: [] };
    this.reply = reply;
    let end: { how: 'hangup' | 'transfer'; reason: string; target?: string; transfer?: TransferRequest } | null = null;
    reply.done = (async () => {
      const it = make(ac.signal)[Symbol.asyncIterator]();
      try {
        while (!ac.signal.aborted) {
          const n = await it.next();
          if (n.done || ac.signal.aborted) break;
          const a = n.value;
          switch (a.type) {
            case 'say':
            case 'filler':
              this.queueSpeech(reply, a.text, a.type === 'filler', a.type === 'say' && a.uninterruptible === true, a.type === 'say' ? a.language : undefined);
              break;
            case 'tool':
              this.log.debug('tool', { tool: a.name, ok: a.result.ok, ms: a.result.ms });
              break;
            case 'take_message':
              this.takeMessage(a.message);
              break;
            case 'transfer':
              end = {
                how: 'transfer', reason: a.reason, target: a.target,
                transfer: {
                  target: a.target, reason: a.reason, ...(a.targetName ? { targetName: a.targetName } : {}),
                  ...(a.targetKind ? { targetKind: a.targetKind } : {}), ...(a.trigger ? { trigger: a.trigger } : {}),
                },
              };
              this.handingOff = true;
              try {
                this.opts.onTransferStart?.(end.transfer!);
              } catch (err) {
                this.log.warn('transfer start hook failed', { err: err as Error });
              }
              break;
            case 'hangup':
              end = { how: 'hangup', reason: a.reason };
              break;
          }
          if (end) break;
        }
      } catch (err) {
        this.log.error('agent turn failed', { err: err as Error });
        if (!ac.signal.aborted) this.queueSpeech(reply, "Sorry, something went wrong on my side. Could you say that again?", false);
      } finally {
        if (ac.signal.aborted) void it.return?.(undefined)?.catch?.(() => {});
      }
    })();
    await reply.done;
    await this.speech;
    if (this.reply !== reply) return;
    this.reply = null;
    if (ac.signal.aborted || this.isEnded()) return;
    if (end) {
      await this.finishCall(end);
      return;
    }
    const last = reply.spoken[reply.spoken.length - 1];
    const expect = this.opts.agent.state.expect;
    this.expectDigits = (!!last && DIGIT_PROMPT.test(last.text)) || (expect !== undefined && DIGITS_EXPECTED.has(expect));
    this.ep.setDigitsPending(this.expectDigits);
    if (!this.playing) this.setState('listening');
  }

  private queueSpeech(reply: Reply, text: string, filler: boolean, uninterruptible = false, language?: string): void {
    const signal = this.speechAbort.signal;
    if (uninterruptible) this.unintPending++;
    this.speech = this.speech.then(() => this.speak(reply, text, filler, signal, uninterruptible, language)).catch((err: unknown) => {
      this.log.warn('speech synthesis failed', { err: err as Error });
    }).finally(() => {
      if (uninterruptible) this.unintPending--;
    });
  }

  /** An uninterruptible line is queued or playing: caller turns and keys wait for its end, nothing flushes it. */
  private uninterruptiblePlaying(): boolean {
    return this.unintPending > 0 || this.now() < this.unintEndsAt;
  }

  /** Resolves once uninterruptible lines have played out (at most 30 s of real time). */
  private async uninterruptiblePlayed(): Promise<void> {
    const giveUp = Date.now() + 30_000;
    while (this.uninterruptiblePlaying() && !this.isEnded() && Date.now() < giveUp) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(10, this.unintEndsAt - this.now()))));
    }
  }

  private async speak(reply: Reply, text: string, filler: boolean, signal: AbortSignal, uninterruptible = false, language?: string): Promise<void> {
    if (signal.aborted || this.isEnded()) return;
    const entry: DialogueEntry = { role: 'agent', text, at: this.now(), ...(filler ? { filler: true } : {}) };
    this.usage.ttsChars += text.length;
    let recorded = false;
    const ttsAt = performance.now();
    let ttsFirst = true;
    for await (const pcm of this.opts.tts.synthesize(text, { sampleRate: 8000, signal, ...(this.opts.voice ? { voice: this.opts.voice } : {}), ...(language ? { language } : {}) })) {
      while (this.hold && !signal.aborted) await this.hold.promise;
      if (signal.aborted || this.isEnded()) return;
      if (pcm.length === 0) continue;
      if (ttsFirst) {
        ttsFirst = false;
        metrics.ttsFirstAudio.observe((performance.now() - ttsAt) / 1000);
      }
      this.media.play(pcm, uninterruptible ? { uninterruptible: true } : undefined);
      const t = this.now();
      this.playEndsAt = Math.max(this.playEndsAt, t) + pcm.length / 8;
      if (uninterruptible) this.unintEndsAt = this.playEndsAt;
      this.endsAt.set(entry, this.playEndsAt);
      if (!recorded) {
        recorded = true;
        entry.at = t;
        reply.spoken.push(entry);
        this.record(entry);
        this.log.info('agent said', { text, ...(filler ? { filler: true } : {}) });
      }
      if (!this.playing) {
        this.playing = true;
        this.ep.setAgentSpeaking(true);
      }
      if (this._state !== 'speaking') this.setState('speaking');
      this.firstAudio(t);
    }
  }

  private firstAudio(t: number): void {
    const p = this.pendingTiming;
    if (!p) return;
    this.pendingTiming = null;
    const timing: TurnTiming = { turn: p.turn, endpointSilenceMs: p.epMs, sttMs: p.sttMs, replyMs: t - p.textAt, gapMs: t - p.endAt };
    this.timings.push(timing);
    observeMs(metrics.turnEndpointing, timing.endpointSilenceMs);
    observeMs(metrics.turnStt, timing.sttMs);
    observeMs(metrics.turnAgent, timing.replyMs);
    observeMs(metrics.turnGap, timing.gapMs);
    this.log.info('turn', { ...timing });
    this.emit('turn', timing);
  }

  private playoutDone(): void {
    if (this.isEnded()) return;
    const q = this.media.queuedMs;
    if (q !== undefined && q > 0) return;
    this.playing = false;
    this.playEndsAt = 0;
    this.ep.setAgentSpeaking(false);
    this.endsAt.clear();
    for (const w of [...this.playoutWaiters]) w();
    if (this._state === 'speaking' && !this.reply) this.setState('listening');
  }

  /** Resolves when queued speech has played out (playoutDone, or its length + slack). */
  private waitPlayout(): Promise<void> {
    if (!this.playing) return Promise.resolve();
    const remaining = Math.max(0, this.playEndsAt - this.now());
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.playoutWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, remaining + (this.opts.playoutSlackMs ?? 2000));
      this.playoutWaiters.add(done);
    });
  }

  private async finishCall(end: { how: 'hangup' | 'transfer'; reason: string; target?: string; transfer?: TransferRequest }): Promise<void> {
    await this.waitPlayout();
    if (this.isEnded()) return;
    this.log.info(end.how === 'transfer' ? 'transfer' : 'agent hangs up', { reason: end.reason, target: end.target, trigger: end.transfer?.trigger });
    if (end.how === 'transfer') {
      this.setState('transferring');
      let outcome: void | TransferOutcome;
      try {
        outcome = await this.opts.onTransfer?.(end.transfer ?? { target: end.target ?? 'rep', reason: end.reason });
      } catch (err) {
        this.log.warn('transfer hook failed', { err: err as Error });
        outcome = { ok: false, why: 'unavailable' };
      }
      if (this.isEnded()) return;
      if (outcome && !outcome.ok) {
        this.handingOff = false;
        this.log.info('transfer failed; the agent takes the caller back', { why: outcome.why, status: outcome.status });
        this.emit('transferFailed', { why: outcome.why, ...(outcome.status ? { status: outcome.status } : {}), target: end.target ?? 'rep' });
        this._state = 'thinking';
        this.emit('state', 'thinking');
        const agent = this.opts.agent;
        const failure = { why: outcome.why, targetName: end.transfer?.targetName ?? end.target ?? 'a rep', ...(outcome.status ? { status: outcome.status } : {}) };
        if (agent.handoffFailed) await this.runReply(() => agent.handoffFailed!(failure));
        else this.setState('listening');
        return;
      }
      this.setState('ended');
      this.emit('ended', { how: 'transfer', reason: end.reason, ...(end.target ? { target: end.target } : {}) });
      await this.stop(end.reason);
      return;
    }
    this.setState('ended');
    this.emit('ended', end);
    try {
      await this.opts.onHangup?.(end.reason);
    } catch (err) {
      this.log.warn('hangup hook failed', { err: err as Error });
    }
    await this.stop(end.reason);
  }

  private takeMessage(message: CaseMessage): void {
    const msg: CaseMessage = { ...message, transcript: message.transcript ?? this.transcriptText() };
    const q = this.opts.enqueueCase;
    if (!q) {
      this.log.warn('message taken but no case queue is configured', { msgId: msg.id });
      return;
    }
    q(msg).then(
      (how) => this.log.info('message queued', { msgId: msg.id, how: typeof how === 'string' ? how : undefined }),
      (err: unknown) => this.log.error('message could not be queued', { msgId: msg.id, err: err as Error }),
    );
  }

  private record(e: DialogueEntry): void {
    this.transcript.push(e);
    this.emit('transcript', e);
  }

  private isEnded(): boolean {
    return this._state === 'ended';
  }

  private setState(s: DialogueState): void {
    if (this._state === s) return;
    if (this.isEnded()) return;
    this._state = s;
    if (s === 'listening') this.armNoInput();
    else this.clearNoInput();
    this.emit('state', s);
  }

  // ---- no input (dead air) ---------------------------------------------------------------

  private armNoInput(): void {
    this.clearNoInput();
    const ni = this.opts.noInput;
    if (!ni || !(ni.timeoutMs > 0) || this._state !== 'listening' || this.handingOff || this.isEnded()) return;
    this.noInputTimer = setTimeout(() => this.noInputExpired(), ni.timeoutMs);
    this.noInputTimer.unref?.();
  }

  private clearNoInput(): void {
    if (this.noInputTimer) clearTimeout(this.noInputTimer);
    this.noInputTimer = null;
  }

  private noInputExpired(): void {
    this.noInputTimer = null;
    const ni = this.opts.noInput!;
    if (this._state !== 'listening' || this.reply || this.playing || this.handingOff || this.dtmf || this.isEnded()) return;
    this.noInputCount++;
    metrics.noInputReprompts.inc();
    const giveUp = this.noInputCount > ni.reprompts;
    this.log.info(giveUp ? 'no input; the agent gives up' : 'no input; reprompt', { count: this.noInputCount, silentMs: ni.timeoutMs });
    let lines: string[];
    if (giveUp) {
      lines = [ni.goodbye ?? NO_INPUT_GOODBYE];
    } else {
      // repeat the last question the agent asked (the caller may have missed it), else just the prompt
      const lastAgent = [...this.transcript].reverse().find((e) => e.role === 'agent' && !e.filler);
      const question = lastAgent && /\?\s*$/.test(lastAgent.text) ? lastQuestion(lastAgent.text) : '';
      lines = [ni.prompt ?? NO_INPUT_PROMPT, ...(question ? [question] : [])];
    }
    this.setState('thinking');
    this.track(this.runReply(async function* (): AsyncGenerator<AgentAction> {
      for (let i = 0; i < lines.length; i++) yield { type: 'say', text: lines[i]!, ...(i === lines.length - 1 ? { final: true } : {}) };
      if (giveUp) yield { type: 'hangup', reason: 'no input' };
    }));
  }
}
