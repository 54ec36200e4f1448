/**
 * Builds each call's CDR row from the call (src/call), its conversation (src/dialogue) and
 * the agent's state, and writes it through a {@link CdrStore}:
 *
 * - answer → `insert` (status `open`: from/to, tenant, source, times);
 * - while the call talks → `update` at most once per `flushMs` after a transcript line or a
 *   turn (transcript, identity, counts, usage), so a crash loses at most that much;
 * - hang-up → `update` to `completed` with outcome, media quality, latency and cost;
 * - a call that ends unanswered (canceled, rejected) → one `insert`, already completed.
 *
 * A case number that arrives after the call (the queue created the CRM case later, or after a
 * restart from the spool) is patched into the row by its SIP Call-ID.
 */
import { randomUUID } from 'node:crypto';
import { logger, type Logger } from '../ops/log.ts';
import { metrics, observeCallEnd } from '../ops/metrics.ts';
import type { ConversationState, DialogueEntry } from '../agent/types.ts';
import type { TurnTiming } from '../dialogue/controller.ts';
import { estimateQuality } from './emodel.ts';
import { priceCall, type PriceTable } from './pricing.ts';
import type { CdrMedia, CdrOutcome, CdrRecord, CdrStore, CdrTranscriptLine, HangupBy } from './types.ts';

/** Media counters at the end of the call (src/media SessionStats fits). */
export interface CdrMediaStats {
  packetsIn: number;
  packetsOut: number;
  jitter?: { expected: number; lost: number; jitterMs: number; late?: number; concealed?: number } | undefined;
  rtcp?: { remoteReport: { fractionLost: number; cumulativeLost: number; jitterMs: number; rttMs: number | null } | null } | undefined;
}

/** The part of a src/call Call the recorder reads. */
export interface CdrCall {
  readonly callId: string;
  readonly from: string;
  readonly to: string;
  readonly tenant: { readonly id: string };
  /** `udp/192.0.2.7:5060` */
  readonly source?: string | undefined;
  readonly trunk?: string | undefined;
  readonly startedAt: number;
  readonly answeredAt: number | null;
  readonly endedAt: number | null;
  readonly endReason: string | null;
  readonly audio: { readonly codec: string };
  /** set when the call ended (the session is closed by then) */
  readonly mediaStats?: CdrMediaStats | null;
  /** what the hand-off noted: handoff, handoffTarget, handoffTrigger, handoffOutcome, … */
  readonly handoffInfo?: Readonly<Record<string, string | number | undefined>> | null;
  /** recording posture, jurisdiction and consent (src/consent RecordingFacts) */
  readonly recording?: { readonly posture: string; readonly jurisdiction: string; readonly consent: string; readonly consentAt?: string | undefined; readonly path?: string | undefined; readonly recorded: boolean } | null;
  once(event: 'answered' | 'ended', listener: (...args: any[]) => void): unknown;
}

/** The conversation of a call (src/dialogue DialogueController + the agent's state). */
export interface CdrConversation {
  controller: {
    readonly transcript: readonly DialogueEntry[];
    readonly timings: readonly TurnTiming[];
    readonly usage: { readonly sttSeconds: number; readonly ttsChars: number; readonly bargeIns: number };
    on(event: 'transcript' | 'turn' | 'ended', listener: (...args: any[]) => void): unknown;
  };
  state: Pick<ConversationState, 'caller' | 'account' | 'order' | 'messages' | 'engine' | 'language' | 'reason' | 'lane'> & {
    usage?: { promptTokens: number; completionTokens: number; model: string };
  };
  sttProvider: string;
  ttsProvider: string;
}

/** Q.850 Reason of our BYE per end reason (src/call BYE_REASON). */
export type ReleaseCauses = Partial<Record<string, string>>;

export interface CdrRecorderOptions {
  store: CdrStore;
  /** the tenant's price table */
  prices: (tenantId: string) => PriceTable;
  /** what our BYE said per end reason. @defaultValue {} */
  releaseCauses?: ReleaseCauses;
  /** longest wait between progress writes of a talking call, ms. @defaultValue 1000 */
  flushMs?: number;
  log?: Logger;
  /** @defaultValue randomUUID */
  newId?: () => string;
}

interface Live {
  id: string;
  call: CdrCall;
  conv: CdrConversation | null;
  inserted: boolean;
  /** writes of this call, in order */
  chain: Promise<void>;
  timer: NodeJS.Timeout | null;
  cases: Record<string, string>;
  /** why the conversation ended, as the dialogue said ('no input', 'message taken', …) */
  agentEnd: string | null;
}

