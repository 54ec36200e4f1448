/**
 * The rules agent: the offline default and the LLM agent's fallback. Deterministic intents
 * and slot filling for the lanes — identify by ANI and greet, reorder (same as last time or a
 * SKU read out) with ATP read-back and an explicit yes, order status by PO number, after-hours
 * message, transfer on request. Every action goes through the tool gateway, which enforces
 * what the tenant allows; the rules agent only words the refusal.
 */
import { promptsFor } from '../tenants/index.ts';
import { logger } from '../ops/log.ts';
import type { Agent, AgentAction, AgentTurn, CallContext, ConversationState, ToolResult, CaseMessage } from './types.ts';
import { newState, transcriptText } from './types.ts';
import { callTool, DEFAULT_FILLER_AFTER_MS, DEFAULT_FILLER_TEXT, type FillerState } from './call-tool.ts';
import {
  extractOrderNumber, fillTemplate, extractPhone, extractPoNumber, extractQuantity, extractSkuCandidates, firstName, speakCode,
  speakDate, speakPhone, spokenDigits, words, yesNo,
} from './text.ts';

const log = logger('agent.rules');

export interface RulesAgentOptions {
  /** say a filler when a tool has not answered after this many ms. @defaultValue 700 */
  fillerAfterMs?: number;
  /** re-asks of one question before offering a person. @defaultValue 2 */
  maxRetries?: number;
  /** share a state object (the LLM agent hands its own in so a fallback keeps the context) */
  state?: ConversationState;
}

type Question =
  | 'confirm_order' | 'qty' | 'sku' | 'po' | 'phone_for_account' | 'caller_name' | 'account_name'
  | 'callback_confirm' | 'callback_number' | 'reason' | 'offer_message' | 'anything_else';

