/**
 * Call records on PostgreSQL (src/cdr/postgres.ts) — the store several nodes share — against the
 * same contract cases as the embedded SQLite store (test/unit/cdr-store-cases.ts), a cluster of
 * its own started in a temp dir. Plus what only a shared store has: a node starting up leaves
 * the open rows of another live node (fresh heartbeat, other host) alone; the config field and
 * env; the service writing a call's record through it.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { main as cdrCli } from '../../src/cdr/cli.ts';
import { PostgresCdrStore, SqliteCdrStore, applyCdrEnv, applyCdrFile, defaultCdrSettings, startCdr } from '../../src/cdr/index.ts';
import { havePostgres, startTestPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { cdrStoreCases } from '../unit/cdr-store-cases.ts';
import { record } from '../unit/cdr-helpers.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdr-pg-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
cdrStoreCases(t, 'sqlite', async () => {
  const file = path.join(tmp, `s${++n}`, 'cdr.sqlite');
  return async (owner) => new SqliteCdrStore({ file, ...(owner ? { owner } : {}) });
});

if (!havePostgres()) {
  t.test('postgresql installed', async (tt) => { tt.fail('PostgreSQL server binaries not found: Debian package postgresql (make test installs it)'); });
} else {
  let server: TestPostgres | undefined;
  t.before(async () => {
    server = await startTestPostgres();
  });
  t.teardown(() => server?.stop());
  let db = 0;
  /** A fresh database on the test cluster. */
  const freshDb = async (): Promise<string> => {
    const name = `cdr${++db}`;
    const admin = new pg.Client({ connectionString: server!.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    return server!.url.replace(/\/voice$/, `/${name}`);
  };
  cdrStoreCases(t, 'postgresql', async () => {
    const url = await freshDb();
    return async (owner) => PostgresCdrStore.open({ url, ...(owner ? { owner } : {}) });
  });

  t.test('postgresql: a starting node leaves the open rows of a live node on another host alone', async (t) => {
    const url = await freshDb();
    const other = await PostgresCdrStore.open({ url, owner: 'other-host:4242:1' });
    await other.insert(record({ id: 'live-elsewhere' }));
    const gone = await PostgresCdrStore.open({ url, owner: 'gone-host:77:1' });
    await gone.insert(record({ id: 'dead-elsewhere' }));
    // a node that was kill -9'd: no close (its heartbeat row stays, and goes stale)
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("UPDATE cdr_writer SET seen_at = now() - interval '5 minutes' WHERE owner = 'gone-host:77:1'");
    await c.end();
    const me = await PostgresCdrStore.open({ url, owner: 'this-host:1:1' });
    t.teardown(async () => { await me.close(); await other.close(); await gone.close(); });
    const marked = await me.closeAbandoned(() => false, (o) => `gone: ${o}`);
    t.equal(marked, 1, 'only the silent writer\'s row');
    t.match(await me.get('live-elsewhere'), { status: 'open' }, 'a writer with a fresh heartbeat is live, whatever host');
    t.match(await me.get('dead-elsewhere'), { status: 'incomplete', incompleteReason: 'gone: gone-host:77:1' });
  });

  t.test('postgresql: cdr.postgresUrl / CDR_POSTGRES_URL; a bad URL names the field', async (t) => {
    const fail = (field: string, problem: string): never => { throw new Error(`${field}: ${problem}`); };
    const s = defaultCdrSettings();
    applyCdrFile(s, { postgresUrl: 'postgres://voice:pw@db.example.net:5432/voice' }, '/etc', fail);
    t.equal(s.postgresUrl, 'postgres://voice:pw@db.example.net:5432/voice');
    applyCdrEnv(s, { CDR_POSTGRES_URL: 'off' }, '/', fail);
    t.equal(s.postgresUrl, null, 'env off turns it off');
    t.throws(() => applyCdrFile(defaultCdrSettings(), { postgresUrl: 'mysql://x@y/z' }, '/etc', fail), /^cdr\.postgresUrl: must be a URL like postgres:\/\//);
    t.throws(() => applyCdrEnv(defaultCdrSettings(), { CDR_POSTGRES_URL: 'db.example.net' }, '/', fail), /^CDR_POSTGRES_URL: /);
    let msg = '';
    try {
      applyCdrFile(defaultCdrSettings(), { postgresUrl: 'postgres://u:secret@/x' }, '/etc', fail);
    } catch (e) {
      msg = (e as Error).message;
    }
    t.match(msg, /^cdr\.postgresUrl: /, 'a URL without a host is refused');
    t.notMatch(msg, /secret/, 'the password is not echoed');
  });

  t.test('postgresql: the CDR service records calls there; the password never reaches the log', async (t) => {
    const url = (await freshDb()).replace('voice@', 'voice:unused-secret@');
    const s = defaultCdrSettings();
    s.postgresUrl = url;
    const svc = await startCdr({ settings: s, tenants: [], log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } } as never });
    t.ok(svc);
    t.notMatch(svc!.file, /unused-secret/, 'the store names the URL without its password');
    await svc!.store.insert(record({ id: 'svc-1' }));
    t.match(await svc!.store.get('svc-1'), { id: 'svc-1', tenant: 'northwind' });
    await svc!.close();
  });

  t.test('postgresql: voice-agent cdr list|show read the shared store (CDR_POSTGRES_URL or --db URL)', async (t) => {
    const url = await freshDb();
    const w = await PostgresCdrStore.open({ url, owner: 'node-b:1:1' });
    await w.insert(record({ id: '9f1c0000-0000-4000-8000-00000000b001', sipCallId: 'from-node-b@x', tenant: 'acme', fromNumber: '+13125550199' }));
    await w.close();
    const run = async (argv: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await cdrCli(argv, { out: (x) => { out += x; }, err: (x) => { err += x; }, env, cwd: tmp });
      return { code, out, err };
    };
    const listed = await run(['list', '--json'], { CDR_POSTGRES_URL: url, DATA_DIR: path.join(tmp, 'none') });
    t.equal(listed.code, 0, listed.err);
    t.match(JSON.parse(listed.out.trim()), { id: '9f1c0000-0000-4000-8000-00000000b001', tenant: 'acme' }, 'a call another node recorded');
    const shown = await run(['show', 'from-node-b@x', '--db', url], { DATA_DIR: path.join(tmp, 'none') });
    t.equal(shown.code, 0, shown.err);
    t.match(shown.out, /9f1c0000-0000-4000-8000-00000000b001/);
  });
}