const iso = (t: number | null | undefined): string | null => (t === null || t === undefined ? null : new Date(t).toISOString());

export class CdrRecorder {
  private readonly live = new Map<CdrCall, Live>();
  private readonly bySipCallId = new Map<string, Live>();
  private readonly log: Logger;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly opts: CdrRecorderOptions) {
    this.log = opts.log ?? logger('cdr');
  }

  /** Follow a call from the INVITE on (src/sip VoiceApp 'call' event). */
  track(call: CdrCall): void {
    if (this.live.has(call)) return;
    const e: Live = { id: (this.opts.newId ?? randomUUID)(), call, conv: null, inserted: false, chain: Promise.resolve(), timer: null, cases: {}, agentEnd: null };
    this.live.set(call, e);
    this.bySipCallId.set(call.callId, e);
    call.once('answered', () => {
      e.inserted = true;
      this.write(e, () => this.opts.store.insert(this.openRecord(e)), 'insert');
    });
    call.once('ended', () => this.finish(e));
  }

  /** The call's conversation started (src/dialogue DialogueService observer). */
  conversation(call: { readonly callId: string }, conv: CdrConversation): void {
    const e = this.bySipCallId.get(call.callId);
    if (!e || !this.live.has(e.call)) return;
    e.conv = conv;
    const dirty = (): void => this.scheduleProgress(e);
    conv.controller.on('transcript', dirty);
    conv.controller.on('turn', dirty);
    conv.controller.on('ended', (ev?: { reason?: string }) => {
      e.agentEnd ??= ev?.reason ?? null;
    });
  }

  /** The case queue created the CRM case for a message taken on `sipCallId`. */
  caseCreated(sipCallId: string, messageId: string, caseNumber: string): void {
    const e = this.bySipCallId.get(sipCallId);
    if (e && this.live.has(e.call)) {
      e.cases[messageId] = caseNumber; // goes into the row at hang-up
      return;
    }
    // the call is over (or was handled by an earlier process): patch its row, after its
    // completion when that is still being written
    if (e) this.write(e, () => this.patchCase(sipCallId, messageId, caseNumber), 'case');
    else this.track_(this.patchCase(sipCallId, messageId, caseNumber));
  }

  /** Wait for every pending write (shutdown). */
  async flush(): Promise<void> {
    for (const e of this.live.values()) {
      if (e.timer) {
        clearTimeout(e.timer);
        e.timer = null;
        if (e.inserted) this.write(e, () => this.opts.store.update(e.id, this.progressPatch(e)), 'progress');
      }
    }
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  private async patchCase(sipCallId: string, messageId: string, caseNumber: string): Promise<void> {
    const r = await this.opts.store.get(sipCallId);
    if (!r) return;
    const cases = { ...((r.detail.cases as Record<string, string> | undefined) ?? {}), [messageId]: caseNumber };
    const patch: Partial<CdrRecord> = { detail: { ...r.detail, cases } };
    if (r.outcome === 'message_taken') {
      const ids = (r.detail.messages as Array<{ id: string }> | undefined)?.map((m) => m.id) ?? [];
      patch.outcomeRef = ids.length ? ids.map((id) => cases[id] ?? id).join(',') : caseNumber;
    }
    await this.opts.store.update(r.id, patch);
    this.log.info('cdr case number', { callId: sipCallId, cdr: r.id, msgId: messageId, case: caseNumber });
  }

  private track_(p: Promise<void>): void {
    const q = p.catch((err: unknown) => {
      metrics.cdrWriteFailures.inc({ what: 'case' });
      this.log.error('cdr write failed', { err: err as Error });
    });
    this.pending.add(q);
    void q.finally(() => this.pending.delete(q));
  }

  private write(e: Live, op: () => Promise<void>, what: string): void {
    e.chain = e.chain.then(op).catch((err: unknown) => {
      metrics.cdrWriteFailures.inc({ what });
      this.log.error('cdr write failed', { callId: e.call.callId, cdr: e.id, what, err: err as Error });
    });
    this.track_(e.chain);
  }

  private scheduleProgress(e: Live): void {
    if (e.timer || !e.inserted) return;
    e.timer = setTimeout(() => {
      e.timer = null;
      if (this.live.has(e.call)) this.write(e, () => this.opts.store.update(e.id, this.progressPatch(e)), 'progress');
    }, this.opts.flushMs ?? 1000);
    e.timer.unref?.();
  }

  private finish(e: Live): void {
    if (e.timer) clearTimeout(e.timer);
    e.timer = null;
    this.live.delete(e.call);
    // keep the Call-ID → row mapping a minute: a case number created just after the hang-up
    // is then written behind the completion
    const keep = setTimeout(() => {
      if (this.bySipCallId.get(e.call.callId) === e) this.bySipCallId.delete(e.call.callId);
    }, 60_000);
    keep.unref?.();
    let final: CdrRecord;
    try {
      final = this.finalRecord(e);
    } catch (err) {
      this.log.error('cdr could not be built', { callId: e.call.callId, err: err as Error });
      return;
    }
    observeCallEnd({ tenant: final.tenant, outcome: final.outcome ?? 'none', media: final.media });
    if (e.inserted) {
      const { id: _id, ...patch } = final;
      this.write(e, () => this.opts.store.update(e.id, patch), 'complete');
    } else {
      this.write(e, () => this.opts.store.insert(final), 'insert');
    }
    this.log.info('cdr written', {
      callId: e.call.callId, cdr: e.id, outcome: final.outcome, ref: final.outcomeRef ?? undefined,
      hangupBy: final.hangupBy, turns: final.turns, mos: final.media?.mos ?? undefined,
      cost: final.cost ? `${final.cost.total} ${final.cost.currency}` : undefined,
    });
  }

  // ---- the record -----------------------------------------------------------------------

  private base(e: Live): CdrRecord {
    const c = e.call;
    return {
      id: e.id, sipCallId: c.callId, tenant: c.tenant.id, trunk: c.trunk ?? null, source: c.source ?? null,
      fromNumber: c.from, toNumber: c.to,
      accountId: null, accountName: null, contactId: null, contactName: null,
      status: 'open', incompleteReason: null,
      startedAt: iso(c.startedAt)!, answeredAt: iso(c.answeredAt), endedAt: null, updatedAt: new Date().toISOString(),
      durationMs: null, hangupBy: null, endReason: null, sipStatus: c.answeredAt !== null ? 200 : null, releaseCause: null,
      outcome: null, outcomeRef: null, outcomes: [],
      escalationTrigger: null, escalationTarget: null, escalationReason: null, escalationOutcome: null,
      agent: null, language: null, turns: 0, bargeIns: 0, transcript: [], media: null,
      gapP50Ms: null, gapP95Ms: null,
      carrierSeconds: 0, sttSeconds: 0, llmPromptTokens: 0, llmCompletionTokens: 0, ttsChars: 0,
      cost: null, detail: {},
      recordingPosture: null, jurisdiction: null, consent: null, consentAt: null, recordingPath: null,
    };
  }

  private openRecord(e: Live): CdrRecord {
    return { ...this.base(e), ...this.progressPatch(e) };
  }

  /** What is known mid-call. */
  private progressPatch(e: Live): Partial<CdrRecord> {
    const p: Partial<CdrRecord> = { updatedAt: new Date().toISOString(), ...recordingFields(e.call) };
    const conv = e.conv;
    if (!conv) return p;
    const st = conv.state;
    const ctl = conv.controller;
    Object.assign(p, {
      accountId: st.account?.id ?? null, accountName: st.account?.name ?? null,
      contactId: st.caller?.contactId ?? null, contactName: st.caller?.name ?? null,
      agent: st.engine, language: st.language,
      turns: ctl.transcript.filter((l) => l.role === 'caller').length,
      bargeIns: ctl.usage.bargeIns,
      transcript: ctl.transcript.map(transcriptLine),
      ...gapPercentiles(ctl.timings),
      sttSeconds: round3(ctl.usage.sttSeconds), ttsChars: ctl.usage.ttsChars,
      llmPromptTokens: st.usage?.promptTokens ?? 0, llmCompletionTokens: st.usage?.completionTokens ?? 0,
    } satisfies Partial<CdrRecord>);
    return p;
  }

  private finalRecord(e: Live): CdrRecord {
    const c = e.call;
    const r: CdrRecord = { ...this.base(e), ...this.progressPatch(e) };
    const reason = c.endReason ?? 'error';
    const answered = c.answeredAt !== null;
    r.status = 'completed';
    r.endedAt = iso(c.endedAt ?? Date.now());
    r.durationMs = answered ? Math.max(0, (c.endedAt ?? Date.now()) - c.answeredAt!) : 0;
    r.endReason = reason;
    r.hangupBy = hangupBy(reason);
    r.sipStatus = answered ? 200 : UNANSWERED_STATUS[reason] ?? null;
    r.releaseCause = answered && reason !== 'caller-bye' ? this.opts.releaseCauses?.[reason] ?? null : null;
    const h = c.handoffInfo ?? null;
    const st = e.conv?.state;
    if (h) {
      r.escalationTrigger = str(h.handoffTrigger);
      r.escalationTarget = str(h.handoffTarget);
      r.escalationOutcome = str(h.handoffOutcome);
      r.escalationReason = st?.reason ?? null;
    }
    const o = deriveOutcome({ endReason: reason, answered, state: st ?? null, handoff: h, cases: e.cases, agentEnd: e.agentEnd });
    r.outcome = o.outcome;
    r.outcomeRef = o.ref;
    r.outcomes = o.outcomes;
    r.media = mediaQuality(c.audio.codec, c.mediaStats ?? null);
    r.carrierSeconds = round3(r.durationMs / 1000);
    const llmModel = st?.usage?.model ?? 'rules';
    r.cost = priceCall({
      carrierSeconds: r.carrierSeconds,
      sttProvider: e.conv?.sttProvider ?? 'none', sttSeconds: r.sttSeconds,
      llmModel, llmPromptTokens: r.llmPromptTokens, llmCompletionTokens: r.llmCompletionTokens,
      ttsProvider: e.conv?.ttsProvider ?? 'none', ttsChars: r.ttsChars,
    }, this.opts.prices(c.tenant.id));
    r.detail = {
      ...(st && st.order.placed.length ? { orders: st.order.placed } : {}),
      ...(st?.order.status ? { orderStatus: pick(st.order.status, ['order_number', 'po_number', 'status', 'tracking_number', 'ship_date', 'eta']) } : {}),
      ...(st && st.messages.length ? { messages: st.messages.map((m) => ({ id: m.id, kind: m.kind, reason: m.reason, callbackNumber: m.callbackNumber })) } : {}),
      ...(Object.keys(e.cases).length ? { cases: { ...e.cases } } : {}),
      ...(h ? { handoff: { ...h } } : {}),
      ...(st?.usage ? { llmModel } : {}),
      ...(e.agentEnd ? { agentEnd: e.agentEnd } : {}),
    };
    return r;
  }
}

