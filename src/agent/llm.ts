/**
 * The LLM agent: `openai` chat.completions streaming with tools against any OpenAI-compatible
 * endpoint. The gateway's tools are offered as functions (plus three local ones: transfer,
 * take_message, end_call); sentences are spoken as soon as they complete in the stream; tool
 * calls run through the gateway (a filler is said when one is slow) and their results are fed
 * back, for at most `maxRounds` rounds per turn. Any LLM error or timeout hands this turn and
 * the rest of the call to the rules agent, which shares the conversation state.
 *
 * Safety is not the model's job: the gateway refuses what the tenant does not allow, and the
 * agent pins `account_id` to the identified caller's account and adds idempotency keys itself.
 */
import { promptsFor } from '../tenants/index.ts';
import { createHash } from 'node:crypto';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool, ChatCompletionMessageFunctionToolCall } from 'openai/resources/chat/completions';
import { logger } from '../ops/log.ts';
import { metrics } from '../ops/metrics.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, CaseMessage, ConversationState, ToolResult } from './types.ts';
import { newState, transcriptText } from './types.ts';
import { RulesAgent } from './rules.ts';
import { callTool, DEFAULT_FILLER_AFTER_MS, DEFAULT_FILLER_TEXT, fillerWaitMs, type FillerState } from './call-tool.ts';
import { SentenceSplitter } from './sentences.ts';
import { firstName } from './text.ts';

const log = logger('agent.llm');

export interface LlmAgentOptions {
  /** OpenAI-compatible base URL (…/v1) */
  baseURL: string;
  /** API key ('' is sent as a dummy for local servers) */
  apiKey: string;
  model: string;
  /** abort when the first streamed chunk has not arrived after this many ms. @defaultValue 4000 */
  firstTokenTimeoutMs?: number;
  /** abort one model round (request → end of stream) after this many ms. @defaultValue 15000 */
  roundTimeoutMs?: number;
  /** a whole turn (all rounds and tool calls) may take at most this many ms. @defaultValue 30000 */
  turnTimeoutMs?: number;
  /** model ↔ tool rounds per caller turn. @defaultValue 5 */
  maxRounds?: number;
  /** say a filler when a tool (or the model's first token) has not answered after this many ms. @defaultValue 700 */
  fillerAfterMs?: number;
  /**
   * After a filler said for a missing first token, wait at most this much longer for it
   * before the rules agent answers (the filler bought time; more silence is dead air).
   * @defaultValue 2000
   */
  firstTokenAfterFillerMs?: number;
  /** sampling temperature. @defaultValue 0.2 */
  temperature?: number;
  /** an existing client (tests) */
  client?: OpenAI;
}

/** Default first-token timeout in ms. @defaultValue 4000 */
export const DEFAULT_FIRST_TOKEN_TIMEOUT_MS = 4000;
/** Default wait for the first token after the filler, ms. @defaultValue 2000 */
export const DEFAULT_FIRST_TOKEN_AFTER_FILLER_MS = 2000;
/** Default per-round timeout in ms. @defaultValue 15000 */
export const DEFAULT_ROUND_TIMEOUT_MS = 15000;
/** Default per-turn timeout in ms. @defaultValue 30000 */
export const DEFAULT_TURN_TIMEOUT_MS = 30000;
/** Default model/tool rounds per turn. @defaultValue 5 */
export const DEFAULT_MAX_ROUNDS = 5;

/** Tools whose `account_id` is pinned to the identified caller's account. */
const ACCOUNT_SCOPED = new Set(['last_orders', 'place_order', 'order_status', 'check_atp', 'find_sku', 'create_case']);

