/**
 * The embedded CDR store: one SQLite file (better-sqlite3, WAL, `synchronous=NORMAL`), one
 * table `cdr`. Scalar fields are columns (what operators filter and sort on); nested ones
 * (transcript, media, cost, outcomes, detail) are JSON text. Times are ISO 8601 UTC text,
 * which sorts and compares as time.
 *
 * better-sqlite3 is synchronous: each write is a few hundred µs on the JS thread, at answer,
 * at most once a second while a call talks, and at hang-up. Audio is not on this thread.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CdrFilter, CdrRecord, CdrStore, RetentionPolicy } from './types.ts';

/** field → column; `json` columns hold JSON text (the PostgreSQL store shares this list: src/cdr/postgres.ts). */
export const COLUMNS: ReadonlyArray<[keyof CdrRecord, string, 'text' | 'int' | 'real' | 'json']> = [
  ['id', 'id', 'text'],
  ['sipCallId', 'sip_call_id', 'text'],
  ['tenant', 'tenant', 'text'],
  ['trunk', 'trunk', 'text'],
  ['source', 'source', 'text'],
  ['fromNumber', 'from_number', 'text'],
  ['toNumber', 'to_number', 'text'],
  ['accountId', 'account_id', 'text'],
  ['accountName', 'account_name', 'text'],
  ['contactId', 'contact_id', 'text'],
  ['contactName', 'contact_name', 'text'],
  ['status', 'status', 'text'],
  ['incompleteReason', 'incomplete_reason', 'text'],
  ['startedAt', 'started_at', 'text'],
  ['answeredAt', 'answered_at', 'text'],
  ['endedAt', 'ended_at', 'text'],
  ['updatedAt', 'updated_at', 'text'],
  ['durationMs', 'duration_ms', 'int'],
  ['hangupBy', 'hangup_by', 'text'],
  ['endReason', 'end_reason', 'text'],
  ['sipStatus', 'sip_status', 'int'],
  ['releaseCause', 'release_cause', 'text'],
  ['outcome', 'outcome', 'text'],
  ['outcomeRef', 'outcome_ref', 'text'],
  ['outcomes', 'outcomes', 'json'],
  ['escalationTrigger', 'escalation_trigger', 'text'],
  ['escalationTarget', 'escalation_target', 'text'],
  ['escalationReason', 'escalation_reason', 'text'],
  ['escalationOutcome', 'escalation_outcome', 'text'],
  ['agent', 'agent', 'text'],
  ['language', 'language', 'text'],
  ['turns', 'turns', 'int'],
  ['bargeIns', 'barge_ins', 'int'],
  ['transcript', 'transcript', 'json'],
  ['media', 'media', 'json'],
  ['gapP50Ms', 'gap_p50_ms', 'int'],
  ['gapP95Ms', 'gap_p95_ms', 'int'],
  ['carrierSeconds', 'carrier_seconds', 'real'],
  ['sttSeconds', 'stt_seconds', 'real'],
  ['llmPromptTokens', 'llm_prompt_tokens', 'int'],
  ['llmCompletionTokens', 'llm_completion_tokens', 'int'],
  ['ttsChars', 'tts_chars', 'int'],
  ['cost', 'cost', 'json'],
  ['detail', 'detail', 'json'],
  // recording and consent (src/consent); added to an existing file at the next start
  ['recordingPosture', 'recording_posture', 'text'],
  ['jurisdiction', 'jurisdiction', 'text'],
  ['consent', 'consent', 'text'],
  ['consentAt', 'consent_at', 'text'],
  ['recordingPath', 'recording_path', 'text'],
];
const BY_FIELD = new Map(COLUMNS.map(([f, c, k]) => [f as string, { col: c, kind: k }]));

const SQL_TYPE = { text: 'TEXT', int: 'INTEGER', real: 'REAL', json: 'TEXT' } as const;

