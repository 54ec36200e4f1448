/**
 * The Agent interface: one caller turn in → an async stream of actions out. Both the offline
 * rules agent and the LLM agent implement it; the dialogue controller drives either the same
 * way (see docs in src/agent/index.ts).
 */
import type { Tenant } from '../tenants/index.ts';
import type { CaseMessage } from '../jobs/types.ts';
import type { ToolGateway, ToolResult } from './tool-types.ts';
import type { Expectation } from '../stt/types.ts';

export type { Expectation } from '../stt/types.ts';

export type { ToolGateway, ToolResult, ToolSpec, ToolCallContext, TenantToolPolicy } from './tool-types.ts';
export type { CaseMessage } from '../jobs/types.ts';

/** Which escalation trigger fired (recorded on every escalation). */
export type EscalationTrigger =
  | 'explicit' // the caller asked for a person ("agent", "human", "representative", "operator")
  | 'routing' // the caller asked for a department or their rep ("billing", "returns", "my rep")
  | 'dtmf-zero' // the caller pressed 0
  | 'repetition' // the same unresolved request the Nth time
  | 'frustration' // lexical cues plus raised energy / speaking rate
  | 'complex-part' // no SKU match, descriptive part language
  | 'always-human' // an intent category the tenant always hands to a person
  | 'llm-tool' // the LLM agent called escalate(reason)
  | 'agent' // the agent gave up (could not understand, could not get a slot)
  | 'recording-declined'; // the caller declined call recording and the tenant's recording.onDecline is human

/** One line of the conversation as it happened on the line. */
export interface DialogueEntry {
  role: 'caller' | 'agent';
  text: string;
  /** ms since epoch */
  at: number;
  /** caller: the line came from DTMF */
  dtmf?: boolean;
  /** caller: recogniser confidence */
  confidence?: number;
  /** agent: the caller talked over this reply and it was cut */
  interrupted?: boolean;
  /** agent: a filler line */
  filler?: boolean;
}

/** What the agent wants done, in order. */
export type AgentAction =
  /**
   * speak this text (one sentence or a few); `final` marks the last thing said this turn;
   * `language` speaks it in another language's voice than the call's (the language offer)
   */
  | { type: 'say'; text: string; final?: boolean; uninterruptible?: boolean; language?: string }
  /** a tool call that ran through the gateway (for the transcript, screen pop and logs) */
  | { type: 'tool'; name: string; args: Record<string, unknown>; result: ToolResult }
  /** a short filler said while a slow tool runs ("Let me check that for you.") */
  | { type: 'filler'; text: string }
  /**
   * hand the caller to a human; `target` is the rep's/queue's extension (or a name),
   * `targetName` how to call them on the line, `trigger` which escalation trigger fired;
   * with `target: 'rep'`, `topic` is the department to route to (the CRM's route_request
   * topic, e.g. "billing" when the caller named it), else the caller's own rep
   */
  | { type: 'transfer'; target: string; reason: string; targetName?: string; targetKind?: 'rep' | 'queue'; trigger?: EscalationTrigger; topic?: string }
  /** a structured message to turn into a CRM case (enqueue it with src/jobs enqueueCase) */
  | { type: 'take_message'; message: CaseMessage }
  /** end the call after the pending speech */
  | { type: 'hangup'; reason: string };

/** One caller turn: the final transcript (and/or DTMF digits). */
export interface AgentTurn {
  /** final transcript of the caller's utterance ('' when only DTMF) */
  text: string;
  /** DTMF digits entered during the turn */
  dtmf?: string;
  /** recogniser confidence 0..1 */
  confidence?: number;
  /** loudness and length of the utterance (frustration trigger) */
  voice?: { rmsDb: number; voicedMs: number };
  /** the agent's last words asked for digits (a lone DTMF 0 is then an answer) */
  expectingDigits?: boolean;
  /** the recogniser flagged the utterance off-domain (low score per frame) */
  offDomain?: boolean;
  /** other recogniser hypotheses, best first (n-best); `grammar: 'order'` = a reorder grammar's reading of an open turn */
  alternatives?: ReadonlyArray<{ text: string; confidence: number; grammar?: string }>;
  /** the utterance as heard (8 kHz PCM): the keypad path records it as a voice message */
  audio?: Int16Array;
}

