/**
 * The built-in CRM/ERP data store: SQLite through better-sqlite3, one method per MCP tool.
 * Methods return plain JSON objects (the tool results of the contract) and throw
 * {@link CrmErpError} for invalid input (unknown SKU, quantity ≤ 0, unknown account…),
 * which the MCP layer turns into an error result rather than a crash.
 */
import Database from 'better-sqlite3';
import { SCHEMA, seedDatabase, e164Digits, skuKey, poKey, round2, TIER_DISCOUNT, FIRST_CASE_SEQ } from './seed.ts';
import { addBusinessDays, localDate, localParts, isoInZone, zonedInstant, weekdayName, addDays } from './time.ts';

/**
 * Activities logged on accounts (hand-offs to reps with their screen pop summary, …).
 * Created here rather than in the seed schema so databases seeded before the table existed
 * (a `CRM_DB` file) get it on open.
 */
export const ACTIVITY_SCHEMA = `
CREATE TABLE IF NOT EXISTS activities (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, account_id TEXT REFERENCES accounts(id),
  contact_id TEXT REFERENCES contacts(id), kind TEXT NOT NULL, call_id TEXT NOT NULL, summary TEXT NOT NULL,
  reason TEXT, transcript TEXT, target TEXT, created_at TEXT NOT NULL, idempotency_key TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS activities_call ON activities(call_id);
CREATE INDEX IF NOT EXISTS activities_account ON activities(account_id, seq);
`;

/** First activity number (`ACT-900001`). */
export const FIRST_ACTIVITY_SEQ = 900001;

/** Activity kinds: a lower-case word (`handoff`, `transfer_failed`, `callback`, `note`…). */
const ACTIVITY_KIND = /^[a-z][a-z0-9_-]{0,39}$/;

/** Input of {@link CrmErpStore.logActivity} (the `log_activity` tool). */
export interface LogActivityArgs {
  account_id?: string;
  contact_id?: string;
  kind: string;
  call_id: string;
  summary: string;
  reason?: string;
  transcript?: string;
  target?: string;
  idempotency_key?: string;
}

/** Invalid input to a CRM/ERP tool; the message is meant for the caller (and the model). */
export class CrmErpError extends Error {
  override name = 'CrmErpError';
}

export interface CrmErpStoreOptions {
  /**
   * SQLite database: a file path (created and seeded when empty), `':memory:'`, or an
   * open better-sqlite3 handle.
   * @defaultValue process.env.CRM_DB, else `':memory:'` (seeded at start)
   */
  db?: string | Database.Database;
  /** Clock for "today", ship dates and business hours (tests inject a fixed instant). @defaultValue `() => new Date()` */
  now?: () => Date;
}

type Row = Record<string, any>;

export interface AccountRef { id: string; name: string; number: string; tier: string }
export interface ContactRef { id: string; name: string; phone: string; language: string }

/** Phone number candidates in E.164 digits for a caller id in any common form. */
export function phoneCandidates(raw: string): string[] {
  let s = raw.trim();
  // sip:/sips:/tel: URIs (possibly inside a name-addr): keep the user part
  const uri = /(?:sips?|tel):([^@;>\s]+)/i.exec(s);
  if (uri) s = uri[1]!;
  else if (s.includes('@')) s = s.split('@')[0]!;
  let d = s.replace(/\D/g, '');
  if (d.startsWith('011')) d = d.slice(3);
  else if (d.startsWith('00')) d = d.slice(2);
  if (d.length === 0) return [];
  const out = [d];
  if (d.length === 10 && !s.trim().startsWith('+')) out.push('1' + d); // NANP national form
  if (d.length === 11 && d.startsWith('1')) out.push(d.slice(1));
  return out;
}

export class CrmErpStore {
  readonly db: Database.Database;
  readonly now: () => Date;
  private readonly ownsDb: boolean;

  constructor(opts: CrmErpStoreOptions = {}) {
    this.now = opts.now ?? (() => new Date());
    const src = opts.db ?? process.env.CRM_DB ?? ':memory:';
    if (typeof src === 'string') {
      this.db = new Database(src);
      this.ownsDb = true;
      if (src !== ':memory:') this.db.pragma('journal_mode = WAL');
    } else {
      this.db = src;
      this.ownsDb = false;
    }
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    this.db.exec(ACTIVITY_SCHEMA);
    const seeded = this.db.prepare("SELECT value FROM meta WHERE key = 'seeded_on'").get();
    if (!seeded) seedDatabase(this.db, this.today('America/Los_Angeles'));
  }

