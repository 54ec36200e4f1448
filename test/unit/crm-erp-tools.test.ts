// Every CRM/ERP tool against the seeded demo database, through a real MCP client over
// InMemoryTransport, with a fixed clock (Wednesday 2025-06-04 17:00 UTC = 10:00 in Oakland).
import t from 'tap';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCrmErpServer, CrmErpStore, CRM_ERP_TOOLS, phoneCandidates } from '../../src/crm-erp/index.ts';
import { addBusinessDays, zonedInstant, isoInZone } from '../../src/crm-erp/time.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel('silent');
const NOW = new Date('2025-06-04T17:00:00Z');

async function connect(store = new CrmErpStore({ now: () => NOW })) {
  const server = createCrmErpServer({ store });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(b);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(a);
  const call = async (name: string, args: Record<string, unknown>) => {
    const r = await client.callTool({ name, arguments: args });
    const text = (r.content as Array<{ text: string }>)[0]!.text;
    if (!r.isError) t.same(JSON.parse(text), r.structuredContent, `${name}: text block mirrors structuredContent`);
    return { isError: !!r.isError, data: r.structuredContent as any, text };
  };
  return { client, server, store, call, close: async () => { await client.close(); await server.close(); store.close(); } };
}

t.test('lists the contract tools', async (t) => {
  const c = await connect();
  const { tools } = await c.client.listTools();
  t.same(tools.map((x) => x.name).sort(), [...CRM_ERP_TOOLS].sort());
  for (const tool of tools) t.equal(tool.inputSchema.type, 'object', `${tool.name} has a JSON schema`);
  await c.close();
});

t.test('identify_caller matches every number form', async (t) => {
  const c = await connect();
  for (const phone of ['+14155550142', '14155550142', '4155550142', 'sip:+14155550142@198.51.100.7', 'sip:4155550142@pbx.example;user=phone',
    '<sip:+14155550142@host:5060>', 'tel:+1-415-555-0142', '+1 (415) 555-0142', '011 1 415 555 0142']) {
    const r = await c.call('identify_caller', { phone });
    t.equal(r.data.found, true, phone);
    t.equal(r.data.account.number, 'ACC-10042');
    t.equal(r.data.account.name, 'Acme Plumbing Supply');
    t.equal(r.data.contact.name, 'Dana Reyes');
    t.equal(r.data.contact.phone, '+14155550142');
  }
  const uk = await c.call('identify_caller', { phone: '02079460123' });
  t.equal(uk.data.contact.name, 'Oliver Bennett', 'UK national form with trunk 0');
  t.equal(uk.data.contact.language, 'en-GB');
  const es = await c.call('identify_caller', { phone: '+12145550188' });
  t.equal(es.data.contact.language, 'es-US');
  const main = await c.call('identify_caller', { phone: '+14155550100' });
  t.same(main.data, { found: true, account: { id: 'ACC-10042', name: 'Acme Plumbing Supply', number: 'ACC-10042', tier: 'gold' } }, 'account main line, no contact');
  t.same((await c.call('identify_caller', { phone: '+15555550199' })).data, { found: false });
  t.same((await c.call('identify_caller', { phone: 'anonymous' })).data, { found: false });
  t.same(phoneCandidates('sip:+14155550142@h'), ['14155550142', '4155550142']);
  await c.close();
});

t.test('find_sku by code in any form and by words', async (t) => {
  const c = await connect();
  for (const q of ['HX-4410', 'hx4410', 'HX 4410', 'h x 4 4 1 0', 'the HX-4410 valve']) {
    const r = await c.call('find_sku', { query: q });
    t.equal(r.data.matches[0].sku, 'HX-4410', q);
    t.equal(r.data.matches.length, 1, `${q}: one match`);
  }
  const words = await c.call('find_sku', { query: 'half inch brass ball valve' });
  t.equal(words.data.matches[0].sku, 'HX-4410');
  t.ok(words.data.matches.every((m: any) => /1\/2 inch brass ball valve/.test(m.description)), 'only 1/2" brass ball valves');
  t.match(words.data.matches[0], { description: '1/2 inch brass ball valve, full port, threaded', uom: 'EA', price: 12.85 });
  t.equal((await c.call('find_sku', { query: 'three quarter inch ball valve' })).data.matches[0].sku, 'HX-4420');
  t.equal((await c.call('find_sku', { query: 'teflon tape' })).data.matches[0].sku, 'ST-1100');
  t.equal((await c.call('find_sku', { query: 'wedge anchors' })).data.matches[0].sku, 'FS-4001');
  const gold = await c.call('find_sku', { query: 'HX-4410', account_id: 'ACC-10042' });
  t.equal(gold.data.matches[0].price, 11.82, 'gold tier price (8 % off 12.85)');
  t.same((await c.call('find_sku', { query: 'unobtainium widget' })).data, { matches: [] });
  await c.close();
});