const LOCAL_TOOLS: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'escalate',
      description: 'Hand the caller to a human rep (when they ask for a person, or you cannot help). The system says the hand-off line and puts the caller on hold; do not announce it yourself.',
      parameters: { type: 'object', properties: { reason: { type: 'string', description: 'one line: why' }, topic: { type: 'string', description: 'billing, returns, sales, my rep…' } }, required: ['reason'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'take_message',
      description: 'Record a message for the caller\'s rep (becomes a CRM case). Collect name, company, callback number (confirm the calling number) and the reason first.',
      parameters: {
        type: 'object',
        properties: {
          caller_name: { type: 'string' }, company: { type: 'string' },
          callback_number: { type: 'string', description: 'digits' }, reason: { type: 'string' },
        },
        required: ['caller_name', 'callback_number', 'reason'],
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'end_call',
      description: 'End the call after saying goodbye.',
      parameters: { type: 'object', properties: { reason: { type: 'string' } }, required: ['reason'] },
    },
  },
];

class LlmTimeout extends Error {}

function stripKey(schema: Record<string, unknown>, key: string): Record<string, unknown> {
  const s = JSON.parse(JSON.stringify(schema ?? { type: 'object', properties: {} })) as Record<string, unknown>;
  const props = s.properties as Record<string, unknown> | undefined;
  if (props) delete props[key];
  if (Array.isArray(s.required)) s.required = (s.required as string[]).filter((k) => k !== key);
  if (!s.type) s.type = 'object';
  return s;
}

function defaultSystem(tenantName: string): string {
  return `You are the phone assistant of ${tenantName}, a B2B distributor. Everything you write is spoken on a phone call: ` +
    'answer in one or two short sentences, plain words, no lists or markdown. Use the tools for every fact about accounts, ' +
    'parts, availability, orders and cases. Before placing an order read it back and wait for an explicit yes. Read order, PO ' +
    'and tracking numbers digit by digit. If a tool refuses an action, say you cannot do that on this line and offer to take a message.';
}

/** The LLM agent; falls back to a {@link RulesAgent} sharing its state. */
export class LlmAgent implements Agent {
  readonly state: ConversationState;
  private ctx: CallContext;
  private readonly opts: Required<Omit<LlmAgentOptions, 'client' | 'apiKey'>> & { apiKey: string };
  private readonly client: OpenAI;
  private readonly rules: RulesAgent;
  private readonly messages: ChatCompletionMessageParam[] = [];
  private failed = false;
  private msgSeq = 0;

  constructor(ctx: CallContext, opts: LlmAgentOptions) {
    this.ctx = ctx;
    this.opts = {
      baseURL: opts.baseURL, apiKey: opts.apiKey, model: opts.model,
      firstTokenTimeoutMs: opts.firstTokenTimeoutMs ?? DEFAULT_FIRST_TOKEN_TIMEOUT_MS,
      roundTimeoutMs: opts.roundTimeoutMs ?? DEFAULT_ROUND_TIMEOUT_MS,
      turnTimeoutMs: opts.turnTimeoutMs ?? DEFAULT_TURN_TIMEOUT_MS,
      maxRounds: opts.maxRounds ?? DEFAULT_MAX_ROUNDS,
      fillerAfterMs: opts.fillerAfterMs ?? DEFAULT_FILLER_AFTER_MS,
      firstTokenAfterFillerMs: opts.firstTokenAfterFillerMs ?? DEFAULT_FIRST_TOKEN_AFTER_FILLER_MS,
      temperature: opts.temperature ?? 0.2,
    };
    this.client = opts.client ?? new OpenAI({ baseURL: opts.baseURL, apiKey: opts.apiKey || 'none', maxRetries: 0, timeout: this.opts.roundTimeoutMs });
    this.state = newState(ctx);
    this.rules = new RulesAgent(ctx, { state: this.state, fillerAfterMs: this.opts.fillerAfterMs });
  }

  /** True once the LLM failed and the rules agent answers for the rest of the call. */
  get fellBack(): boolean {
    return this.failed;
  }

  private get prompts() {
    const t = this.ctx.tenant;
    return promptsFor(t, this.state.language);
  }

  start(ctx?: CallContext): AsyncIterable<AgentAction> {
    if (ctx) this.ctx = ctx;
    return this.doStart();
  }