/** Why a hand-off to a person did not happen. */
export interface HandoffFailure {
  /** 'busy' | 'no-answer' | 'rejected' | 'unavailable' | 'refer-failed' … */
  why: string;
  /** how the target is named on the line */
  targetName: string;
  /** SIP status from the rep side, when there was one */
  status?: number;
}

/** Everything the agent needs about the call. */
export interface CallContext {
  tenant: Tenant;
  callId: string;
  /** calling number (ANI), E.164 when known; for lookups — may be one the caller withheld (`privacy`) */
  ani: string;
  /**
   * The caller withheld their number (Privacy: id): look it up, but do not show it to anyone
   * else. @defaultValue false
   */
  privacy?: boolean;
  /** dialed number (DNIS) */
  dnis: string;
  /** call start; business-hours checks use it. @defaultValue new Date() */
  now?: Date;
  tools: ToolGateway;
  /** BCP 47 language. @defaultValue tenant.language */
  language?: string;
}

/** One line of the conversation. */
export interface TranscriptEntry {
  role: 'caller' | 'agent';
  text: string;
  /** ms since epoch */
  at: number;
}

/** What the agent knows so far — the screen pop at hand-off is built from this. */
export interface ConversationState {
  callId: string;
  tenantId: string;
  language: string;
  ani: string;
  /** identified by ANI (or by a number the caller said) */
  caller?: { contactId?: string; name?: string; phone: string; language?: string };
  account?: { id: string; name: string; number?: string; tier?: string };
  /** office closed at call start (business_hours) */
  afterHours: boolean;
  /** current lane */
  lane: 'idle' | 'reorder' | 'status' | 'message' | 'transfer' | 'ended';
  /** slots being filled (sku, qty, po_number, caller_name, callback_number, reason …) */
  slots: Record<string, unknown>;
  /** order context: pending read-back, placed orders, last status looked up */
  order: {
    pending?: { lines: Array<{ sku: string; qty: number; description?: string }>; atp?: Array<Record<string, unknown>>; po_number?: string };
    placed: Array<{ order_number: string; lines: Array<{ sku: string; qty: number }>; ship_date?: string; total?: unknown }>;
    status?: Record<string, unknown>;
  };
  /**
   * What the agent's last prompt asked for; the dialogue controller opens the next
   * recognition stream with it (per-state grammar). @defaultValue 'open'
   */
  expect?: Expectation;
  /**
   * The identified account's recent order lines, newest first (from the CRM's last_orders);
   * the controller hands them to the recogniser, "same as last time" reorders from them.
   */
  history?: Array<{ sku: string; qty: number; description?: string; date?: string; order_number?: string }>;
  /** The repair loop in progress: which question failed how many times in a row (escalation reads it). */
  repair?: { slot: string; failures: number };
  /** messages taken (as handed to take_message) */
  messages: CaseMessage[];
  transcript: TranscriptEntry[];
  /** which agent produced the last turn; 'rules' after an LLM fallback */
  engine: 'rules' | 'llm';
  /** one-line reason of the last transfer / hang-up */
  reason?: string;
  /** LLM tokens the model reported for this call (the CDR's cost); absent when no LLM answered */
  usage?: { promptTokens: number; completionTokens: number; model: string };
}

/** The agent: `start` once after answer (identify + greet), then `turn` per caller utterance. */
export interface Agent {
  start(ctx: CallContext): AsyncIterable<AgentAction>;
  turn(input: AgentTurn, signal?: AbortSignal): AsyncIterable<AgentAction>;
  /** The transfer it asked for failed (rep busy, no answer): tell the caller, take a message. */
  handoffFailed?(failure: HandoffFailure): AsyncIterable<AgentAction>;
  /**
   * No person can take the call now (after hours): say when the office opens and take a
   * message instead of a hand-off. `reason` is why a person was wanted.
   */
  personUnavailable?(reason: string): AsyncIterable<AgentAction>;
  readonly state: ConversationState;
}

/** A fresh state for a call. */
export function newState(ctx: CallContext): ConversationState {
  return {
    callId: ctx.callId,
    tenantId: ctx.tenant.id,
    language: ctx.language ?? ctx.tenant.language,
    ani: ctx.ani,
    afterHours: false,
    lane: 'idle',
    slots: {},
    order: { placed: [] },
    messages: [],
    transcript: [],
    engine: 'rules',
  };
}

/** The transcript as plain lines for a CRM case or screen pop. */
export function transcriptText(state: ConversationState): string {
  return state.transcript.map((e) => `${e.role}: ${e.text}`).join('\n');
}
