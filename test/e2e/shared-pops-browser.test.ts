/**
 * Screen pops across nodes (src/escalation/shared-pops.ts): two nodes' pop stores bridged by one
 * Redis (started by the test); a rep's headless Chromium on node A's console sees, live, a pop
 * raised on node B and its status changes; a node that starts later loads the pops still in
 * Redis; every pop in Redis expires.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { ScreenPopStore, type ScreenPop } from '../../src/escalation/screen-pop.ts';
import { SharedPops } from '../../src/escalation/shared-pops.ts';
import { startRepConsole } from '../../src/escalation/console/server.ts';
import type { Logger } from '../../src/ops/log.ts';
import { startTestRedis } from '../helpers/redis.ts';

const CHROMIUM = '/usr/bin/chromium';
const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

function makePop(id: string, over: Partial<ScreenPop> = {}): ScreenPop {
  return {
    id,
    callId: `${id}@node-b`,
    tenantId: 'acme',
    tenantName: 'Acme Supply',
    createdAt: Date.now(),
    status: 'ringing',
    target: { name: 'Dana Whitfield', extension: '1001', kind: 'rep' },
    trigger: 'explicit',
    reason: 'caller asked for a person (raised on node B)',
    caller: { phone: '+15551230000', name: 'Pat Jones', language: 'en' },
    account: { id: 'A1', name: 'Jones Plumbing', number: '88812', tier: 'gold' },
    transcript: [{ role: 'caller', text: 'get me a person', at: Date.now() - 1000 }],
    order: { pending: { lines: [{ sku: 'PV-100', qty: 4, description: 'ball valve' }] }, placed: [], status: { state: 'shipped' } },
    summary: 'explicit: caller asked for a person',
    ...over,
  } as ScreenPop;
}

if (!existsSync(CHROMIUM)) {
  t.test('chromium installed', async (tt) => { tt.fail(`${CHROMIUM} not found: Debian package chromium (make test installs it)`); });
} else {
  t.test('a pop raised on node B shows live on node A\'s console', { timeout: 90_000 }, async (t) => {
    const redis = await startTestRedis();
    t.teardown(() => redis.stop());
    const storeA = new ScreenPopStore();
    const storeB = new ScreenPopStore();
    // a pop node A raised before node B started: B must load it from Redis
    const sharedA = await SharedPops.start({ redisUrl: redis.url, store: storeA, nodeId: 'node-a', log: quiet, ttlSeconds: 600 });
    t.teardown(() => sharedA.close());
    storeA.add(makePop('early-a', { reason: 'raised on node A first', callId: 'early@node-a' }));
    await new Promise((r) => setTimeout(r, 200));
    const sharedB = await SharedPops.start({ redisUrl: redis.url, store: storeB, nodeId: 'node-b', log: quiet, ttlSeconds: 600 });
    t.teardown(() => sharedB.close());
    t.match(storeB.get('early-a'), { reason: 'raised on node A first' }, 'node B loaded the pop node A had raised');

    const rc = await startRepConsole({ store: storeA, port: 0, log: quiet });
    t.teardown(() => rc.close());
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${rc.url}/?ext=1001`, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => document.getElementById('conn')?.classList.contains('live'), undefined, { timeout: 10_000 });

    // node B raises a hand-off: node A's console shows it without a reload
    const t0 = Date.now();
    storeB.add(makePop('from-b'));
    await page.waitForFunction(() => document.getElementById('pop-reason')?.textContent === 'caller asked for a person (raised on node B)', undefined, { timeout: 5000 });
    t.comment(`pop from node B on node A's console after ${Date.now() - t0} ms`);
    t.match(await page.locator('#pop-caller').textContent(), /Pat Jones.*\+15551230000/, 'caller shown');
    t.equal(await page.locator('#pop-status').textContent(), 'ringing');

    // node B's rep answers: the status follows on node A's console
    storeB.update('from-b', { status: 'connected', statusReason: 'rep answered' });
    await page.waitForFunction(() => document.getElementById('pop-status')?.textContent === 'connected', undefined, { timeout: 5000 });
    t.equal(await page.locator('#pop-status-reason').textContent(), 'rep answered', 'update from node B applied on node A');
    t.equal(await page.locator('#pops li').count(), 2, 'both pops listed on node A (its own and node B\'s)');

    // no echo: node B's store still has one copy, node A did not publish B's pop back as its own
    t.equal(storeB.list().filter((p) => p.id === 'from-b').length, 1);
    t.match(storeB.get('from-b'), { status: 'connected' });

    // a node that starts now (node C) loads both from Redis; each key expires
    const storeC = new ScreenPopStore();
    const sharedC = await SharedPops.start({ redisUrl: redis.url, store: storeC, nodeId: 'node-c', log: quiet });
    t.teardown(() => sharedC.close());
    t.same(storeC.list().map((p) => p.id).sort(), ['early-a', 'from-b'], 'node C sees both pops');
    t.match(storeC.get('from-b'), { status: 'connected' }, 'in their latest state');
    const r = new Redis(redis.url);
    t.teardown(() => r.quit());
    const ttl = await r.ttl('va:pops:pop:from-b');
    t.ok(ttl > 0 && ttl <= 600, `the shared copy expires (TTL ${ttl} s)`);
    t.same(errors, [], 'no page errors');
  });
}