  close(): void {
    if (this.ownsDb && this.db.open) this.db.close();
  }

  /** Local date of the store's clock in `tz`. */
  today(tz: string): string {
    return localDate(this.now(), tz);
  }

  // ---------------------------------------------------------------- lookups

  /** Account by id / number in any spoken form (`ACC-10042`, `acc 10042`, `10042`). */
  resolveAccount(id: string | undefined | null): Row | undefined {
    if (!id) return undefined;
    const digits = id.replace(/\D/g, '');
    const exact = this.db.prepare('SELECT * FROM accounts WHERE id = ? OR number = ?').get(id.trim().toUpperCase(), id.trim().toUpperCase());
    if (exact) return exact;
    if (digits.length >= 4) return this.db.prepare("SELECT * FROM accounts WHERE replace(number, 'ACC-', '') = ?").get(digits);
    return undefined;
  }

  private requireAccount(id: string): Row {
    const a = this.resolveAccount(id);
    if (!a) throw new CrmErpError(`unknown account "${id}"`);
    return a;
  }

  private accountRef(a: Row): AccountRef {
    return { id: a.id, name: a.name, number: a.number, tier: a.tier };
  }

  private sku(code: string): Row | undefined {
    return this.db.prepare('SELECT * FROM skus WHERE sku_key = ?').get(skuKey(code));
  }

  private priceFor(sku: Row, account: Row | undefined): number {
    const disc = account ? (TIER_DISCOUNT[account.tier] ?? 0) : 0;
    return round2(sku.price * (1 - disc));
  }

  // ---------------------------------------------------------------- tools

  /** identify_caller: contact (or account main line) by calling number in any form. */
  identifyCaller(phone: string): { found: boolean; account?: AccountRef; contact?: ContactRef } {
    const cands = phoneCandidates(phone);
    for (const c of cands) {
      const con = this.db.prepare('SELECT * FROM contacts WHERE phone_digits = ?').get(c);
      if (con) {
        const a = this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(con.account_id)!;
        return { found: true, account: this.accountRef(a), contact: { id: con.id, name: con.name, phone: con.phone, language: con.language } };
      }
    }
    for (const c of cands) {
      const a = this.db.prepare("SELECT * FROM accounts WHERE replace(phone, '+', '') = ?").get(c);
      if (a) return { found: true, account: this.accountRef(a) };
    }
    // national trunk-prefix form outside NANP, e.g. 02079460123 for +44 20 7946 0123
    const d = cands[0];
    if (d && d.startsWith('0') && d.length >= 9) {
      const tail = d.slice(1);
      const con = this.db.prepare("SELECT * FROM contacts WHERE phone_digits LIKE '%' || ? AND length(phone_digits) <= length(?) + 3").get(tail, tail);
      if (con) {
        const a = this.db.prepare('SELECT * FROM accounts WHERE id = ?').get(con.account_id)!;
        return { found: true, account: this.accountRef(a), contact: { id: con.id, name: con.name, phone: con.phone, language: con.language } };
      }
    }
    return { found: false };
  }

