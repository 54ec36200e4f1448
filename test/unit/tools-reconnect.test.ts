// The tool gateway when an external MCP server drops: a stdio child killed is started again on
// the next call; an HTTP server that is gone is marked down, reconnect attempts back off
// (calls meanwhile fail at once), and once it is back the next call reconnects and works.
// An external server named `crm` replaces the built-in CRM/ERP (plain tool names).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createToolGateway } from '../../src/tools/index.ts';
import { RECONNECT_BACKOFF_MS } from '../../src/tools/gateway.ts';
import { runHttp } from '../../src/crm-erp/index.ts';
import { captureLogLines } from '../helpers/log-capture.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { lines, logged } = captureLogLines(t);

const dir = mkdtempSync(join(tmpdir(), 'gw-reconnect-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const sdk = (p: string): string => pathToFileURL(join(ROOT, 'node_modules/@modelcontextprotocol/sdk/dist/esm', p)).href;
const FIXTURE = join(dir, 'pid-server.mjs');
writeFileSync(FIXTURE, `
import { Server } from '${sdk('server/index.js')}';
import { StdioServerTransport } from '${sdk('server/stdio.js')}';
import { ListToolsRequestSchema, CallToolRequestSchema } from '${sdk('types.js')}';
const server = new Server({ name: 'pid', version: '1' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: 'whoami', description: 'pid', inputSchema: { type: 'object', properties: {} } }] }));
server.setRequestHandler(CallToolRequestSchema, async () => ({ content: [{ type: 'text', text: JSON.stringify({ pid: process.pid }) }] }));
await server.connect(new StdioServerTransport());
`);

const ctx = { tenantId: 't1', callId: 'c1' };

t.test('stdio server killed: the next call starts it again', async (t) => {
  const gw = await createToolGateway({
    tenantId: 't1', allowedActions: ['ext__*'],
    mcpServers: [{ name: 'ext', transport: 'stdio', command: process.execPath, args: [FIXTURE] }],
  }, { builtin: false });
  t.teardown(() => gw.close());
  const a = await gw.call('whoami', {}, ctx);
  t.ok(a.ok, 'first call works');
  const pid = Number(a.ok ? a.data.pid : 0);
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 50 && !logged(/mcp server down[^\n]*server=ext/).length; i++) await sleep(50);
  t.ok(logged(/mcp server down[^\n]*server=ext[^\n]*connection closed/).length, 'the gateway saw the child go');
  const b = await gw.call('whoami', {}, ctx);
  t.ok(b.ok, `the next call works (${b.ok ? '' : b.error})`);
  t.not(b.ok ? b.data.pid : pid, pid, 'served by a new child');
  t.ok(logged(/mcp server reconnected[^\n]*server=ext/).length, 'reconnect logged');
});

t.test('HTTP CRM gone: fails fast, backs off, reconnects when it is back; a server named crm replaces the built-in one', async (t) => {
  const db = join(dir, 'crm.sqlite');
  let srv = await runHttp({ port: 0, db });
  const port = srv.port;
  t.teardown(() => srv.close());
  const gw = await createToolGateway({
    tenantId: 't1', allowedActions: ['read_only'],
    mcpServers: [{ name: 'crm', transport: 'http', url: srv.url }],
  });
  t.teardown(() => gw.close());
  const names = gw.listTools().map((x) => x.name);
  t.ok(names.includes('order_status') && !names.some((n) => n.startsWith('crm__')), `plain tool names: the external crm replaces the built-in (${names.join(',')})`);
  t.ok(logged(/tool gateway ready[^\n]*servers=crm\b/).length, 'one server: the external crm');
  const ask = () => gw.call('order_status', { po_number: 'PO12345' }, ctx);
  const ok = await ask();
  t.ok(ok.ok && ok.data.found, 'lookup works');

  await srv.close();
  const r1 = await ask();
  t.equal(r1.ok, false, 'server gone: the call fails');
  t.ok(r1.ms < 1000, `at once (${r1.ms} ms)`);
  t.ok(logged(/mcp server down[^\n]*server=crm/).length, 'marked down (logged)');
  const r2 = await ask();
  t.match(r2.ok ? '' : r2.error, /reconnect failed/, 'the next call tries to reconnect, and fails');
  t.ok(logged(new RegExp(`mcp server reconnect failed[^\\n]*server=crm[^\\n]*retryInMs=${RECONNECT_BACKOFF_MS.first}`)).length, `backoff ${RECONNECT_BACKOFF_MS.first} ms logged`);
  const r3 = await ask();
  t.match(r3.ok ? '' : r3.error, /next reconnect in/, 'while backing off: no attempt');
  t.ok(r3.ms < 50, `fails at once (${r3.ms} ms)`);
  const r4 = await ask().then(() => ask());
  t.equal(r4.ok, false, 'still down');

  srv = await runHttp({ port, db });
  await sleep(RECONNECT_BACKOFF_MS.first * 2 + 100);
  const back = await ask();
  t.ok(back.ok && back.data.found, `back: the lookup works again (${back.ok ? '' : back.error})`);
  t.ok(logged(/mcp server reconnected[^\n]*server=crm/).length, 'reconnect logged');
});