/** The call's recording facts as CDR fields (all null when the tenant has no recording posture). */
function recordingFields(c: CdrCall): Pick<CdrRecord, 'recordingPosture' | 'jurisdiction' | 'consent' | 'consentAt' | 'recordingPath'> {
  const r = c.recording;
  if (!r) return { recordingPosture: null, jurisdiction: null, consent: null, consentAt: null, recordingPath: null };
  return { recordingPosture: r.posture, jurisdiction: r.jurisdiction, consent: r.consent, consentAt: r.consentAt ?? null, recordingPath: r.recorded ? r.path ?? null : null };
}

/** Final status of an INVITE that was never answered. */
const UNANSWERED_STATUS: Partial<Record<string, number>> = { canceled: 487, rejected: 480, shutdown: 503, 'no-ack': 200 };

export function hangupBy(reason: string): HangupBy {
  switch (reason) {
    case 'caller-bye':
    case 'canceled':
      return 'caller';
    case 'agent-hangup':
    case 'transferred':
      return 'agent';
    case 'rep-bye':
      return 'rep';
    default:
      return 'system';
  }
}

export interface OutcomeInputs {
  endReason: string;
  answered: boolean;
  state: Pick<ConversationState, 'order' | 'messages'> | null;
  handoff: Readonly<Record<string, string | number | undefined>> | null;
  /** message id → CRM case number, where known */
  cases?: Record<string, string>;
  /** why the dialogue ended the conversation ('no input': the caller went silent) */
  agentEnd?: string | null;
}