  /** find_sku: by code (`HX-4410`, `hx 4410`, `H X 4 4 1 0`) or by words; account prices when account_id is given. */
  findSku(query: string, accountId?: string): { matches: Array<{ sku: string; description: string; uom: string; price: number }> } {
    const account = accountId ? this.resolveAccount(accountId) : undefined;
    const out = (rows: Row[]): { matches: Array<{ sku: string; description: string; uom: string; price: number }> } => ({
      matches: rows.slice(0, 5).map((r) => ({ sku: r.sku, description: r.description, uom: r.uom, price: this.priceFor(r, account) })),
    });
    const key = skuKey(query);
    if (key.length >= 3) {
      const exact = this.db.prepare('SELECT * FROM skus WHERE sku_key = ?').get(key);
      if (exact) return out([exact]);
      // a code embedded in a sentence: "the HX 4410 valve"
      const all = this.db.prepare('SELECT * FROM skus').all();
      const embedded = all.filter((r) => key.includes(r.sku_key));
      if (embedded.length > 0) return out(embedded);
      // digits alone ("forty-four ten" transcribed as 4410): match the numeric part of the code
      const digits = query.replace(/\D/g, '');
      if (digits.length >= 4 && /^[\d\s-]+$/.test(query.trim())) {
        const byDigits = all.filter((r) => r.sku_key.replace(/\D/g, '') === digits);
        if (byDigits.length > 0) return out(byDigits);
      }
    }
    const words = tokenize(query);
    if (words.length === 0) return { matches: [] };
    const ordered = new Set<string>();
    if (account) {
      for (const r of this.db.prepare('SELECT DISTINCT l.sku FROM order_lines l JOIN orders o ON o.order_number = l.order_number WHERE o.account_id = ?').all(account.id)) {
        ordered.add(r.sku);
      }
    }
    const scored: Array<{ r: Row; score: number }> = [];
    for (const r of this.db.prepare('SELECT * FROM skus').all()) {
      const hay = new Set(tokenize(`${r.description} ${r.keywords} ${r.category}`));
      let score = 0;
      for (const w of words) if (hay.has(w)) score += w.length <= 2 ? 0.5 : 1;
      if (score > 0 && ordered.has(r.sku)) score += 0.25;
      if (score > 0) scored.push({ r, score });
    }
    if (scored.length === 0) return { matches: [] };
    scored.sort((a, b) => b.score - a.score || (a.r.sku < b.r.sku ? -1 : 1));
    const best = scored[0]!.score;
    // keep the close contenders only: a query naming size, material and kind should not list every valve
    return out(scored.filter((s) => s.score >= best - 0.5).map((s) => s.r));
  }

  /** last_orders: the account's most recent orders, newest first. */
  lastOrders(accountId: string, limit = 3): { orders: Array<{ order_number: string; po_number: string | null; date: string; status: string; lines: Array<{ sku: string; description: string; qty: number }> }> } {
    const a = this.requireAccount(accountId);
    const n = Math.max(1, Math.min(20, Math.floor(limit)));
    const orders = this.db.prepare('SELECT * FROM orders WHERE account_id = ? ORDER BY date DESC, seq DESC LIMIT ?').all(a.id, n);
    return {
      orders: orders.map((o) => ({
        order_number: o.order_number, po_number: o.po_number, date: o.date, status: o.status,
        lines: this.db.prepare('SELECT l.sku, s.description, l.qty FROM order_lines l JOIN skus s ON s.sku = l.sku WHERE l.order_number = ? ORDER BY l.line')
          .all(o.order_number).map((l) => ({ sku: l.sku, description: l.description, qty: l.qty })),
      })),
    };
  }

  /** check_atp: available-to-promise and ship date for `qty` of `sku` (home warehouse first). */
  checkAtp(skuCode: string, qty: number, accountId?: string): {
    sku: string; qty: number; available: boolean; warehouse: string; available_qty: number; ship_date: string; lead_time_days: number;
  } {
    const s = this.sku(skuCode);
    if (!s) throw new CrmErpError(`unknown SKU "${skuCode}"`);
    checkQty(qty);
    const account = accountId ? this.resolveAccount(accountId) : undefined;
    const rows = this.db.prepare(`SELECT st.warehouse, st.on_hand - st.allocated AS atp, w.timezone, w.handling_days
      FROM stock st JOIN warehouses w ON w.id = st.warehouse WHERE st.sku = ? ORDER BY st.warehouse`).all(s.sku);
    const home = account?.home_warehouse as string | undefined;
    // the home warehouse when it can ship all of it; else the warehouse with the most stock
    const byStock = [...rows].sort((a, b) => b.atp - a.atp || (a.warehouse < b.warehouse ? -1 : 1));
    const homeRow = rows.find((r) => r.warehouse === home);
    const pick = homeRow && homeRow.atp >= qty ? homeRow : byStock[0]!;
    const available = pick.atp >= qty;
    const lead = available ? pick.handling_days : s.lead_time_days;
    const today = this.today(pick.timezone);
    return {
      sku: s.sku, qty, available, warehouse: pick.warehouse, available_qty: Math.max(0, pick.atp),
      ship_date: addBusinessDays(today, lead), lead_time_days: lead,
    };
  }