t.test('last_orders newest first with lines', async (t) => {
  const c = await connect();
  const r = await c.call('last_orders', { account_id: 'ACC-10042', limit: 2 });
  t.equal(r.data.orders.length, 2);
  t.match(r.data.orders[0], { order_number: 'SO-482310', po_number: 'PO12388', status: 'picking', date: '2025-06-03' });
  t.match(r.data.orders[1], { order_number: 'SO-481200', po_number: 'PO12345', status: 'shipped' });
  t.same(r.data.orders[1].lines[0], { sku: 'HX-4410', description: '1/2 inch brass ball valve, full port, threaded', qty: 24 });
  t.equal((await c.call('last_orders', { account_id: '10042' })).data.orders.length, 3, 'account by digits, default limit 3');
  const bad = await c.call('last_orders', { account_id: 'ACC-99999' });
  t.equal(bad.isError, true);
  t.match(bad.text, /unknown account/);
  await c.close();
});

t.test('check_atp with ship dates in business days', async (t) => {
  const c = await connect();
  const inStock = await c.call('check_atp', { sku: 'HX-4410', qty: 24, account_id: 'ACC-10042' });
  t.same(inStock.data, { sku: 'HX-4410', qty: 24, available: true, warehouse: 'WH-OAK', available_qty: 240, ship_date: '2025-06-05', lead_time_days: 1 });
  const other = await c.call('check_atp', { sku: 'HX-4430', qty: 10, account_id: 'ACC-10042' });
  t.match(other.data, { available: true, warehouse: 'WH-DAL', available_qty: 35 }, 'home warehouse empty → ships from Dallas');
  const short = await c.call('check_atp', { sku: 'HX-4430', qty: 100 });
  t.match(short.data, { available: false, available_qty: 35, lead_time_days: 10, ship_date: '2025-06-18' }, '10 business days from Wed 4 June');
  const none = await c.call('check_atp', { sku: 'BV-6040', qty: 1 });
  t.match(none.data, { available: false, available_qty: 0, lead_time_days: 15, ship_date: '2025-06-25' });
  // Friday: next business day is Monday
  const fri = await connect(new CrmErpStore({ now: () => new Date('2025-06-06T17:00:00Z') }));
  t.equal((await fri.call('check_atp', { sku: 'HX-4410', qty: 1 })).data.ship_date, '2025-06-09');
  await fri.close();
  t.match((await c.call('check_atp', { sku: 'NOPE-1', qty: 1 })).text, /unknown SKU "NOPE-1"/);
  t.match((await c.call('check_atp', { sku: 'HX-4410', qty: 0 })).text, /greater than zero/);
  await c.close();
});

t.test('place_order validates, books once per idempotency key, allocates stock', async (t) => {
  const c = await connect();
  const before = c.store.count('orders');
  const args = { account_id: 'ACC-10042', lines: [{ sku: 'HX-4410', qty: 24 }, { sku: 'CF-1050', qty: 10 }], po_number: 'PO 55501', idempotency_key: 'call-1:order-1' };
  const r1 = await c.call('place_order', args);
  t.equal(r1.isError, false);
  t.match(r1.data, { order_number: /^SO-\d+$/, status: 'booked', ship_date: '2025-06-05', total: 456.18 });
  const r2 = await c.call('place_order', args);
  t.equal(r2.data.order_number, r1.data.order_number, 'same key → same order');
  t.equal(c.store.count('orders'), before + 1, 'no duplicate row');
  const row = c.store.getOrder(r1.data.order_number)!;
  t.match(row, { account_id: 'ACC-10042', po_number: 'PO 55501', status: 'booked', source: 'voice' });
  t.same(row.lines.map((l) => [l.sku, l.qty]), [['HX-4410', 24], ['CF-1050', 10]]);
  t.equal((await c.call('check_atp', { sku: 'HX-4410', qty: 1, account_id: 'ACC-10042' })).data.available_qty, 216, 'stock allocated');
  t.equal((await c.call('order_status', { po_number: '55501' })).data.order_number, r1.data.order_number, 'new order findable by PO digits');

  const unknown = await c.call('place_order', { ...args, lines: [{ sku: 'ZZ-0000', qty: 1 }], idempotency_key: 'k2' });
  t.equal(unknown.isError, true);
  t.match(unknown.text, /line 1: unknown SKU "ZZ-0000"/);
  for (const qty of [0, -3, 1.5]) {
    const bad = await c.call('place_order', { ...args, lines: [{ sku: 'HX-4410', qty }], idempotency_key: `q${qty}` });
    t.equal(bad.isError, true, `qty ${qty} refused`);
    t.match(bad.text, /quantity/);
  }
  const noLines = await c.call('place_order', { ...args, lines: [], idempotency_key: 'k3' });
  t.equal(noLines.isError, true, 'empty order refused');
  const noAcct = await c.call('place_order', { ...args, account_id: 'ACC-00000', idempotency_key: 'k4' });
  t.match(noAcct.text, /unknown account/);
  t.equal(c.store.count('orders'), before + 1, 'invalid orders wrote nothing');
  // backordered line → the order ships when the longest line can
  const bo = await c.call('place_order', { account_id: 'ACC-10113', lines: [{ sku: 'BV-6040', qty: 2 }], idempotency_key: 'k5' });
  t.match(bo.data, { status: 'booked', ship_date: '2025-06-25', total: 332.64 });
  await c.close();
});

