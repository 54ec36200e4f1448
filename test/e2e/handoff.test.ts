/**
 * Human hand-off end to end: real SIP calls through the built-in edge to the server on
 * embedded defaults, SIPp playing the rep's phone (sip-config/sipp/uas-rep-*.xml) or a
 * caller that accepts REFER (uac-refer*.xml), the rep console in a real headless Chromium.
 *
 * - warm transfer: DTMF 0 → handshake → the rep's INVITE carries X-Screen-Pop-Id/-Url and
 *   X-Handoff-Summary (SIPp fails the call without them; the test reads them from SIPp's
 *   message trace too) → on answer the native bridge joins caller and rep: a 1.4 kHz tone
 *   the caller sends comes back through SIPp's RTP echo.
 * - busy (486) and no answer (ring timeout → CANCEL): the agent says so and a CRM case
 *   with the caller's identity and the reason lands through BullMQ.
 * - the rep console shows the pop (transcript, reason) while the rep's phone rings; with
 *   `console.reps` configured the rep logs in first, and the X-Screen-Pop-Url (a short-lived
 *   token link) opens that pop without a login while nothing else answers without one.
 * - blind transfer: REFER with the pop in the Refer-To headers, NOTIFY sipfrag 200 → BYE.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startServer, ROOT, type ServerHandle } from '../helpers/server.ts';
import { freePort, freePortBlock } from '../helpers/ports.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { haveSipp, runSipp, sippMessage, type SippResult } from '../helpers/sipp.ts';
import { placeCall, decodeAudio, type CallResult } from '../helpers/caller.ts';
import { nowMs } from '../../src/cli/rtp.ts';
import { tone, toneShare } from '../helpers/audio.ts';
import { hashPassword } from '../../src/escalation/console/auth.ts';
import { requireTool } from '../helpers/require.ts';
import { dbRows as rows, waitDbRows as waitRows } from '../helpers/crm-db.ts';

const SIP = { min: 18300, max: 18499 };
const CONTROL = { min: 19500, max: 19599 };
const RTP = { min: 34000, max: 35999 };
const REP_SIP = { min: 18500, max: 18599 };
const DANA = '+14155550142';
const OPEN_AT = '2026-12-02T16:00:00Z';

t.setTimeout(600_000);
const skip = requireTool(t, 'hand-off', haveSipp(), 'sipp', 'sip-tester');
const tmp = mkdtempSync(path.join(tmpdir(), 'handoff-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
t.teardown(() => {
  setTimeout(() => {
    process.stderr.write(`handoff: handles still open after the suite: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(process.exitCode ?? 0);
  }, 3000).unref();
});

/** A config file whose console has one rep, Maria Chen (Acme's ext 2101): the console needs a login. */
const MARIA = { id: 'maria', password: 'maria-secret-1' };
async function consoleWithReps(): Promise<string> {
  const f = path.join(tmp, 'console-reps.yaml');
  if (!existsSync(f)) {
    const passwordHash = await hashPassword(MARIA.password);
    writeFileSync(f, stringifyYaml({ console: { reps: [{ id: MARIA.id, name: 'Maria Chen', extensions: ['2101'], passwordHash }] } }));
  }
  return f;
}

/** Log in over HTTP; the session cookie (`name=value`). */
async function consoleLogin(base: string): Promise<string> {
  const r = await fetch(`${base}/login`, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ rep: MARIA.id, password: MARIA.password }).toString(),
  });
  if (r.status !== 303) throw new Error(`console login failed: ${r.status}`);
  return (r.headers.get('set-cookie') ?? '').split(';')[0]!;
}



/** A tenants file like the demo one, with the default tenant's escalation overridden. */
function tenantsFile(name: string, escalation: Record<string, unknown>): string {
  const doc = parseYaml(readFileSync(path.join(ROOT, 'src/tenants/tenants.yaml'), 'utf8')) as { tenants: Array<Record<string, unknown>> };
  doc.tenants[0]!.escalation = escalation;
  const f = path.join(tmp, `${name}.tenants.yaml`);
  writeFileSync(f, stringifyYaml(doc));
  return f;
}