  /** place_order: validated sales order; the same idempotency key returns the same order. */
  placeOrder(args: { account_id: string; lines: Array<{ sku: string; qty: number }>; po_number?: string; idempotency_key: string }): {
    order_number: string; status: 'booked'; ship_date: string; total: number; duplicate?: boolean;
  } {
    if (!args.idempotency_key || !args.idempotency_key.trim()) throw new CrmErpError('idempotency_key is required');
    const prior = this.db.prepare('SELECT * FROM orders WHERE idempotency_key = ?').get(args.idempotency_key);
    if (prior) return { order_number: prior.order_number, status: 'booked', ship_date: prior.ship_date, total: prior.total, duplicate: true };
    const a = this.requireAccount(args.account_id);
    if (!Array.isArray(args.lines) || args.lines.length === 0) throw new CrmErpError('an order needs at least one line');
    const lines = args.lines.map((l, i) => {
      const s = this.sku(String(l.sku ?? ''));
      if (!s) throw new CrmErpError(`line ${i + 1}: unknown SKU "${l.sku}"`);
      try {
        checkQty(l.qty);
      } catch (e) {
        throw new CrmErpError(`line ${i + 1} (${s.sku}): ${(e as Error).message}`);
      }
      return { s, qty: l.qty };
    });
    const po = args.po_number?.trim() || null;
    return this.db.transaction(() => {
      const raced = this.db.prepare('SELECT * FROM orders WHERE idempotency_key = ?').get(args.idempotency_key);
      if (raced) return { order_number: raced.order_number as string, status: 'booked' as const, ship_date: raced.ship_date as string, total: raced.total as number, duplicate: true };
      let ship = '';
      let total = 0;
      const priced = lines.map(({ s, qty }) => {
        const atp = this.checkAtp(s.sku, qty, a.id);
        if (atp.ship_date > ship) ship = atp.ship_date;
        if (atp.available) this.db.prepare('UPDATE stock SET allocated = allocated + ? WHERE sku = ? AND warehouse = ?').run(qty, s.sku, atp.warehouse);
        const price = this.priceFor(s, a);
        total += price * qty;
        return { sku: s.sku, qty, price };
      });
      total = round2(total);
      const seq = (this.db.prepare('SELECT max(seq) AS m FROM orders').get()!.m as number ?? 500000) + 1;
      const orderNumber = `SO-${seq}`;
      const now = this.now();
      this.db.prepare(`INSERT INTO orders (order_number, seq, account_id, po_number, po_key, po_digits, date, status, warehouse,
        ship_date, total, source, idempotency_key, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`).run(
        orderNumber, seq, a.id, po, po ? poKey(po) : null, po ? po.replace(/\D/g, '') : null,
        localDate(now, 'America/Los_Angeles'), 'booked', a.home_warehouse, ship, total, 'voice', args.idempotency_key, now.toISOString());
      priced.forEach((l, k) => this.db.prepare('INSERT INTO order_lines VALUES (?,?,?,?,?)').run(orderNumber, k + 1, l.sku, l.qty, l.price));
      return { order_number: orderNumber, status: 'booked' as const, ship_date: ship, total };
    }).immediate(); // write lock up front: two processes sharing a CRM_DB file cannot interleave
  }

  /** order_status: by PO number (any spoken/typed form), order number, or the account's latest order. */
  orderStatus(args: { po_number?: string; order_number?: string; account_id?: string }): {
    found: boolean; order_number?: string; po_number?: string | null; status?: string; carrier?: string; tracking_number?: string;
    ship_date?: string; eta?: string; account_id?: string; matches?: number;
  } {
    const account = args.account_id ? this.resolveAccount(args.account_id) : undefined;
    let rows: Row[] = [];
    if (args.order_number) {
      const digits = args.order_number.replace(/\D/g, '');
      if (digits) rows = this.db.prepare('SELECT * FROM orders WHERE seq = ?').all(Number(digits));
    } else if (args.po_number) {
      const key = poKey(args.po_number);
      rows = this.db.prepare('SELECT * FROM orders WHERE po_key = ? ORDER BY date DESC').all(key);
      if (rows.length === 0 && /^\d+$/.test(key)) rows = this.db.prepare('SELECT * FROM orders WHERE po_digits = ? ORDER BY date DESC').all(key);
    } else if (account) {
      rows = this.db.prepare('SELECT * FROM orders WHERE account_id = ? ORDER BY date DESC, seq DESC LIMIT 1').all(account.id);
    } else {
      throw new CrmErpError('give a po_number, an order_number or an account_id');
    }
    if (account && rows.length > 1) {
      const mine = rows.filter((r) => r.account_id === account.id);
      if (mine.length > 0) rows = mine;
    }
    const o = rows[0];
    if (!o) return { found: false };
    const res: ReturnType<CrmErpStore['orderStatus']> = {
      found: true, order_number: o.order_number, po_number: o.po_number, status: o.status, account_id: o.account_id,
    };
    if (o.carrier) res.carrier = o.carrier;
    if (o.tracking_number) res.tracking_number = o.tracking_number;
    if (o.ship_date) res.ship_date = o.ship_date;
    if (o.eta) res.eta = o.eta;
    if (rows.length > 1) res.matches = rows.length;
    return res;
  }