t.test('order_status by PO (any form), order number, account', async (t) => {
  const c = await connect();
  const expect = { found: true, order_number: 'SO-481200', po_number: 'PO12345', status: 'shipped', carrier: 'UPS Ground', tracking_number: '1Z999AA10123456784', ship_date: '2025-06-02', eta: '2025-06-05' };
  for (const po of ['PO12345', '12345', 'po 12345', 'P.O. 1 2 3 4 5', 'PO-12345']) t.match((await c.call('order_status', { po_number: po })).data, expect, po);
  t.match((await c.call('order_status', { order_number: 'SO-481200' })).data, expect);
  t.match((await c.call('order_status', { order_number: '481200' })).data, expect);
  t.match((await c.call('order_status', { po_number: '2291' })).data, { po_number: 'EBS-2291', carrier: 'FedEx Ground', tracking_number: '794698765432' }, 'alphanumeric PO by digits');
  t.match((await c.call('order_status', { account_id: 'ACC-10113' })).data, { order_number: 'SO-481990', status: 'backordered' });
  t.notOk('tracking_number' in (await c.call('order_status', { po_number: 'PO12388' })).data, 'no tracking before shipping');
  t.same((await c.call('order_status', { po_number: '99999' })).data, { found: false });
  t.equal((await c.call('order_status', {})).isError, true);
  await c.close();
});

t.test('create_case is idempotent', async (t) => {
  const c = await connect();
  const args = { account_id: 'ACC-10042', caller_name: 'Dana Reyes', callback_number: '+14155550142', reason: 'needs a quote for 200 ball valves', kind: 'after_hours_message', transcript: 'caller: hi…', idempotency_key: 'call-9:msg' };
  const a = await c.call('create_case', args);
  t.match(a.data, { case_number: /^CS-\d+$/ });
  t.equal((await c.call('create_case', args)).data.case_number, a.data.case_number);
  t.equal(c.store.count('cases'), 1);
  t.match(c.store.getCase(a.data.case_number), { account_id: 'ACC-10042', kind: 'after_hours_message', callback_number: '+14155550142', status: 'open' });
  const b = await c.call('create_case', { ...args, idempotency_key: 'other' });
  t.not(b.data.case_number, a.data.case_number);
  t.equal((await c.call('create_case', { ...args, kind: 'spam', idempotency_key: 'x' })).isError, true, 'kind validated');
  await c.close();
});

