/**
 * Config `cdr` (YAML) and its environment variables. Parsed here, called from src/config.ts,
 * so the CDR's settings live next to the CDR; problems go through the caller's `fail`, which
 * names the file (or the environment) and the field.
 *
 * ```yaml
 * cdr:
 *   db: /var/lib/voice-agent/cdr.sqlite   # or "off"; default <DATA_DIR or ./var>/cdr.sqlite
 *   retentionDays: 90                     # tenants without cdr.retentionDays in tenants.yaml; 0 = keep
 *   prices:                               # per tenant id; "default" applies to every tenant
 *     default:
 *       currency: USD
 *       carrier: { perMinute: 0.0085, incrementSeconds: 6 }
 *       stt: { openai: { perMinute: 0.006 } }
 *       llm: { gpt-4o-mini: { promptPerMillion: 0.15, completionPerMillion: 0.6 } }
 *       tts: { openai: { perMillionChars: 15 } }
 *     acme:
 *       carrier: { perMinute: 0.004 }
 * ```
 * Several nodes share one call history in PostgreSQL instead of a local file:
 * ```yaml
 * cdr:
 *   postgresUrl: postgres://voice:secret@db.example.net:5432/voice   # or env CDR_POSTGRES_URL
 * ```
 * Env: `CDR_DB` (path or `off`), `CDR_POSTGRES_URL`, `CDR_RETENTION_DAYS`.
 */
import path from 'node:path';
import type { PriceConfig, PriceTableOverride } from './pricing.ts';

export interface CdrSettings {
  /**
   * SQLite file of the CDRs; null = CDRs off. Env `CDR_DB` (`off` disables).
   * @defaultValue `<DATA_DIR or ./var>/cdr.sqlite`
   */
  db: string | null;
  /**
   * PostgreSQL connection URL (`postgres://` or `postgresql://`): the CDRs go there instead of
   * the SQLite file (several nodes, one history). `db: off` still turns CDRs off. Env `CDR_POSTGRES_URL`.
   * @defaultValue unset (SQLite)
   */
  postgresUrl?: string | null;
  /** Days a row is kept for tenants that set no `cdr.retentionDays`; 0 = forever. Env `CDR_RETENTION_DAYS`. @defaultValue 90 */
  retentionDays: number;
  /** Price tables: `default` and per tenant id. @defaultValue {} (offline providers at 0, the rest unpriced) */
  prices: PriceConfig;
}

type Fail = (field: string, problem: string) => never;

/** Default of {@link CdrSettings.retentionDays}. */
export const DEFAULT_RETENTION_DAYS = 90;

/** Settings whose `db` nobody set: the environment's DATA_DIR decides where it goes. */
const dbUnset = new WeakSet<CdrSettings>();

/** The defaults (`db` is ./var/cdr.sqlite until {@link applyCdrEnv} sees DATA_DIR). */
export function defaultCdrSettings(): CdrSettings {
  const s: CdrSettings = { db: path.resolve('var', 'cdr.sqlite'), retentionDays: DEFAULT_RETENTION_DAYS, prices: {} };
  dbUnset.add(s);
  return s;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function mapping(fail: Fail, field: string, v: unknown, keys?: readonly string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(field, `must be a mapping, got ${show(v)}`);
  if (keys) {
    for (const k of Object.keys(v as object)) if (!keys.includes(k)) fail(`${field}.${k}`, `unknown key (expected one of ${keys.join(', ')})`);
  }
  return v as Record<string, unknown>;
}

function price(fail: Fail, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(field, `must be a price ≥ 0, got ${show(v)}`);
  return v as number;
}

function days(fail: Fail, field: string, v: unknown): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 36500) fail(field, `must be an integer 0-36500 (days; 0 = keep forever), got ${show(v)}`);
  return n as number;
}

function postgresUrl(fail: Fail, field: string, v: unknown): string {
  if (typeof v !== 'string') fail(field, `must be a postgres:// URL, got ${show(v)}`);
  const u = (v as string).trim();
  let ok = false;
  try {
    const parsed = new URL(u);
    ok = (parsed.protocol === 'postgres:' || parsed.protocol === 'postgresql:') && parsed.hostname !== '';
  } catch { /* not a URL */ }
  if (!ok) fail(field, `must be a URL like postgres://user:password@host:5432/db, got ${JSON.stringify(u.replace(/:[^:@/]*@/, ':***@'))}`);
  return u;
}

