/**
 * The language of a call, decided in code before any agent speaks, and kept for the call:
 *
 * 1. the caller's language in the CRM (identify_caller by the calling number), when the
 *    tenant has prompts in it (same primary language counts: a contact in es-MX gets es-US);
 * 2. else the tenant's language (the DID's tenant);
 * 3. else the caller's choice: a caller in the tenant's language hears every other language's
 *    `languageOffer` after the greeting, in that language's voice ("Para español, oprima
 *    dos"); the key (2, 3, … in prompt order), or the language's name said as the first
 *    answer ("español", "Spanish"), switches the call, which starts over with that language's
 *    greeting.
 *
 * A language the call's recogniser understands gets the speech agent (rules or LLM, the
 * LLM told the language in its system prompt); another language (embedded pocketsphinx is
 * English only) gets the keypad agent in that language. Both are built by the caller of
 * this (with escalation around them), so a switch swaps the whole inner agent; the
 * conversation so far (identity, transcript) carries over.
 *
 * On the keypad path the recogniser's text is dropped before the inner agent (and its
 * escalation triggers) sees it: an English recogniser's guess at Spanish speech means nothing.
 */
import { logger, type Logger } from '../ops/log.ts';
import type { Tenant } from '../tenants/index.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, ConversationState, HandoffFailure } from './types.ts';
import { newState } from './types.ts';

/** Names a caller may say to choose a language, by primary subtag (checked on the first answer only). */
const LANGUAGE_NAMES: Record<string, RegExp> = {
  es: /\b(espa[nñ]ol|spanish|castellano)\b/i,
  en: /\b(english|ingl[eé]s)\b/i,
  fr: /\b(fran[cç]ais|french)\b/i,
  pt: /\b(portugu[eê]s|portuguese)\b/i,
};

/** The tenant's prompt language for `language`: the same tag, else the same primary language, else undefined. */
export function tenantLanguage(tenant: Pick<Tenant, 'prompts'>, language: string | undefined): string | undefined {
  if (!language) return undefined;
  if (tenant.prompts[language]) return language;
  const primary = language.split('-')[0]!.toLowerCase();
  return Object.keys(tenant.prompts).find((l) => l.split('-')[0]!.toLowerCase() === primary);
}

/** The languages offered to a caller in `current`, with their keys: every other prompt language that has a languageOffer. */
export function languageOffers(tenant: Pick<Tenant, 'prompts'>, current: string): Array<{ key: string; language: string; text: string }> {
  const out: Array<{ key: string; language: string; text: string }> = [];
  for (const [language, pr] of Object.entries(tenant.prompts)) {
    if (language === current || !pr.languageOffer || out.length >= 8) continue;
    const key = String(out.length + 2);
    out.push({ key, language, text: pr.languageOffer.replace(/\{key\}/g, key) });
  }
  return out;
}

/** Does the recogniser named `sttName` understand `language`? pocketsphinx: English only; the cloud ones: any. */
export function sttUnderstands(sttName: string, language: string): boolean {
  return /pocketsphinx/i.test(sttName) ? /^en\b/i.test(language) : true;
}

export interface MultilingualAgentOptions {
  /** the agent of a language the recogniser understands (rules or LLM, escalation around it) */
  speechAgent: (ctx: CallContext) => Agent;
  /** the keypad agent of a language it does not (escalation around it); `state` carries the call so far */
  keypadAgent: (ctx: CallContext, state: ConversationState) => Agent;
  /** does the call's recogniser understand this language */
  understands: (language: string) => boolean;
  log?: Logger;
}

export class MultilingualAgent implements Agent {
  private inner: Agent | null = null;
  private readonly pre: ConversationState;
  private ctx: CallContext;
  private offers: Array<{ key: string; language: string; text: string }> = [];
  private answered = false;
  private keypad = false;
  private readonly log: Logger;

  constructor(ctx: CallContext, private readonly o: MultilingualAgentOptions) {
    this.ctx = ctx;
    this.pre = newState(ctx);
    this.log = o.log ?? logger('agent.language', { callId: ctx.callId });
  }

  get state(): ConversationState {
    return this.inner?.state ?? this.pre;
  }

  /** Whether the call is on the keypad path. */
  get onKeypad(): boolean {
    return this.keypad;
  }

  /** Build the inner agent for `language`, carrying the conversation so far. */
  private use(language: string, why: string): void {
    const prev = this.inner?.state ?? this.pre;
    const ctx: CallContext = { ...this.ctx, language };
    this.keypad = !this.o.understands(language);
    const carried: ConversationState = { ...newState(ctx), transcript: prev.transcript, ...(prev.caller ? { caller: prev.caller } : {}), ...(prev.account ? { account: prev.account } : {}), messages: prev.messages };
    if (this.keypad) {
      this.inner = this.o.keypadAgent(ctx, carried);
    } else {
      this.inner = this.o.speechAgent(ctx);
      Object.assign(this.inner.state, { transcript: carried.transcript, messages: carried.messages, language });
    }
    this.ctx = ctx;
    this.log.info('call language', { language, why, path: this.keypad ? 'keypad' : 'speech' });
  }

