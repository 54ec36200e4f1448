// The built-in CRM/ERP MCP server on its own: stdio (spawned through the CLI) and streamable
// HTTP (in-process and spawned through the CLI), each driven by the real MCP client.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { runHttp, CRM_ERP_TOOLS } from '../../src/crm-erp/index.ts';
import { setLogLevel } from '../../src/ops/log.ts';

setLogLevel('silent');
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/voice-agent.mjs', import.meta.url));

async function exercise(t: Test, client: Client): Promise<void> {
  const { tools } = await client.listTools();
  t.same(tools.map((x) => x.name).sort(), [...CRM_ERP_TOOLS].sort(), 'all tools listed');
  const who = await client.callTool({ name: 'identify_caller', arguments: { phone: 'sip:+14155550142@192.0.2.1' } });
  t.match(who.structuredContent, { found: true, account: { number: 'ACC-10042' }, contact: { name: 'Dana Reyes' } });
  const st = await client.callTool({ name: 'order_status', arguments: { po_number: '12345' } });
  t.match(st.structuredContent, { found: true, tracking_number: '1Z999AA10123456784', carrier: 'UPS Ground' });
  const order = { account_id: 'ACC-10042', lines: [{ sku: 'HX-4410', qty: 3 }], idempotency_key: `t-${Date.now()}` };
  const a = await client.callTool({ name: 'place_order', arguments: order });
  const b = await client.callTool({ name: 'place_order', arguments: order });
  t.match(a.structuredContent, { order_number: /^SO-\d+$/, status: 'booked' });
  t.equal((b.structuredContent as any).order_number, (a.structuredContent as any).order_number, 'idempotent across requests');
  const bad = await client.callTool({ name: 'place_order', arguments: { ...order, lines: [{ sku: 'HX-4410', qty: -1 }], idempotency_key: 'neg' } });
  t.equal(bad.isError, true, 'invalid qty → error result, server still alive');
  const after = await client.callTool({ name: 'find_sku', arguments: { query: 'HX-4410' } });
  t.match(after.structuredContent, { matches: [{ sku: 'HX-4410' }] });
}

t.test('stdio: voice-agent crm-erp-mcp --stdio as a child process', async (t) => {
  const transport = new StdioClientTransport({ command: process.execPath, args: [BIN, 'crm-erp-mcp', '--stdio'], cwd: ROOT, stderr: 'pipe', env: { ...process.env as Record<string, string>, LOG_LEVEL: 'info' } });
  let stderr = '';
  transport.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  const client = new Client({ name: 'test', version: '1' });
  const started = Date.now();
  await client.connect(transport);
  t.comment(`stdio server connected in ${Date.now() - started} ms`);
  await exercise(t, client);
  await client.close();
  t.match(stderr, /msg="crm-erp mcp server on stdio"/, 'logs on stderr, stdout left to JSON-RPC');
});

t.test('http: runHttp on port 0, streamable HTTP at /mcp', async (t) => {
  const srv = await runHttp({ port: 0 });
  t.teardown(() => srv.close());
  t.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(srv.url)));
  await exercise(t, client);
  // a second client sees the same database
  const other = new Client({ name: 'test2', version: '1' });
  await other.connect(new StreamableHTTPClientTransport(new URL(srv.url)));
  const r = await other.callTool({ name: 'last_orders', arguments: { account_id: 'ACC-10042', limit: 1 } });
  t.equal((r.structuredContent as any).orders[0].lines[0].qty, 3, 'order from the first client visible');
  await other.close();
  await client.close();
  const health = await fetch(srv.url.replace('/mcp', '/healthz'));
  t.equal(health.status, 200);
  t.equal((await fetch(srv.url, { method: 'GET' })).status, 405, 'GET /mcp → 405 (stateless server)');
  t.equal((await fetch(srv.url.replace('/mcp', '/nope'))).status, 404);
  const junk = await fetch(srv.url, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } });
  t.equal(junk.status, 400, 'malformed JSON → 400');
});

t.test('http: voice-agent crm-erp-mcp --http --port N as a child process', async (t) => {
  const port = 18511;
  const child = spawn(process.execPath, [BIN, 'crm-erp-mcp', '--http', '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGTERM'); });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listen line; stdout=${out}`)), 15000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  t.equal(url, `http://127.0.0.1:${port}/mcp`);
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  await exercise(t, client);
  await client.close();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM → clean exit');
});

t.test('cli rejects bad options', async (t) => {
  const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN, 'crm-erp-mcp', '--port', 'abc'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('exit', (code) => resolve({ code, err }));
  });
  t.equal(r.code, 2);
  t.match(r.err, /--port must be 0-65535/);
});