  /** create_case: a CRM case; the same idempotency key returns the same case. */
  createCase(args: {
    account_id?: string; caller_name: string; callback_number: string; reason: string;
    kind: string; transcript?: string; idempotency_key: string;
  }): { case_number: string; duplicate?: boolean } {
    if (!args.idempotency_key || !args.idempotency_key.trim()) throw new CrmErpError('idempotency_key is required');
    const prior = this.db.prepare('SELECT case_number FROM cases WHERE idempotency_key = ?').get(args.idempotency_key);
    if (prior) return { case_number: prior.case_number, duplicate: true };
    if (!['after_hours_message', 'callback', 'handoff', 'general'].includes(args.kind)) throw new CrmErpError(`unknown case kind "${args.kind}"`);
    const a = args.account_id ? this.resolveAccount(args.account_id) : undefined;
    return this.db.transaction(() => {
      const raced = this.db.prepare('SELECT case_number FROM cases WHERE idempotency_key = ?').get(args.idempotency_key);
      if (raced) return { case_number: raced.case_number as string, duplicate: true };
      const seq = ((this.db.prepare('SELECT max(seq) AS m FROM cases').get()!.m as number | null) ?? FIRST_CASE_SEQ - 1) + 1;
      const caseNumber = `CS-${seq}`;
      this.db.prepare(`INSERT INTO cases (case_number, seq, account_id, caller_name, callback_number, reason, kind, transcript,
        idempotency_key, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)`).run(
        caseNumber, seq, a?.id ?? args.account_id ?? null, args.caller_name, args.callback_number, args.reason, args.kind,
        args.transcript ?? null, args.idempotency_key, this.now().toISOString());
      return { case_number: caseNumber };
    }).immediate();
  }

  /**
   * log_activity: an activity on the account (e.g. a hand-off to a rep with the screen pop
   * summary). The account is resolved in any spoken form, or taken from the contact; unknown
   * ids are refused. With an idempotency key, the same key returns the same activity (no
   * second row); without one every call adds a row.
   */
  logActivity(args: LogActivityArgs): { activity_id: string; duplicate?: boolean } {
    const key = args.idempotency_key?.trim() || undefined;
    const priorOf = (): { activity_id: string; duplicate: true } | undefined => {
      if (!key) return undefined;
      const prior = this.db.prepare('SELECT id FROM activities WHERE idempotency_key = ?').get(key);
      return prior ? { activity_id: prior.id as string, duplicate: true } : undefined;
    };
    const prior = priorOf();
    if (prior) return prior;
    const kind = String(args.kind ?? '').trim().toLowerCase();
    if (!ACTIVITY_KIND.test(kind)) throw new CrmErpError(`activity kind must be a word such as "handoff", got ${JSON.stringify(args.kind)}`);
    const callId = String(args.call_id ?? '').trim();
    if (!callId) throw new CrmErpError('call_id is required');
    const summary = String(args.summary ?? '').trim();
    if (!summary) throw new CrmErpError('summary is required');
    const accountArg = args.account_id?.trim() || undefined;
    const contactArg = args.contact_id?.trim() || undefined;
    const account = accountArg ? this.requireAccount(accountArg) : undefined;
    let contact: Row | undefined;
    if (contactArg) {
      contact = this.db.prepare('SELECT * FROM contacts WHERE id = ?').get(contactArg.toUpperCase());
      if (!contact) throw new CrmErpError(`unknown contact "${contactArg}"`);
      if (account && contact.account_id !== account.id) {
        throw new CrmErpError(`contact ${contact.id} (${contact.name}) belongs to account ${contact.account_id}, not ${account.id}`);
      }
    }
    const accountId = (account?.id ?? contact?.account_id ?? null) as string | null;
    const opt = (v: string | undefined): string | null => (v && v.trim() ? v : null);
    return this.db.transaction(() => {
      const raced = priorOf();
      if (raced) return raced;
      const seq = ((this.db.prepare('SELECT max(seq) AS m FROM activities').get()!.m as number | null) ?? FIRST_ACTIVITY_SEQ - 1) + 1;
      const id = `ACT-${seq}`;
      this.db.prepare(`INSERT INTO activities (id, seq, account_id, contact_id, kind, call_id, summary, reason, transcript, target,
        created_at, idempotency_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`).run(
        id, seq, accountId, contact?.id ?? null, kind, callId, summary, opt(args.reason), opt(args.transcript), opt(args.target),
        this.now().toISOString(), key ?? null);
      return { activity_id: id };
    }).immediate();
  }

