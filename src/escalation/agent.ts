/**
 * {@link EscalatingAgent}: wraps the rules or LLM agent so escalation is decided in code,
 * per tenant, before the model sees the turn — and every escalation says which trigger
 * fired.
 *
 * Per caller turn: the {@link EscalationDetector} runs first (explicit request, DTMF 0,
 * repetition, frustration, complex part, always-human categories); a hit routes the call
 * through the CRM's `route_request` tool, says the tenant's handshake prompt in the
 * caller's language and yields one `transfer` action carrying the trigger. Otherwise the
 * inner agent answers; its own transfers (the LLM's `escalate` tool → `llm-tool`, the rules
 * agent giving up → `agent`) get the handshake and routing the same way, and a `find_sku`
 * that matched nothing for a described part becomes `complex-part`.
 *
 * After hours nobody can take the call: instead of a transfer the inner agent's
 * `personUnavailable` says when the office opens and takes a message (a CRM case).
 *
 * When the hand-off fails (rep busy, no answer), {@link EscalatingAgent.handoffFailed}
 * tells the caller and takes a message as a CRM case with what is already known (identity,
 * callback number = the calling number, the escalation reason) — nothing is lost and the
 * caller is not asked again for what the agent knows.
 */
import { logger, type Logger } from '../ops/log.ts';
import type {
  Agent, AgentAction, AgentTurn, CallContext, ConversationState, HandoffFailure,
} from '../agent/types.ts';
import { fillTemplate } from '../agent/text.ts';
import { speakPhone } from '../agent/text.ts';
import { promptsFor } from '../tenants/index.ts';
import type { EscalationTrigger } from '../agent/types.ts';
import { EscalationDetector, type TriggerHit } from './triggers.ts';

/** @defaultValue handshake prompt when the tenant has none */
export const DEFAULT_HANDSHAKE = 'I am going to transfer you to {target} who can help with that. Hold on for just a moment.';
/** @defaultValue transfer-failed prompt when the tenant has none */
export const DEFAULT_TRANSFER_FAILED = "I'm sorry, {target} is not available right now. I've taken a message, and they will call you back at {callback}.";


/** How the target is named on the line: a rep by name, a queue as "our X team". */
export function spokenTarget(name: string | undefined, kind: 'rep' | 'queue' | undefined): string {
  if (!name) return 'a rep';
  if (kind === 'queue') return /team$/i.test(name) ? `our ${name}` : `our ${name} team`;
  return name;
}

export class EscalatingAgent implements Agent {
  readonly detector: EscalationDetector;
  private readonly log: Logger;
  private msgSeq = 0;
  private lastTarget: { name?: string; kind?: 'rep' | 'queue' } = {};

  constructor(private readonly inner: Agent, private readonly ctx: CallContext, opts: { log?: Logger } = {}) {
    const tr = ctx.tenant.escalation.triggers;
    this.detector = new EscalationDetector({ ...tr });
    this.log = opts.log ?? logger('escalation', { callId: ctx.callId });
  }

  get state(): ConversationState {
    return this.inner.state;
  }

  start(ctx: CallContext): AsyncIterable<AgentAction> {
    return this.inner.start(ctx);
  }

  async *turn(input: AgentTurn, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    const st = this.state;
    const hit = this.detector.check({
      text: input.text ?? '', ...(input.dtmf !== undefined ? { dtmf: input.dtmf } : {}),
      ...(input.voice ? { voice: input.voice } : {}), ...(input.expectingDigits ? { expectingDigits: true } : {}),
      ...(st.expect ? { expect: st.expect } : {}), ...(st.repair?.failures ? { repairing: true } : {}),
      ...(input.confidence !== undefined ? { confidence: input.confidence } : {}),
    });
    if (hit) {
      this.state.transcript.push({ role: 'caller', text: input.text || input.dtmf || '', at: Date.now() });
      yield* this.escalate(hit, undefined, signal);
      return;
    }
    for await (const a of this.inner.turn(input, signal)) {
      if (signal?.aborted) return;
      if (a.type === 'tool' && a.name === 'find_sku' && a.result.ok && Array.isArray(a.result.data.matches) && a.result.data.matches.length === 0) {
        const h = this.detector.skuNotFound(input.text ?? '');
        if (h) {
          yield a;
          yield* this.escalate(h, undefined, signal);
          return;
        }
      }
      if (a.type === 'transfer') {
        if (a.trigger === 'llm-tool' && !this.ctx.tenant.escalation.triggers.llmTool) {
          this.log.info('escalate tool ignored: the tenant does not let the model escalate', { reason: a.reason });
          yield { type: 'say', text: 'I can help you with that myself, or take a message for your rep.', final: true };
          return;
        }
        const trigger: EscalationTrigger = a.trigger ?? 'agent';
        const routed = a.target !== 'rep' ? { extension: a.target, ...(a.targetName ? { name: a.targetName } : {}), ...(a.targetKind ? { kind: a.targetKind } : {}) } : undefined;
        yield* this.escalate({ trigger, reason: a.reason, topic: a.topic ?? 'my rep' }, routed, signal);
        return;
      }
      yield a;
    }
  }