t.test('log_activity records a hand-off once per idempotency key', async (t) => {
  const c = await connect();
  const args = {
    account_id: 'acc 10042', contact_id: 'CON-2001', kind: 'handoff', call_id: 'call-42',
    summary: 'Dana Reyes (Acme Plumbing Supply) wants a quote for 200 HX-4410 ball valves',
    reason: 'caller asked for a human', transcript: 'caller: can I talk to Maria?', target: 'Maria Chen x2101',
    idempotency_key: 'call-42:handoff',
  };
  const a = await c.call('log_activity', args);
  t.equal(a.isError, false, a.text);
  t.match(a.data, { activity_id: /^ACT-\d+$/ });
  t.notOk('duplicate' in a.data, 'first call is not a duplicate');
  t.match(c.store.getActivity(a.data.activity_id), {
    account_id: 'ACC-10042', contact_id: 'CON-2001', kind: 'handoff', call_id: 'call-42', summary: args.summary,
    reason: 'caller asked for a human', transcript: 'caller: can I talk to Maria?', target: 'Maria Chen x2101',
    idempotency_key: 'call-42:handoff', created_at: NOW.toISOString(),
  }, 'row created with the resolved account id');
  const again = await c.call('log_activity', { ...args, summary: 'retried' });
  t.same(again.data, { activity_id: a.data.activity_id, duplicate: true }, 'same key → same activity');
  t.equal(c.store.count('activities'), 1, 'no duplicate row');
  t.equal(c.store.getActivity(a.data.activity_id)!.summary, args.summary, 'the retry did not overwrite the row');

  // contact only: the account comes from the contact; no key: each call is a new row
  const b = await c.call('log_activity', { contact_id: 'CON-2003', kind: 'transfer_failed', call_id: 'call-43', summary: 'rep busy, caller taken back' });
  t.not(b.data.activity_id, a.data.activity_id);
  t.match(c.store.getActivity(b.data.activity_id), { account_id: 'ACC-10057', contact_id: 'CON-2003', kind: 'transfer_failed', reason: null, target: null, idempotency_key: null });
  const b2 = await c.call('log_activity', { contact_id: 'CON-2003', kind: 'transfer_failed', call_id: 'call-43', summary: 'rep busy, caller taken back' });
  t.not(b2.data.activity_id, b.data.activity_id, 'without a key every call adds a row');
  // unknown caller: no account at all is fine
  const anon = await c.call('log_activity', { kind: 'handoff', call_id: 'call-44', summary: 'unknown caller wants sales', target: 'Inside Sales 2100' });
  t.equal(anon.isError, false);
  t.equal(c.store.getActivity(anon.data.activity_id)!.account_id, null);

  t.same(c.store.listActivities({ call_id: 'call-43' }).map((r) => r.id), [b.data.activity_id, b2.data.activity_id], 'listed by call, oldest first');
  t.same(c.store.listActivities({ account_id: '10042' }).map((r) => r.id), [a.data.activity_id], 'listed by account in any form');
  t.equal(c.store.listActivities().length, 4);
  await c.close();
});

t.test('log_activity refuses unknown accounts and contacts with a clear error', async (t) => {
  const c = await connect();
  const base = { kind: 'handoff', call_id: 'call-50', summary: 'wants a rep', idempotency_key: 'call-50:handoff' };
  const acct = await c.call('log_activity', { ...base, account_id: 'ACC-99999' });
  t.equal(acct.isError, true);
  t.equal(acct.text, 'unknown account "ACC-99999"');
  t.same(acct.data, { error: 'unknown account "ACC-99999"' });
  const con = await c.call('log_activity', { ...base, contact_id: 'CON-0000' });
  t.equal(con.isError, true);
  t.match(con.text, /unknown contact "CON-0000"/);
  const mismatch = await c.call('log_activity', { ...base, account_id: 'ACC-10113', contact_id: 'CON-2001' });
  t.match(mismatch.text, /contact CON-2001 \(Dana Reyes\) belongs to account ACC-10042, not ACC-10113/);
  t.match((await c.call('log_activity', { ...base, kind: 'Hand off!' })).text, /activity kind/);
  t.match((await c.call('log_activity', { ...base, summary: '   ' })).text, /summary is required/);
  t.equal((await c.call('log_activity', { kind: 'handoff', summary: 'x' })).isError, true, 'call_id required by the schema');
  t.equal(c.store.count('activities'), 0, 'refused activities wrote nothing');
  // the key was not used up by the refusals
  const ok = await c.call('log_activity', { ...base, account_id: 'ACC-10042' });
  t.equal(ok.isError, false);
  t.notOk('duplicate' in ok.data);
  await c.close();
});

t.test('log_activity on a CRM_DB file opened before the table existed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-act-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'crm.sqlite');
  const s1 = new CrmErpStore({ db: file, now: () => NOW });
  s1.db.exec('DROP TABLE activities'); // as a database seeded by an older build
  s1.close();
  const s2 = new CrmErpStore({ db: file, now: () => NOW });
  const { activity_id } = s2.logActivity({ account_id: 'ACC-10042', kind: 'handoff', call_id: 'c1', summary: 's', idempotency_key: 'k' });
  s2.close();
  const s3 = new CrmErpStore({ db: file, now: () => NOW });
  t.same(s3.logActivity({ account_id: 'ACC-10042', kind: 'handoff', call_id: 'c1', summary: 's', idempotency_key: 'k' }), { activity_id, duplicate: true }, 'idempotent across reopen');
  t.equal(s3.count('activities'), 1);
  s3.close();
});