/** The call's outcomes, most significant first, and the reference of the first. */
export function deriveOutcome(i: OutcomeInputs): { outcome: CdrOutcome; ref: string | null; outcomes: CdrOutcome[] } {
  const found: Array<[CdrOutcome, string | null]> = [];
  const st = i.state;
  if (st && st.order.placed.length) found.push(['order_placed', st.order.placed.map((o) => o.order_number).join(',')]);
  if (st && st.messages.length) found.push(['message_taken', st.messages.map((m) => i.cases?.[m.id] ?? m.id).join(',')]);
  const h = i.handoff;
  const handoffOk = h && (h.handoffOutcome === 'connected' || h.handoffOutcome === 'referred');
  if (handoffOk || i.endReason === 'transferred' || i.endReason === 'rep-bye') found.push(['transferred', str(h?.handoffTarget)]);
  const status = st?.order.status;
  if (status && status.found !== false) found.push(['status_given', str(status.order_number) ?? str(status.po_number)]);
  if (h && !handoffOk && i.endReason !== 'transferred' && i.endReason !== 'rep-bye') found.push(['escalated', str(h.handoffTarget)]);
  if (found.length === 0) {
    // a 200 never ACKed (`no-ack`) was never an answered call: failed, and the ref says why
    if (!i.answered) found.push([i.endReason === 'canceled' ? 'abandoned' : 'failed', i.endReason === 'no-ack' ? 'no-ack' : null]);
    else if (['error', 'rtp-timeout'].includes(i.endReason)) found.push(['failed', i.endReason]);
    else if (i.endReason === 'agent-hangup' && i.agentEnd !== 'no input') found.push(['none', null]);
    else found.push(['abandoned', null]);
  }
  return { outcome: found[0]![0], ref: found[0]![1], outcomes: found.map((f) => f[0]) };
}

