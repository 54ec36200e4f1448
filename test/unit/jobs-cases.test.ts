import t from 'tap';
import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setLogLevel } from '../../src/ops/log.ts';
import { CaseQueue, Spool, type CaseMessage, type CaseToolCaller } from '../../src/jobs/index.ts';
import { startTestRedis } from '../helpers/redis.ts';
import { demoTenant, gatewayFor, openStore, OPEN_AT } from './agent-helpers.ts';

setLogLevel(process.env.LOG_LEVEL === 'debug' ? 'debug' : 'silent');

let seq = 0;
function message(over: Partial<CaseMessage> = {}): CaseMessage {
  seq++;
  return {
    id: `call-${process.pid}-${Date.now()}:msg:${seq}`, tenantId: 'northwind', callId: `call-${seq}`, accountId: 'ACC-10042',
    accountName: 'Acme Plumbing Supply', callerName: 'Dana Reyes', callbackNumber: '14155550142',
    reason: `test message ${seq}`, kind: 'after_hours_message', transcript: 'caller: hi', takenAt: new Date().toISOString(), ...over,
  };
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function casesFor(store: ReturnType<typeof openStore>, id: string): number {
  return (store as unknown as { db: { prepare(s: string): { get(...a: unknown[]): { n: number } } } }).db
    .prepare('SELECT count(*) AS n FROM cases WHERE idempotency_key = ?').get(id).n;
}

t.test('spool: durable append, list, atomic remove, torn line skipped', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'spool-'));
  const sp = new Spool(path.join(dir, 'x.jsonl'));
  const a = message();
  const b = message();
  sp.append(a);
  sp.append(b);
  sp.append(a);
  t.same(sp.list().map((m) => m.id), [a.id, b.id], 'duplicates collapse');
  appendFileSync(sp.file, '{"id": "torn');
  t.equal(sp.list().length, 2, 'torn line skipped');
  sp.remove([a.id]);
  t.same(sp.list().map((m) => m.id), [b.id]);
  t.equal(readFileSync(sp.file, 'utf8').trim().split('\n').length, 1);
});

t.test('jobs against a real redis-server', async (t) => {
  const redis = await startTestRedis();
  t.teardown(() => redis.stop());
  const store = openStore(OPEN_AT);
  const gw = await gatewayFor(demoTenant('northwind'), store);
  t.teardown(() => gw.close());

  t.test('a case lands in the CRM through BullMQ', async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'jobs-'));
    const q = new CaseQueue({ redisUrl: redis.url, dataDir, gatewayFor: () => gw, prefix: `t${seq}`, replayIntervalMs: 200, backoffBaseMs: 50 });
    t.teardown(() => q.close());
    await until('redis ready', async () => (await q.counts().catch(() => undefined)) !== undefined);
    const m = message();
    const created = new Promise<string>((r) => q.once('created', (_m: CaseMessage, cn: string) => r(cn)));
    t.equal(await q.enqueueCase(m), 'queued');
    const cn = await created;
    t.match(cn, /^CS-\d+$/);
    const row = store.getCase(cn)!;
    t.match(row, { caller_name: 'Dana Reyes', callback_number: '14155550142', kind: 'after_hours_message', account_id: 'ACC-10042', idempotency_key: m.id });
    // the same message again (e.g. a replay): still one case
    t.equal(await q.enqueueCase(m), 'queued');
    await new Promise((r) => setTimeout(r, 300));
    t.equal(casesFor(store, m.id), 1, 'exactly one case');
  });

  t.test('retried with backoff until the CRM accepts', async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'jobs-'));
    let failures = 2;
    const flaky: CaseToolCaller = {
      call: async (name, args, ctx) => (name === 'create_case' && failures-- > 0 ? { ok: false, error: 'CRM unavailable', code: 'failed' } : gw.call(name, args, ctx)),
    };
    const q = new CaseQueue({ redisUrl: redis.url, dataDir, gatewayFor: () => flaky, prefix: `t${seq}`, backoffBaseMs: 50 });
    t.teardown(() => q.close());
    await until('redis ready', async () => (await q.counts().catch(() => undefined)) !== undefined);
    const m = message();
    const created = new Promise<string>((r) => q.once('created', (_m: CaseMessage, cn: string) => r(cn)));
    t.equal(await q.enqueueCase(m), 'queued');
    await created;
    t.equal(failures, -1, 'two failures, then accepted');
    t.equal(casesFor(store, m.id), 1);
  });

  t.test('redis killed before the message is taken → spooled → redis back → case lands exactly once', async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'jobs-'));
    const q = new CaseQueue({ redisUrl: redis.url, dataDir, gatewayFor: () => gw, prefix: `t${seq}`, replayIntervalMs: 200, backoffBaseMs: 50, enqueueTimeoutMs: 500 });
    t.teardown(() => q.close());
    await until('redis ready', async () => (await q.counts().catch(() => undefined)) !== undefined);
    await redis.kill();
    await new Promise((r) => setTimeout(r, 100));
    const m = message();
    const t0 = Date.now();
    t.equal(await q.enqueueCase(m), 'spooled');
    t.ok(Date.now() - t0 < 1000, `spooling is fast (${Date.now() - t0} ms)`);
    t.same(q.spool.list().map((x) => x.id), [m.id], 'on disk');
    await new Promise((r) => setTimeout(r, 600));
    t.equal(casesFor(store, m.id), 0, 'nothing lands while redis is down');
    const created = new Promise<string>((r) => q.on('created', (x: CaseMessage, cn: string) => { if (x.id === m.id) r(cn); }));
    await redis.restart();
    await created;
    await until('spool drained', () => q.spool.size === 0);
    await new Promise((r) => setTimeout(r, 500));
    t.equal(casesFor(store, m.id), 1, 'exactly one case');
  });

  t.test('a process that spooled and died: the next one replays the spool', async (t) => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'jobs-'));
    const m = message();
    new Spool(path.join(dataDir, 'spool', 'crm-cases.jsonl')).append(m);
    const q = new CaseQueue({ redisUrl: redis.url, dataDir, gatewayFor: () => gw, prefix: `t${seq}`, replayIntervalMs: 100, backoffBaseMs: 50 });
    t.teardown(() => q.close());
    await until('case', () => casesFor(store, m.id) === 1);
    await until('spool drained', () => q.spool.size === 0);
    t.pass('replayed at start');
  });
});
