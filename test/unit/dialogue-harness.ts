/**
 * The dialogue controller test harness (frames/events in, actions/audio out): a fake media
 * session that records what is played and drains on demand, a scripted endpointer, an STT
 * whose "audio" carries the transcript, a TTS whose audio carries the text, and the real
 * rules agent over the real tool gateway (in-memory CRM/ERP store, fixed clock).
 *
 * ```ts
 * const h = await harness({ now: OPEN_AT });
 * await h.start();                      // greeting queued
 * h.take()                              // → texts played since the last take()
 * await h.say('i need twenty of h x four four one zero');   // one caller turn (speechEnd)
 * h.playOut();                          // the media session reports the queue drained
 * ```
 */
import { EventEmitter } from 'node:events';
import { DialogueController, type DialogueOptions, type Endpointer, type EndpointerEvents, type TransferRequest, type TransferOutcome } from '../../src/dialogue/index.ts';
import { EscalatingAgent } from '../../src/escalation/agent.ts';
import { createAgent, type Agent, type CallContext, type CaseMessage, type ToolGateway } from '../../src/agent/index.ts';
import type { SttProvider, SttResult, SttStream, SttStreamOptions } from '../../src/stt/types.ts';
import type { TtsOptions, TtsProvider } from '../../src/tts/types.ts';
import type { CrmErpStore } from '../../src/crm-erp/index.ts';
import { DANA, OPEN_AT, context, demoTenant, gatewayFor, openStore, slowTools } from './agent-helpers.ts';

/** Speech "audio": the text's UTF-16 codes, so the fake STT can read it back. */
export function speechOf(text: string): Int16Array {
  const a = new Int16Array(Math.max(160, text.length));
  for (let i = 0; i < text.length; i++) a[i] = text.charCodeAt(i);
  return a;
}

function textOf(pcm: Int16Array): string {
  let s = '';
  for (let i = 0; i < pcm.length && pcm[i] !== 0; i++) s += String.fromCharCode(pcm[i]!);
  return s;
}

/** STT that reads the text back out of {@link speechOf} audio. */
export class FakeStt implements SttProvider {
  readonly name = 'fake';
  delayMs = 0;
  /** force results flagged off-topic */
  outOfDomain = new Set<string>();
  /** recogniser confidence per transcript (default 0.9) */
  confidenceOf = new Map<string, number>();
  /** n-best alternatives per transcript */
  alternativesOf = new Map<string, Array<{ text: string; confidence: number }>>();
  /** the options each stream was opened with (expect, history …) */
  readonly streams: SttStreamOptions[] = [];
  createStream(o: SttStreamOptions): SttStream {
    this.streams.push(o);
    const chunks: Int16Array[] = [];
    const s = new EventEmitter() as SttStream;
    s.push = (pcm) => { chunks.push(pcm.slice()); };
    s.abort = () => {};
    s.end = async (): Promise<SttResult> => {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      const all = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
      let off = 0;
      for (const c of chunks) { all.set(c, off); off += c.length; }
      const text = textOf(all);
      const alternatives = this.alternativesOf.get(text);
      return {
        text, confidence: text ? this.confidenceOf.get(text) ?? 0.9 : 0, inDomain: !this.outOfDomain.has(text), ms: this.delayMs,
        ...(alternatives ? { alternatives } : {}),
      };
    };
    return s;
  }
}

/** TTS: one chunk per sentence, 10 ms of "audio" per character; remembers which text a chunk is. */
export class FakeTts implements TtsProvider {
  readonly name = 'fake';
  readonly textOf = new WeakMap<Int16Array, string>();
  delayMs = 0;
  private gate: { held: Promise<void>; release: () => void } | null = null;
  /**
   * From now on a reply's sentences after its first wait until {@link release}: a reply still
   * being synthesised when the caller talks, held by the test instead of by a delay (a delay
   * may be over before the test looks on a busy machine).
   */
  holdAfterFirst(): void {
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    this.gate = { held, release };
  }
  /** Let the held sentences go (and stop holding). */
  release(): void {
    this.gate?.release();
    this.gate = null;
  }
  synthesize(text: string, opts: TtsOptions): AsyncIterable<Int16Array> {
    const self = this;
    const sentences = text.match(/[^.?!]+[.?!]*/g)?.map((x) => x.trim()).filter(Boolean) ?? [text];
    return (async function* () {
      for (const [k, s] of sentences.entries()) {
        if (k > 0 && self.gate) await self.gate.held;
        if (self.delayMs) await new Promise((r) => setTimeout(r, self.delayMs));
        if (opts.signal?.aborted) return;
        const pcm = new Int16Array(80 * s.length).fill(1000);
        self.textOf.set(pcm, s);
        yield pcm;
      }
    })();
  }
}