t.test('business_hours with an injected clock', async (t) => {
  const c = await connect();
  const open = await c.call('business_hours', { tenant: 'northwind' });
  t.match(open.data, { open: true, timezone: 'America/Chicago', opens_at: '2025-06-04T07:00:00-05:00', closes_at: '2025-06-04T18:00:00-05:00' });
  const night = await c.call('business_hours', { tenant: 'northwind', at: '2025-06-05T02:30:00Z' });
  t.match(night.data, { open: false, next_open: '2025-06-05T07:00:00-05:00' }, 'after closing: opens next morning');
  const sat = await c.call('business_hours', { tenant: 'northwind', at: '2025-06-07T18:00:00Z' });
  t.match(sat.data, { open: false, next_open: '2025-06-09T07:00:00-05:00', next_open_day: 'Monday' }, 'Saturday after noon → Monday');
  t.match((await c.call('business_hours', { tenant: 'northwind', at: '2025-06-07T14:00:00Z' })).data, { open: true }, 'Saturday morning');
  t.match((await c.call('business_hours', { tenant: 'pacific', at: '2025-06-04T13:30:00Z' })).data, { open: true, timezone: 'America/Los_Angeles' }, '06:30 PDT');
  t.match((await c.call('business_hours', { tenant: 'no-such-tenant' })).data, { tenant: 'default', open: true });
  // DST: Sunday 9 March 2025 Chicago springs forward; Monday opens 07:00 CDT
  t.match((await c.call('business_hours', { at: '2025-03-09T12:00:00Z' })).data, { open: false, next_open: '2025-03-10T07:00:00-05:00' });
  t.equal((await c.call('business_hours', { at: 'yesterday-ish' })).isError, true);
  const closedStore = new CrmErpStore({ now: () => new Date('2025-06-08T15:00:00Z') });
  t.equal(closedStore.businessHours('northwind').open, false, 'Sunday closed with the injected clock');
  closedStore.close();
  await c.close();
});

t.test('route_request', async (t) => {
  const c = await connect();
  t.same((await c.call('route_request', { topic: 'billing' })).data, { target: { kind: 'queue', name: 'Accounts Receivable', extension: '2200' } });
  t.match((await c.call('route_request', { topic: 'I need to return a damaged valve' })).data, { target: { name: 'Returns', extension: '2300' } });
  t.match((await c.call('route_request', { topic: 'sales' })).data, { target: { name: 'Inside Sales', extension: '2100' } });
  t.same((await c.call('route_request', { topic: 'my rep', account_id: 'ACC-10042' })).data, { target: { kind: 'rep', name: 'Maria Chen', extension: '2101' } });
  t.match((await c.call('route_request', { topic: 'something else' })).data, { target: { name: 'Customer Service', extension: '2000' } });
  await c.close();
});

t.test('CRM_DB file: created, seeded once, persists orders', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'crm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'crm.sqlite');
  const s1 = new CrmErpStore({ db: file, now: () => NOW });
  const o = s1.placeOrder({ account_id: 'ACC-10057', lines: [{ sku: 'CV-3110', qty: 5 }], idempotency_key: 'persist' });
  const n = s1.count('orders');
  s1.close();
  const s2 = new CrmErpStore({ db: file, now: () => NOW });
  t.equal(s2.count('orders'), n, 'not re-seeded');
  t.ok(s2.getOrder(o.order_number), 'order persisted');
  t.equal(s2.placeOrder({ account_id: 'ACC-10057', lines: [{ sku: 'CV-3110', qty: 5 }], idempotency_key: 'persist' }).order_number, o.order_number);
  s2.close();
});

t.test('calendar helpers', async (t) => {
  t.equal(addBusinessDays('2025-06-06', 1), '2025-06-09');
  t.equal(addBusinessDays('2025-06-09', -1), '2025-06-06');
  t.equal(addBusinessDays('2025-06-07', 0), '2025-06-09');
  t.equal(isoInZone(zonedInstant('2025-11-02', '07:00', 'America/Chicago'), 'America/Chicago'), '2025-11-02T07:00:00-06:00', 'after fall back');
  t.equal(isoInZone(zonedInstant('2025-06-02', '09:00', 'Europe/London'), 'Europe/London'), '2025-06-02T09:00:00+01:00');
});