async function server(name: string, repPort: number, redis: TestRedis, env: Record<string, string> = {}): Promise<ServerHandle & { db: string; consoleUrl: string }> {
  const db = path.join(tmp, `${name}.sqlite`);
  const rtp = await freePortBlock(RTP, 40);
  const s = await startServer({
    SIP_PORT: String(await freePort(SIP, 'both')),
    DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    CRM_DB: db, DATA_DIR: path.join(tmp, `${name}-var`), REDIS_URL: redis.url, VOICE_AGENT_NOW: OPEN_AT,
    VOICE_MEDIA_RT_PRIORITY: '0', REP_URI: `sip:{extension}@127.0.0.1:${repPort}`, REP_RING_SECONDS: '20',
    ...env,
  }, { readyTimeoutMs: 60000 });
  const ready = await s.waitForLog(/voice-agent ready/);
  const consoleUrl = /console=(\S+)/.exec(ready)?.[1] ?? '';
  return Object.assign(s, { db, consoleUrl });
}

/** SIPp's -trace_msg file contents. */
function traceDir(): { dir: string; args: string[]; read(): string } {
  const dir = mkdtempSync(path.join(tmp, 'sipp-msg-'));
  const file = path.join(dir, 'messages.log');
  return {
    dir,
    args: ['-trace_msg', '-message_file', file],
    read: () => readdirSync(dir).map((f) => readFileSync(path.join(dir, f), 'utf8')).join(''),
  };
}

/** The rep's phone: a SIPp UAS scenario on a free port, running in the background. */
async function rep(scenario: string, extra: string[] = [], timeoutSec = 60): Promise<{ port: number; done: Promise<SippResult>; trace: ReturnType<typeof traceDir> }> {
  const port = await freePort(REP_SIP, 'udp');
  const trace = traceDir();
  const done = runSipp(scenario, { localPort: port, timeoutSec, args: [...trace.args, ...extra] });
  await new Promise((r) => setTimeout(r, 300)); // SIPp binds its port
  return { port, done, trace };
}

function header(trace: string, name: string): string | undefined {
  const invite = trace.split(/-{10,}/).find((m) => /^INVITE sip:/m.test(m));
  return invite ? new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(invite)?.[1]?.trim() : undefined;
}