  private async *doStart(): AsyncGenerator<AgentAction> {
    const said: string[] = [];
    for await (const a of this.rules.start(this.ctx)) {
      if (a.type === 'say') said.push(a.text);
      yield a;
    }
    this.state.engine = 'llm';
    this.messages.push({ role: 'system', content: this.systemPrompt() });
    if (said.length) this.messages.push({ role: 'assistant', content: said.join(' ') });
    if (this.state.afterHours) {
      // the structured after-hours message is collected deterministically
      log.info('after hours: rules agent takes the message', { callId: this.ctx.callId });
    }
  }

  private systemPrompt(): string {
    const st = this.state;
    const facts: string[] = [];
    const now = this.ctx.now ?? new Date();
    facts.push(`Call facts: today is ${now.toISOString().slice(0, 10)}; the caller is calling from ${this.ctx.privacy ? 'a withheld number (do not ask them to confirm it)' : (this.ctx.ani || 'an unknown number')}.`);
    if (st.account) {
      facts.push(`Identified caller: ${st.caller?.name ?? 'unknown contact'} of ${st.account.name} (account_id ${st.account.id}${st.account.number ? `, account number ${st.account.number}` : ''}). Use this account_id for account tools.`);
    } else {
      facts.push('The caller was not identified by their number; ask for the phone number on their account and use identify_caller.');
    }
    facts.push(st.afterHours ? 'The office is closed now.' : 'The office is open now.');
    facts.push(languageInstruction(st.language));
    return `${this.prompts.system ?? defaultSystem(this.ctx.tenant.name)}\n\n${facts.join('\n')}`;
  }

  private tools(): ChatCompletionTool[] {
    // log_activity is the hand-off's record keeping (src/escalation), not the model's
    const gw = this.ctx.tools.listTools().filter((t) => t.name !== 'log_activity').map((t): ChatCompletionTool => ({
      type: 'function',
      function: { name: t.name, description: t.description, parameters: stripKey(t.inputSchema, 'idempotency_key') },
    }));
    return [...gw, ...LOCAL_TOOLS];
  }

  turn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction> {
    return this.doTurn(input, signal);
  }

  /** After hours the rules agent answers (see doTurn); it takes the message a hand-off cannot. */
  personUnavailable(reason: string): AsyncIterable<AgentAction> {
    return this.rules.personUnavailable(reason);
  }

  private async *doTurn(input: AgentTurn, signal?: AbortSignal): AsyncGenerator<AgentAction> {
    if (this.failed || this.state.afterHours) {
      yield* this.rules.turn(input, signal);
      return;
    }
    const text = input.text?.trim() || (input.dtmf ? `(keyed in on the phone: ${input.dtmf})` : '');
    this.state.transcript.push({ role: 'caller', text, at: Date.now() });
    this.messages.push({ role: 'user', content: text });
    this.state.engine = 'llm';
    const deferred: AgentAction[] = [];
    const saidBefore = this.state.transcript.length;
    try {
      yield* this.rounds(signal, deferred);
      for (const a of deferred) yield a;
    } catch (err) {
      if (signal?.aborted) return; // barge-in / hang-up: not a failure
      this.failed = true;
      this.state.engine = 'rules';
      log.warn('LLM failed; the rules agent takes over for the rest of the call', {
        callId: this.ctx.callId, tenant: this.ctx.tenant.id, err: err as Error, spoke: this.state.transcript.length > saidBefore,
      });
      yield* this.rules.continueTurn(input, signal);
    }
  }

