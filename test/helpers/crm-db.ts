/**
 * Read the server's CRM/ERP SQLite file from outside (read-only), as the e2e suites judge
 * outcomes: order rows, cases, activities.
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';

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
