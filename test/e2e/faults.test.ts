/**
 * Fault injection over real SIP calls, each with the invariant it must keep:
 *  - the disk that holds the call records is full: calls go on (the caller still gets the
 *    order status), the failure is reported (log line, voice_agent_cdr_write_failures_total),
 *    and once there is room again new calls are recorded;
 *  - the box's CPU is saturated by other processes (a busy loop per core): the media thread
 *    still paces the caller's audio — no packet leaves more than 20 ms after its deadline
 *    (the server's voice_agent_media_loop_lateness_seconds, before/after the call: the
 *    caller's own arrival times cannot judge this, the test caller is starved by the same
 *    busy loops) — and the call still reaches its outcome.
 * The disk is a 256 KiB tmpfs the test mounts (root is needed for the mount; `make test` runs
 * as root). The CPU test runs the server with its default media-thread scheduling
 * (SCHED_FIFO when the process may: VOICE_MEDIA_RT_PRIORITY), which is what keeps pacing.
 */
import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { cdrList } from '../helpers/cdr.ts';
import { runConversation, type ConversationResult } from '../../src/cli/conversation.ts';

t.setTimeout(300_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'faults-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let redis: TestRedis;
t.before(async () => { redis = await startTestRedis(); });
t.teardown(() => redis?.stop());

const OPEN_AT = '2026-12-02T16:00:00Z';

async function server(env: Record<string, string>): Promise<ServerHandle> {
  return startServer({
    CRM_DB: path.join(tmp, `crm-${Math.random().toString(36).slice(2)}.sqlite`), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
    VOICE_AGENT_NOW: OPEN_AT, ...env,
  }, { readyTimeoutMs: 60000 });
}

/** The status call: ask, key the PO, hear the answer; `stt: false` keeps the test side light. */
function statusCall(port: number): Promise<ConversationResult> {
  return runConversation({
    port, to: '18005550100', from: '+14155550142', stt: false, silenceMs: 1500, answerTimeoutMs: 20000,
    turns: [{ say: 'What is the status of my order', voice: 'kal' }, { dtmf: '12345#' }],
  });
}

/** The status answer was heard: a voiced reply of at least 1.5 s after the keyed PO. */
function heardStatus(r: ConversationResult): boolean {
  const last = r.answers.at(-1);
  return r.call.status === 200 && !!last && !last.timedOut && last.pcm.length / 8 >= 1500;
}

async function metric(s: ServerHandle, name: string): Promise<number> {
  const text = await (await fetch(`${s.opsUrl}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
}

t.test('disk for call records full: calls go on, the failure is reported, recording resumes with room', async (t) => {
  const mnt = path.join(tmp, 'full');
  mkdirSync(mnt, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt]);
  } catch (err) {
    t.fail(`cannot mount a tmpfs (run make test as root): ${(err as Error).message}`);
    return;
  }
  t.teardown(() => { try { execFileSync('umount', ['-l', mnt]); } catch { /* gone */ } });
  const CDR_DB = path.join(mnt, 'cdr.sqlite');
  const s = await server({ CDR_DB });
  t.teardown(() => s.stop());
  // fill the disk to the last byte
  const filler = path.join(mnt, 'filler');
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
  } catch { /* dd stops with ENOSPC: that is the point */ }
  const r = await statusCall(s.sipPort);
  t.ok(heardStatus(r), `the caller still heard the status answer (${r.answers.length} agent turns)`);
  t.equal(r.call.hangup, 'caller', 'the call ran to the caller hanging up');
  await s.waitForLog(/cdr write failed/, 10000).then(() => t.pass('logged: cdr write failed'), () => t.fail('no "cdr write failed" log line'));
  t.ok(await metric(s, 'voice_agent_cdr_write_failures_total') > 0, 'voice_agent_cdr_write_failures_total counts it');
  // room again: the next call is recorded
  rmSync(filler);
  const r2 = await statusCall(s.sipPort);
  t.ok(heardStatus(r2), 'second call: status heard');
  let row;
  for (let i = 0; i < 50 && !row; i++) {
    row = (await cdrList({ CDR_DB })).find((x) => x.sipCallId === r2.call.callId && x.status === 'completed');
    if (!row) await new Promise((res) => setTimeout(res, 200));
  }
  t.equal(row?.outcome, 'status_given', 'with room again the next call has its CDR row');
});

t.test('CPU saturated by other processes: pacing holds, the call reaches its outcome', async (t) => {
  const s = await server({ CDR_DB: path.join(tmp, 'cdr-cpu.sqlite') });
  t.teardown(() => s.stop());
  const hogs: ChildProcess[] = [];
  t.teardown(() => { for (const h of hogs) h.kill('SIGKILL'); });
  for (let i = 0; i < Math.max(2, cpus().length); i++) {
    hogs.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  }
  await new Promise((res) => setTimeout(res, 500));
  const late = async (): Promise<{ all: number; over20ms: number }> => {
    const text = await (await fetch(`${s.opsUrl}/metrics`)).text();
    const bucket = (le: string): number => Number(new RegExp(`^voice_agent_media_loop_lateness_seconds_bucket\\{le="${le}"\\} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    return { all: bucket('\\+Inf'), over20ms: bucket('\\+Inf') - bucket('0.02') };
  };
  const before = await late();
  const r = await statusCall(s.sipPort);
  const after = await late();
  for (const h of hogs) h.kill('SIGKILL');
  t.ok(heardStatus(r), 'the status answer was heard');
  const sent = after.all - before.all;
  const overdue = after.over20ms - before.over20ms;
  t.ok(sent > 500, `the server sent ${sent} packets during the call`);
  t.equal(overdue, 0, `no packet left more than 20 ms late (${overdue} of ${sent}) with ${hogs.length} busy loops`);
  // for the record: what the starved test caller saw
  let worst = 0;
  const pkts = r.call.packets.filter((p) => p.pt === r.call.payloadType);
  for (let i = 1; i < pkts.length; i++) worst = Math.max(worst, pkts[i]!.arrivalMs - pkts[i - 1]!.arrivalMs);
  t.comment(`test caller (itself starved): ${pkts.length} packets, largest inter-arrival gap ${worst.toFixed(1)} ms`);
});
