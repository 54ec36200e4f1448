/**
 * The disclosure and consent gate: an {@link Agent} wrapper that owns the first moments of a
 * call of a tenant with a `recording` block, before the real agent (rules or LLM) says
 * anything, and that the model never sees:
 *
 * 1. `disclosureAi` ("you are speaking with an automated assistant"), and when the call may
 *    be recorded `disclosureRecorded` — both uninterruptible, in the call's language;
 * 2. posture `notify`: once the notice has played out, the recording starts, then the greeting;
 * 3. posture `consent`: `consentAsk`; the next caller turn is the answer, decided here in
 *    code ("yes"/key 1, "no"/key 2; anything else is asked again, twice, then taken as a no).
 *    Yes → the recording starts, `consentThanks`, the greeting. No → `consentDeclined`, nothing
 *    is recorded, and the call goes on (or goes to a person when `onDecline: human`).
 */
import { logger, type Logger } from '../ops/log.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, ConversationState, HandoffFailure } from '../agent/types.ts';
import { promptsFor, type TenantPrompts } from '../tenants/tenant.ts';
import type { CallRecording } from './recording.ts';

/** en-US defaults of the disclosure and consent prompts (a tenant's prompts win). */
export const CONSENT_PROMPTS: Required<Pick<TenantPrompts, 'disclosureAi' | 'disclosureRecorded' | 'consentAsk' | 'consentThanks' | 'consentDeclined'>> = {
  disclosureAi: 'You are speaking with an automated assistant.',
  disclosureRecorded: 'This call is recorded for quality and training.',
  // ends with the question: a no-input reprompt repeats the last question of the agent's line
  consentAsk: 'To allow it, say yes or press 1; if not, say no or press 2. Is it OK to record this call?',
  consentThanks: 'Thank you.',
  consentDeclined: 'No problem, this call will not be recorded.',
};

const YES = /^(?:yes|yeah|yep|yup|sure|ok|okay|fine|go ahead|that's fine|that is fine|of course|certainly|absolutely|alright|all right|s[ií]|claro|de acuerdo|vale|est[aá] bien)(?![\p{L}\p{N}'])/u;
const NO = /^(?:no|nope|nah|don't|do not|i don't|i do not|rather not|i'd rather not|not okay|no thanks|no thank you|no gracias|prefiero que no)(?![\p{L}\p{N}'])/u;

/** A consent answer from a turn: key 1/2, or a yes/no word leading the utterance. null = unclear. */
export function consentAnswer(input: Pick<AgentTurn, 'text' | 'dtmf'>): { yes: boolean; by: 'speech' | 'dtmf' } | null {
  const d = input.dtmf?.trim();
  if (d) {
    if (d.startsWith('1')) return { yes: true, by: 'dtmf' };
    if (d.startsWith('2')) return { yes: false, by: 'dtmf' };
    return null;
  }
  const t = (input.text ?? '').toLowerCase().replace(/[.,!?¿¡]/g, ' ').replace(/\s+/g, ' ').trim();
  if (!t) return null;
  const no = NO.test(t);
  const yes = YES.test(t);
  if (no === yes) return null;
  return { yes, by: 'speech' };
}

/** What the gate needs from the call around it. */
export interface ConsentGateHooks {
  /** Resolves when the agent line `text` has been played to its end; false when it never was (TTS failed, timeout). */
  playedOut(text: string): Promise<boolean | void>;
}

/** An agent that can hand the caller to a person for a reason decided in code (src/escalation EscalatingAgent). */
export interface HandOffAgent extends Agent {
  handOff?(hit: { trigger: 'recording-declined'; reason: string; topic: string }, signal?: AbortSignal): AsyncIterable<AgentAction>;
}

export class ConsentGate implements Agent {
  private phase: 'disclosing' | 'asking' | 'done' = 'disclosing';
  private unclear = 0;
  private ctx: CallContext | null = null;
  private readonly log: Logger;

