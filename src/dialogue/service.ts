/**
 * What main builds once per process to run the conversation in every answered call:
 * the STT and TTS providers, the recogniser vocabulary (from the CRM/ERP data), one tool
 * gateway per tenant (cached), and the `crm-cases` queue (BullMQ on `REDIS_URL`, or on a
 * private redis-server started on first use). `attach(call)` starts a
 * {@link DialogueController} on the call and stops it when the call ends.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { logger, type Logger } from '../ops/log.ts';
import { createAgent, tenantToolPolicy, type ToolGateway } from '../agent/index.ts';
import { promptsFor, type Tenant } from '../tenants/index.ts';
import type { CaseMessage } from '../jobs/types.ts';
import type { ConversationState } from '../agent/types.ts';
import type { SttProvider, Vocabulary } from '../stt/types.ts';
import type { TtsProvider } from '../tts/types.ts';
import { DialogueController, type DialogueMedia, type NoInputOptions } from './controller.ts';
import { EscalatingAgent } from '../escalation/agent.ts';
import { KeypadAgent } from '../agent/keypad.ts';
import { MultilingualAgent, sttUnderstands } from '../agent/multilingual.ts';
import { LanguageTts } from '../tts/voices.ts';
import { ConsentGate, playedOutOf, type RecordingService } from '../consent/index.ts';
import type { HandoffCall, HandoffRun, HandoffService } from '../escalation/handoff.ts';
import { agentNow } from './clock.ts';

const log = logger('dialogue');

/**
 * The part of a Call the service uses (src/call Call fits): what the conversation needs,
 * plus what a hand-off needs (the same call is handed to {@link HandoffService.begin}).
 */
export interface DialogueCall extends HandoffCall {
  readonly to: string;
  /** calling number for the CRM lookup (may be withheld from people: `privacy`). @defaultValue `from` */
  readonly ani?: string;
  readonly session: HandoffCall['session'] & DialogueMedia;
  once(event: 'ended', listener: (...args: any[]) => void): unknown;
}

export interface DialogueServiceOptions {
  /** the STT of calls whose tenant has no `speechFor` entry (the local recogniser) */
  stt: SttProvider;
  /** the TTS of calls whose tenant has no `speechFor` entry (flite) */
  tts: TtsProvider;
  /**
   * The speech providers of one call of a tenant (src/speech/providers.ts: the tenant's
   * `stt`/`tts` over the config's, cloud ones wrapped with the local fallback).
   * @defaultValue `stt`, `tts` and the tenant's voice for every call
   */
  speechFor?: (tenant: Tenant, log: Logger) => { stt: SttProvider; tts: TtsProvider; voice?: string };
  /** recogniser vocabulary (tenant-independent demo CRM data for now) */
  vocabulary?: Vocabulary;
  /** a gateway per tenant. @defaultValue createToolGateway(tenantToolPolicy(tenant)) */
  gatewayFor?: (tenant: Tenant) => Promise<ToolGateway>;
  /**
   * Human hand-off (screen pop, warm/blind transfer). Without it a transfer the agent asks
   * for is logged and the call hung up. @defaultValue none
   */
  handoff?: HandoffService;
  /** follows each conversation and case (the CDR). @defaultValue none */
  observer?: DialogueObserver;
  /** data dir for the case spool and the private Redis. @defaultValue env DATA_DIR, else './var' */
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
}

/** Who else follows the conversations (the CDR recorder). */
export interface DialogueObserver {
  /** a call's conversation started: its controller (transcript, timings, usage) and the agent's state */
  conversation?(call: DialogueCall, c: { controller: DialogueController; state: ConversationState; sttProvider: string; ttsProvider: string }): void;
  /** the case queue created the CRM case of a message taken in a call */
  caseCreated?(message: CaseMessage, caseNumber: string): void;
}

interface CaseQueueLike {
  enqueueCase(m: CaseMessage): Promise<unknown>;
  close(): Promise<void>;
  redisHealth?(): Promise<string | null>;
  counts?(): Promise<Record<string, number>>;
  readonly spool?: { readonly size: number };
}

export class DialogueService {
  private readonly gateways = new Map<string, Promise<ToolGateway>>();
  private cases: Promise<{ queue: CaseQueueLike; stop: () => Promise<void> }> | null = null;
  private readonly live = new Set<DialogueController>();
  /** the drain goodbye of each live conversation (tenant prompt in the call's language) */
  private readonly goodbyes = new Map<DialogueController, () => string>();
  private readonly env: NodeJS.ProcessEnv;
  private readonly dataDir: string;

  constructor(private readonly opts: DialogueServiceOptions) {
    this.env = opts.env ?? process.env;
    this.dataDir = opts.dataDir ?? this.env.DATA_DIR ?? './var';
    // Start the queue now when it costs nothing (REDIS_URL) or when spooled messages wait.
    const spool = path.join(this.dataDir, 'spool', 'crm-cases.jsonl');
    if (this.env.REDIS_URL || (existsSync(spool) && statSync(spool).size > 0)) void this.caseQueue().catch(() => {});
  }