/** Loss, jitter, RTT both ways and the E-model over the worse direction. */
export function mediaQuality(codec: string, s: CdrMediaStats | null): CdrMedia | null {
  if (!s) return null;
  const j = s.jitter;
  const rr = s.rtcp?.remoteReport ?? null;
  // The jitter buffer sees audio only, so the sequence numbers of RFC 4733 (DTMF) packets look
  // lost to it; every packet that arrived (packetsIn) bounds what was really lost.
  const lost = j ? Math.max(0, Math.min(j.lost, j.expected - s.packetsIn)) : 0;
  const lossInPct = j && j.expected > 0 ? round2((100 * lost) / j.expected) : j ? 0 : null;
  const jitterInMs = j ? round2(j.jitterMs) : null;
  let lossOutPct: number | null = null;
  if (rr) lossOutPct = s.packetsOut > 0 ? round2((100 * Math.max(0, rr.cumulativeLost)) / s.packetsOut) : round2(rr.fractionLost * 100);
  const jitterOutMs = rr ? round2(rr.jitterMs) : null;
  const rttMs = rr?.rttMs ?? null;
  const known = lossInPct !== null || lossOutPct !== null;
  const q = known
    ? estimateQuality({ lossPct: Math.max(lossInPct ?? 0, lossOutPct ?? 0), jitterMs: Math.max(jitterInMs ?? 0, jitterOutMs ?? 0), rttMs })
    : null;
  return {
    codec, packetsIn: s.packetsIn, packetsOut: s.packetsOut,
    lossInPct, jitterInMs, lossOutPct, jitterOutMs, rttMs: rttMs === null ? null : round2(rttMs),
    rFactor: q?.r ?? null, mos: q?.mos ?? null,
    ...(j?.concealed !== undefined ? { concealed: j.concealed } : {}),
    ...(j?.late !== undefined ? { late: j.late } : {}),
  };
}

/** Nearest-rank p50 and p95 of the turn gaps. */
export function gapPercentiles(timings: readonly TurnTiming[]): { gapP50Ms: number | null; gapP95Ms: number | null } {
  const g = timings.map((t) => t.gapMs).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (g.length === 0) return { gapP50Ms: null, gapP95Ms: null };
  const at = (p: number): number => g[Math.min(g.length - 1, Math.max(0, Math.ceil(p * g.length) - 1))]!;
  return { gapP50Ms: Math.round(at(0.5)), gapP95Ms: Math.round(at(0.95)) };
}

function transcriptLine(e: DialogueEntry): CdrTranscriptLine {
  return {
    role: e.role, text: e.text, at: new Date(e.at).toISOString(),
    ...(e.dtmf ? { dtmf: true } : {}),
    ...(e.confidence !== undefined && e.role === 'caller' ? { confidence: Math.round(e.confidence * 100) / 100 } : {}),
    ...(e.interrupted ? { interrupted: true } : {}),
    ...(e.filler ? { filler: true } : {}),
  };
}

function str(v: unknown): string | null {
  return v === undefined || v === null || v === '' ? null : String(v);
}

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined && o[k] !== null) out[k] = o[k];
  return out;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
const round3 = (n: number): number => Math.round(n * 1000) / 1000;