/** Media session fake: records play()/flush(), drains when told. */
export class FakeMedia extends EventEmitter {
  readonly played: Array<{ text: string; ms: number; at: number }> = [];
  flushes = 0;
  queued = 0;
  vad = false;
  digitsPending: boolean[] = [];
  constructor(private readonly tts: FakeTts) {
    super();
  }
  play(pcm: Int16Array): void {
    this.played.push({ text: this.tts.textOf.get(pcm) ?? '?', ms: pcm.length / 8, at: Date.now() });
    this.queued += pcm.length / 8;
  }
  flush(): void {
    this.flushes++;
    this.queued = 0;
  }
  get queuedMs(): number {
    return this.queued;
  }
  setDigitsPending(on: boolean): void {
    this.digitsPending.push(on);
  }
  /** The queue drained (the native 'playoutDone'). */
  playOut(): void {
    if (this.queued === 0) return;
    this.queued = 0;
    this.emit('playoutDone');
  }
}

/** An endpointer the test drives by hand. */
export class ScriptedEndpointer extends EventEmitter<EndpointerEvents> implements Endpointer {
  readonly kind = 'scripted';
  endpointSilenceMs = 700;
  agentSpeaking = false;
  digits = false;
  constructor(readonly nativeBargeIn: boolean) {
    super();
  }
  setAgentSpeaking(on: boolean): void { this.agentSpeaking = on; }
  setDigitsPending(on: boolean): void { this.digits = on; }
  close(): void {}
}

export interface HarnessOptions {
  tenant?: 'northwind' | 'northwind-status';
  now?: Date;
  ani?: string;
  /** the endpointer behaves like the native VAD (core pauses audio itself). @defaultValue true */
  nativeBargeIn?: boolean;
  slow?: Record<string, { delayMs: number }>;
  controller?: Partial<DialogueOptions>;
  agentOptions?: { fillerAfterMs?: number };
  /** wrap the agent in the EscalatingAgent (as the service does). @defaultValue true */
  escalation?: boolean;
  /** what the hand-off reports for a transfer. @defaultValue done */
  transferOutcome?: (t: TransferRequest) => TransferOutcome | void;
}

export interface Harness {
  dialogue: DialogueController;
  media: FakeMedia;
  ep: ScriptedEndpointer;
  stt: FakeStt;
  tts: FakeTts;
  agent: Agent;
  ctx: CallContext;
  store: CrmErpStore;
  tools: ToolGateway;
  cases: CaseMessage[];
  hangups: string[];
  transfers: TransferRequest[];
  /** agent.start and wait until its speech is queued */
  start(): Promise<void>;
  /** one caller utterance (speechStart + speechEnd) and wait for the reply to be queued */
  say(text: string): Promise<void>;
  /** texts played since the last take(), joined with spaces */
  take(): string;
  /** the media queue drained */
  playOut(): void;
  /** wait until the controller has nothing in flight */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(o: HarnessOptions = {}): Promise<Harness> {
  const tenant = demoTenant(o.tenant ?? 'northwind');
  const store = openStore(o.now ?? OPEN_AT);
  const base = await gatewayFor(tenant, store);
  const tools = o.slow ? slowTools(base, o.slow) : base;
  const ctx = context(tenant, tools, { now: o.now ?? OPEN_AT, ani: o.ani ?? DANA });
  const inner = createAgent(ctx, { env: {}, rules: o.agentOptions ?? {} });
  const agent: Agent = o.escalation === false ? inner : new EscalatingAgent(inner, ctx);
  const tts = new FakeTts();
  const stt = new FakeStt();
  const media = new FakeMedia(tts);
  const ep = new ScriptedEndpointer(o.nativeBargeIn ?? true);
  const cases: CaseMessage[] = [];
  const hangups: string[] = [];
  const transfers: TransferRequest[] = [];
  const dialogue = new DialogueController({
    media, agent, ctx, stt, tts, endpointer: ep,
    enqueueCase: async (m) => { cases.push(m); return 'queued'; },
    onHangup: (r) => { hangups.push(r); },
    onTransfer: (tr) => { transfers.push(tr); return o.transferOutcome?.(tr); },
    playoutSlackMs: 300,
    ...o.controller,
  });
  let taken = 0;
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) {
      await dialogue.idle();
      await new Promise((r) => setImmediate(r));
    }
  };
  return {
    dialogue, media, ep, stt, tts, agent, ctx, store, tools, cases, hangups, transfers,
    async start() {
      await dialogue.start();
      await settle();
    },
    async say(text) {
      ep.emit('speechStart');
      ep.emit('speechEnd', { audio: speechOf(text), voicedMs: 100 * text.split(' ').length });
      await new Promise((r) => setImmediate(r));
      await settle();
    },
    take() {
      const out = media.played.slice(taken).map((p) => p.text).join(' ');
      taken = media.played.length;
      return out;
    },
    playOut: () => media.playOut(),
    settle,
    async close() {
      await dialogue.stop();
      await tools.close();
      store.close();
    },
  };
}
