/**
 * The shared CDR store: PostgreSQL (Debian `postgresql`, client `pg`), for several voice-agent
 * nodes writing one call history. Same table and columns as the SQLite store (src/cdr/sqlite.ts,
 * `COLUMNS`): scalar fields are columns, nested ones JSONB, times ISO 8601 UTC text (sorts and
 * compares as time, exactly as in SQLite, so filters behave the same).
 *
 * Crash recovery across nodes: a row's `owner` is `<host>:<pid>:<start>`; a pid check only works
 * on the same host, so each store also beats a heartbeat into `cdr_writer` every
 * {@link HEARTBEAT_MS}. A row left `open` is abandoned when its owner is not running on this host
 * (the caller's `isLive`) and has not beaten for {@link STALE_MS}: a node starting up never closes
 * the live calls of another node.
 */
import pg from 'pg';
import { COLUMNS, toSql } from './sqlite.ts';
import type { CdrFilter, CdrRecord, CdrStore, RetentionPolicy } from './types.ts';

/** Heartbeat period of a writing store, ms. */
export const HEARTBEAT_MS = 10_000;
/** A writer silent this long is gone, ms. */
export const STALE_MS = 3 * HEARTBEAT_MS;

const BY_FIELD = new Map(COLUMNS.map(([f, c, k]) => [f as string, { col: c, kind: k }]));
const PG_TYPE = { text: 'TEXT', int: 'BIGINT', real: 'DOUBLE PRECISION', json: 'JSONB' } as const;

/** The schema, as created (idempotent). */
export const PG_CDR_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS cdr (\n  ${COLUMNS.map(([, c, k]) => `${c} ${PG_TYPE[k]}${c === 'id' ? ' PRIMARY KEY' : ''}`).join(',\n  ')},\n  owner TEXT,\n  cost_total DOUBLE PRECISION,\n  currency TEXT\n)`,
  'CREATE INDEX IF NOT EXISTS cdr_started ON cdr (started_at)',
  'CREATE INDEX IF NOT EXISTS cdr_tenant_started ON cdr (tenant, started_at)',
  'CREATE INDEX IF NOT EXISTS cdr_sip_call_id ON cdr (sip_call_id)',
  'CREATE INDEX IF NOT EXISTS cdr_status ON cdr (status)',
  'CREATE TABLE IF NOT EXISTS cdr_writer (owner TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL)',
];

export interface PostgresCdrStoreOptions {
  /** `postgres://user:password@host:port/db` (or `postgresql://`) */
  url: string;
  /** who writes (host:pid:start); rows inserted carry it, for crash recovery. @defaultValue '' */
  owner?: string;
  /** read only (the CLI): no schema changes, no heartbeat. @defaultValue false */
  readonly?: boolean;
  /** connections in the pool. @defaultValue 4 */
  poolSize?: number;
}

