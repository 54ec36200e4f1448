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