  private async *rounds(signal: AbortSignal | undefined, deferred: AgentAction[]): AsyncGenerator<AgentAction> {
    const filler: FillerState = { said: false, since: Date.now() };
    const turnDeadline = Date.now() + this.opts.turnTimeoutMs;
    for (let round = 0; round < this.opts.maxRounds; round++) {
      const ac = new AbortController();
      const onAbort = (): void => ac.abort(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      let firstTimer = setTimeout(() => ac.abort(new LlmTimeout(`no first token after ${this.opts.firstTokenTimeoutMs} ms`)), this.opts.firstTokenTimeoutMs);
      const roundTimer = setTimeout(() => ac.abort(new LlmTimeout('round timeout')), Math.max(1, Math.min(this.opts.roundTimeoutMs, turnDeadline - Date.now())));
      const splitter = new SentenceSplitter();
      let content = '';
      const calls = new Map<number, { id: string; name: string; args: string }>();
      const t0 = Date.now();
      let firstAt = 0;
      try {
        const opened = (async () => {
          const stream = await this.client.chat.completions.create(
            { model: this.opts.model, messages: this.messages, tools: this.tools(), stream: true, stream_options: { include_usage: true }, temperature: this.opts.temperature },
            { signal: ac.signal },
          );
          const iter = stream[Symbol.asyncIterator]();
          return { iter, head: await iter.next() };
        })();
        opened.catch(() => {});
        if (!filler.said && this.opts.fillerAfterMs >= 0) {
          // no first token yet: a filler line instead of dead air, and a shorter leash after it
          let timer: NodeJS.Timeout | undefined;
          const slow = new Promise<'slow'>((resolve) => { timer = setTimeout(() => resolve('slow'), fillerWaitMs(filler, this.opts.fillerAfterMs)); });
          const first = await Promise.race([opened, slow]).catch(() => null);
          clearTimeout(timer);
          if (first === 'slow') {
            filler.said = true;
            const left = this.opts.firstTokenTimeoutMs - (Date.now() - t0);
            if (left > this.opts.firstTokenAfterFillerMs) {
              clearTimeout(firstTimer);
              const waited = Date.now() - t0 + this.opts.firstTokenAfterFillerMs;
              firstTimer = setTimeout(() => ac.abort(new LlmTimeout(`no first token after ${waited} ms (filler said)`)), this.opts.firstTokenAfterFillerMs);
            }
            yield { type: 'filler', text: this.prompts.filler ?? DEFAULT_FILLER_TEXT };
          }
        }
        const { iter, head } = await opened;
        for (let next = head; !next.done; next = await iter.next()) {
          const chunk = next.value;
          if (!firstAt) {
            firstAt = Date.now();
            clearTimeout(firstTimer);
            metrics.llmTtft.observe((firstAt - t0) / 1000);
          }
          if (chunk.usage) this.countUsage(chunk.usage);
          const delta = chunk.choices?.[0]?.delta;
          if (!delta) continue;
          if (delta.content) {
            content += delta.content;
            for (const s of splitter.push(delta.content)) yield this.say(s);
          }
          for (const tc of delta.tool_calls ?? []) {
            const cur = calls.get(tc.index) ?? { id: '', name: '', args: '' };
            if (tc.id) cur.id = tc.id;
            if (tc.function?.name) cur.name += tc.function.name;
            if (tc.function?.arguments) cur.args += tc.function.arguments;
            calls.set(tc.index, cur);
          }
        }
      } catch (err) {
        const reason = ac.signal.aborted ? ac.signal.reason : undefined;
        throw reason instanceof Error ? reason : err;
      } finally {
        clearTimeout(firstTimer);
        clearTimeout(roundTimer);
        signal?.removeEventListener('abort', onAbort);
      }
      log.debug('llm round', { callId: this.ctx.callId, round, firstTokenMs: firstAt ? firstAt - t0 : undefined, ms: Date.now() - t0, toolCalls: calls.size });
      const rest = splitter.end();
      if (calls.size === 0) {
        if (rest) yield { ...this.say(rest), final: true };
        if (!content.trim()) throw new Error('empty completion');
        this.messages.push({ role: 'assistant', content });
        return;
      }
      if (rest) yield this.say(rest);
      const list = [...calls.entries()].sort((a, b) => a[0] - b[0]).map(([i, c]) => ({ ...c, id: c.id || `call_${round}_${i}` }));
      this.messages.push({
        role: 'assistant',
        content: content || null,
        tool_calls: list.map((c): ChatCompletionMessageFunctionToolCall => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.args || '{}' } })),
      });
      const refused: string[] = [];
      for (const c of list) {
        let args: Record<string, unknown>;
        try {
          args = c.args.trim() ? (JSON.parse(c.args) as Record<string, unknown>) : {};
        } catch {
          this.messages.push({ role: 'tool', tool_call_id: c.id, content: JSON.stringify({ error: 'arguments were not valid JSON' }) });
          continue;
        }
        const result = yield* this.runTool(c.name, args, filler, deferred);
        if (result.code === 'refused') refused.push(c.name);
        this.messages.push({ role: 'tool', tool_call_id: c.id, content: JSON.stringify(result) });
      }
      if (signal?.aborted) return;
      if (refused.length) {
        // Policy, not the model, decides what the caller hears after a refused action: a model
        // talked into "place the order" would otherwise go on to claim it did. The refusal is
        // fixed text, the message offer follows the tenant's rules, and the model is not asked
        // again this turn.
        const line = refused.includes('place_order')
          ? "I can't place orders on this line, but I can take a message for your rep."
          : "I can't do that on this line, but I can take a message for your rep.";
        log.warn('tool refused by policy; the agent declines without asking the model again', { callId: this.ctx.callId, tenant: this.ctx.tenant.id, tools: refused.join(',') });
        this.messages.push({ role: 'assistant', content: line });
        yield { ...this.say(line), final: true };
        return;
      }
    }
    log.warn('tool rounds exhausted', { callId: this.ctx.callId, maxRounds: this.opts.maxRounds });
    yield { ...this.say("Sorry, I'm having trouble with that. Let me take a message or connect you with your rep."), final: true };
  }

  /**
   * Tokens the model reports (the last chunk of a stream asked `include_usage`), for the
   * CDR. A round cut short (barge-in, timeout) reports none: the count is a floor.
   */
  private countUsage(u: { prompt_tokens?: number; completion_tokens?: number }): void {
    const acc = (this.state.usage ??= { promptTokens: 0, completionTokens: 0, model: this.opts.model });
    acc.promptTokens += u.prompt_tokens ?? 0;
    acc.completionTokens += u.completion_tokens ?? 0;
  }

  private say(text: string): AgentAction & { type: 'say' } {
    this.state.transcript.push({ role: 'agent', text, at: Date.now() });
    return { type: 'say', text };
  }

  /** One function call from the model: a local action or a gateway tool. Returns what the model is told. */
  private async *runTool(name: string, args: Record<string, unknown>, filler: FillerState, deferred: AgentAction[]): AsyncGenerator<AgentAction, Record<string, unknown>> {
    const st = this.state;
    if (name === 'escalate' || name === 'transfer_to_human') {
      const reason = String(args.reason ?? 'caller asked for a person');
      let target = 'rep';
      let targetName: string | undefined;
      let targetKind: 'rep' | 'queue' | undefined;
      if (this.ctx.tools.listTools().some((t) => t.name === 'route_request')) {
        const r = yield* this.gateway('route_request', { topic: String(args.topic ?? 'my rep'), ...(st.account ? { account_id: st.account.id } : {}) }, filler);
        const tg = r.ok ? (r.data.target as Record<string, unknown> | undefined) : undefined;
        if (tg) {
          target = String(tg.extension ?? tg.name ?? 'rep');
          if (tg.name) targetName = String(tg.name);
          if (tg.kind === 'rep' || tg.kind === 'queue') targetKind = tg.kind;
        }
      }
      st.lane = 'transfer';
      st.reason = reason;
      deferred.push({ type: 'transfer', target, reason, trigger: 'llm-tool', ...(targetName ? { targetName } : {}), ...(targetKind ? { targetKind } : {}) });
      return { ok: true, transferring_to: target };
    }
    if (name === 'end_call') {
      st.lane = 'ended';
      deferred.push({ type: 'hangup', reason: String(args.reason ?? 'conversation finished') });
      return { ok: true };
    }
    if (name === 'take_message') {
      const msg: CaseMessage = {
        id: `${this.ctx.callId}:llm-msg:${++this.msgSeq}`,
        tenantId: this.ctx.tenant.id,
        callId: this.ctx.callId,
        ...(st.account ? { accountId: st.account.id, accountName: st.account.name } : args.company ? { accountName: String(args.company) } : {}),
        callerName: String(args.caller_name ?? st.caller?.name ?? 'unknown caller'),
        callbackNumber: String(args.callback_number ?? this.ctx.ani).replace(/\D/g, '') || this.ctx.ani,
        reason: String(args.reason ?? ''),
        kind: st.afterHours ? 'after_hours_message' : 'callback',
        transcript: transcriptText(st),
        takenAt: new Date().toISOString(),
      };
      st.messages.push(msg);
      yield { type: 'take_message', message: msg };
      return { ok: true, message_id: msg.id, note: `tell ${firstName(msg.callerName) ?? 'the caller'} the rep will call back` };
    }
    // gateway tool: pin the account and add the idempotency key
    const a = { ...args };
    if (st.account && ACCOUNT_SCOPED.has(name)) a.account_id = st.account.id;
    if (name === 'place_order' || name === 'create_case') {
      const h = createHash('sha1').update(JSON.stringify({ ...a, idempotency_key: undefined })).digest('hex').slice(0, 16);
      a.idempotency_key = `${this.ctx.callId}:${name}:${h}`;
    }
    const r = yield* this.gateway(name, a, filler);
    if (r.ok) this.remember(name, a, r.data);
    return r.ok ? r.data : { error: r.error, code: r.code };
  }

  private async *gateway(name: string, args: Record<string, unknown>, filler: FillerState): AsyncGenerator<AgentAction, ToolResult> {
    return yield* callTool(this.ctx, name, args, { fillerAfterMs: this.opts.fillerAfterMs, fillerText: this.prompts.filler ?? DEFAULT_FILLER_TEXT, filler });
  }

  /** Keep order context for the screen pop. */
  private remember(name: string, args: Record<string, unknown>, data: Record<string, unknown>): void {
    const st = this.state;
    if (name === 'identify_caller' && data.found) {
      const acc = data.account as Record<string, unknown> | undefined;
      const c = data.contact as Record<string, unknown> | undefined;
      if (acc?.id) st.account = { id: String(acc.id), name: String(acc.name ?? ''), number: acc.number as string | undefined };
      st.caller = { phone: String(c?.phone ?? args.phone ?? ''), ...(c?.name ? { name: String(c.name) } : {}), ...(c?.id ? { contactId: String(c.id) } : {}) };
    } else if (name === 'check_atp') {
      st.order.pending = { lines: [{ sku: String(args.sku), qty: Number(args.qty) }], atp: [data] };
      st.lane = 'reorder';
    } else if (name === 'place_order') {
      st.order.placed.push({ order_number: String(data.order_number), lines: (args.lines as Array<{ sku: string; qty: number }>) ?? [], ship_date: data.ship_date as string | undefined, total: data.total });
      st.order.pending = undefined;
    } else if (name === 'order_status') {
      st.order.status = data;
      st.lane = 'status';
    }
  }
}

/**
 * The system prompt's language line: the call's BCP 47 language by name, and that every
 * reply is spoken in it ("The caller speaks Spanish (United States) (es-US). Reply only in
 * Spanish …").
 */
export function languageInstruction(language: string): string {
  let name = language;
  try {
    name = new Intl.DisplayNames(['en'], { type: 'language' }).of(language) ?? language;
  } catch { /* not a tag Intl knows: keep the tag */ }
  const plain = name.replace(/\s*\(.*\)$/, '');
  return `The caller speaks ${name} (${language}). Reply only in ${plain}, whatever language the tools return; every reply is read aloud by a voice speaking ${plain}.`;
}
