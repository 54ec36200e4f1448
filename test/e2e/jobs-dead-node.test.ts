/**
 * After-hours messages of a node that dies (kill -9) are still delivered by the other nodes on
 * the same Redis (BullMQ queue crm-cases): one the dead node had only queued, and one its
 * worker was delivering when it died (taken over once its lock expires). Exactly one CRM case
 * each.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CaseQueue, type CaseMessage } from '../../src/jobs/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { startTestRedis } from '../helpers/redis.ts';
import { ROOT } from '../helpers/server.ts';
import { demoTenant, gatewayFor, openStore, OPEN_AT } from '../unit/agent-helpers.ts';

setLogLevel(process.env.LOG_LEVEL === 'debug' ? 'debug' : 'silent');

t.test('a dead node\'s after-hours messages are delivered by the survivor', { timeout: 60_000 }, async (t) => {
  const redis = await startTestRedis();
  t.teardown(() => redis.stop());
  const store = openStore(OPEN_AT);
  const gw = await gatewayFor(demoTenant('northwind'), store);
  t.teardown(() => gw.close());
  const dir = mkdtempSync(path.join(tmpdir(), 'jobs-dead-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = `dead${process.pid}`;
  const queuedId = `a-queued-${Date.now()}`;
  const activeId = `a-active-${Date.now()}`;

  const nodeA = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/e2e/fixtures/dying-case-node.ts'), redis.url, prefix, path.join(dir, 'a'), queuedId, activeId],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  nodeA.stdout.on('data', (d: Buffer) => (out += d.toString()));
  nodeA.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => nodeA.once('exit', r));
  t.teardown(() => { if (nodeA.exitCode === null) nodeA.kill('SIGKILL'); });
  const end = Date.now() + 30_000;
  while (!/queued/.test(out) && Date.now() < end && nodeA.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /^active\nqueued/, `node A's worker is delivering one message and the other waits in the queue\n${out}`);
  nodeA.kill('SIGKILL');
  await exited;
  const tKill = Date.now();

  // node B: a normal node on the same Redis (short stalled check so the test stays quick)
  const created = new Map<string, string>();
  const nodeB = new CaseQueue({ redisUrl: redis.url, prefix, dataDir: path.join(dir, 'b'), gatewayFor: () => gw, stalledCheckMs: 500, backoffBaseMs: 50 });
  t.teardown(() => nodeB.close());
  nodeB.on('created', (m: CaseMessage, cn: string) => created.set(m.id, cn));
  while (created.size < 2 && Date.now() < tKill + 20_000) await new Promise((r) => setTimeout(r, 100));
  t.ok(created.has(queuedId), 'the message node A had queued became a case');
  t.ok(created.has(activeId), `the message node A died delivering became a case (${Date.now() - tKill} ms after the kill)`);
  await new Promise((r) => setTimeout(r, 500));
  const count = (id: string): number => (store as unknown as { db: { prepare(s: string): { get(...a: unknown[]): { n: number } } } }).db
    .prepare('SELECT count(*) AS n FROM cases WHERE idempotency_key = ?').get(id).n;
  t.equal(count(queuedId), 1, 'exactly one case for the queued message');
  t.equal(count(activeId), 1, 'exactly one case for the one taken over');
});