t.test('hand-off to a rep', { skip }, async (t) => {
  const redis = await startTestRedis();
  t.teardown(() => redis.stop());

  await t.test('warm transfer: screen-pop headers, native bridge carries audio both ways', async (t) => {
    const r = await rep('uas-rep-answer', ['-rtp_echo']);
    const s = await server('warm', r.port, redis, { CONFIG_FILE: await consoleWithReps() });
    t.teardown(() => s.stop());
    let toneAt = 0;
    const res: CallResult = await placeCall({
      port: s.sipPort, from: DANA, maxCallMs: 60000,
      script: async (ctl) => {
        await ctl.waitForAgent({ timeoutMs: 30000 }); // greeting
        await ctl.dtmf('0');
        await s.waitForLog(/msg="hand-off connected"/, 30000);
        // the rest of the handshake still plays (mixed into the bridge); then the tone
        await ctl.waitForAgent({ timeoutMs: 15000, silenceMs: 800 });
        toneAt = nowMs();
        await ctl.say(tone(1400, 1500));
        await ctl.pause(1000);
      },
    });
    const repResult = await r.done;
    t.equal(repResult.code, 0, sippMessage(repResult, 'the rep (SIPp) got the INVITE with the pop headers, answered, and got our BYE'));
    const trace = r.trace.read();
    const popId = header(trace, 'X-Screen-Pop-Id');
    t.match(popId, /^[0-9a-f-]{36}$/, 'X-Screen-Pop-Id');
    const popUrl = header(trace, 'X-Screen-Pop-Url') ?? '';
    t.ok(popUrl.startsWith(`${s.consoleUrl}/pops/${popId}?t=`), `X-Screen-Pop-Url points at the pop on the rep console, with a token (${popUrl})`);
    t.match(popUrl, /\?t=[0-9a-z]+\.[A-Za-z0-9_-]{22}$/, 'a short-lived HMAC token');
    const linked = await fetch(popUrl, { redirect: 'manual' });
    t.equal(linked.status, 200, 'the link opens the pop without a login (the rep\'s softphone)');
    t.match(await linked.text(), /Dana Reyes/);
    const bare = await fetch(`${s.consoleUrl}/pops/${popId}`, { redirect: 'manual' });
    t.equal(bare.status, 302, 'without the token: the login page');
    t.equal((await fetch(`${s.consoleUrl}/api/pops`)).status, 401, 'the pop list needs a login');
    const cookie = await consoleLogin(s.consoleUrl);
    const mine = await (await fetch(`${s.consoleUrl}/api/pops`, { headers: { Cookie: cookie } })).json() as Array<{ id: string }>;
    t.same(mine.map((p) => p.id), [popId], 'Maria, logged in, sees the pop for her extension');
    t.match(header(trace, 'X-Handoff-Summary'), /^Dana Reyes \(Acme Plumbing Supply.*\): caller pressed 0/, 'X-Handoff-Summary');
    t.equal(header(trace, 'X-Handoff-Trigger'), 'dtmf-zero');
    t.match(trace, /^INVITE sip:2101@127\.0\.0\.1/m, 'dialled Maria Chen (Acme\'s rep, ext 2101)');

    // what the caller heard after the bridge: its own tone, echoed by the rep's phone
    const after = res.packets.filter((p) => p.pt === 0 && p.arrivalMs >= toneAt);
    const pcm = decodeAudio(after, 0);
    const share = toneShare(pcm, 1400);
    t.ok(share > 0.2, `caller's 1.4 kHz tone came back through rep + bridge (share ${share.toFixed(2)} of ${after.length} packets)`);
    const first = after.find((p) => toneShare(decodeAudio([p], 0), 1400) > 0.5);
    if (first) t.comment(`caller tone sent → first echoed tone packet back at the caller: ${Math.round(first.arrivalMs - toneAt)} ms (caller → bridge → rep echo → bridge → caller)`);
    const m = /msg="hand-off connected".*?triggerToRingMs=(\d+).*?bridgeMs=(\d+)/.exec(s.log());
    t.ok(m, 'hand-off timing logged');
    if (m) t.comment(`trigger → rep ringing ${m[1]} ms; rep answer → bridged ${m[2]} ms`);
    t.match(s.log(), /msg=cdr .*handoff=warm .*handoffTrigger=dtmf-zero .*handoffOutcome=connected/, 'CDR names the hand-off');
    const acts = await waitRows<{ kind: string; summary: string; account_id: string }>(s.db, "SELECT kind, summary, account_id FROM activities WHERE kind = 'handoff'");
    t.equal(acts.length, 1, 'screen pop written to the CRM as an activity');
    t.equal(acts[0]?.account_id, 'ACC-10042');
  });

  await t.test('rep busy (486): the agent says so, a CRM case with identity and reason', async (t) => {
    const r = await rep('uas-rep-busy');
    const s = await server('busy', r.port, redis);
    t.teardown(() => s.stop());
    const res = await placeCall({
      port: s.sipPort, from: DANA, maxCallMs: 60000,
      script: async (ctl) => {
        await ctl.waitForAgent({ timeoutMs: 30000 });
        await ctl.dtmf('0');
        await s.waitForLog(/msg="hand-off failed"/, 30000);
        await ctl.waitForAgent({ timeoutMs: 30000, silenceMs: 2500 });
      },
    });
    t.notOk(res.scriptError, String(res.scriptError ?? 'script ran'));
    const repResult = await r.done;
    t.equal(repResult.code, 0, sippMessage(repResult, 'rep answered 486'));
    t.match(s.log(), /msg="hand-off failed".*why=busy status=486/);
    t.match(s.log(), /msg="caller|msg="message queued".*handoff/);
    const cases = await waitRows<{ caller_name: string; callback_number: string; reason: string; kind: string }>(s.db, "SELECT caller_name, callback_number, reason, kind FROM cases WHERE kind = 'handoff'");
    t.equal(cases.length, 1, 'one case');
    t.match(cases[0], { caller_name: 'Dana Reyes', callback_number: '14155550142', kind: 'handoff', reason: /pressed 0.*failed: busy \(486\)/ });
  });

  await t.test('no answer: the pop shows in the rep console while it rings; ring timeout → CANCEL → case', async (t) => {
    const r = await rep('uas-rep-noanswer');
    const s = await server('noanswer', r.port, redis, { REP_RING_SECONDS: '6', CONFIG_FILE: await consoleWithReps() });
    t.teardown(() => s.stop());
    let browser: { close(): Promise<void> } | null = null;
    let page: any = null;
    const chromium = existsSync('/usr/bin/chromium');
    if (chromium) {
      const { chromium: pw } = await import('playwright-core');
      const b = await pw.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      browser = b;
      t.teardown(() => b.close());
      page = await b.newPage();
      await page.goto(`${s.consoleUrl}/?ext=2101`);
      // the console sends her to its login page and back
      await page.fill('#rep', MARIA.id);
      await page.fill('#password', MARIA.password);
      await Promise.all([page.waitForNavigation(), page.click('#login-submit')]);
      t.match(page.url(), /\/\?ext=2101$/, 'logged in, back on the console');
    } else {
      t.comment('no /usr/bin/chromium: the console part is checked over HTTP only');
    }
    let popSeen = '';
    const res = await placeCall({
      port: s.sipPort, from: DANA, maxCallMs: 60000,
      script: async (ctl) => {
        await ctl.waitForAgent({ timeoutMs: 30000 });
        await ctl.dtmf('0');
        await s.waitForLog(/msg="rep ringing"/, 20000);
        if (page) {
          await page.waitForSelector('#pop-reason', { timeout: 10000 });
          await page.waitForFunction(() => /caller pressed 0/.test(document.querySelector('#pop-reason')?.textContent ?? ''), undefined, { timeout: 10000 });
          popSeen = `${await page.textContent('#pop-status')} | ${await page.textContent('#pop-reason')} | ${await page.textContent('#pop-caller')} | ${(await page.$$('#pop-transcript li')).length} lines`;
          t.match(await page.textContent('#pop-transcript'), /Hi Dana/, 'transcript in the pop');
          t.match(await page.textContent('#pop-status'), /ringing/i, 'pop shows while the phone rings');
        } else {
          const list = await (await fetch(`${s.consoleUrl}/api/pops?ext=2101`, { headers: { Cookie: await consoleLogin(s.consoleUrl) } })).json() as Array<{ status: string; reason: string }>;
          popSeen = JSON.stringify(list[0]);
          t.match(list[0], { status: 'ringing', reason: /caller pressed 0/ });
        }
        await s.waitForLog(/msg="hand-off failed"/, 20000);
        await ctl.waitForAgent({ timeoutMs: 30000, silenceMs: 2500 });
      },
    });
    t.comment(`pop while ringing: ${popSeen}`);
    t.notOk(res.scriptError, String(res.scriptError ?? 'script ran'));
    const repResult = await r.done;
    t.equal(repResult.code, 0, sippMessage(repResult, 'rep rang, got CANCEL, answered 487'));
    t.match(s.log(), /msg="hand-off failed".*why=no-answer/);
    if (page) t.match(await page.textContent('#pop-status'), /failed/i, 'console shows the failed hand-off');
    const cases = await waitRows<{ reason: string }>(s.db, "SELECT reason FROM cases WHERE kind = 'handoff'");
    t.equal(cases.length, 1, 'one case');
    t.match(cases[0]?.reason, /failed: no-answer/);
    await browser?.close();
  });

  await t.test('blind transfer: REFER with the pop in Refer-To, NOTIFY 200 → our BYE', async (t) => {
    const tf = tenantsFile('blind', { mode: 'blind' });
    const s = await server('blind', 5070, redis, { TENANTS_FILE: tf });
    t.teardown(() => s.stop());
    const trace = traceDir();
    const res = await runSipp('uac-refer', { target: `127.0.0.1:${s.sipPort}`, timeoutSec: 60, args: trace.args });
    t.equal(res.code, 0, sippMessage(res, 'caller got REFER with the pop headers, sent NOTIFYs, got BYE'));
    const msgs = trace.read();
    const refer = msgs.split(/-{10,}/).find((m) => /^REFER sip:/m.test(m)) ?? '';
    t.match(refer, /^Refer-To:\s*<sip:2100@127\.0\.0\.1:5070\?X-Screen-Pop-Id=[0-9a-f-]{36}&X-Screen-Pop-Url=.*&X-Handoff-Summary=/mi, 'Refer-To carries the pop headers');
    t.match(refer, /^Referred-By:/mi);
    t.match(s.log(), /msg="REFER accepted"/);
    t.match(s.log(), /msg=cdr .*reason=transferred .*handoff=blind .*handoffOutcome=referred/, 'CDR: transferred');
  });

  await t.test('blind transfer fails (NOTIFY 486): the agent takes the caller back', async (t) => {
    const tf = tenantsFile('blindfail', { mode: 'blind' });
    const s = await server('blindfail', 5070, redis, { TENANTS_FILE: tf });
    t.teardown(() => s.stop());
    const res = await runSipp('uac-refer-fail', { target: `127.0.0.1:${s.sipPort}`, timeoutSec: 60 });
    t.equal(res.code, 0, sippMessage(res, 'caller reported 486, stayed with the agent, hung up'));
    t.match(s.log(), /msg="hand-off failed".*why=busy status=486/);
    const cases = await waitRows<{ reason: string }>(s.db, "SELECT reason FROM cases WHERE kind = 'handoff'");
    t.equal(cases.length, 1, 'message taken as a case');
  });
});
