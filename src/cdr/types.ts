/**
 * The call detail record and the store behind it. One row per call: written when the call
 * is answered (status `open`), updated as the conversation goes, completed at hang-up
 * (`completed`). A row still `open` when its process is gone is marked `incomplete` at the
 * next start, never deleted. The store is async and its SQL plain, so a PostgreSQL store
 * can sit behind the same interface.
 */
import type { CallCost } from './pricing.ts';

export type CdrStatus = 'open' | 'completed' | 'incomplete';

/**
 * What the call achieved (the first that applies, in this order): an order placed, a
 * message taken, a transfer to a person, an order status given, an escalation that did
 * not connect, a failure (error, media timeout, rejected), the caller gone without an
 * outcome (hung up, canceled, or silent until the agent gave up), or a conversation the
 * agent closed with nothing done.
 */
export type CdrOutcome =
  | 'order_placed' | 'message_taken' | 'transferred' | 'status_given' | 'escalated'
  | 'failed' | 'abandoned' | 'none';

export const CDR_OUTCOMES: readonly CdrOutcome[] = [
  'order_placed', 'message_taken', 'transferred', 'status_given', 'escalated', 'failed', 'abandoned', 'none',
];

/** Who ended the call. */
export type HangupBy = 'caller' | 'agent' | 'rep' | 'system';

/** One line of the transcript. */
export interface CdrTranscriptLine {
  role: 'caller' | 'agent';
  text: string;
  /** ISO time: caller = end of their speech (or the key), agent = first audio queued */
  at: string;
  dtmf?: boolean;
  confidence?: number;
  /** agent line the caller talked over */
  interrupted?: boolean;
  filler?: boolean;
}

/** Media quality at the end of the call. */
export interface CdrMedia {
  codec: string;
  packetsIn: number;
  packetsOut: number;
  /** inbound (caller → us) loss, percent, from the jitter buffer's expected/lost */
  lossInPct: number | null;
  /** inbound interarrival jitter, ms */
  jitterInMs: number | null;
  /** outbound loss as the caller's RTCP receiver report states it, percent */
  lossOutPct: number | null;
  jitterOutMs: number | null;
  /** RTCP round trip, ms (null without a receiver report) */
  rttMs: number | null;
  /** the E-model over the worse direction */
  rFactor: number | null;
  mos: number | null;
  /** packets the jitter buffer concealed / found late */
  concealed?: number;
  late?: number;
}

/** One call's record. Times are ISO 8601 UTC strings. */
export interface CdrRecord {
  /** our id of the call (unique) */
  id: string;
  /** the SIP Call-ID of the inbound dialog */
  sipCallId: string;
  tenant: string;
  /** trunk name (not known yet: null) */
  trunk: string | null;
  /** transport/address:port the INVITE came from, e.g. `udp/192.0.2.7:5060` */
  source: string | null;
  fromNumber: string;
  toNumber: string;
  accountId: string | null;
  accountName: string | null;
  contactId: string | null;
  contactName: string | null;
  status: CdrStatus;
  /** why the row is incomplete */
  incompleteReason: string | null;
  startedAt: string;
  answeredAt: string | null;
  endedAt: string | null;
  /** last write: for an incomplete row, the process died after this */
  updatedAt: string;
  /** answer → end, ms (0 if never answered; null while open / incomplete) */
  durationMs: number | null;
  hangupBy: HangupBy | null;
  /** src/call EndReason: caller-bye, agent-hangup, max-duration, rtp-timeout, canceled, … */
  endReason: string | null;
  /** final SIP status of the INVITE (200 answered, 487 canceled, …) */
  sipStatus: number | null;
  /** the Reason header of our BYE (Q.850 cause), null when the caller hung up */
  releaseCause: string | null;
  outcome: CdrOutcome | null;
  /** order numbers (order_placed), case number or message id (message_taken), target (transferred / escalated), order/PO (status_given) */
  outcomeRef: string | null;
  /** every outcome that applied, first = `outcome` */
  outcomes: CdrOutcome[];
  escalationTrigger: string | null;
  escalationTarget: string | null;
  escalationReason: string | null;
  /** rep answered / referred / busy (486) / no-answer … */
  escalationOutcome: string | null;
  /** 'rules' or 'llm' (the agent that answered the last turn) */
  agent: string | null;
  language: string | null;
  /** caller turns (speech or keys) */
  turns: number;
  /** caller speech that cut the agent's reply */
  bargeIns: number;
  transcript: CdrTranscriptLine[];
  media: CdrMedia | null;
  /** end of caller speech → first reply audio, ms */
  gapP50Ms: number | null;
  gapP95Ms: number | null;
  carrierSeconds: number;
  sttSeconds: number;
  llmPromptTokens: number;
  llmCompletionTokens: number;
  ttsChars: number;
  cost: CallCost | null;
  /** recording posture the call ran under (off | notify | consent); null when the tenant has none */
  recordingPosture: string | null;
  /** caller jurisdiction from the calling number: `US-CA`, `GB`, `US` (no state), `unknown` */
  jurisdiction: string | null;
  /** consent event: none, pending, granted, declined, no-answer, notified */
  consent: string | null;
  /** ISO time of the consent event (the answer, or the end of the notice) */
  consentAt: string | null;
  /** absolute path of the call's WAV; null when not recorded */
  recordingPath: string | null;
  /** anything else worth keeping (orders, messages, case numbers, hand-off timings) */
  detail: Record<string, unknown>;
}

/** `list` filters; all optional, combined with AND. */
export interface CdrFilter {
  tenant?: string;
  /** started at or after (ISO) */
  since?: string;
  /** started before (ISO) */
  until?: string;
  outcome?: CdrOutcome;
  /** digits contained in the calling number */
  caller?: string;
  status?: CdrStatus;
  /** our id starts with this */
  idPrefix?: string;
  /** newest first; 0 = no limit. @defaultValue 0 */
  limit?: number;
}

/** Retention: days to keep rows per tenant; tenants not listed keep `defaultDays` (0 = forever). */
export interface RetentionPolicy {
  defaultDays: number;
  tenants: Record<string, number>;
}

export interface CdrStore {
  /** Insert a new row (at answer, or the whole record of a call never answered). */
  insert(r: CdrRecord): Promise<void>;
  /** Change some fields of a row (progress, completion, a case number that came later). */
  update(id: string, patch: Partial<Omit<CdrRecord, 'id'>>): Promise<void>;
  /** One row by our id, or the newest with that SIP Call-ID. */
  get(idOrSipCallId: string): Promise<CdrRecord | null>;
  /** Rows matching the filter, newest first. */
  list(f?: CdrFilter): Promise<CdrRecord[]>;
  /**
   * Rows still `open` whose owner is not running (`isLive(owner)` false) become `incomplete`
   * with `reason`; returns how many. Called once at start.
   */
  closeAbandoned(isLive: (owner: string) => boolean, reason: (owner: string, updatedAt: string) => string): Promise<number>;
  /** Delete rows older than the policy allows (by start time); returns how many. */
  purge(policy: RetentionPolicy, now?: Date): Promise<number>;
  close(): Promise<void>;
}
