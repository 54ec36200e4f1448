/**
 * The outcome benchmark's judge: what happened to a call, read from outside the agent.
 *
 * - orders: voice order rows in the CRM/ERP SQLite file whose idempotency key starts with the
 *   call's SIP Call-ID (`<callId>:order:<n>`), with their lines. The booked lines must be exactly
 *   the caller's intent; any other voice order of the call is a WRONG ORDER (in every lane).
 * - after-hours messages: a case row keyed by the call (`<callId>:msg:<n>`) with the caller's
 *   callback number.
 * - hand-offs: a `handoff` activity of the call in the CRM AND the rep's phone that received
 *   the INVITE carrying the same screen-pop id (`handoff:<pop id>` ↔ X-Screen-Pop-Id); routing
 *   also needs the right extension.
 * - order status writes nothing: the caller's ear decides (its own transcription of the agent's
 *   answers after the request must say the order's state).
 */
import Database from 'better-sqlite3';
import type { Intent, CallerState } from './lanes.ts';
import { CALLER } from './lanes.ts';
import type { RepPhones, RepInvite } from './rep.ts';

export interface Verdict {
  success: boolean;
  wrongOrder: boolean;
  /** the call reached a rep (whatever the lane) */
  handedOff?: boolean;
  detail: string;
}

interface OrderRow { order_number: string; sku: string; qty: number }

export class Judge {
  constructor(private readonly db: string, private readonly reps: RepPhones) {}

  private rows<T>(sql: string, ...args: unknown[]): T[] {
    const d = new Database(this.db, { readonly: true, fileMustExist: true });
    try {
      d.pragma('busy_timeout = 2000');
      return d.prepare(sql).all(...args) as T[];
    } finally {
      d.close();
    }
  }

  private orders(callId: string): Map<string, Array<{ sku: string; qty: number }>> {
    const r = this.rows<OrderRow>(
      `SELECT o.order_number, l.sku, l.qty FROM orders o JOIN order_lines l ON l.order_number = o.order_number
       WHERE o.source = 'voice' AND substr(o.idempotency_key, 1, ?) = ? ORDER BY o.order_number, l.line`,
      callId.length + 1, `${callId}:`,
    );
    const m = new Map<string, Array<{ sku: string; qty: number }>>();
    for (const x of r) m.set(x.order_number, [...(m.get(x.order_number) ?? []), { sku: x.sku, qty: x.qty }]);
    return m;
  }

  private handoff(callId: string): RepInvite | undefined {
    const acts = this.rows<{ idempotency_key: string | null; target: string | null }>(
      "SELECT idempotency_key, target FROM activities WHERE call_id = ? AND kind = 'handoff'", callId);
    for (const a of acts) {
      const pop = /^handoff:(.+)$/.exec(a.idempotency_key ?? '')?.[1];
      const inv = pop ? this.reps.invites.find((i) => i.popId === pop) : undefined;
      if (inv) return inv;
    }
    return undefined;
  }

  /** The verdict so far (cheap; called after every agent turn). */
  async check(callId: string, intent: Intent, heard: string[], st?: CallerState): Promise<Verdict> {
    if (!callId) return { success: false, wrongOrder: false, detail: 'no call' };
    const orders = this.orders(callId);
    const inv = this.handoff(callId);
    const handedOff = inv !== undefined;
    const wantLines = intent.kind === 'order' ? [{ sku: intent.sku, qty: intent.qty }] : [];
    const fmt = (l: Array<{ sku: string; qty: number }>): string => l.map((x) => `${x.qty}×${x.sku}`).join('+');
    const wrong = [...orders.values()].filter((l) => fmt(l) !== fmt(wantLines) || intent.kind !== 'order');
    if (wrong.length) return { success: false, wrongOrder: true, handedOff, detail: `WRONG ORDER ${wrong.map(fmt).join(', ')}${wantLines.length ? ` (wanted ${fmt(wantLines)})` : ''}` };
    switch (intent.kind) {
      case 'order': {
        if (orders.size === 1) return { success: true, wrongOrder: false, handedOff, detail: `order ${fmt(wantLines)}` };
        if (orders.size > 1) return { success: false, wrongOrder: false, handedOff, detail: `${orders.size} orders booked` };
        return { success: false, wrongOrder: false, handedOff, detail: handedOff ? `handed off to ${inv!.extension} instead` : 'no order' };
      }
      case 'reject': {
        const ok = st?.rejected === true;
        return { success: ok, wrongOrder: false, handedOff, detail: ok ? 'rejected, no order' : handedOff ? `handed off to ${inv!.extension} instead` : 'no read-back to reject' };
      }
      case 'status': {
        const hit = heard.find((h) => intent.expect.test(h) && !/place the order|shall i place/.test(h));
        return { success: hit !== undefined, wrongOrder: false, handedOff, detail: hit !== undefined ? `status heard: "${hit.slice(0, 80)}"` : handedOff ? `handed off to ${inv!.extension} instead` : `status not heard${heard.length ? ` (heard "${heard.join(' | ').slice(0, 120)}")` : ''}` };
      }
      case 'handoff': {
        if (!inv) return { success: false, wrongOrder: false, handedOff, detail: 'no hand-off' };
        const ok = !intent.extensions || intent.extensions.includes(inv.extension);
        return { success: ok, wrongOrder: false, handedOff, detail: ok ? `handed off to ${inv.extension}` : `handed off to ${inv.extension}, wanted ${intent.extensions!.join('/')}` };
      }
      case 'message': {
        const cases = this.rows<{ kind: string; callback_number: string }>(
          'SELECT kind, callback_number FROM cases WHERE substr(idempotency_key, 1, ?) = ?', callId.length + 1, `${callId}:`);
        const ok = cases.find((c) => c.callback_number.replace(/\D/g, '') === CALLER.digits);
        return { success: ok !== undefined, wrongOrder: false, handedOff, detail: ok ? `case (${ok.kind})` : cases.length ? `case with callback ${cases[0]!.callback_number}` : handedOff ? `handed off to ${inv!.extension} instead` : 'no case' };
      }
    }
  }

  /** The final verdict: the reps' INVITEs, activities and cases (through the job queue) may land a moment after the call. */
  async final(callId: string, intent: Intent, heard: string[], st: CallerState): Promise<Verdict> {
    let v = await this.check(callId, intent, heard, st);
    for (let i = 0; i < 30 && !v.success && !v.wrongOrder && (intent.kind === 'message' || intent.kind === 'handoff' || v.handedOff === false); i++) {
      await new Promise((r) => setTimeout(r, 100));
      v = await this.check(callId, intent, heard, st);
      if (intent.kind !== 'message' && intent.kind !== 'handoff' && i >= 5) break;
    }
    return v;
  }
}