  /** business_hours: open now (or at `at`) for the tenant; unknown tenants use the `default` hours. */
  businessHours(tenant?: string, at?: string): {
    open: boolean; timezone: string; opens_at?: string; closes_at?: string; next_open?: string; tenant: string; local_time: string; today_hours?: string;
  } {
    let t = tenant ?? 'default';
    let set = this.db.prepare('SELECT timezone FROM tenant_settings WHERE tenant = ?').get(t);
    if (!set) {
      t = 'default';
      set = this.db.prepare('SELECT timezone FROM tenant_settings WHERE tenant = ?').get(t)!;
    }
    const tz = set.timezone as string;
    let when = this.now();
    if (at) {
      when = new Date(at);
      if (Number.isNaN(when.getTime())) throw new CrmErpError(`"at" is not an ISO time: "${at}"`);
    }
    const hours = new Map<number, { opens: string; closes: string }>();
    for (const r of this.db.prepare('SELECT * FROM business_hours WHERE tenant = ?').all(t)) hours.set(r.weekday, { opens: r.opens, closes: r.closes });
    const lp = localParts(when, tz);
    const today = localDate(when, tz);
    const res: ReturnType<CrmErpStore['businessHours']> = { open: false, timezone: tz, tenant: t, local_time: isoInZone(when, tz) };
    const h = hours.get(lp.weekday);
    if (h) {
      const opens = zonedInstant(today, h.opens, tz);
      const closes = zonedInstant(today, h.closes, tz);
      res.opens_at = isoInZone(opens, tz);
      res.closes_at = isoInZone(closes, tz);
      res.today_hours = `${h.opens}-${h.closes}`;
      if (when >= opens && when < closes) {
        res.open = true;
        return res;
      }
      if (when < opens) {
        res.next_open = isoInZone(opens, tz);
        return res;
      }
    }
    for (let i = 1; i <= 7; i++) {
      const d = addDays(today, i);
      const nh = hours.get((lp.weekday + i) % 7);
      if (nh) {
        res.next_open = isoInZone(zonedInstant(d, nh.opens, tz), tz);
        (res as Record<string, unknown>).next_open_day = weekdayName(lp.weekday + i);
        break;
      }
    }
    return res;
  }

  /** route_request: the rep or queue for a topic ("billing", "returns", "my rep", "sales"…). */
  routeRequest(topic: string, accountId?: string): { target: { kind: 'rep' | 'queue'; name: string; extension: string } } {
    const t = topic.toLowerCase();
    if (/\b(my|our|account)\s+(rep|representative|salesperson|account manager|manager)\b|\bmy rep\b/.test(t)) {
      const a = accountId ? this.resolveAccount(accountId) : undefined;
      const rep = a?.rep_id ? this.db.prepare('SELECT * FROM reps WHERE id = ?').get(a.rep_id) : undefined;
      if (rep) return { target: { kind: 'rep', name: rep.name, extension: rep.extension } };
      const q = this.db.prepare("SELECT * FROM queues WHERE id = 'Q-SALES'").get()!;
      return { target: { kind: 'queue', name: q.name, extension: q.extension } };
    }
    const words = new Set(tokenize(t));
    let best: Row | undefined;
    let bestScore = 0;
    for (const q of this.db.prepare('SELECT * FROM queues ORDER BY id').all()) {
      let score = 0;
      for (const k of String(q.topics).split(',')) {
        if (k.includes(' ') ? t.includes(k) : words.has(tokenize(k)[0] ?? k)) score++;
      }
      if (score > bestScore) { best = q; bestScore = score; }
    }
    const q = best ?? this.db.prepare("SELECT * FROM queues WHERE id = 'Q-CS'").get()!;
    return { target: { kind: 'queue', name: q.name, extension: q.extension } };
  }