/** The table, as created (kept portable: plain types, no SQLite-only syntax beyond IF NOT EXISTS). */
export const CDR_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS cdr (\n  ${COLUMNS.map(([, c, k]) => `${c} ${SQL_TYPE[k]}${c === 'id' ? ' PRIMARY KEY' : ''}`).join(',\n  ')},\n  owner TEXT,\n  cost_total REAL,\n  currency TEXT\n)`,
  'CREATE INDEX IF NOT EXISTS cdr_started ON cdr (started_at)',
  'CREATE INDEX IF NOT EXISTS cdr_tenant_started ON cdr (tenant, started_at)',
  'CREATE INDEX IF NOT EXISTS cdr_sip_call_id ON cdr (sip_call_id)',
  'CREATE INDEX IF NOT EXISTS cdr_status ON cdr (status)',
];

export interface SqliteCdrStoreOptions {
  /** file path (its directory is created), or ':memory:' */
  file: string;
  /** who writes (host:pid:start); rows inserted carry it, for crash recovery. @defaultValue '' */
  owner?: string;
  /** open read-only (the CLI). @defaultValue false */
  readonly?: boolean;
}

type Row = Record<string, unknown>;

export class SqliteCdrStore implements CdrStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly owner: string;

  constructor(opts: SqliteCdrStoreOptions) {
    this.file = opts.file;
    this.owner = opts.owner ?? '';
    if (opts.readonly) {
      this.db = new Database(opts.file, { readonly: true, fileMustExist: true, timeout: 5000 });
      return;
    }
    if (opts.file !== ':memory:') mkdirSync(path.dirname(path.resolve(opts.file)), { recursive: true });
    this.db = new Database(opts.file, { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    for (const s of CDR_SCHEMA) this.db.exec(s);
    // a file from an older version: add the columns it lacks (new fields are nullable)
    const have = new Set(this.db.prepare<{ name: string }>('PRAGMA table_info(cdr)').all().map((c) => c.name));
    for (const [, c, k] of COLUMNS) if (!have.has(c)) this.db.exec(`ALTER TABLE cdr ADD COLUMN ${c} ${SQL_TYPE[k]}`);
  }

  async insert(r: CdrRecord): Promise<void> {
    const cols = COLUMNS.map(([, c]) => c);
    const vals = COLUMNS.map(([f, , k]) => toSql(r[f], k));
    this.db.prepare(`INSERT INTO cdr (${cols.join(', ')}, owner, cost_total, currency) VALUES (${cols.map(() => '?').join(', ')}, ?, ?, ?)`)
      .run(...vals, this.owner, r.cost?.total ?? null, r.cost?.currency ?? null);
  }

  async update(id: string, patch: Partial<Omit<CdrRecord, 'id'>>): Promise<void> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    for (const [f, v] of Object.entries(patch)) {
      const c = BY_FIELD.get(f);
      if (!c || f === 'id' || v === undefined) continue;
      sets.push(`${c.col} = ?`);
      vals.push(toSql(v, c.kind));
      if (f === 'cost') {
        const cost = v as CdrRecord['cost'];
        sets.push('cost_total = ?', 'currency = ?');
        vals.push(cost?.total ?? null, cost?.currency ?? null);
      }
    }
    if (sets.length === 0) return;
    this.db.prepare(`UPDATE cdr SET ${sets.join(', ')} WHERE id = ?`).run(...vals, id);
  }

  async get(idOrSipCallId: string): Promise<CdrRecord | null> {
    const row = this.db.prepare('SELECT * FROM cdr WHERE id = ?').get(idOrSipCallId)
      ?? this.db.prepare('SELECT * FROM cdr WHERE sip_call_id = ? ORDER BY started_at DESC LIMIT 1').get(idOrSipCallId);
    return row ? fromRow(row) : null;
  }

  async list(f: CdrFilter = {}): Promise<CdrRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (f.tenant) { where.push('tenant = ?'); args.push(f.tenant); }
    if (f.since) { where.push('started_at >= ?'); args.push(f.since); }
    if (f.until) { where.push('started_at < ?'); args.push(f.until); }
    if (f.outcome) { where.push('outcome = ?'); args.push(f.outcome); }
    if (f.status) { where.push('status = ?'); args.push(f.status); }
    if (f.idPrefix) { where.push("id LIKE ? ESCAPE '\\'"); args.push(`${f.idPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`); }
    if (f.caller) {
      const digits = f.caller.replace(/\D/g, '');
      where.push("from_number LIKE ? ESCAPE '\\'");
      args.push(`%${(digits || f.caller).replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    const limit = f.limit && f.limit > 0 ? ` LIMIT ${Math.floor(f.limit)}` : '';
    const sql = `SELECT * FROM cdr${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id${limit}`;
    return this.db.prepare(sql).all(...args).map(fromRow);
  }

  async closeAbandoned(isLive: (owner: string) => boolean, reason: (owner: string, updatedAt: string) => string): Promise<number> {
    const open = this.db.prepare<{ id: string; owner: string | null; updated_at: string }>(
      "SELECT id, owner, updated_at FROM cdr WHERE status = 'open'").all();
    const mark = this.db.prepare("UPDATE cdr SET status = 'incomplete', incomplete_reason = ? WHERE id = ? AND status = 'open'");
    let n = 0;
    const tx = this.db.transaction(() => {
      for (const r of open) {
        const owner = r.owner ?? '';
        if (owner === this.owner || isLive(owner)) continue;
        n += mark.run(reason(owner, r.updated_at), r.id).changes;
      }
    });
    tx();
    return n;
  }

  async purge(policy: RetentionPolicy, now: Date = new Date()): Promise<number> {
    const cutoff = (days: number): string => new Date(now.getTime() - days * 86_400_000).toISOString();
    const listed = Object.keys(policy.tenants);
    let n = 0;
    const tx = this.db.transaction(() => {
      for (const [tenant, days] of Object.entries(policy.tenants)) {
        if (days > 0) n += this.db.prepare('DELETE FROM cdr WHERE tenant = ? AND started_at < ?').run(tenant, cutoff(days)).changes;
      }
      if (policy.defaultDays > 0) {
        const not = listed.length ? ` AND tenant NOT IN (${listed.map(() => '?').join(', ')})` : '';
        n += this.db.prepare(`DELETE FROM cdr WHERE started_at < ?${not}`).run(cutoff(policy.defaultDays), ...listed).changes;
      }
    });
    tx();
    return n;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

/** A record field as the SQL value of its column kind (null for missing; JSON text for nested). */
export function toSql(v: unknown, kind: 'text' | 'int' | 'real' | 'json'): unknown {
  if (v === undefined || v === null) return null;
  if (kind === 'json') return JSON.stringify(v);
  if (kind === 'int') return Math.round(Number(v));
  if (kind === 'real') return Number(v);
  return String(v);
}

function fromRow(row: Row): CdrRecord {
  const out: Record<string, unknown> = {};
  for (const [f, c, k] of COLUMNS) {
    const v = row[c];
    if (k === 'json') {
      out[f] = typeof v === 'string' ? JSON.parse(v) : null;
    } else {
      out[f] = v === undefined ? null : v;
    }
  }
  out.outcomes ??= [];
  out.transcript ??= [];
  out.detail ??= {};
  return out as unknown as CdrRecord;
}
