/**
 * The operations pieces on their own: admission decisions from the live-call counts and the
 * media loop's lateness histogram, health checks with deadlines, the metrics exposition of
 * externally kept histograms, and the JSON log format.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { Admission, retryAfterFor } from '../../src/sip/admission.ts';
import { runChecks, formatChecks } from '../../src/ops/http.ts';
import { exposition, registerCollector, observeCallEnd, sipMethodLabel, statusClass } from '../../src/ops/metrics.ts';
import { ROOT } from '../helpers/server.ts';

t.test('admission: call limits, per tenant, and Retry-After growing with the overload', async (t) => {
  let active = 0;
  const perTenant = new Map<string, number>();
  const a = new Admission({ activeCalls: () => active, tenantCalls: (id) => perTenant.get(id) ?? 0 }, { maxCalls: 4, maxCallsPerTenant: 2, mediaLateMs: 0, eventLoopMs: 0 });
  t.same(a.admit('acme'), { ok: true });
  active = 4;
  const full = a.admit('acme');
  t.match(full, { ok: false, reason: 'calls', detail: '4 calls up, limit 4' });
  t.ok(!full.ok && full.retryAfter >= 5 && full.retryAfter <= 60, 'Retry-After in 5..60 s');
  active = 2;
  perTenant.set('acme', 2);
  t.match(a.admit('acme'), { ok: false, reason: 'tenant-calls' });
  t.same(a.admit('other'), { ok: true }, 'another tenant still gets in');
  t.same(a.admit(), { ok: true }, 'no tenant known yet: only the global limit applies');
  t.equal(retryAfterFor(1), 5);
  t.ok(retryAfterFor(2) > retryAfterFor(1.2), 'further over the limit → later retry');
  t.equal(retryAfterFor(100), 60, 'capped at 60 s');
});

t.test('admission: the media loop lateness over the window', async (t) => {
  // bounds in µs as the native histogram has them; counts per bucket, last = above all
  const boundsUs = [100, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 250000];
  const counts = new Array(boundsUs.length + 1).fill(0) as number[];
  let count = 0;
  const add = (bucket: number, n: number): void => {
    counts[bucket]! += n;
    count += n;
  };
  const a = new Admission({ activeCalls: () => 0, tenantCalls: () => 0, pacingHistogram: () => ({ boundsUs, counts: [...counts], count }) },
    { maxCalls: 0, mediaLateMs: 10, eventLoopMs: 0, windowSeconds: 5 });
  let now = 1_000_000;
  a.sample(now);
  add(0, 10_000); // on time
  add(7, 50); // 10-20 ms late: 0.5 %
  a.sample((now += 1000));
  t.same(a.admit(), { ok: true }, '0.5 % late: admitted');
  add(0, 10_000);
  add(8, 400); // 20-50 ms late
  a.sample((now += 1000));
  const d = a.admit();
  t.match(d, { ok: false, reason: 'media-loop' }, `${(a.load.mediaLateShare * 100).toFixed(1)} % late: refused`);
  // the late stretch leaves the 5 s window: admitted again
  for (let i = 0; i < 6; i++) {
    add(0, 10_000);
    a.sample((now += 1000));
  }
  t.same(a.admit(), { ok: true }, 'recovered once the window has passed');
});

t.test('health checks: each named, a hung one fails on its deadline, a throwing one fails with its message', async (t) => {
  const res = await runChecks([
    { name: 'fine', check: () => null },
    { name: 'down', check: async () => 'connection refused' },
    { name: 'hung', check: () => new Promise<string | null>(() => {}) },
    { name: 'throws', check: () => { throw new Error('boom'); } },
  ], 50);
  t.same(res.map((r) => [r.name, r.ok]), [['fine', true], ['down', false], ['hung', false], ['throws', false]]);
  t.equal(formatChecks(res), 'ok fine\nFAIL down: connection refused\nFAIL hung: no answer within 50 ms\nFAIL throws: boom\n');
});

t.test('metrics: an external histogram and a finished call in the exposition', async (t) => {
  registerCollector('test_external_seconds', 'a test histogram', 'histogram', () => ({ bounds: [0.001, 0.01], counts: [5, 3, 2], count: 10, sum: 0.05 }));
  registerCollector('test_external_by_state', 'a test gauge', 'gauge', async () => ({ waiting: 3, active: 1 }), 'state');
  registerCollector('test_external_broken', 'a source that throws', 'gauge', () => { throw new Error('gone'); });
  observeCallEnd({ tenant: 'acme', outcome: 'order_placed', media: { packetsIn: 990, packetsOut: 1000, lossInPct: 1, jitterInMs: 4, mos: 4.3, late: 2 } });
  const text = await exposition();
  t.match(text, /voice_agent_test_external_seconds_bucket\{le="0.001"\} 5\n/);
  t.match(text, /voice_agent_test_external_seconds_bucket\{le="0.01"\} 8\n/, 'buckets are cumulative');
  t.match(text, /voice_agent_test_external_seconds_bucket\{le="\+Inf"\} 10\n/);
  t.match(text, /voice_agent_test_external_seconds_count 10\n/);
  t.match(text, /voice_agent_test_external_by_state\{state="waiting"\} 3\n/);
  t.notMatch(text, /voice_agent_test_external_broken \d/, 'a failing source is left out, the scrape goes on');
  t.match(text, /voice_agent_calls_total\{tenant="acme",outcome="order_placed"\} 1\n/);
  t.match(text, /voice_agent_rtp_lost_packets_total 10\n/, '1 % of 1000 expected packets lost');
  t.match(text, /voice_agent_call_mos_count 1\n/);
  t.equal(sipMethodLabel('INVITE'), 'INVITE');
  t.equal(sipMethodLabel('XYZZY'), 'OTHER', 'methods are a bounded label');
  t.equal(statusClass(183), '1xx');
  t.equal(statusClass(503), '5xx');
});

t.test('LOG_FORMAT=json: one JSON object per line with module, message and fields', async (t) => {
  const code = `
    const { logger } = await import('./src/ops/log.ts');
    const l = logger('call', { callId: 'c-1' });
    l.info('call start', { from: '+14155550142', n: 3, err: new Error('boom'), skip: undefined });
    l.debug('not shown at info');
    l.warn('odd "quotes"\\nand a newline');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env: { ...process.env, LOG_FORMAT: 'json', LOG_LEVEL: 'info' }, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 2, 'debug filtered by the level');
  const a = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.match(a, { level: 'info', mod: 'call', msg: 'call start', callId: 'c-1', from: '+14155550142', n: 3, err: 'boom' });
  t.match(a.ts, /^\d{4}-\d\d-\d\dT/);
  t.notOk('skip' in a, 'undefined fields are dropped');
  t.match(JSON.parse(lines[1]!), { level: 'warn', msg: 'odd "quotes"\nand a newline' });
});

t.test('secrets: loopback detection, the default drachtio secret and OPS_TOKEN off loopback', async (t) => {
  const { isLoopbackHost } = await import('../../src/ops/auth.ts');
  for (const h of ['127.0.0.1', '127.0.0.2', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(h), `${h} is loopback`);
  for (const h of ['0.0.0.0', '::', '10.0.0.5', '203.0.113.7', 'sip.example.com']) t.notOk(isLoopbackHost(h), `${h} is not loopback`);
  const { loadConfig } = await import('../../src/config.ts');
  const load = (env: Record<string, string>) => loadConfig({ argv: [], env, cwd: ROOT });
  t.doesNotThrow(() => load({}), 'embedded defaults (loopback) keep the default secret');
  t.throws(() => load({ SIP_ADDRESS: '0.0.0.0' }), /environment: drachtio\.secret: is the well-known default "cymru" while the SIP edge uses 0\.0\.0\.0, off loopback: set DRACHTIO_SECRET/);
  t.throws(() => load({ EDGE: 'drachtio', DRACHTIO_HOST: '10.1.2.3', DRACHTIO_PORT: '9022' }), /drachtio\.secret: .*the drachtio control connection uses 10\.1\.2\.3/);
  t.doesNotThrow(() => load({ SIP_ADDRESS: '0.0.0.0', DRACHTIO_SECRET: 'a-long-random-secret' }), 'a real secret is fine');
  t.throws(() => load({ OPS_ADDRESS: '0.0.0.0', DRACHTIO_SECRET: 's' }), /environment: OPS_TOKEN: must be set .* when the ops listener binds 0\.0\.0\.0/);
  t.doesNotThrow(() => load({ OPS_ADDRESS: '0.0.0.0', OPS_TOKEN: 'tok', DRACHTIO_SECRET: 's' }));
});

t.test('ops listener with OPS_TOKEN: 401 without the bearer token, 200 with it', async (t) => {
  const { startOpsServer } = await import('../../src/ops/http.ts');
  await t.rejects(startOpsServer({ host: '0.0.0.0', port: 0, liveness: [], readiness: [] }), /set OPS_TOKEN/, 'no token off loopback: refused');
  const ops = await startOpsServer({ host: '127.0.0.1', port: 0, liveness: [], readiness: [], token: 's3cret' });
  t.teardown(() => ops.close());
  const no = await fetch(`${ops.url}/metrics`);
  t.equal(no.status, 401);
  t.match(no.headers.get('www-authenticate'), /^Bearer/);
  t.equal((await fetch(`${ops.url}/metrics`, { headers: { Authorization: 'Bearer wrong' } })).status, 401);
  t.equal((await fetch(`${ops.url}/metrics`, { headers: { Authorization: 'Bearer s3cret' } })).status, 200);
});

t.test('crm-erp-mcp --http: a token is required off loopback and enforced when set', async (t) => {
  const { runHttp } = await import('../../src/crm-erp/cli.ts');
  await t.rejects(runHttp({ host: '0.0.0.0', port: 0, db: ':memory:' }), /without authentication: set CRM_MCP_TOKEN/);
  const srv = await runHttp({ host: '127.0.0.1', port: 0, db: ':memory:', token: 'crm-token' });
  t.teardown(() => srv.close());
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
  const post = (auth?: string) => fetch(srv.url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(auth ? { Authorization: auth } : {}) },
    body: JSON.stringify(init),
  });
  const no = await post();
  t.equal(no.status, 401, 'no token: 401');
  t.match(await no.text(), /unauthorized/);
  t.equal((await post('Bearer nope')).status, 401, 'wrong token: 401');
  t.equal((await post('Bearer crm-token')).status, 200, 'right token: served');
  const { Client } = await import('@modelcontextprotocol/sdk/client/index.js');
  const { StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js');
  const client = new Client({ name: 't', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(srv.url), { requestInit: { headers: { Authorization: 'Bearer crm-token' } } }));
  t.ok((await client.listTools()).tools.length > 5, 'an MCP client with the header lists the tools');
  await client.close();
});
