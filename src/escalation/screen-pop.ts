/**
 * The screen pop: what the rep sees when the call reaches them, so they never ask
 * "what is your account number". Built by the hand-off from the agent's conversation
 * state; kept in a {@link ScreenPopStore} (one per process) that the rep console serves
 * (web page + SSE), that is written to the CRM as an activity, and whose id/URL and a
 * short summary ride on the transfer as SIP headers.
 */
import { EventEmitter } from 'node:events';
import type { EscalationTrigger } from '../agent/types.ts';


/** Hand-off progress as the rep console shows it. */
export type ScreenPopStatus = 'ringing' | 'connected' | 'referred' | 'failed' | 'ended';

export interface ScreenPopTarget {
  /** rep or queue name, e.g. "Dana Whitfield" or "Billing" */
  name: string;
  /** extension / queue number dialled */
  extension: string;
  kind?: 'rep' | 'queue';
}

export interface ScreenPop {
  /** opaque id (also in the `X-Screen-Pop-Id` SIP header) */
  id: string;
  /** Call-ID of the caller's leg */
  callId: string;
  tenantId: string;
  tenantName: string;
  /** ms since epoch */
  createdAt: number;
  status: ScreenPopStatus;
  /** why the status is what it is ("rep busy (486)", "no answer after 20 s") */
  statusReason?: string;
  target: ScreenPopTarget;
  trigger: EscalationTrigger;
  /** the one-line reason, e.g. 'caller asked for a person during a reorder: "get me a human"' */
  reason: string;
  caller: { phone: string; name?: string; contactId?: string; language: string };
  account?: { id: string; name: string; number?: string; tier?: string };
  /** the conversation so far, as spoken on the line */
  transcript: Array<{ role: 'caller' | 'agent'; text: string; at: number }>;
  /** order context the agent already pulled */
  order: {
    pending?: { lines: Array<{ sku: string; qty: number; description?: string }>; po_number?: string };
    placed: Array<{ order_number: string; ship_date?: string }>;
    status?: Record<string, unknown>;
  };
  /** one short line for the SIP summary header (≤ 200 chars, no CR/LF) */
  summary: string;
  /**
   * Whether the call is recorded, and why (src/consent): the rep must know before speaking.
   * Absent when the tenant has no recording posture (never recorded).
   */
  recording?: ScreenPopRecording;
}

/** The recording facts a pop shows (src/consent RecordingFacts fits). */
export interface ScreenPopRecording {
  /** the call (and so the rep's leg after a warm transfer) is being recorded */
  recorded: boolean;
  posture: 'off' | 'notify' | 'consent';
  /** `US-CA`, `GB`, `unknown` … */
  jurisdiction: string;
  /** none, pending, granted, declined, no-answer, notified */
  consent: string;
  consentAt?: string;
}

/** In-memory store of recent pops; emits `pop` on add and `update` on every change. */
export class ScreenPopStore extends EventEmitter<{ pop: [ScreenPop]; update: [ScreenPop] }> {
  private readonly pops = new Map<string, ScreenPop>();

  /** @param max pops kept (oldest dropped). @defaultValue 500 */
  constructor(private readonly max = 500) {
    super();
    this.setMaxListeners(0);
  }

  add(pop: ScreenPop): ScreenPop {
    this.pops.set(pop.id, pop);
    while (this.pops.size > this.max) this.pops.delete(this.pops.keys().next().value!);
    this.emit('pop', pop);
    return pop;
  }

  update(id: string, patch: Partial<Omit<ScreenPop, 'id'>>): ScreenPop | undefined {
    const p = this.pops.get(id);
    if (!p) return undefined;
    Object.assign(p, patch);
    this.emit('update', p);
    return p;
  }

  get(id: string): ScreenPop | undefined {
    return this.pops.get(id);
  }

  /** Newest first; `extension` keeps the pops for that rep/queue extension. */
  list(filter: { extension?: string } = {}): ScreenPop[] {
    const all = [...this.pops.values()].reverse();
    return filter.extension ? all.filter((p) => p.target.extension === filter.extension) : all;
  }
}