  constructor(private readonly inner: HandOffAgent, private readonly rec: CallRecording, private readonly hooks: ConsentGateHooks, opts: { log?: Logger; unclearRetries?: number } = {}) {
    this.log = opts.log ?? logger('consent');
    this.retries = opts.unclearRetries ?? 2;
    if (inner.handoffFailed) this.handoffFailed = (f) => inner.handoffFailed!(f);
  }

  private readonly retries: number;

  /** The consent question is open: one key (1 / 2) answers it. */
  get asking(): boolean {
    return this.phase === 'asking';
  }

  get state(): ConversationState {
    return this.inner.state;
  }

  private prompts(): typeof CONSENT_PROMPTS {
    const p = this.ctx ? promptsFor(this.ctx.tenant, this.state.language) : {};
    return { ...CONSENT_PROMPTS, ...Object.fromEntries(Object.entries(p).filter(([k]) => k in CONSENT_PROMPTS)) } as typeof CONSENT_PROMPTS;
  }

  async *start(ctx: CallContext): AsyncGenerator<AgentAction> {
    this.ctx = ctx;
    const pr = this.prompts();
    const posture = this.rec.posture;
    yield { type: 'say', text: pr.disclosureAi, uninterruptible: true };
    if (posture === 'off') {
      this.phase = 'done';
      yield* this.inner.start(ctx);
      return;
    }
    yield { type: 'say', text: pr.disclosureRecorded, uninterruptible: true };
    if (posture === 'notify') {
      this.phase = 'done';
      // no notice heard, no recording: a notice that failed to play leaves the call unrecorded
      if ((await this.hooks.playedOut(pr.disclosureRecorded)) !== false) this.rec.allow('notified');
      else this.log.warn('recording notice not played out; the call is not recorded');
      yield* this.inner.start(ctx);
      return;
    }
    this.phase = 'asking';
    this.state.expect = 'yesno';
    yield { type: 'say', text: pr.consentAsk, final: true };
  }

  async *turn(input: AgentTurn, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    if (this.phase !== 'asking') {
      yield* this.inner.turn(input, signal);
      return;
    }
    const pr = this.prompts();
    let a = consentAnswer(input);
    if (!a) {
      this.unclear++;
      this.log.info('consent answer unclear', { text: input.text, dtmf: input.dtmf, tries: this.unclear });
      if (this.unclear <= this.retries) {
        yield { type: 'say', text: pr.consentAsk, final: true };
        return;
      }
    }
    this.phase = 'done';
    delete this.state.expect;
    if (a?.yes) {
      this.rec.allow('granted', a.by);
      yield { type: 'say', text: pr.consentThanks };
      yield* this.inner.start(this.ctx!);
      return;
    }
    this.rec.refuse(a ? 'declined' : 'no-answer', a?.by);
    yield { type: 'say', text: pr.consentDeclined };
    if (this.rec.onDecline === 'human' && this.inner.handOff) {
      yield* this.inner.handOff({ trigger: 'recording-declined', reason: 'caller declined call recording', topic: 'customer service' }, signal);
      return;
    }
    yield* this.inner.start(this.ctx!);
  }

  /** The inner agent's, when it has one. */
  readonly handoffFailed?: (f: HandoffFailure) => AsyncIterable<AgentAction>;
}

/**
 * {@link ConsentGateHooks.playedOut} for a live call: the line has reached the transcript
 * (its first audio was queued) and the session's outbound queue has drained, seen twice
 * 40 ms apart. Gives up (resolves false) after `maxMs`.
 */
export function playedOutOf(transcript: () => ReadonlyArray<{ role: string; text: string }> | undefined, media: { readonly queuedMs?: number }, maxMs = 30_000): (text: string) => Promise<boolean> {
  return (text) => new Promise<boolean>((resolve) => {
    const until = Date.now() + maxMs;
    let quiet = 0;
    const tick = (): void => {
      const seen = transcript()?.some((e) => e.role === 'agent' && e.text === text) ?? false;
      quiet = seen && (media.queuedMs ?? 0) <= 0 ? quiet + 1 : 0;
      if (quiet >= 2) return resolve(true);
      if (Date.now() > until) return resolve(false);
      setTimeout(tick, 40).unref?.();
    };
    tick();
  });
}
