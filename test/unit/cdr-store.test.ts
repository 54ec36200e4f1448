/**
 * What is particular to the SQLite CDR store (src/cdr/sqlite.ts): WAL, a file from an older
 * version, owner liveness. The store contract (list filters, crash recovery of rows left open,
 * retention purge) runs against SQLite and PostgreSQL alike: test/unit/cdr-store-cases.ts,
 * from test/e2e/cdr-postgres.test.ts.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteCdrStore, ownerIsLive } from '../../src/cdr/index.ts';
import { record } from './cdr-helpers.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdr-store-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const file = (): string => path.join(tmp, `s${++n}`, 'cdr.sqlite');

t.test('insert, update, get by id or SIP Call-ID; JSON fields round-trip; WAL', async (t) => {
  const f = file();
  const s = new SqliteCdrStore({ file: f, owner: 'me' });
  t.teardown(() => s.close());
  const r = record({ transcript: [{ role: 'agent', text: 'Hello.', at: '2026-03-01T10:00:01.000Z' }] });
  await s.insert(r);
  t.same(await s.get(r.id), r, 'what went in comes out');
  await s.update(r.id, {
    status: 'completed', endedAt: '2026-03-01T10:01:00.000Z', durationMs: 59500, outcome: 'order_placed', outcomeRef: 'SO-1',
    outcomes: ['order_placed', 'status_given'], detail: { orders: [{ order_number: 'SO-1' }] },
    cost: { currency: 'USD', items: [], total: 0.012, unpriced: [] },
  });
  const got = await s.get(r.sipCallId);
  t.match(got, { id: r.id, status: 'completed', durationMs: 59500, outcome: 'order_placed', outcomes: ['order_placed', 'status_given'], tenant: 'northwind' });
  t.same(got!.transcript, r.transcript, 'fields not in the patch are kept');
  const db = new Database(f, { readonly: true });
  t.teardown(() => db.close());
  t.equal((db.pragma('journal_mode', { simple: true }) as string).toLowerCase(), 'wal');
  t.same(db.prepare('SELECT cost_total, currency FROM cdr WHERE id = ?').get(r.id), { cost_total: 0.012, currency: 'USD' }, 'total and currency are columns too');
  t.equal(await s.get('nope'), null);
});

t.test('a file from an older version gets the columns it lacks', async (t) => {
  const f = file();
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.dirname(f), { recursive: true });
  const old = new Database(f);
  old.exec("CREATE TABLE cdr (id TEXT PRIMARY KEY, sip_call_id TEXT, tenant TEXT, started_at TEXT, status TEXT, owner TEXT, cost_total REAL, currency TEXT)");
  old.prepare("INSERT INTO cdr (id, sip_call_id, tenant, started_at, status) VALUES ('old-1', 'o@x', 'northwind', '2026-01-01T00:00:00.000Z', 'completed')").run();
  old.close();
  const s = new SqliteCdrStore({ file: f });
  t.teardown(() => s.close());
  t.match(await s.get('old-1'), { id: 'old-1', tenant: 'northwind', transcript: [], outcomes: [], media: null, bargeIns: null });
  await s.insert(record({ id: 'new-1' }));
  t.match(await s.get('new-1'), { id: 'new-1', bargeIns: 0 });
});

t.test('ownerIsLive', async (t) => {
  t.ok(ownerIsLive(`${hostname()}:${process.ppid}:5`), 'another running pid on this host');
  t.notOk(ownerIsLive(`${hostname()}:${process.pid}:5`), 'our own pid: an earlier incarnation (containers reuse pids)');
  t.notOk(ownerIsLive(`${hostname()}:2147483646:5`), 'no such process');
  t.notOk(ownerIsLive('some-old-container:1:5'), 'another host: an earlier container with the same file');
  t.notOk(ownerIsLive(''), 'no owner recorded');
});
