/**
 * `voice-agent loadtest` against a real server: SIPp callers with real audio (a pcap made
 * from our own utterance plus RFC 4733 digits) ask for order status and key the PO; the
 * report counts them answered, reads SIPp's setup times, the server's outcomes, turn gap,
 * barge-ins, MOS, CPU and RSS from /metrics, and writes a self-contained HTML page. The
 * outcome is also checked where an operator would look: the CDR rows.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, startServer, type ServerHandle } from '../helpers/server.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { cdrList } from '../helpers/cdr.ts';
import { haveSipp } from '../helpers/sipp.ts';
import { requireTool } from '../helpers/require.ts';

t.setTimeout(240_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'loadtest-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const CDR_DB = path.join(tmp, 'cdr.sqlite');

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'voice-agent.mjs'), 'loadtest', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('bad arguments get a clear error', async (t) => {
  let r = await cli('--calls', '3');
  t.equal(r.code, 2);
  t.match(r.stderr, /--target must be HOST:PORT/);
  r = await cli('--target', '127.0.0.1:5060', '--profile', 'shouting');
  t.match(r.stderr, /unknown --profile "shouting" \(known: status, reorder, silent\)/);
  r = await cli('--target', '127.0.0.1:5060', '--cps', 'fast');
  t.match(r.stderr, /--cps must be a number/);
  r = await cli('--target', '127.0.0.1:5060', '--impair', 'lossy');
  t.match(r.stderr, /unknown --impair profile "lossy"/);
  r = await cli('--target', '127.0.0.1:5060', '--impair', 'loss3', '--transport', 'tcp');
  t.match(r.stderr, /--impair relays UDP only/);
});

t.test('--make-media writes the scenario and the caller pcap for sipp by hand', async (t) => {
  const dir = path.join(tmp, 'media-only');
  const r = await cli('--make-media', '--profile', 'reorder', '--duration', '30000', '--out', dir);
  t.equal(r.code, 0, r.stderr);
  t.ok(statSync(path.join(dir, 'media', 'load-caller.pcap')).size > 50_000, 'a pcap of the reorder caller');
  t.match(readFileSync(path.join(dir, 'uac-load-audio.xml'), 'utf8'), /<recv request="BYE" timeout="30000"/, 'the call length in the scenario copy');
});

const skip = requireTool(t, 'loadtest', haveSipp(), 'sipp', 'sip-tester');
let redis: TestRedis | undefined;
let server: ServerHandle | undefined;
t.teardown(async () => { await server?.stop(); await redis?.stop(); });

t.test('four status callers with real audio: report, HTML, CDRs', { skip }, async (t) => {
  redis = await startTestRedis();
  server = await startServer({
    CDR_DB, CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
    VOICE_AGENT_NOW: '2026-12-02T16:00:00Z', VOICE_MEDIA_RT_PRIORITY: '0',
  }, { readyTimeoutMs: 60000 });
  const out = path.join(tmp, 'run');
  const r = await cli('--target', `127.0.0.1:${server.sipPort}`, '--ops-url', server.opsUrl, '--profile', 'status',
    '--calls', '4', '--cps', '2', '--concurrency', '4', '--duration', '16000', '--out', out);
  t.comment(r.stdout);
  t.equal(r.code, 0, `loadtest exit 0 (${r.stderr.slice(-500)})`);
  const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  t.match(json, { profile: 'status', calls: 4, sipp: { exitCode: 0, created: 4, answered: 4, answeredPct: 100, failed: 0 } });
  t.ok(json.sipp.setupMs.p50 >= 0 && json.sipp.setupMs.p95 >= json.sipp.setupMs.p50, `setup p50 ${json.sipp.setupMs.p50} / p95 ${json.sipp.setupMs.p95} ms`);
  t.equal(json.server.outcomes.status_given, 4, 'the server counted four status calls (/metrics)');
  t.ok(json.server.turnGapMs.p50 > 0, `turn gap p50 ${json.server.turnGapMs.p50} ms`);
  t.ok(json.server.mos.mean > 4, `MOS ${json.server.mos.mean}`);
  t.ok(json.server.rssMb.max > 50 && json.server.cpuPct.max > 0, `CPU max ${json.server.cpuPct.max} %, RSS max ${json.server.rssMb.max} MB`);
  t.match(r.stdout, /answered: 4\/4 \(100 %\)/);
  // the outcome as an operator sees it: one CDR row per call, each with the status given
  const rows = (await cdrList({ CDR_DB })).filter((x) => x.status === 'completed');
  t.equal(rows.length, 4, 'four CDR rows');
  t.ok(rows.every((x) => x.outcome === 'status_given' && x.media?.codec === 'PCMU'), 'each: status given, PCMU');
  // the HTML: one page, plots, nothing fetched, no scripts
  const html = readFileSync(path.join(out, 'report.html'), 'utf8');
  t.equal((html.match(/<svg/g) ?? []).length, 4, 'setup histogram, CPU, RSS and calls-up plots');
  t.notMatch(html, /<script|src=|href=|@import/, 'self-contained');
  t.match(html, /answered: 4\/4/);
  t.same(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')).sipp, json.sipp, 'report.json');
  t.ok(existsSync(path.join(out, 'stats.csv')), "SIPp's statistics file");

  // the same callers through the impairment relay: SIPp's SIP and RTP cross a lossy network
  const lossy = await cli('--target', `127.0.0.1:${server.sipPort}`, '--ops-url', server.opsUrl, '--profile', 'status',
    '--calls', '2', '--cps', '2', '--concurrency', '2', '--duration', '16000', '--impair', 'loss3', '--impair-seed', '5', '--out', path.join(tmp, 'lossy'));
  t.comment(lossy.stdout);
  t.equal(lossy.code, 0, `impaired run exit 0 (${lossy.stderr.slice(-500)})`);
  const lj = JSON.parse(lossy.stdout.trim().split('\n').at(-1)!);
  t.match(lj, { sipp: { answered: 2, failed: 0 }, network: { profile: 'loss3', seed: 5 } });
  t.ok(lj.network.up.dropped > 0 && lj.network.up.forwarded > 500, `the relay carried SIPp's RTP and dropped some (${lj.network.up.dropped} of ${lj.network.up.received})`);
  t.equal(lj.server.outcomes.status_given, 2, 'both still got the status (the keyed PO survives 3 % loss)');
  t.match(lossy.stdout, /network \(impair loss3, seed 5\)/);
});