const TRANSFER = /\b(agent|representative|rep|human|operator|real person|live person|somebody|someone|a person|customer service|sales ?person)\b/;
const TRANSFER_VERB = /\b(talk|speak|connect|transfer|put me through|get me|want|need)\b/;
const GOODBYE = /\b(bye|goodbye|good bye|that's all|that is all|nothing else|that's it|i'm done|i am done|hang up)\b/;
const SAME_AS_LAST = /\b(same as (last time|before|usual|last)|the usual|my usual|last order|previous order|repeat (my|the) (last )?order|reorder (my|the) last|same order)\b/;
const ORDER_WORDS = /\b(order|reorder|re-order|buy|purchase|need|want|get|send me|ship me|like)\b/;
const STATUS_WORDS = /\b(where('s| is)|status|track|tracking|shipped|delivery|deliver|arrive|eta|when will|check (on )?(an?|my|the) order|look up (an?|my|the) order)\b/;
const MESSAGE_WORDS = /\b(message|call me back|callback|call back|have (someone|him|her|them) call)\b/;

function titleCase(s: string): string {
  return s.replace(/\b([a-z])/g, (m) => m.toUpperCase());
}

function warehouseName(data: Record<string, unknown>): string {
  const n = (data.warehouse_name ?? data.warehouse) as string | undefined;
  if (!n) return 'our';
  return /warehouse/i.test(n) ? `the ${n}` : `the ${n} warehouse`;
}

/** The offline agent. */
export class RulesAgent implements Agent {
  readonly state: ConversationState;
  private ctx: CallContext;
  private readonly fillerAfterMs: number;
  private readonly maxRetries: number;
  private pending?: Question;
  private retries = 0;
  private misses = 0;
  private orderSeq = 0;
  private msgSeq = 0;
  private out: AgentAction[] = [];
  private filler: FillerState = { said: false };
  private started = false;

  constructor(ctx: CallContext, opts: RulesAgentOptions = {}) {
    this.ctx = ctx;
    this.state = opts.state ?? newState(ctx);
    this.fillerAfterMs = opts.fillerAfterMs ?? DEFAULT_FILLER_AFTER_MS;
    this.maxRetries = opts.maxRetries ?? 2;
  }

  private get prompts() {
    const t = this.ctx.tenant;
    return promptsFor(t, this.state.language);
  }

  // ---- output helpers -------------------------------------------------------------------

  private say(text: string): void {
    this.out.push({ type: 'say', text });
    this.state.transcript.push({ role: 'agent', text, at: Date.now() });
  }

  private ask(q: Question, text: string): void {
    if (this.pending === q) this.retries++;
    else this.retries = 0;
    this.pending = q;
    this.say(text);
  }

  private async *flush(): AsyncGenerator<AgentAction> {
    const acts = this.out;
    this.out = [];
    for (const a of acts) yield a;
  }

  /** Run a tool, emitting everything queued so far first (so speech is not held behind it). */
  private async *tool(name: string, args: Record<string, unknown>): AsyncGenerator<AgentAction, ToolResult> {
    yield* this.flush();
    return yield* callTool(this.ctx, name, args, {
      fillerAfterMs: this.fillerAfterMs,
      fillerText: this.prompts.filler ?? DEFAULT_FILLER_TEXT,
      filler: this.filler,
    });
  }

  /** Wrap a turn: run the body, then emit what is left with the last `say` marked final. */
  private async *run(body: () => AsyncGenerator<AgentAction>): AsyncGenerator<AgentAction> {
    this.filler = { said: false };
    this.state.engine = 'rules';
    yield* body();
    const rest = this.out;
    this.out = [];
    let lastSay = -1;
    rest.forEach((a, i) => { if (a.type === 'say') lastSay = i; });
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i]!;
      yield i === lastSay && a.type === 'say' ? { ...a, final: true } : a;
    }
  }

  // ---- start ------------------------------------------------------------------------------

  start(ctx?: CallContext): AsyncIterable<AgentAction> {
    if (ctx) this.ctx = ctx;
    return this.run(() => this.doStart());
  }

  private async *doStart(): AsyncGenerator<AgentAction> {
    this.started = true;
    const t = this.ctx.tenant;
    if (this.ctx.ani) {
      const r = yield* this.tool('identify_caller', { phone: this.ctx.ani });
      if (r.ok && r.data.found) {
        this.identified(r.data);
        log.info('caller identified by number', { callId: this.ctx.callId, account: this.state.account?.id, contact: this.state.caller?.contactId });
      }
    }
    if (t.afterHours.enabled) {
      const at = (this.ctx.now ?? new Date()).toISOString();
      const r = yield* this.tool('business_hours', { tenant: t.businessHoursTenant, at });
      if (r.ok) this.state.afterHours = r.data.open === false;
      else log.warn('business_hours failed; assuming open', { callId: this.ctx.callId, err: r.error });
    }
    const p = this.prompts;
    const first = firstName(this.state.caller?.name);
    if (this.state.account && first) {
      this.say(fillTemplate(p.greetingKnown ?? "Thank you for calling {tenant}. Hi {first_name}, I see you're calling from {account}. How can I help you today?", {
        tenant: t.name, first_name: first, account: this.state.account.name,
      }));
    } else {
      this.say(p.greeting || t.greeting);
    }
    if (this.state.afterHours) {
      // replace the open-hours question with the after-hours notice and start the message lane
      const last = this.out[this.out.length - 1];
      if (last?.type === 'say') last.text = last.text.replace(/\s*How can I help you( today)?\?\s*$/i, '');
      this.say(p.afterHours ?? 'Our office is closed right now, but I can take a message and have your rep call you back.');
      this.startMessage('after_hours_message');
    }
  }

  private identified(data: Record<string, unknown>): void {
    const a = data.account as Record<string, unknown> | undefined;
    const c = data.contact as Record<string, unknown> | undefined;
    if (a?.id) this.state.account = { id: String(a.id), name: String(a.name ?? ''), number: a.number as string | undefined, tier: a.tier as string | undefined };
    this.state.caller = {
      phone: (c?.phone as string | undefined) ?? this.ctx.ani,
      ...(c?.id ? { contactId: String(c.id) } : {}),
      ...(c?.name ? { name: String(c.name) } : {}),
      ...(c?.language ? { language: String(c.language) } : {}),
    };
  }

  // ---- turns ------------------------------------------------------------------------------

  turn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction> {
    const text = input.text?.trim() || input.dtmf || '';
    this.state.transcript.push({ role: 'caller', text: text || input.dtmf || '', at: Date.now() });
    return this.run(async function* (this: RulesAgent) {
      if (signal?.aborted) return;
      if (!this.started) yield* this.doStart();
      yield* this.handle(text, input);
    }.bind(this));
  }

  /**
   * Answer a turn whose caller line is already in the transcript (the LLM agent's fallback:
   * the same utterance, handled by the rules).
   */
  continueTurn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction> {
    const text = input.text?.trim() || input.dtmf || '';
    return this.run(async function* (this: RulesAgent) {
      if (signal?.aborted) return;
      if (!this.started) yield* this.doStart();
      yield* this.handle(text, input);
    }.bind(this));
  }

  private async *handle(text: string, input: AgentTurn): AsyncGenerator<AgentAction> {
    const t = words(text).join(' ');
    if (t === '' && !input.dtmf) {
      this.say("Sorry, I didn't catch that. Could you say it again?");
      return;
    }
    // global intents first
    if (TRANSFER.test(t) && (TRANSFER_VERB.test(t) || words(text).length <= 3) && !MESSAGE_WORDS.test(t) && this.pending !== 'reason') {
      yield* this.transfer(text);
      return;
    }
    if (GOODBYE.test(t) && this.pending !== 'reason') {
      this.say(`Thanks for calling ${this.ctx.tenant.name}. Goodbye.`);
      this.state.lane = 'ended';
      this.out.push({ type: 'hangup', reason: 'caller finished' });
      return;
    }
    if (this.pending) {
      const q = this.pending;
      const handled = yield* this.answer(q, text, input);
      if (handled) return;
    }
    yield* this.intent(text);
  }

  /** Route an utterance that answers no pending question. */
  private async *intent(text: string): AsyncGenerator<AgentAction> {
    const t = words(text).join(' ');
    const po = extractPoNumber(text);
    const so = extractOrderNumber(text);
    if (po || (so && STATUS_WORDS.test(t)) || STATUS_WORDS.test(t)) {
      this.misses = 0;
      yield* this.status(po, so);
      return;
    }
    if (MESSAGE_WORDS.test(t)) {
      this.misses = 0;
      this.startMessage(this.state.afterHours ? 'after_hours_message' : 'callback');
      return;
    }
    if (SAME_AS_LAST.test(t) || extractSkuCandidates(text).length > 0 || ORDER_WORDS.test(t)) {
      this.misses = 0;
      yield* this.reorder(text);
      return;
    }
    this.misses++;
    if (this.misses > this.maxRetries) {
      this.say("I'm having trouble understanding.");
      this.out.push({ type: 'transfer', target: 'rep', reason: 'the agent could not understand the caller', trigger: 'agent' });
      this.state.lane = 'transfer';
      return;
    }
    this.pending = undefined;
    this.say('I can help you reorder parts, check an order by its PO number, or take a message for your rep. What would you like to do?');
  }

  /** Handle the answer to a pending question; false = not an answer, route as a new intent. */
  private async *answer(q: Question, text: string, input: AgentTurn): AsyncGenerator<AgentAction, boolean> {
    const yn = yesNo(text);
    const s = this.state.slots;
    const reAsk = (question: Question, prompt: string): boolean => {
      if (this.retries >= this.maxRetries) {
        this.pending = undefined;
        this.say("Sorry, I'm not getting that.");
        this.out.push({ type: 'transfer', target: 'rep', reason: `the agent could not get the ${question.replace(/_/g, ' ')} from the caller`, trigger: 'agent' });
        this.state.lane = 'transfer';
        return true;
      }
      this.ask(question, prompt);
      return true;
    };
    switch (q) {
      case 'confirm_order': {
        if (yn === 'yes') {
          this.pending = undefined;
          yield* this.placeOrder();
          return true;
        }
        if (yn === 'no') {
          this.pending = undefined;
          this.state.order.pending = undefined;
          this.state.lane = 'idle';
          this.ask('anything_else', "Okay, I won't place that order. Is there anything else I can help with?");
          return true;
        }
        // "make it 60" → new quantity, read back again
        const qty = extractQuantity(text);
        const pend = this.state.order.pending;
        if (qty && pend && pend.lines.length === 1 && extractSkuCandidates(text).length === 0 && !extractPoNumber(text)) {
          pend.lines[0]!.qty = qty;
          yield* this.readBack();
          return true;
        }
        if (extractPoNumber(text) || extractSkuCandidates(text).length > 0 || MESSAGE_WORDS.test(words(text).join(' '))) return false;
        return reAsk('confirm_order', 'Shall I place the order? Please say yes or no.');
      }
      case 'qty': {
        const qty = extractQuantity(text);
        if (qty) {
          s.qty = qty;
          yield* this.atpAndReadBack([{ sku: s.sku as string, qty, description: s.description as string | undefined }]);
          return true;
        }
        if (extractPoNumber(text) || extractSkuCandidates(text).length > 0) return false;
        return reAsk('qty', `How many of ${s.sku as string} would you like?`);
      }
      case 'sku': {
        if (extractPoNumber(text)) return false;
        yield* this.reorder(text);
        return true;
      }
      case 'po': {
        const po = extractPoNumber(text) ?? (spokenDigits(text).length >= 3 ? `PO${spokenDigits(text)}` : undefined);
        const so = extractOrderNumber(text);
        if (po || so) {
          yield* this.status(so && !extractPoNumber(text) ? undefined : po, so);
          return true;
        }
        if (extractSkuCandidates(text).length > 0) return false;
        return reAsk('po', 'What is the PO number? You can also key it in on your phone.');
      }
      case 'phone_for_account': {
        const phone = extractPhone(text);
        if (!phone) return reAsk('phone_for_account', "What's the phone number on your account?");
        const r = yield* this.tool('identify_caller', { phone });
        if (r.ok && r.data.found) {
          this.identified(r.data);
          this.pending = undefined;
          this.say(`Thanks, ${firstName(this.state.caller?.name) ?? 'I found your account'}. That's ${this.state.account?.name ?? 'your account'}.`);
          const resume = s.resume as string | undefined;
          s.resume = undefined;
          if (resume) yield* this.reorder(resume);
          else this.ask('anything_else', 'How can I help you?');
          return true;
        }
        this.pending = undefined;
        this.say("I couldn't find an account with that number either.");
        this.offerMessage(`Unidentified caller wants to order (${(s.resume as string | undefined) ?? 'no details'})`);
        return true;
      }
      case 'offer_message': {
        if (yn === 'yes') {
          this.startMessage('callback');
          return true;
        }
        if (yn === 'no') {
          this.ask('anything_else', 'Okay. Is there anything else I can help with?');
          return true;
        }
        return false;
      }
      case 'anything_else': {
        if (yn === 'no' && words(text).length <= 4) {
          this.pending = undefined;
          this.say(`Thanks for calling ${this.ctx.tenant.name}. Goodbye.`);
          this.state.lane = 'ended';
          this.out.push({ type: 'hangup', reason: 'caller finished' });
          return true;
        }
        if (yn === 'yes' && words(text).length <= 3) {
          this.ask('anything_else', 'Sure, what can I help with?');
          return true;
        }
        this.pending = undefined;
        return false;
      }
      case 'caller_name': {
        const name = text.replace(/^(hi|hello|yes|yeah|sure|ok|okay)[, ]+/i, '')
          .replace(/^(my name is|my name's|this is|it's|it is|i am|i'm|name is)\s+/i, '').replace(/[.!?]+$/, '').trim();
        if (!name || words(name).length > 5) return reAsk('caller_name', 'Sorry, may I have your name?');
        s.caller_name = titleCase(name);
        yield* this.nextMessageSlot();
        return true;
      }
      case 'account_name': {
        const acct = text.replace(/^(i'm |i am |we're |we are )?(calling )?(from|with|at)\s+/i, '')
          .replace(/^(it's|it is|the company is|company is|account is)\s+/i, '').replace(/[.!?]+$/, '').trim();
        if (!acct) return reAsk('account_name', 'Which company are you calling from?');
        s.account_name = acct;
        yield* this.nextMessageSlot();
        return true;
      }
      case 'callback_confirm': {
        const phone = extractPhone(text);
        if (phone) {
          s.callback_number = phone;
          yield* this.nextMessageSlot();
          return true;
        }
        if (yn === 'yes') {
          s.callback_number = this.ctx.ani.replace(/\D/g, '');
          yield* this.nextMessageSlot();
          return true;
        }
        if (yn === 'no') {
          this.ask('callback_number', 'What number should we call you back on?');
          return true;
        }
        return reAsk('callback_confirm', `Should we call you back at ${speakPhone(this.ctx.ani)}? Please say yes or no.`);
      }
      case 'callback_number': {
        const phone = extractPhone(text) ?? (input.dtmf && input.dtmf.replace(/\D/g, '').length >= 7 ? input.dtmf.replace(/\D/g, '') : undefined);
        if (!phone) return reAsk('callback_number', 'Please say the callback number, digit by digit, or key it in.');
        s.callback_number = phone;
        yield* this.nextMessageSlot();
        return true;
      }
      case 'reason': {
        const reason = text.replace(/^(tell (them|him|her|my rep)( that)?|the message is|please tell (them|him|her|my rep)( that)?|it's about|i'm calling about)\s+/i, '').trim();
        if (words(reason).length === 0) return reAsk('reason', 'What would you like me to tell your rep?');
        s.reason = reason;
        yield* this.nextMessageSlot();
        return true;
      }
    }
    return false;
  }

  // ---- lanes ------------------------------------------------------------------------------

  private async *transfer(text: string): AsyncGenerator<AgentAction> {
    this.pending = undefined;
    this.state.lane = 'transfer';
    let target = 'rep';
    let targetName: string | undefined;
    let targetKind: 'rep' | 'queue' | undefined;
    const topic = /\b(billing|invoice|return|returns|credit)\b/.exec(words(text).join(' '))?.[1] ?? (this.state.account ? 'my rep' : 'sales');
    if (this.ctx.tools.listTools().some((t) => t.name === 'route_request')) {
      const r = yield* this.tool('route_request', { topic, ...(this.state.account ? { account_id: this.state.account.id } : {}) });
      const tg = r.ok ? (r.data.target as Record<string, unknown> | undefined) : undefined;
      if (tg) {
        target = String(tg.extension ?? tg.name ?? 'rep');
        if (tg.name) targetName = String(tg.name);
        if (tg.kind === 'rep' || tg.kind === 'queue') targetKind = tg.kind;
      }
    }
    const reason = `caller asked for a person${this.state.order.pending ? ' during a reorder' : ''}: "${text.trim()}"`;
    this.state.reason = reason;
    // the hand-off (src/escalation) says the tenant's handshake line
    this.out.push({ type: 'transfer', target, reason, trigger: 'explicit', ...(targetName ? { targetName } : {}), ...(targetKind ? { targetKind } : {}) });
  }

  private async *reorder(text: string): AsyncGenerator<AgentAction> {
    this.state.lane = 'reorder';
    const s = this.state.slots;
    if (!this.state.account) {
      s.resume = text;
      this.ask('phone_for_account', "I couldn't match the number you're calling from to an account. What's the phone number on your account?");
      return;
    }
    const t = words(text).join(' ');
    if (SAME_AS_LAST.test(t)) {
      const r = yield* this.tool('last_orders', { account_id: this.state.account.id, limit: 1 });
      const orders = r.ok ? (r.data.orders as Array<Record<string, unknown>> | undefined) ?? [] : [];
      const last = orders[0];
      if (!r.ok) {
        this.say("Sorry, I can't look up your previous orders right now.");
        this.offerMessage('Reorder of the last order (order history unavailable)');
        return;
      }
      if (!last) {
        this.ask('sku', "I don't see a previous order on your account. Which part number would you like?");
        return;
      }
      const qty = extractQuantity(text);
      const lines = ((last.lines as Array<Record<string, unknown>>) ?? []).map((l) => ({
        sku: String(l.sku), qty: qty && (last.lines as unknown[]).length === 1 ? qty : Number(l.qty), description: l.description as string | undefined,
      }));
      yield* this.atpAndReadBack(lines);
      return;
    }
    const cands = extractSkuCandidates(text);
    let found: { sku: string; description?: string; span?: { start: number; end: number } } | undefined;
    for (const c of cands.slice(0, 3)) {
      const r = yield* this.tool('find_sku', { query: c.sku, account_id: this.state.account.id });
      const m = r.ok ? (r.data.matches as Array<Record<string, unknown>> | undefined)?.[0] : undefined;
      if (m && String(m.sku).replace(/\W/g, '').toUpperCase() === c.sku.replace(/\W/g, '')) {
        found = { sku: String(m.sku), description: m.description as string | undefined, span: c };
        break;
      }
      if (m && !found) found = { sku: String(m.sku), description: m.description as string | undefined, span: c };
    }
    if (!found) {
      if (cands.length > 0) {
        this.ask('sku', `I couldn't find part number ${speakCode(cands[0]!.sku)}. Could you say the part number again?`);
      } else {
        this.ask('sku', 'Which part number would you like to order?');
      }
      return;
    }
    s.sku = found.sku;
    s.description = found.description;
    const qty = extractQuantity(text, found.span) ?? (typeof s.qty === 'number' && this.pending === 'sku' ? (s.qty as number) : undefined);
    if (!qty) {
      this.ask('qty', `How many of ${found.sku}${found.description ? `, ${found.description},` : ''} would you like?`);
      return;
    }
    s.qty = qty;
    yield* this.atpAndReadBack([{ sku: found.sku, qty, description: found.description }]);
  }

  private async *atpAndReadBack(lines: Array<{ sku: string; qty: number; description?: string }>): AsyncGenerator<AgentAction> {
    const atp: Array<Record<string, unknown>> = [];
    for (const l of lines) {
      const r = yield* this.tool('check_atp', { sku: l.sku, qty: l.qty, ...(this.state.account ? { account_id: this.state.account.id } : {}) });
      if (!r.ok) {
        this.say(`Sorry, I couldn't check availability for ${l.sku} right now.`);
        this.offerMessage(`Reorder: ${lines.map((x) => `${x.qty} x ${x.sku}`).join(', ')} (availability check failed)`);
        return;
      }
      atp.push(r.data);
    }
    if (!this.orderSeq || this.state.order.pending === undefined) this.orderSeq++;
    this.state.order.pending = { lines, atp };
    yield* this.readBack();
  }

  private async *readBack(): AsyncGenerator<AgentAction> {
    const pend = this.state.order.pending!;
    const parts = pend.lines.map((l, i) => {
      const a = pend.atp?.[i] ?? {};
      const desc = l.description ? `, ${l.description.replace(/^1\/2 inch/, 'half inch').replace(/,.*$/, '')},` : '';
      const when = a.ship_date ? speakDate(String(a.ship_date)) : 'soon';
      if (a.available === false) {
        return `${l.qty} of ${l.sku}${desc} but only ${String(a.available_qty ?? 0)} are in stock, so it would ship ${when} from ${warehouseName(a)}`;
      }
      return `${l.qty} of ${l.sku}${desc} available to ship ${when} from ${warehouseName(a)}`;
    });
    this.ask('confirm_order', `That's ${parts.join(', and ')}. Shall I place the order?`);
  }

  private async *placeOrder(): AsyncGenerator<AgentAction> {
    const pend = this.state.order.pending;
    const account = this.state.account;
    if (!pend || !account) {
      this.ask('sku', 'What would you like to order?');
      return;
    }
    const args: Record<string, unknown> = {
      account_id: account.id,
      lines: pend.lines.map((l) => ({ sku: l.sku, qty: l.qty })),
      idempotency_key: `${this.ctx.callId}:order:${this.orderSeq}`,
      ...(pend.po_number ? { po_number: pend.po_number } : {}),
    };
    const r = yield* this.tool('place_order', args);
    if (r.ok) {
      const on = String(r.data.order_number ?? '');
      this.state.order.placed.push({ order_number: on, lines: args.lines as Array<{ sku: string; qty: number }>, ship_date: r.data.ship_date as string | undefined, total: r.data.total });
      this.state.order.pending = undefined;
      this.state.lane = 'idle';
      this.say(`Your order is booked. The order number is ${speakCode(on)}.`);
      if (r.data.ship_date) this.say(`It ships ${speakDate(String(r.data.ship_date))}.`);
      this.ask('anything_else', 'Is there anything else I can help with?');
      return;
    }
    const summary = pend.lines.map((l) => `${l.qty} x ${l.sku}`).join(', ');
    if (r.code === 'refused') {
      log.info('order refused by the gateway', { callId: this.ctx.callId, tenant: this.ctx.tenant.id });
      this.say("I can't place orders on this line, but I can take a message for your rep.");
      this.offerMessage(`Reorder request: ${summary}`, 'Would you like me to do that?');
      return;
    }
    this.say("Sorry, I couldn't place the order just now.");
    this.offerMessage(`Reorder request (order system error): ${summary}`);
  }

  private async *status(po: string | undefined, so: string | undefined): AsyncGenerator<AgentAction> {
    this.state.lane = 'status';
    if (!po && !so) {
      this.ask('po', "Sure. What's the PO number?");
      return;
    }
    const args: Record<string, unknown> = po ? { po_number: po } : { order_number: so };
    if (this.state.account) args.account_id = this.state.account.id;
    const r = yield* this.tool('order_status', args);
    const spokenRef = po ? `purchase order ${speakCode(po)}` : `order ${speakCode(so!)}`;
    if (!r.ok) {
      this.say(r.code === 'refused' ? "I can't look up orders on this line." : "Sorry, I can't reach the order system right now.");
      this.offerMessage(`Order status request for ${po ?? so}`);
      return;
    }
    const d = r.data;
    if (!d.found) {
      return void this.ask('po', `I couldn't find ${spokenRef}. Could you read me the number again?`);
    }
    this.state.order.status = d;
    this.pending = undefined;
    const status = String(d.status ?? 'in progress').replace(/_/g, ' ');
    let out = `${spokenRef[0]!.toUpperCase()}${spokenRef.slice(1)}`;
    if (po && d.order_number) out += `, order ${speakCode(String(d.order_number))},`;
    out += ` is ${status}.`;
    this.say(out);
    if (d.tracking_number) {
      this.say(`It shipped${d.ship_date ? ` ${speakDate(String(d.ship_date))}` : ''}${d.carrier ? ` with ${String(d.carrier)}` : ''}. The tracking number is ${speakCode(String(d.tracking_number))}.`);
    } else if (d.ship_date && status !== 'delivered') {
      this.say(`It is scheduled to ship ${speakDate(String(d.ship_date))}.`);
    }
    if (d.eta && status !== 'delivered') this.say(`Expected delivery is ${speakDate(String(d.eta))}.`);
    this.ask('anything_else', 'Is there anything else I can help with?');
  }

  // ---- messages ---------------------------------------------------------------------------

  private offerMessage(reason: string, question = 'Would you like me to take a message for your rep?'): void {
    this.state.slots.reason = reason;
    this.state.slots.message_kind = 'callback';
    this.ask('offer_message', question);
  }

  private startMessage(kind: CaseMessage['kind']): void {
    this.state.lane = 'message';
    const s = this.state.slots;
    s.message_kind = kind;
    if (!s.caller_name && this.state.caller?.name) s.caller_name = this.state.caller.name;
    if (!s.account_name && this.state.account) s.account_name = this.state.account.name;
    s.callback_number = undefined;
    if (kind === 'after_hours_message') s.reason = undefined;
    // synchronous: only asks, never calls tools
    this.askMessageSlot();
  }

  private askMessageSlot(): boolean {
    const s = this.state.slots;
    if (!s.caller_name) return this.ask('caller_name', 'May I have your name, please?'), true;
    if (!s.account_name) return this.ask('account_name', 'And which company are you calling from?'), true;
    if (!s.callback_number) {
      // a withheld number (Privacy: id) is looked up but not read back
      if (this.ctx.ani && !this.ctx.privacy && this.ctx.ani.replace(/\D/g, '').length >= 7) {
        return this.ask('callback_confirm', `Is ${speakPhone(this.ctx.ani)} the best number to call you back on?`), true;
      }
      return this.ask('callback_number', 'What number should we call you back on?'), true;
    }
    if (!s.reason) return this.ask('reason', 'What would you like me to tell your rep?'), true;
    return false;
  }

  private async *nextMessageSlot(): AsyncGenerator<AgentAction> {
    if (this.askMessageSlot()) return;
    this.pending = undefined;
    const s = this.state.slots;
    const msg: CaseMessage = {
      id: `${this.ctx.callId}:msg:${++this.msgSeq}`,
      tenantId: this.ctx.tenant.id,
      callId: this.ctx.callId,
      ...(this.state.account ? { accountId: this.state.account.id } : {}),
      ...(s.account_name ? { accountName: String(s.account_name) } : {}),
      callerName: String(s.caller_name),
      callbackNumber: String(s.callback_number),
      reason: String(s.reason),
      kind: (s.message_kind as CaseMessage['kind'] | undefined) ?? 'general',
      transcript: transcriptText(this.state),
      takenAt: new Date().toISOString(),
    };
    this.state.messages.push(msg);
    this.out.push({ type: 'take_message', message: msg });
    const first = firstName(msg.callerName);
    this.say(`Thanks${first ? `, ${first}` : ''}. I've taken your message, and your rep will call you back at ${speakPhone(msg.callbackNumber)}.`);
    s.reason = undefined;
    if (this.state.afterHours) {
      this.say(`Thanks for calling ${this.ctx.tenant.name}. Goodbye.`);
      this.state.lane = 'ended';
      this.out.push({ type: 'hangup', reason: 'message taken' });
    } else {
      this.state.lane = 'idle';
      this.ask('anything_else', 'Is there anything else I can help with?');
    }
  }
}
