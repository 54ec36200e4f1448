/**
 * Operating the server, judged from outside: a real Prometheus (Debian `prometheus`) scrapes
 * /metrics during a SIPp call; /readyz follows Redis going away and coming back; admission
 * answers every INVITE at twice the call limit (503 + Retry-After for the extra ones); and
 * SIGTERM drains: OPTIONS and new INVITEs get 503, /readyz fails, the live call goes on until
 * DRAIN_SECONDS, then the caller hears the goodbye, gets a BYE, and the process exits 0.
 */
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { haveSipp, runSipp, sippMessage } from '../helpers/sipp.ts';
import { startTestRedis } from '../helpers/redis.ts';
import { freePort } from '../helpers/ports.ts';
import { placeCall } from '../helpers/caller.ts';
import { SipPeer, sleep } from '../unit/sip-edge-helpers.ts';
import { requireTool } from '../helpers/require.ts';

const havePrometheus = spawnSync('prometheus', ['--version']).status === 0;

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

/** Poll until `pred` holds (a state reached, never a timing). */
async function until<T>(what: string, fn: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 20000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < end) {
    last = await fn();
    if (pred(last)) return last;
    await sleep(250);
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

/** A metric's value from the exposition text (sum over label sets matching `labels`). */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) {
      sum += Number(m[3]);
      found = true;
    }
  }
  return found ? sum : NaN;
}

t.test('/metrics, /livez, /readyz answer without a session', async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  t.match(server.opsUrl, /^http:\/\/127\.0\.0\.1:\d+$/, 'ops URL in the ready line');
  const live = await get(`${server.opsUrl}/livez`);
  t.equal(live.status, 200, live.body);
  t.match(live.body, /^ok media-loop$/m);
  const ready = await until('ready', () => get(`${server.opsUrl}/readyz`), (r) => r.status === 200);
  for (const check of ['draining', 'sip', 'media', 'redis', 'spool', 'tools', 'vad']) t.match(ready.body, new RegExp(`^ok ${check}$`, 'm'), `readiness checks ${check}`);
  const m = await get(`${server.opsUrl}/metrics`);
  t.equal(m.status, 200);
  for (const name of ['voice_agent_media_loop_lateness_seconds_bucket', 'voice_agent_nodejs_eventloop_lag_p99_seconds', 'voice_agent_process_cpu_seconds_total', 'voice_agent_draining', 'voice_agent_media_sessions']) {
    t.ok(m.body.includes(name), `exposes ${name}`);
  }
  t.equal((await get(`${server.opsUrl}/nope`)).status, 404);
});

