/**
 * The CDR store contract (src/cdr/types.ts `CdrStore`), as test cases any backend must pass:
 * run by test/e2e/cdr-postgres.test.ts against the SQLite store and the PostgreSQL store alike.
 * `open(owner)` gives a store on one shared, initially empty database per case.
 */
import type { Test } from 'tap';
import { hostname } from 'node:os';
import { ownerIsLive, type CdrStore } from '../../src/cdr/index.ts';
import { record } from './cdr-helpers.ts';

export type OpenStore = (owner?: string) => Promise<CdrStore>;

/** Register the contract's cases under `t`; `fresh()` gives a new empty database and its opener. */
export function cdrStoreCases(t: Test, name: string, fresh: () => Promise<OpenStore>): void {
  t.test(`${name}: insert, update, get by id or SIP Call-ID; JSON fields round-trip`, async (t) => {
    const open = await fresh();
    const s = await open('me');
    t.teardown(() => s.close());
    const r = record({ transcript: [{ role: 'agent', text: 'Hello.', at: '2026-03-01T10:00:01.000Z' }], detail: { note: 'ünïcode ✓' } });
    await s.insert(r);
    t.same(await s.get(r.id), r, 'what went in comes out');
    await s.update(r.id, {
      status: 'completed', endedAt: '2026-03-01T10:01:00.000Z', durationMs: 59500, outcome: 'order_placed', outcomeRef: 'SO-1',
      outcomes: ['order_placed', 'status_given'], detail: { orders: [{ order_number: 'SO-1' }] },
      cost: { currency: 'USD', items: [], total: 0.012, unpriced: [] }, carrierSeconds: 59.5,
    });
    const got = await s.get(r.sipCallId);
    t.match(got, { id: r.id, status: 'completed', durationMs: 59500, outcome: 'order_placed', outcomes: ['order_placed', 'status_given'], tenant: 'northwind', carrierSeconds: 59.5 });
    t.same(got!.cost, { currency: 'USD', items: [], total: 0.012, unpriced: [] });
    t.same(got!.transcript, r.transcript, 'fields not in the patch are kept');
    t.equal(await s.get('nope'), null);
    await s.update(r.id, {});
    t.equal(typeof got!.durationMs, 'number', 'integers come back as numbers');
  });

  t.test(`${name}: list filters (tenant, since/until, outcome, caller digits, status, id prefix, limit); newest first`, async (t) => {
    const open = await fresh();
    const s = await open();
    t.teardown(() => s.close());
    const rows = [
      record({ id: 'aaaa-1', tenant: 'northwind', startedAt: '2026-03-01T09:00:00.000Z', outcome: 'order_placed', status: 'completed', fromNumber: '+14155550142' }),
      record({ id: 'aaab-2', tenant: 'northwind', startedAt: '2026-03-02T09:00:00.000Z', outcome: 'abandoned', status: 'completed', fromNumber: '+13125550199' }),
      record({ id: 'bbbb-3', tenant: 'acme', startedAt: '2026-03-03T09:00:00.000Z', outcome: 'order_placed', status: 'completed', fromNumber: '+14155550142' }),
      record({ id: 'cccc-4', tenant: 'acme', startedAt: '2026-03-04T09:00:00.000Z', status: 'open', fromNumber: 'anonymous' }),
      record({ id: 'a_b%-5', tenant: 'other', startedAt: '2026-02-01T09:00:00.000Z', status: 'completed', fromNumber: '+1415_%' }),
    ];
    for (const r of rows) await s.insert(r);
    const ids = async (f: Parameters<CdrStore['list']>[0]): Promise<string[]> => (await s.list(f)).map((r) => r.id);
    t.same(await ids({}), ['cccc-4', 'bbbb-3', 'aaab-2', 'aaaa-1', 'a_b%-5'], 'newest first');
    t.same(await ids({ tenant: 'acme' }), ['cccc-4', 'bbbb-3']);
    t.same(await ids({ since: '2026-03-02T00:00:00.000Z', until: '2026-03-04T00:00:00.000Z' }), ['bbbb-3', 'aaab-2'], 'since inclusive, until exclusive');
    t.same(await ids({ outcome: 'order_placed' }), ['bbbb-3', 'aaaa-1']);
    t.same(await ids({ caller: '(415) 555-0142' }), ['bbbb-3', 'aaaa-1'], 'caller matched on digits');
    t.same(await ids({ caller: '5550199' }), ['aaab-2'], 'a part of the number');
    t.same(await ids({ caller: '%' }), ['a_b%-5'], 'LIKE wildcards are literal');
    t.same(await ids({ status: 'open' }), ['cccc-4']);
    t.same(await ids({ idPrefix: 'aaa' }), ['aaab-2', 'aaaa-1']);
    t.same(await ids({ idPrefix: 'a_' }), ['a_b%-5'], 'an underscore in the prefix is literal');
    t.same(await ids({ limit: 2 }), ['cccc-4', 'bbbb-3']);
    t.same(await ids({ tenant: 'northwind', outcome: 'order_placed', caller: '4155550142' }), ['aaaa-1'], 'filters combine');
  });

  t.test(`${name}: rows left open by a process that is gone become incomplete; a live one is left alone`, async (t) => {
    const open = await fresh();
    const dead = await open(`${hostname()}:2147483646:1`);
    await dead.insert(record({ id: 'open-dead' }));
    await dead.insert(record({ id: 'done-dead', status: 'completed', endedAt: '2026-03-01T10:02:00.000Z' }));
    await dead.close();
    const live = await open(`${hostname()}:${process.ppid}:1`);
    await live.insert(record({ id: 'open-live' }));
    await live.close();
    const me = await open(`${hostname()}:${process.pid}:2`);
    t.teardown(() => me.close());
    const n = await me.closeAbandoned((o) => ownerIsLive(o), (o, at) => `gone: ${o} after ${at}`);
    t.equal(n, 1);
    t.match(await me.get('open-dead'), { status: 'incomplete', endedAt: null, incompleteReason: /^gone: .*:2147483646:1 after 2026-03-01T10:00:00.500Z$/ });
    t.match(await me.get('done-dead'), { status: 'completed', incompleteReason: null }, 'completed rows untouched');
    t.match(await me.get('open-live'), { status: 'open' }, 'the row of a running process (our parent) stays open');
    t.equal(await me.closeAbandoned(() => false, () => 'x'), 1, 'once that process is gone too');
  });

  t.test(`${name}: purge: per-tenant retention, the default for the rest, 0 keeps forever`, async (t) => {
    const open = await fresh();
    const s = await open();
    t.teardown(() => s.close());
    const now = new Date('2026-06-01T00:00:00.000Z');
    const ago = (days: number): string => new Date(now.getTime() - days * 86_400_000 - 1000).toISOString();
    await s.insert(record({ id: 'nw-10', tenant: 'northwind', startedAt: ago(10) }));
    await s.insert(record({ id: 'nw-40', tenant: 'northwind', startedAt: ago(40) }));
    await s.insert(record({ id: 'acme-10', tenant: 'acme', startedAt: ago(10) }));
    await s.insert(record({ id: 'acme-40', tenant: 'acme', startedAt: ago(40) }));
    await s.insert(record({ id: 'keep-400', tenant: 'keeper', startedAt: ago(400) }));
    await s.insert(record({ id: 'other-100', tenant: 'other', startedAt: ago(100) }));
    await s.insert(record({ id: 'other-80', tenant: 'other', startedAt: ago(80) }));
    const deleted = await s.purge({ defaultDays: 90, tenants: { acme: 30, northwind: 365, keeper: 0 } }, now);
    t.equal(deleted, 2);
    t.same((await s.list()).map((r) => r.id).sort(), ['acme-10', 'keep-400', 'nw-10', 'nw-40', 'other-80']);
    t.equal(await s.purge({ defaultDays: 0, tenants: {} }, now), 0, 'default 0 = keep forever');
  });
}