  private recordings: RecordingService | null = null;

  /** Install call recording (disclosure, consent, the recorder): main does this at start. */
  setRecordings(r: RecordingService): void {
    this.recordings = r;
  }

  /** Install the hand-off (main does this once the SIP app exists). */
  setHandoff(h: HandoffService): void {
    this.opts.handoff = h;
  }

  /** Install the observer (main does this when the CDR is on). */
  setObserver(o: DialogueObserver): void {
    this.opts.observer = o;
  }

  /** The tenant's tool gateway (created once). */
  gateway(tenant: Tenant): Promise<ToolGateway> {
    let g = this.gateways.get(tenant.id);
    if (!g) {
      g = this.opts.gatewayFor
        ? this.opts.gatewayFor(tenant)
        : import('../tools/index.ts').then((m) => m.createToolGateway(tenantToolPolicy(tenant)));
      this.gateways.set(tenant.id, g);
      g.catch(() => this.gateways.delete(tenant.id));
    }
    return g;
  }

  /** The case queue, started on first use. */
  caseQueue(): Promise<{ queue: CaseQueueLike; stop: () => Promise<void> }> {
    this.cases ??= (async () => {
      const { CaseQueue, resolveRedis } = await import('../jobs/index.ts');
      const { url, server } = await resolveRedis({ dataDir: path.join(this.dataDir, 'redis'), env: this.env });
      const queue = new CaseQueue({ redisUrl: url, dataDir: this.dataDir, gatewayFor: (tenantId) => this.gatewayById(tenantId) });
      queue.on('created', (m: CaseMessage, caseNumber: string) => this.opts.observer?.caseCreated?.(m, caseNumber));
      log.info('case queue ready', { redis: server ? `private 127.0.0.1:${server.port}` : 'REDIS_URL' });
      return { queue, stop: async () => { await queue.close(); await server?.stop(); } };
    })();
    this.cases.catch((err: unknown) => {
      log.error('case queue unavailable', { err: err as Error });
      this.cases = null;
    });
    return this.cases;
  }

  private tenantsById = new Map<string, Tenant>();

  private async gatewayById(tenantId: string): Promise<ToolGateway> {
    const t = this.tenantsById.get(tenantId);
    if (!t) throw new Error(`no tenant ${tenantId} seen in this process`);
    return this.gateway(t);
  }

  /** Run the conversation on an answered call. */
  attach(call: DialogueCall): void {
    this.tenantsById.set(call.tenant.id, call.tenant);
    const clog = logger('dialogue', { callId: call.callId });
    let dialogue: DialogueController | null = null;
    let ended = false;
    call.once('ended', () => {
      ended = true;
      if (dialogue) {
        this.live.delete(dialogue);
        this.goodbyes.delete(dialogue);
        void dialogue.stop('call ended');
      }
    });
    void (async () => {
      const tools = await this.gateway(call.tenant);
      if (ended) return;
      const ctx = { tenant: call.tenant, callId: call.callId, ani: call.ani ?? call.from, privacy: call.privacy ?? false, dnis: call.to, tools, now: agentNow(this.env) };
      const speech = this.opts.speechFor?.(call.tenant, clog) ?? { stt: this.opts.stt, tts: this.opts.tts, voice: call.tenant.voice };
      // the call's language (CRM contact, else the DID's tenant, else the caller's choice) and
      // the agent for it: speech in a language the recogniser understands, else the keypad path
      const escalating = new MultilingualAgent(ctx, {
        speechAgent: (c) => new EscalatingAgent(createAgent(c, { env: this.env }), c, { log: clog }),
        keypadAgent: (c, state) => new EscalatingAgent(new KeypadAgent(c, { state, dataDir: this.dataDir }), c, { log: clog }),
        understands: (language) => sttUnderstands(speech.stt.name, language),
        log: clog,
      });
      await escalating.prepare();
      if (ended) return;
      // recording posture: disclosure first, consent decided in code, the recorder only after it
      const recording = this.recordings?.forCall(call) ?? null;
      if (recording) {
        call.recording = recording.facts;
        call.once('ended', () => recording.finish());
      }
      const agent = recording ? new ConsentGate(escalating, recording, { playedOut: playedOutOf(() => dialogue?.transcript, call.session) }, { log: clog }) : escalating;
      const handoff = this.opts.handoff;
      let run: HandoffRun | null = null;
      const begin = (tr: Parameters<HandoffService['begin']>[1]): HandoffRun =>
        handoff!.begin(call, tr, { state: agent.state, transcript: dialogue?.transcript ?? [] });
      // the voice follows the call's language (tenant `voices`), asked per sentence
      const tts = new LanguageTts({ base: speech.tts, voices: call.tenant.voices, language: () => agent.state.language });
      dialogue = new DialogueController({
        media: call.session,
        agent, ctx, stt: speech.stt, tts, ...(speech.voice ? { voice: speech.voice } : {}),
        ...(this.opts.vocabulary ? { vocabulary: this.opts.vocabulary } : {}),
        log: clog,
        ...(agent instanceof ConsentGate ? { singleKey: () => agent.asking } : {}),
        noInput: noInputFor(call.tenant, () => agent.state.language),
        enqueueCase: async (m) => (await this.caseQueue()).queue.enqueueCase(m),
        onHangup: async () => { await call.hangup('agent-hangup'); },
        onTransferStart: (tr) => {
          if (handoff && !run) run = begin(tr);
        },
        onTransfer: async (tr) => {
          if (!handoff) {
            clog.warn('transfer requested but no hand-off is configured; hanging up', { target: tr.target, reason: tr.reason });
            await call.hangup('agent-hangup');
            return { ok: true };
          }
          const r = run ?? begin(tr);
          run = null;
          return r.finish();
        },
      });
      this.live.add(dialogue);
      try {
        this.opts.observer?.conversation?.(call, { controller: dialogue, state: agent.state, sttProvider: speech.stt.name, ttsProvider: tts.name });
      } catch (err) {
        clog.warn('conversation observer failed', { err: err as Error });
      }
      this.goodbyes.set(dialogue, () => promptsFor(call.tenant, agent.state.language).drainGoodbye ?? DEFAULT_DRAIN_GOODBYE);
      clog.info('conversation start', { endpointing: dialogue.endpointing, agent: agent.constructor.name, stt: speech.stt.name, tts: tts.name, language: agent.state.language, now: ctx.now.toISOString() });
      await dialogue.start();
    })().catch((err: unknown) => {
      clog.error('conversation failed; hanging up', { err: err as Error });
      if (!ended) void call.hangup('agent-hangup');
    });
  }