t.test('a real Prometheus scrapes a SIPp call: active calls 1 → 0, the calls counter moves', { skip: requireTool(t, 'Prometheus scrape', havePrometheus, 'prometheus', 'prometheus') || requireTool(t, 'Prometheus scrape', haveSipp(), 'sipp', 'sip-tester') }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'prom-'));
  const promPort = await freePort({ min: 19300, max: 19399 }, 'tcp');
  const target = server.opsUrl.replace(/^http:\/\//, '');
  writeFileSync(path.join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'scrape_configs:',
    '  - job_name: voice-agent',
    '    scrape_interval: 1s',
    `    static_configs: [{ targets: ['${target}'] }]`,
    '',
  ].join('\n'));
  const prom: ChildProcess = spawn('prometheus', [
    `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let promLog = '';
  prom.stderr!.on('data', (d: Buffer) => { promLog += d.toString(); });
  t.teardown(async () => {
    prom.kill('SIGTERM');
    await new Promise((r) => prom.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  });
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (q: string): Promise<number> => {
    const r = await fetch(`${api}/query?query=${encodeURIComponent(q)}`).then((x) => x.json() as Promise<{ data?: { result?: Array<{ value: [number, string] }> } }>).catch(() => null);
    const v = r?.data?.result?.[0]?.value?.[1];
    return v === undefined ? NaN : Number(v);
  };
  await until(`Prometheus scraping the server (log: ${promLog})`, () => query('up{job="voice-agent"}'), (v) => v === 1, 30000);
  const callsBefore = await query('sum(voice_agent_calls_total) or vector(0)');

  const sipp = runSipp('uac-pcmu', { target: `127.0.0.1:${server.sipPort}`, durationMs: 5000, timeoutSec: 25 });
  await until('active calls = 1 in Prometheus', () => query('sum(voice_agent_calls_active)'), (v) => v === 1);
  const r = await sipp;
  t.equal(r.code, 0, sippMessage(r));
  await until('active calls back to 0 in Prometheus', () => query('sum(voice_agent_calls_active)'), (v) => v === 0);
  const callsAfter = await until('calls counter moved in Prometheus', () => query('sum(voice_agent_calls_total)'), (v) => v > callsBefore);
  t.ok(callsAfter > callsBefore, `voice_agent_calls_total ${callsBefore} → ${callsAfter}`);
  t.equal(await query('max_over_time(sum(voice_agent_calls_active)[2m:1s])'), 1, 'the peak Prometheus saw was one active call');
  t.ok(await query('sum(voice_agent_sip_requests_total{layer="edge",direction="in",method="INVITE"})') >= 1, 'edge counted the INVITE');
  t.ok(await query('sum(voice_agent_call_setup_seconds_count)') >= 1, 'call setup observed');
  t.ok(await query('sum(voice_agent_media_loop_lateness_seconds_count)') > 0, 'media loop lateness histogram filled');
});

t.test('/readyz names redis when it stops, and passes again when it is back', async (t) => {
  const redis = await startTestRedis();
  t.teardown(() => redis.stop());
  const server = await startServer({ REDIS_URL: redis.url });
  t.teardown(() => server.stop());
  await until('ready with Redis up', () => get(`${server.opsUrl}/readyz`), (r) => r.status === 200);
  await redis.kill();
  const down = await until('readyz 503 with Redis down', () => get(`${server.opsUrl}/readyz`), (r) => r.status === 503);
  t.match(down.body, /^FAIL redis: /m, 'the failing check is named');
  t.match(down.body, /^ok sip$/m, 'the other checks still pass');
  await server.waitForLog(/readiness check failing[^\n]*check=redis/, 5000);
  await redis.restart();
  const up = await until('readyz 200 with Redis back', () => get(`${server.opsUrl}/readyz`), (r) => r.status === 200);
  t.match(up.body, /^ok redis$/m);
});

t.test('admission at twice the call limit: every INVITE gets a final response, the extra ones 503 + Retry-After', { skip: requireTool(t, 'admission', haveSipp(), 'sipp', 'sip-tester') }, async (t) => {
  const server = await startServer({ MAX_CALLS: '2' });
  t.teardown(() => server.stop());
  const r = await runSipp('uac-admission', { target: `127.0.0.1:${server.sipPort}`, calls: 4, limit: 4, rate: 20, durationMs: 4000, timeoutSec: 30 });
  t.equal(r.code, 0, sippMessage(r, 'every call got 200 or 503 (none hung)'));
  const admitted = (r.log.match(/^.*admitted$/gm) ?? []).length;
  const refused = r.log.match(/refused Retry-After: *\d+ Reason: [^\n]*/g) ?? [];
  t.equal(admitted, 2, 'two calls admitted');
  t.equal(refused.length, 2, 'two calls refused');
  for (const line of refused) {
    const secs = Number(/Retry-After: *(\d+)/.exec(line)?.[1]);
    t.ok(secs >= 1 && secs <= 60, `Retry-After ${secs} s`);
    t.match(line, /overloaded/, 'Reason says why');
  }
  const m = await get(`${server.opsUrl}/metrics`);
  t.equal(metricValue(m.body, 'voice_agent_invites_rejected_total', { reason: 'overload-calls' }), 2, 'refusals counted by reason');
  await server.waitForLog(/rejecting INVITE: 503, overloaded[^\n]*reason=calls/, 2000);
});

t.test('SIGTERM drains: 503 to OPTIONS and INVITEs, readyz fails, the live call ends with a goodbye, exit 0', async (t) => {
  const server = await startServer({ DRAIN_SECONDS: '3' });
  t.teardown(() => server.stop(1000));
  let signalled = false;
  let readyDuring = '';
  let optionsStatus = 0;
  let inviteStatus = 0;
  let retryAfter = '';
  const call = placeCall({
    port: server.sipPort,
    maxCallMs: 40000,
    script: async (ctl) => {
      await ctl.waitForAgent({ silenceMs: 1000, timeoutMs: 15000 }); // the greeting
      server.proc.kill('SIGTERM');
      signalled = true;
      await server.waitForLog(/SIGTERM: draining/, 5000, false);
      readyDuring = (await get(`${server.opsUrl}/readyz`)).body;
      const peer = await SipPeer.udp(server.sipPort);
      try {
        peer.send(peer.request('OPTIONS', { callId: `drain-options-${Date.now()}` }));
        optionsStatus = (await peer.next((m) => !m.isRequest && (m.status ?? 0) >= 200, 5000, 'OPTIONS final response')).status ?? 0;
      } finally {
        peer.close();
      }
      const second = await placeCall({ port: server.sipPort, setupTimeoutMs: 5000 });
      inviteStatus = second.status;
      retryAfter = second.finalResponse?.get('Retry-After') ?? '';
      await ctl.waitForAgent({ silenceMs: 800, timeoutMs: 15000 }); // the goodbye after DRAIN_SECONDS
      await ctl.serverBye;
    },
  });
  const res = await call;
  t.ok(signalled, 'SIGTERM sent during the call');
  t.match(readyDuring, /^FAIL draining: /m, '/readyz fails while draining');
  t.equal(optionsStatus, 503, 'OPTIONS answered 503 while draining');
  t.equal(inviteStatus, 503, 'a new INVITE answered 503 while draining');
  t.match(retryAfter, /^\d+$/, 'with Retry-After');
  t.equal(res.hangup, 'server', 'the server hung up the live call');
  t.ok(res.segments.length >= 2 && !res.segments[1]!.timedOut, 'the caller heard the goodbye before the BYE');
  await server.waitForLog(/drain deadline: the agent says goodbye/, 5000);
  t.equal(await server.stop(10000), 0, 'the process exits 0');
});