/** `postgres://user@host:port/db` — the URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

type Row = Record<string, unknown>;

export class PostgresCdrStore implements CdrStore {
  /** The URL without its password. */
  readonly file: string;
  private readonly pool: pg.Pool;
  private readonly owner: string;
  private timer: NodeJS.Timeout | null = null;

  private constructor(opts: PostgresCdrStoreOptions) {
    this.file = redactUrl(opts.url);
    this.owner = opts.owner ?? '';
    this.pool = new pg.Pool({ connectionString: opts.url, max: opts.poolSize ?? 4, connectionTimeoutMillis: 5000 });
    // an idle client losing its connection must not crash the process; the next query reconnects
    this.pool.on('error', () => {});
  }

  /** Connect, create the schema (unless read-only) and start the heartbeat. */
  static async open(opts: PostgresCdrStoreOptions): Promise<PostgresCdrStore> {
    const s = new PostgresCdrStore(opts);
    try {
      if (!opts.readonly) {
        const c = await s.pool.connect();
        try {
          // one node at a time creates or extends the schema
          await c.query('SELECT pg_advisory_lock(4711019)');
          for (const q of PG_CDR_SCHEMA) await c.query(q);
          for (const [, col, k] of COLUMNS) await c.query(`ALTER TABLE cdr ADD COLUMN IF NOT EXISTS ${col} ${PG_TYPE[k]}`);
        } finally {
          await c.query('SELECT pg_advisory_unlock(4711019)').catch(() => {});
          c.release();
        }
        if (s.owner) {
          await s.beat();
          s.timer = setInterval(() => { s.beat().catch(() => {}); }, HEARTBEAT_MS);
          s.timer.unref();
        }
      } else {
        await s.pool.query('SELECT 1');
      }
    } catch (err) {
      await s.pool.end().catch(() => {});
      throw err;
    }
    return s;
  }

  private async beat(): Promise<void> {
    await this.pool.query(
      'INSERT INTO cdr_writer (owner, seen_at) VALUES ($1, now()) ON CONFLICT (owner) DO UPDATE SET seen_at = now()', [this.owner]);
  }

  async insert(r: CdrRecord): Promise<void> {
    const cols = COLUMNS.map(([, c]) => c);
    const vals = COLUMNS.map(([f, , k]) => toSql(r[f], k));
    const ph = COLUMNS.map(([, , k], i) => (k === 'json' ? `$${i + 1}::jsonb` : `$${i + 1}`));
    const n = cols.length;
    await this.pool.query(
      `INSERT INTO cdr (${cols.join(', ')}, owner, cost_total, currency) VALUES (${ph.join(', ')}, $${n + 1}, $${n + 2}, $${n + 3})`,
      [...vals, this.owner, r.cost?.total ?? null, r.cost?.currency ?? null]);
  }

  async update(id: string, patch: Partial<Omit<CdrRecord, 'id'>>): Promise<void> {
    const sets: string[] = [];
    const vals: unknown[] = [];
    const add = (col: string, v: unknown, json = false): void => {
      vals.push(v);
      sets.push(`${col} = $${vals.length}${json ? '::jsonb' : ''}`);
    };
    for (const [f, v] of Object.entries(patch)) {
      const c = BY_FIELD.get(f);
      if (!c || f === 'id' || v === undefined) continue;
      add(c.col, toSql(v, c.kind), c.kind === 'json');
      if (f === 'cost') {
        const cost = v as CdrRecord['cost'];
        add('cost_total', cost?.total ?? null);
        add('currency', cost?.currency ?? null);
      }
    }
    if (sets.length === 0) return;
    vals.push(id);
    await this.pool.query(`UPDATE cdr SET ${sets.join(', ')} WHERE id = $${vals.length}`, vals);
  }

  async get(idOrSipCallId: string): Promise<CdrRecord | null> {
    const a = await this.pool.query('SELECT * FROM cdr WHERE id = $1', [idOrSipCallId]);
    const row = a.rows[0]
      ?? (await this.pool.query('SELECT * FROM cdr WHERE sip_call_id = $1 ORDER BY started_at DESC LIMIT 1', [idOrSipCallId])).rows[0];
    return row ? fromRow(row as Row) : null;
  }

  async list(f: CdrFilter = {}): Promise<CdrRecord[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const cond = (sql: (p: string) => string, v: unknown): void => {
      args.push(v);
      where.push(sql(`$${args.length}`));
    };
    const like = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);
    if (f.tenant) cond((p) => `tenant = ${p}`, f.tenant);
    if (f.since) cond((p) => `started_at >= ${p}`, f.since);
    if (f.until) cond((p) => `started_at < ${p}`, f.until);
    if (f.outcome) cond((p) => `outcome = ${p}`, f.outcome);
    if (f.status) cond((p) => `status = ${p}`, f.status);
    if (f.idPrefix) cond((p) => `id LIKE ${p} ESCAPE '\\'`, `${like(f.idPrefix)}%`);
    if (f.caller) {
      const digits = f.caller.replace(/\D/g, '');
      cond((p) => `from_number LIKE ${p} ESCAPE '\\'`, `%${like(digits || f.caller)}%`);
    }
    const limit = f.limit && f.limit > 0 ? ` LIMIT ${Math.floor(f.limit)}` : '';
    // COLLATE "C": byte order, as SQLite sorts text
    const sql = `SELECT * FROM cdr${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at COLLATE "C" DESC, id COLLATE "C"${limit}`;
    return (await this.pool.query(sql, args)).rows.map((r) => fromRow(r as Row));
  }

  async closeAbandoned(isLive: (owner: string) => boolean, reason: (owner: string, updatedAt: string) => string): Promise<number> {
    const open = (await this.pool.query<{ id: string; owner: string | null; updated_at: string; fresh: boolean | null }>(
      `SELECT c.id, c.owner, c.updated_at, (w.seen_at > now() - make_interval(secs => $1)) AS fresh
         FROM cdr c LEFT JOIN cdr_writer w ON w.owner = c.owner WHERE c.status = 'open'`, [STALE_MS / 1000])).rows;
    let n = 0;
    for (const r of open) {
      const owner = r.owner ?? '';
      if (owner === this.owner || r.fresh || isLive(owner)) continue;
      const res = await this.pool.query("UPDATE cdr SET status = 'incomplete', incomplete_reason = $1 WHERE id = $2 AND status = 'open'",
        [reason(owner, r.updated_at), r.id]);
      n += res.rowCount ?? 0;
    }
    // writers silent for a day are forgotten
    await this.pool.query("DELETE FROM cdr_writer WHERE seen_at < now() - interval '1 day'");
    return n;
  }

  async purge(policy: RetentionPolicy, now: Date = new Date()): Promise<number> {
    const cutoff = (days: number): string => new Date(now.getTime() - days * 86_400_000).toISOString();
    const listed = Object.keys(policy.tenants);
    const c = await this.pool.connect();
    let n = 0;
    try {
      await c.query('BEGIN');
      for (const [tenant, days] of Object.entries(policy.tenants)) {
        if (days > 0) n += (await c.query('DELETE FROM cdr WHERE tenant = $1 AND started_at < $2', [tenant, cutoff(days)])).rowCount ?? 0;
      }
      if (policy.defaultDays > 0) {
        const not = listed.length ? ` AND NOT (tenant = ANY($2::text[]))` : '';
        n += (await c.query(`DELETE FROM cdr WHERE started_at < $1${not}`, listed.length ? [cutoff(policy.defaultDays), listed] : [cutoff(policy.defaultDays)])).rowCount ?? 0;
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
    return n;
  }

  private closed: Promise<void> | null = null;

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.closed ??= (async () => {
      if (this.owner) await this.pool.query('DELETE FROM cdr_writer WHERE owner = $1', [this.owner]).catch(() => {});
      await this.pool.end();
    })();
    return this.closed;
  }
}


function fromRow(row: Row): CdrRecord {
  const out: Record<string, unknown> = {};
  for (const [f, c, k] of COLUMNS) {
    const v = row[c];
    if (v === undefined || v === null) out[f] = null;
    else if (k === 'int') out[f] = Number(v); // BIGINT arrives as a string
    else out[f] = v; // JSONB arrives parsed, DOUBLE PRECISION as a number
  }
  out.outcomes ??= [];
  out.transcript ??= [];
  out.detail ??= {};
  return out as unknown as CdrRecord;
}
