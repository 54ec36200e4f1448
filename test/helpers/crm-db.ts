/**
 * The e2e suites' CRM/ERP file: a server with a file of its own, and reading it from outside
 * (read-only) to judge outcomes: order rows, cases, activities.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { freePort, freePortBlock, type PortRange } from './ports.ts';
import { startServer, type ServerHandle } from './server.ts';

/** Rows of `sql` in the SQLite file `db` ([] while the file does not exist yet). */
export function dbRows<T>(db: string, sql: string, ...args: unknown[]): T[] {
  if (!existsSync(db)) return [];
  const d = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return d.prepare(sql).all(...args) as T[];
  } finally {
    d.close();
  }
}

/** {@link dbRows}, polled every 150 ms until there is a row or `timeoutMs` passed. */
export async function waitDbRows<T>(db: string, sql: string, timeoutMs = 15000): Promise<T[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = dbRows<T>(db, sql);
    if (r.length || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 150));
  }
}

/**
 * A server with a CRM/ERP file of its own (`<dir>/<name>.sqlite`, data under `<name>-var`), on
 * ports from the suite's ranges, at the clock `now`; `env` adds to or overrides its settings.
 */
export async function crmServer(
  dir: string, name: string, now: string, redisUrl: string,
  ranges: { sip: PortRange; control: PortRange; rtp: PortRange }, env: Record<string, string> = {},
): Promise<ServerHandle & { db: string }> {
  const db = path.join(dir, `${name}.sqlite`);
  const rtp = await freePortBlock(ranges.rtp, 50);
  const s = await startServer({
    SIP_PORT: String(await freePort(ranges.sip, 'both')),
    DRACHTIO_PORT: String(await freePort(ranges.control, 'tcp')),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    CRM_DB: db, DATA_DIR: path.join(dir, `${name}-var`), REDIS_URL: redisUrl, VOICE_AGENT_NOW: now,
    VOICE_MEDIA_RT_PRIORITY: '0',
    ...env,
  }, { readyTimeoutMs: 60000 });
  return Object.assign(s, { db });
}