/** One price table (`default` or a tenant's). */
function priceTable(fail: Fail, f: string, v: unknown): PriceTableOverride {
  const o = mapping(fail, f, v, ['currency', 'carrier', 'stt', 'llm', 'tts']);
  const out: PriceTableOverride = {};
  if (o.currency !== undefined) {
    if (typeof o.currency !== 'string' || !/^[A-Z]{3}$/.test(o.currency)) fail(`${f}.currency`, `must be an ISO 4217 code like USD, got ${show(o.currency)}`);
    out.currency = o.currency as string;
  }
  if (o.carrier !== undefined) {
    const c = mapping(fail, `${f}.carrier`, o.carrier, ['perMinute', 'incrementSeconds']);
    out.carrier = {};
    if (c.perMinute !== undefined) out.carrier.perMinute = price(fail, `${f}.carrier.perMinute`, c.perMinute);
    if (c.incrementSeconds !== undefined) {
      const s = c.incrementSeconds;
      if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > 3600) fail(`${f}.carrier.incrementSeconds`, `must be an integer 1-3600, got ${show(s)}`);
      out.carrier.incrementSeconds = s as number;
    }
  }
  const perProvider = <T>(key: 'stt' | 'llm' | 'tts', fields: readonly string[], build: (g: Record<string, unknown>, pf: string) => T): Record<string, T> | undefined => {
    if (o[key] === undefined) return undefined;
    const m = mapping(fail, `${f}.${key}`, o[key]);
    const res: Record<string, T> = {};
    for (const [name, raw] of Object.entries(m)) {
      const pf = `${f}.${key}.${name}`;
      const g = mapping(fail, pf, raw, fields);
      for (const k of fields) if (g[k] === undefined) fail(`${pf}.${k}`, 'is required');
      res[name] = build(g, pf);
    }
    return res;
  };
  const stt = perProvider('stt', ['perMinute'], (g, pf) => ({ perMinute: price(fail, `${pf}.perMinute`, g.perMinute) }));
  const llm = perProvider('llm', ['promptPerMillion', 'completionPerMillion'], (g, pf) => ({
    promptPerMillion: price(fail, `${pf}.promptPerMillion`, g.promptPerMillion),
    completionPerMillion: price(fail, `${pf}.completionPerMillion`, g.completionPerMillion),
  }));
  const tts = perProvider('tts', ['perMillionChars'], (g, pf) => ({ perMillionChars: price(fail, `${pf}.perMillionChars`, g.perMillionChars) }));
  if (stt) out.stt = stt;
  if (llm) out.llm = llm;
  if (tts) out.tts = tts;
  return out;
}

/** YAML `cdr`; a relative `db` is taken from the config file's directory. */
export function applyCdrFile(s: CdrSettings, v: unknown, baseDir: string, fail: Fail): void {
  const o = mapping(fail, 'cdr', v, ['db', 'postgresUrl', 'retentionDays', 'prices']);
  if (o.postgresUrl !== undefined && o.postgresUrl !== null) s.postgresUrl = postgresUrl(fail, 'cdr.postgresUrl', o.postgresUrl);
  if (o.db !== undefined && o.db !== null) {
    if (typeof o.db !== 'string' || o.db.trim() === '') fail('cdr.db', `must be a file path or off, got ${show(o.db)}`);
    const d = (o.db as string).trim();
    s.db = d.toLowerCase() === 'off' ? null : d === ':memory:' ? d : path.resolve(baseDir, d);
    dbUnset.delete(s);
  }
  if (o.retentionDays !== undefined && o.retentionDays !== null) s.retentionDays = days(fail, 'cdr.retentionDays', o.retentionDays);
  if (o.prices !== undefined && o.prices !== null) {
    const p = mapping(fail, 'cdr.prices', o.prices);
    for (const [tenant, table] of Object.entries(p)) s.prices[tenant] = priceTable(fail, `cdr.prices.${tenant}`, table);
  }
}

/** `CDR_DB`, `CDR_RETENTION_DAYS`; then the default file under `DATA_DIR` (or ./var) if none was set. */
export function applyCdrEnv(s: CdrSettings, env: NodeJS.ProcessEnv, cwd: string, fail: Fail): void {
  const db = env.CDR_DB?.trim();
  if (db) {
    s.db = db.toLowerCase() === 'off' ? null : db === ':memory:' ? db : path.resolve(cwd, db);
    dbUnset.delete(s);
  }
  const pgUrl = env.CDR_POSTGRES_URL?.trim();
  if (pgUrl) s.postgresUrl = pgUrl.toLowerCase() === 'off' ? null : postgresUrl(fail, 'CDR_POSTGRES_URL', pgUrl);
  const r = env.CDR_RETENTION_DAYS?.trim();
  if (r) s.retentionDays = days(fail, 'CDR_RETENTION_DAYS', r);
  if (dbUnset.has(s)) s.db = path.resolve(cwd, env.DATA_DIR || './var', 'cdr.sqlite');
}