  // ---------------------------------------------------------------- inspection (tests, ops)

  /** An order with its lines, or undefined. */
  getOrder(orderNumber: string): (Row & { lines: Row[] }) | undefined {
    const o = this.db.prepare('SELECT * FROM orders WHERE order_number = ?').get(orderNumber);
    if (!o) return undefined;
    return { ...o, lines: this.db.prepare('SELECT * FROM order_lines WHERE order_number = ? ORDER BY line').all(orderNumber) };
  }

  /** A case row, or undefined. */
  getCase(caseNumber: string): Row | undefined {
    return this.db.prepare('SELECT * FROM cases WHERE case_number = ?').get(caseNumber);
  }

  /** An activity row, or undefined. */
  getActivity(activityId: string): Row | undefined {
    return this.db.prepare('SELECT * FROM activities WHERE id = ?').get(activityId);
  }

  /** Activities, oldest first, optionally only those of one call and/or account. */
  listActivities(filter: { call_id?: string; account_id?: string } = {}): Row[] {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.call_id) { where.push('call_id = ?'); params.push(filter.call_id); }
    if (filter.account_id) { where.push('account_id = ?'); params.push(this.resolveAccount(filter.account_id)?.id ?? filter.account_id); }
    const sql = `SELECT * FROM activities${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`;
    return this.db.prepare(sql).all(...params);
  }

  /** Row counts, for tests asserting "no duplicate". */
  count(table: 'orders' | 'cases' | 'order_lines' | 'activities'): number {
    return this.db.prepare(`SELECT count(*) AS n FROM ${table}`).get()!.n as number;
  }

  /** Every SKU code, description and keywords (the agent's STT vocabulary is built from these). */
  vocabulary(): { skus: Array<{ sku: string; description: string; keywords: string }>; accounts: Array<{ number: string; name: string }> } {
    return {
      skus: this.db.prepare('SELECT sku, description, keywords FROM skus ORDER BY sku').all() as Array<{ sku: string; description: string; keywords: string }>,
      accounts: this.db.prepare('SELECT number, name FROM accounts ORDER BY number').all() as Array<{ number: string; name: string }>,
    };
  }
}

const STOP = new Set(['the', 'a', 'an', 'of', 'for', 'and', 'some', 'i', 'need', 'want', 'like', 'to', 'order', 'please', 'do', 'you', 'have', 'any', 'me', 'get', 'with', 'x', 'inch', 'in']);
const NUMBER_WORDS: Record<string, string> = {
  half: '1/2', quarter: '1/4', 'three-quarter': '3/4', 'three-quarters': '3/4', one: '1', two: '2', three: '3', four: '4',
};

/** Lower-case tokens with sizes normalised ("half inch" → "1/2", `1/2"` → "1/2"). */
function tokenize(s: string): string[] {
  const t = s.toLowerCase()
    .replace(/three[\s-]quarters?/g, '3/4').replace(/three[\s-]eighths?/g, '3/8')
    .replace(/(\d)\s*(?:"|in\b|inch(?:es)?\b)/g, '$1 inch')
    .replace(/[^a-z0-9/#.\s-]/g, ' ');
  const out: string[] = [];
  for (let w of t.split(/[\s,-]+/)) {
    w = w.replace(/^\.+|\.+$/g, '');
    if (!w) continue;
    w = NUMBER_WORDS[w] ?? w;
    if (w.endsWith('s') && w.length > 3 && !w.endsWith('ss')) w = w.slice(0, -1); // valves → valve
    if (!STOP.has(w)) out.push(w);
  }
  return out;
}

function checkQty(qty: unknown): void {
  if (typeof qty !== 'number' || !Number.isFinite(qty)) throw new CrmErpError(`quantity must be a number, got ${JSON.stringify(qty)}`);
  if (!Number.isInteger(qty)) throw new CrmErpError(`quantity must be a whole number, got ${qty}`);
  if (qty <= 0) throw new CrmErpError(`quantity must be greater than zero, got ${qty}`);
  if (qty > 100_000) throw new CrmErpError(`quantity ${qty} is more than one order line can take (100000)`);
}