  /**
   * Drain deadline: in every live conversation the agent says the tenant's `drainGoodbye`
   * (in the call's language) and hangs up. Returns how many conversations were told;
   * calls whose agent is not on the line (hand-off) are left to the caller of this.
   */
  async endAll(reason: string): Promise<number> {
    const told = await Promise.all([...this.goodbyes].map(([d, text]) => d.endWith(text(), reason).catch(() => false)));
    return told.filter(Boolean).length;
  }

  /** Readiness of the case queue's Redis (starts the queue, and a private Redis, on first use). */
  async redisHealth(): Promise<string | null> {
    try {
      const { queue } = await this.caseQueue();
      return (await queue.redisHealth?.()) ?? null;
    } catch (err) {
      return `case queue unavailable: ${(err as Error).message}`;
    }
  }

  /** null when after-hours messages can be spooled to disk if Redis is down. */
  async spoolHealth(): Promise<string | null> {
    const { Spool } = await import('../jobs/spool.ts');
    return new Spool(path.join(this.dataDir, 'spool', 'crm-cases.jsonl')).writable();
  }

  /** null when the tenant's tool gateway is up and offers tools (the built-in CRM/ERP at least). */
  async gatewayHealth(tenant: Tenant): Promise<string | null> {
    try {
      const g = await this.gateway(tenant);
      return g.listTools().length > 0 ? null : `tenant ${tenant.id}: the tool gateway offers no tools`;
    } catch (err) {
      return `tenant ${tenant.id}: ${(err as Error).message}`;
    }
  }

  /** Job counts of the case queue when it runs (for metrics), and the spooled messages. */
  async queueCounts(): Promise<{ counts: Record<string, number>; spooled: number } | undefined> {
    const c = this.cases;
    if (!c) return undefined;
    const { queue } = await c;
    const counts = (await queue.counts?.().catch(() => ({}))) ?? {};
    return { counts, spooled: queue.spool?.size ?? 0 };
  }

  /** Stop conversations, close gateways and the case queue. */
  async close(): Promise<void> {
    await Promise.all([...this.live].map((d) => d.stop('shutdown')));
    const cases = this.cases;
    this.cases = null;
    if (cases) await cases.then((c) => c.stop()).catch(() => {});
    const gws = [...this.gateways.values()];
    this.gateways.clear();
    await Promise.all(gws.map((g) => g.then((x) => x.close()).catch(() => {})));
  }
}

/** Said when the drain deadline ends a call (a tenant's `drainGoodbye` wins). */
export const DEFAULT_DRAIN_GOODBYE = "I'm sorry, I have to end this call now for maintenance. Please call us back in a few minutes. Goodbye.";

/** The tenant's no-input settings with its prompts in the call's language. */
function noInputFor(tenant: Tenant, language: () => string): NoInputOptions {
  // read when the reprompt is said: the call's language may change after the greeting
  return {
    ...tenant.noInput,
    get prompt() { return promptsFor(tenant, language()).noInput; },
    get goodbye() { return promptsFor(tenant, language()).noInputGoodbye; },
  };
}