  /** Hand the caller to a person now, for a reason decided in code (src/consent: recording declined). */
  handOff(hit: TriggerHit, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    return this.escalate(hit, undefined, signal);
  }

  /** Route (unless already routed), say the handshake, yield the transfer. */
  private async *escalate(hit: TriggerHit, routed: { extension: string; name?: string; kind?: 'rep' | 'queue' } | undefined, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    const st = this.state;
    if (st.afterHours && this.inner.personUnavailable) {
      // after hours nobody answers: the agent says when the office opens and takes a message
      this.log.info('after hours: a message instead of a hand-off', { trigger: hit.trigger, reason: hit.reason });
      yield* this.inner.personUnavailable(hit.reason);
      return;
    }
    let target = routed;
    if (!target && this.ctx.tools.listTools().some((t) => t.name === 'route_request')) {
      const args = { topic: hit.topic, ...(st.account ? { account_id: st.account.id } : {}) };
      const result = await this.ctx.tools.call('route_request', args, { tenantId: this.ctx.tenant.id, callId: this.ctx.callId });
      yield { type: 'tool', name: 'route_request', args, result };
      const tg = result.ok ? (result.data.target as Record<string, unknown> | undefined) : undefined;
      if (tg?.extension) target = { extension: String(tg.extension), ...(tg.name ? { name: String(tg.name) } : {}), ...(tg.kind === 'rep' || tg.kind === 'queue' ? { kind: tg.kind } : {}) };
    }
    if (signal?.aborted) return;
    const extension = target?.extension ?? 'rep';
    st.lane = 'transfer';
    st.reason = hit.reason;
    this.lastTarget = { ...(target?.name ? { name: target.name } : {}), ...(target?.kind ? { kind: target.kind } : {}) };
    this.log.info('escalation', { trigger: hit.trigger, reason: hit.reason, target: extension, targetName: target?.name, ...(hit.category ? { category: hit.category } : {}) });
    const pr = promptsFor(this.ctx.tenant, st.language);
    const text = fillTemplate(pr.handshake ?? DEFAULT_HANDSHAKE, { target: spokenTarget(target?.name, target?.kind), tenant: this.ctx.tenant.name });
    st.transcript.push({ role: 'agent', text, at: Date.now() });
    // the handshake is not cut by caller speech: the hand-off is already under way
    yield { type: 'say', text, final: true, uninterruptible: true };
    yield {
      type: 'transfer', target: extension, reason: hit.reason, trigger: hit.trigger,
      ...(target?.name ? { targetName: target.name } : {}), ...(target?.kind ? { targetKind: target.kind } : {}),
    };
  }

  async *handoffFailed(f: HandoffFailure): AsyncGenerator<AgentAction> {
    const st = this.state;
    st.lane = 'message';
    const callback = (st.caller?.phone ?? st.ani ?? '').replace(/\D/g, '');
    const pr = promptsFor(this.ctx.tenant, st.language);
    const target = spokenTarget(this.lastTarget.name ?? f.targetName, this.lastTarget.kind);
    const message = {
      id: `${this.ctx.callId}:handoff:${++this.msgSeq}`,
      tenantId: this.ctx.tenant.id,
      callId: this.ctx.callId,
      ...(st.account ? { accountId: st.account.id, accountName: st.account.name } : {}),
      callerName: st.caller?.name ?? 'unknown caller',
      callbackNumber: callback || 'unknown',
      reason: `${st.reason ?? 'caller wanted a person'} — transfer to ${f.targetName} failed: ${f.why}${f.status ? ` (${f.status})` : ''}`,
      kind: 'handoff' as const,
      takenAt: new Date().toISOString(),
    };
    this.log.info('hand-off failed; message taken', { why: f.why, status: f.status, msgId: message.id });
    st.messages.push(message); // the state lists every message taken (the CDR's outcome)
    yield { type: 'take_message', message };
    const said = fillTemplate(pr.transferFailed ?? DEFAULT_TRANSFER_FAILED, {
      target, callback: callback ? speakPhone(callback) : 'the number you are calling from', tenant: this.ctx.tenant.name,
    });
    const text = `${said} Is there anything else I can help you with?`;
    st.transcript.push({ role: 'agent', text, at: Date.now() });
    st.lane = 'idle';
    st.expect = 'open';
    yield { type: 'say', text, final: true };
  }
}
