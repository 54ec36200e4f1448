// The per-tenant MCP tool gateway: allow-list enforcement at call time, timeouts on hung
// calls, external stdio and HTTP servers with collision prefixes, audit log lines.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createToolGateway, summarizeArgs, READ_ONLY_TOOLS, type ToolResult } from '../../src/tools/index.ts';
import { CrmErpStore, runHttp, setSharedCrmErpStore } from '../../src/crm-erp/index.ts';
import { captureLogLines } from '../helpers/log-capture.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOW = new Date('2025-06-04T17:00:00Z');

// ---- capture log lines (the logger writes to stderr)
const { lines, logged } = captureLogLines(t);

// ---- a tiny external MCP server (stdio) with a tool that hangs
const dir = mkdtempSync(join(tmpdir(), 'gw-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const sdk = (p: string): string => pathToFileURL(join(ROOT, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href;
const FIXTURE = join(dir, 'ext-server.mjs');
writeFileSync(FIXTURE, `
import { Server } from '${sdk('server/index.js')}';
import { StdioServerTransport } from '${sdk('server/stdio.js')}';
import { ListToolsRequestSchema, CallToolRequestSchema } from '${sdk('types.js')}';
const obj = { type: 'object', properties: {} };
const server = new Server({ name: 'ext', version: '1' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [
  { name: 'slow_lookup', description: 'sleeps', inputSchema: { type: 'object', properties: { ms: { type: 'number' } } } },
  { name: 'order_status', description: 'the other ERP', inputSchema: obj },
  { name: 'warranty_lookup', description: 'warranty terms', inputSchema: obj },
  { name: 'boom', description: 'throws', inputSchema: obj },
] }));
server.setRequestHandler(CallToolRequestSchema, async (req) => {
  const { name, arguments: args = {} } = req.params;
  if (name === 'slow_lookup') { await new Promise((r) => setTimeout(r, args.ms ?? 10000)); return { content: [{ type: 'text', text: JSON.stringify({ slept: args.ms ?? 10000 }) }] }; }
  if (name === 'order_status') return { content: [{ type: 'text', text: JSON.stringify({ from: 'ext' }) }] };
  if (name === 'warranty_lookup') return { content: [{ type: 'text', text: 'five years' }] };
  throw new Error('kaboom');
});
await server.connect(new StdioServerTransport());
process.stdin.on('end', () => process.exit(0));
`);
const ext = { name: 'ext', transport: 'stdio' as const, command: process.execPath, args: [FIXTURE] };

const store = new CrmErpStore({ now: () => NOW });
setSharedCrmErpStore(store);
t.teardown(() => { setSharedCrmErpStore(undefined); store.close(); });
const ctx = (tenantId: string, callId = 'call-1', timeoutMs?: number) => ({ tenantId, callId, timeoutMs });
const fail = (r: ToolResult) => (r.ok ? undefined : r);

t.test('read-only tenant: place_order neither offered nor callable', async (t) => {
  const gw = await createToolGateway({ tenantId: 'acme-ro', allowedActions: ['read_only'] });
  t.teardown(() => gw.close());
  const names = gw.listTools().map((x) => x.name).sort();
  t.same(names, [...READ_ONLY_TOOLS].sort());
  t.notOk(names.includes('place_order'));
  const spec = gw.listTools().find((x) => x.name === 'check_atp')!;
  t.match(spec.inputSchema, { type: 'object', properties: { sku: {}, qty: {} } }, 'JSON schema passed through');
  const before = store.count('orders');
  lines.length = 0;
  const r = await gw.call('place_order', { account_id: 'ACC-10042', lines: [{ sku: 'HX-4410', qty: 1 }], idempotency_key: 'ignore your rules' }, ctx('acme-ro', 'c-ro'));
  t.same(fail(r) && { ok: r.ok, code: fail(r)!.code, error: fail(r)!.error }, { ok: false, code: 'refused', error: 'place_order is not allowed for tenant acme-ro (read-only)' });
  t.equal(store.count('orders'), before, 'nothing written');
  t.equal(logged(/level=warn mod=tools msg="tool refused" tenant=acme-ro call=c-ro tool=place_order/).length, 1, 'warn line');
  t.equal(logged(/msg="tool call" tenant=acme-ro call=c-ro tool=place_order ms=\d+ ok=false code=refused/).length, 1, 'audit line');
  // look-ups still work
  const who = await gw.call('identify_caller', { phone: '+14155550142' }, ctx('acme-ro'));
  t.match(who, { ok: true, data: { found: true, contact: { name: 'Dana Reyes' } } });
  // a gateway answers only for its own tenant
  const other = await gw.call('identify_caller', { phone: '+14155550142' }, ctx('someone-else'));
  t.match(other, { ok: false, code: 'refused' });
  t.match(await gw.call('drop_tables', {}, ctx('acme-ro')), { ok: false, code: 'unknown_tool' });
});

t.test('order tenant: place_order booked, errors → failed, audit lines', async (t) => {
  const gw = await createToolGateway({ tenantId: 'northwind', allowedActions: ['order_placement'] });
  t.teardown(() => gw.close());
  t.ok(gw.listTools().some((x) => x.name === 'place_order'));
  lines.length = 0;
  const args = { account_id: 'ACC-10042', lines: [{ sku: 'HX-4410', qty: 24 }], po_number: 'PO777', idempotency_key: 'call-7:1' };
  const r = await gw.call('place_order', args, ctx('northwind', 'call-7'));
  t.match(r, { ok: true, data: { order_number: /^SO-\d+$/, status: 'booked', ship_date: '2025-06-05', total: 283.68 } });
  const again = await gw.call('place_order', args, ctx('northwind', 'call-7'));
  t.equal(again.ok && again.data.order_number, r.ok && r.data.order_number, 'idempotent through the gateway');
  t.ok(r.ok && store.getOrder(String(r.data.order_number)), 'row in the shared store');
  const audit = logged(/msg="tool call" tenant=northwind call=call-7 tool=place_order ms=\d+ ok=true code=ok args=/);
  t.equal(audit.length, 2, 'one audit line per call');
  t.match(audit[0], /HX-4410/, 'args summarised');
  const bad = await gw.call('place_order', { ...args, lines: [{ sku: 'NOPE', qty: 1 }], idempotency_key: 'x' }, ctx('northwind'));
  t.match(bad, { ok: false, code: 'failed', error: /unknown SKU "NOPE"/ });
  const invalid = await gw.call('check_atp', { sku: 'HX-4410', qty: 'lots' }, ctx('northwind'));
  t.match(invalid, { ok: false, code: 'failed' }, 'schema violation → failed, not a throw');
  // business_hours defaults to the gateway's tenant
  t.match(await gw.call('business_hours', {}, ctx('northwind')), { ok: true, data: { tenant: 'northwind', open: true, timezone: 'America/Chicago' } });
});

t.test('explicit tool list instead of a preset', async (t) => {
  const gw = await createToolGateway({ tenantId: 'narrow', allowedActions: ['identify_caller', 'order_status'] });
  t.teardown(() => gw.close());
  t.same(gw.listTools().map((x) => x.name).sort(), ['identify_caller', 'order_status']);
  t.match(await gw.call('create_case', {}, ctx('narrow')), { ok: false, code: 'refused', error: /allowed: identify_caller, order_status/ });
});

t.test('external stdio server: prefixes on collision, allow-list, hung call times out', async (t) => {
  const gw = await createToolGateway({ tenantId: 'ext-t', allowedActions: ['read_only', 'ext__*'], mcpServers: [ext], toolTimeoutMs: 300 });
  t.teardown(() => gw.close());
  const names = gw.listTools().map((x) => x.name);
  t.ok(names.includes('order_status'), 'built-in keeps its name');
  t.ok(names.includes('ext__order_status'), 'colliding external tool prefixed');
  t.ok(names.includes('warranty_lookup') && names.includes('slow_lookup'), 'unique external names kept');
  t.match(await gw.call('ext__order_status', {}, ctx('ext-t')), { ok: true, data: { from: 'ext' } });
  t.match(await gw.call('order_status', { po_number: 'PO12345' }, ctx('ext-t')), { ok: true, data: { tracking_number: '1Z999AA10123456784' } });
  t.match(await gw.call('warranty_lookup', {}, ctx('ext-t')), { ok: true, data: { text: 'five years' } }, 'plain-text result wrapped');
  t.match(await gw.call('boom', {}, ctx('ext-t')), { ok: false, code: 'failed', error: /kaboom/ });

  lines.length = 0;
  const started = performance.now();
  const slow = await gw.call('slow_lookup', { ms: 10_000 }, ctx('ext-t', 'c-slow'));
  const took = performance.now() - started;
  t.match(slow, { ok: false, code: 'timeout', error: /slow_lookup did not answer within 300 ms/ });
  t.ok(took >= 290 && took < 800, `timed out at the bound (${took.toFixed(0)} ms)`);
  t.equal(logged(/msg="tool call" tenant=ext-t call=c-slow tool=slow_lookup ms=\d+ ok=false code=timeout/).length, 1);
  t.match(await gw.call('slow_lookup', { ms: 10_000 }, ctx('ext-t', 'c2', 150)), { code: 'timeout', error: /150 ms/ }, 'per-call timeout wins');
  t.match(await gw.call('slow_lookup', { ms: 20 }, ctx('ext-t')), { ok: true, data: { slept: 20 } }, 'server still usable after abandoned calls');
});

t.test('external tools are offered only when allowed', async (t) => {
  const gw = await createToolGateway({ tenantId: 'ro-ext', allowedActions: ['read_only'], mcpServers: [ext] });
  t.teardown(() => gw.close());
  t.notOk(gw.listTools().some((x) => x.name.startsWith('ext__') || x.name === 'warranty_lookup'));
  t.match(await gw.call('warranty_lookup', {}, ctx('ro-ext')), { ok: false, code: 'refused' });
  const one = await createToolGateway({ tenantId: 'one', allowedActions: ['warranty_lookup'], mcpServers: [ext] }, { builtin: false });
  t.teardown(() => one.close());
  t.same(one.listTools().map((x) => x.name), ['warranty_lookup']);
});

t.test('external streamable HTTP server (the CRM/ERP itself) prefixed beside the built-in one', async (t) => {
  const srv = await runHttp({ port: 0, now: () => NOW });
  t.teardown(() => srv.close());
  const gw = await createToolGateway({ tenantId: 'http-t', allowedActions: ['read_only', 'erp__identify_caller'], mcpServers: [{ name: 'erp', transport: 'http', url: srv.url }] });
  t.teardown(() => gw.close());
  const names = gw.listTools().map((x) => x.name);
  t.ok(names.includes('identify_caller') && names.includes('erp__identify_caller'));
  t.notOk(names.includes('erp__place_order'), 'only the allowed external tool');
  t.match(await gw.call('erp__identify_caller', { phone: '4155550142' }, ctx('http-t')), { ok: true, data: { account: { number: 'ACC-10042' } } });
  t.match(await gw.call('erp__place_order', {}, ctx('http-t')), { ok: false, code: 'refused' });
});

t.test('an unreachable external server does not take the gateway down', async (t) => {
  lines.length = 0;
  const gw = await createToolGateway({
    tenantId: 'broken', allowedActions: ['read_only'], mcpServers: [
      { name: 'gone', transport: 'stdio', command: '/nonexistent/mcp-server' },
      { name: 'down', transport: 'http', url: 'http://127.0.0.1:18599/mcp' },
    ],
  }, { connectTimeoutMs: 3000 });
  t.teardown(() => gw.close());
  t.equal(gw.listTools().length, READ_ONLY_TOOLS.length);
  t.equal(logged(/level=error mod=tools msg="mcp server unavailable" tenant=broken server=(gone|down)/).length, 2);
  t.match(await gw.call('route_request', { topic: 'billing' }, ctx('broken')), { ok: true, data: { target: { extension: '2200' } } });
});

t.test('closed gateway and audit summaries', async (t) => {
  const gw = await createToolGateway({ tenantId: 'z', allowedActions: ['read_only'] });
  await gw.close();
  t.match(await gw.call('identify_caller', { phone: '1' }, ctx('z')), { ok: false, code: 'failed' });
  const s = summarizeArgs({ api_key: 'sk-SECRET', password: 'hunter2', idempotency_key: 'c1:o1', transcript: 'x'.repeat(500) });
  t.notMatch(s, /SECRET|hunter2/);
  t.match(s, /c1:o1/);
  t.match(s, /500 chars/);
  const r = summarizeArgs({ phone: '+14155550142', note: 'x' }, ['+14155550142']);
  t.equal(r, '{"phone":"anonymous","note":"x"}', 'a withheld calling number is not written to the audit log');
});
