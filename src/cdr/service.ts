/**
 * The CDR at run time (what main starts): the store, the recorder, crash recovery and
 * retention.
 *
 * - At start, rows left `open` by a process that is gone become `incomplete` (their reason
 *   names the process and its last write). A process is gone when its pid is not running on
 *   this host, when it ran on another host (a SQLite file is local: that was an earlier
 *   container), or when it had our pid (an earlier incarnation of us, e.g. pid 1 in a
 *   container). Rows of another live server sharing the file are left alone. With PostgreSQL
 *   (`cdr.postgresUrl`, several nodes) a writer on another host is live while its heartbeat
 *   is fresh (src/cdr/postgres.ts).
 * - Retention: rows older than the tenant's `cdr.retentionDays` (tenants.yaml) or the config
 *   default are deleted at start and then once a day.
 */
import { hostname } from 'node:os';
import { logger, type Logger } from '../ops/log.ts';
import { pricesFor } from './pricing.ts';
import { CdrRecorder, type ReleaseCauses } from './recorder.ts';
import type { CdrSettings } from './settings.ts';
import { PostgresCdrStore } from './postgres.ts';
import { SqliteCdrStore } from './sqlite.ts';
import type { CdrStore, RetentionPolicy } from './types.ts';

export interface CdrServiceOptions {
  settings: CdrSettings;
  /** every tenant with its retention override (tenants.yaml `cdr.retentionDays`) */
  tenants: ReadonlyArray<{ id: string; cdr?: { retentionDays?: number } }>;
  releaseCauses?: ReleaseCauses;
  /** @defaultValue 24 h */
  purgeEveryMs?: number;
  log?: Logger;
}

export interface CdrService {
  readonly file: string;
  readonly store: CdrStore;
  readonly recorder: CdrRecorder;
  /** Rows marked incomplete at start. */
  readonly recovered: number;
  /** Delete what retention allows now; returns how many rows went. */
  purge(): Promise<number>;
  /** Finish pending writes, stop the purge timer, close the store. */
  close(): Promise<void>;
}

/** `<host>:<pid>:<start ms>`: who wrote a row. */
export function processOwner(): string {
  return `${hostname()}:${process.pid}:${Date.now()}`;
}

/** Is the process that wrote `owner` still running (see the file header)? */
export function ownerIsLive(owner: string, me = { host: hostname(), pid: process.pid }): boolean {
  const m = /^(.*):(\d+):(\d+)$/.exec(owner);
  if (!m) return false;
  const [, host, pidText] = m;
  const pid = Number(pidText);
  if (host !== me.host || pid === me.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The retention policy from the config default and the tenants' overrides. */
export function retentionPolicy(settings: CdrSettings, tenants: CdrServiceOptions['tenants']): RetentionPolicy {
  const p: RetentionPolicy = { defaultDays: settings.retentionDays, tenants: {} };
  for (const t of tenants) if (t.cdr?.retentionDays !== undefined) p.tenants[t.id] = t.cdr.retentionDays;
  return p;
}

/** Open the store, recover rows of dead processes, purge, start the recorder. Null when CDRs are off. */
export async function startCdr(o: CdrServiceOptions): Promise<CdrService | null> {
  const log = o.log ?? logger('cdr');
  const file = o.settings.db;
  if (!file) {
    log.info('CDRs off (cdr.db / CDR_DB is off)');
    return null;
  }
  const owner = processOwner();
  const store: CdrStore & { readonly file: string } = o.settings.postgresUrl
    ? await PostgresCdrStore.open({ url: o.settings.postgresUrl, owner })
    : new SqliteCdrStore({ file, owner });
  const recovered = await store.closeAbandoned(
    (w) => ownerIsLive(w),
    (w, at) => `the process ended before the call did (${w.split(':').slice(0, 2).join(' pid ') || 'unknown process'}; last written ${at})`,
  );
  if (recovered > 0) log.warn('CDR rows left open by a previous process marked incomplete', { rows: recovered, file: store.file });
  const policy = retentionPolicy(o.settings, o.tenants);
  const purge = async (): Promise<number> => {
    const n = await store.purge(policy);
    if (n > 0) log.info('CDR rows past retention deleted', { rows: n, defaultDays: policy.defaultDays });
    return n;
  };
  await purge();
  const timer = setInterval(() => {
    purge().catch((err: unknown) => log.error('CDR purge failed', { err: err as Error }));
  }, o.purgeEveryMs ?? 86_400_000);
  timer.unref();
  const recorder = new CdrRecorder({
    store, prices: (tenantId) => pricesFor(o.settings.prices, tenantId), log,
    ...(o.releaseCauses ? { releaseCauses: o.releaseCauses } : {}),
  });
  log.info('CDR store ready', { file: store.file, retentionDays: policy.defaultDays, recovered });
  let closed: Promise<void> | null = null;
  return {
    file: store.file, store, recorder, recovered, purge,
    close: () => (closed ??= (async () => {
      clearInterval(timer);
      await recorder.flush();
      await store.close();
    })()),
  };
}