  private prepared: Promise<void> | null = null;

  /**
   * Decide the call's language (CRM, else tenant) and build the inner agent, without saying
   * anything. The dialogue service awaits this before anything is said, so even the
   * disclosure and consent prompts said ahead of the greeting are in the caller's language.
   */
  prepare(): Promise<void> {
    this.prepared ??= this.decide(this.ctx);
    return this.prepared;
  }

  start(ctx: CallContext): AsyncIterable<AgentAction> {
    return this.doStart(ctx);
  }

  private async *doStart(ctx: CallContext): AsyncGenerator<AgentAction> {
    this.ctx = { ...ctx, ...(this.inner ? { language: this.state.language } : {}) };
    await this.prepare();
    const t = this.ctx.tenant;
    this.offers = this.state.language === t.language ? languageOffers(t, this.state.language) : [];
    yield* this.withOffers(this.inner!.start(this.ctx));
  }

  private async decide(ctx: CallContext): Promise<void> {
    const t = ctx.tenant;
    let language = tenantLanguage(t, ctx.language) ?? t.language;
    let why = ctx.language ? 'given' : 'tenant';
    if (!ctx.language && ctx.ani) {
      const r = await ctx.tools.call('identify_caller', { phone: ctx.ani }, {
        tenantId: t.id, callId: ctx.callId, ...(t.toolTimeoutMs ? { timeoutMs: t.toolTimeoutMs } : {}), ...(ctx.privacy ? { redact: [ctx.ani] } : {}),
      }).catch(() => null);
      const crm = r?.ok && r.data.found ? (r.data.contact as Record<string, unknown> | undefined)?.language : undefined;
      const match = typeof crm === 'string' ? tenantLanguage(t, crm) : undefined;
      if (match) {
        language = match;
        why = `crm (${String(crm)})`;
      } else if (crm && crm !== language) {
        this.log.info('the caller\'s CRM language has no prompts here; the tenant language is used', { crm, language });
      }
    }
    this.use(language, why);
  }

  /** The inner agent's actions, with the language offers said after its last line. */
  private async *withOffers(acts: AsyncIterable<AgentAction>): AsyncGenerator<AgentAction> {
    if (!this.offers.length) return yield* acts;
    let held: AgentAction | null = null;
    for await (const a of acts) {
      if (held) yield held;
      held = a;
    }
    const lastSay = held?.type === 'say' ? held : null;
    if (held && !lastSay) yield held;
    if (lastSay) yield { ...lastSay, final: false };
    for (let i = 0; i < this.offers.length; i++) {
      const o = this.offers[i]!;
      yield { type: 'say', text: o.text, language: o.language, ...(i === this.offers.length - 1 ? { final: true } : {}) };
    }
  }

  turn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction> {
    return this.doTurn(input, signal);
  }

  private async *doTurn(input: AgentTurn, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    if (!this.inner) await this.prepare();
    if (this.offers.length && !this.answered) {
      this.answered = true; // the offer stands for the first answer only
      const keys = (input.dtmf ?? '').replace(/#/g, '');
      const chosen = this.offers.find((o) => keys === o.key)
        ?? (!keys && input.text ? this.offers.find((o) => LANGUAGE_NAMES[o.language.split('-')[0]!.toLowerCase()]?.test(input.text)) : undefined);
      if (chosen) {
        this.state.transcript.push({ role: 'caller', text: input.dtmf || input.text, at: Date.now() });
        this.use(chosen.language, keys ? `caller pressed ${keys}` : 'caller said it');
        this.offers = [];
        yield* this.inner!.start(this.ctx);
        return;
      }
    }
    const turn: AgentTurn = this.keypad && input.text ? { ...input, text: '', offDomain: true } : input;
    yield* this.inner!.turn(turn, signal);
  }

  /** A hand-off asked from outside the conversation (a declined recording with onDecline: human): the inner agent's. */
  async *handOff(hit: { trigger: 'recording-declined'; reason: string; topic: string }, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    await this.prepare();
    const inner = this.inner as Agent & { handOff?: (h: typeof hit, s?: AbortSignal) => AsyncIterable<AgentAction> };
    if (inner.handOff) yield* inner.handOff(hit, signal);
  }

  handoffFailed(failure: HandoffFailure): AsyncIterable<AgentAction> {
    const inner = this.inner;
    if (inner?.handoffFailed) return inner.handoffFailed(failure);
    return (async function* () {})();
  }
}
