/**
 * Fault injection in the agent's dependencies, each over real SIP calls with the invariant it
 * must keep (test/e2e/faults.test.ts has the disk and CPU faults):
 *  - the CRM/ERP MCP server hangs: the tool call times out at the tenant's toolTimeoutMs, a
 *    filler covers the wait, the agent says it cannot reach the order system and offers a
 *    message; the caller never meets more than 2 s of dead air;
 *  - the CRM/ERP MCP server is killed mid-call: the lookup fails at once (no dead air, the
 *    same apology and offer), the gateway marks the server down and, once the server is back,
 *    reconnects on the next lookup, which works;
 *  - the LLM endpoint returns garbage tool calls (wrong argument types, an unknown tool,
 *    arguments that are not JSON): each error goes back to the model, no order is placed, the
 *    call goes on; then the endpoint hangs: a filler after fillerAfterMs, the rules agent
 *    answers the turn, no dead air > 2 s; an endpoint that answers 500 hands the call to the
 *    rules agent at once;
 *  - rtpengine (anchoring the call's media) restarts mid-call and forgets the call: the server
 *    does not re-anchor; the call ends cleanly — the server's BYE within RTP_TIMEOUT_SECONDS
 *    of the last media (Reason: media timeout), a CDR row with end reason rtp-timeout, no
 *    call left active — never a silent zombie call.
 * The tenant's CRM here is an external `voice-agent crm-erp-mcp --http` (an MCP server named
 * `crm` replaces the built-in one) behind a fault proxy (test/helpers/mcp-faults.ts).
 * Dead air is measured at the caller: from the end of its input (speech or keys) to the
 * agent's first voiced packet, and between voiced packets until the agent's last one.
 * (Redis killed while an after-hours message is taken: test/e2e/lanes.test.ts.)
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import Database from 'better-sqlite3';
import { ROOT, startServer, type ServerHandle } from '../helpers/server.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { startLlmStub, type LlmStub } from '../helpers/llm-stub.ts';
import { startCrmHttp, startMcpFaultProxy, type CrmHttp, type McpFaultProxy } from '../helpers/mcp-faults.ts';
import { AGENT_VOICED_RMS, placeCall, type CallResult } from '../../src/cli/caller.ts';
import { g711Decode, nowMs, rmsLevel } from '../../src/cli/rtp.ts';
import { synthesize } from '../../src/media/index.ts';
import { rtpengineBinary, startRtpengine, type RtpengineDaemon } from '../helpers/rtpengine.ts';
import { cdrList } from '../helpers/cdr.ts';
import { requireTool } from '../helpers/require.ts';

t.setTimeout(300_000);
t.jobs = 3; // the CRM, LLM and rtpengine faults run side by side, each on its own server
const tmp = mkdtempSync(path.join(tmpdir(), 'faults-deps-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let redis: TestRedis;
t.before(async () => { redis = await startTestRedis(); });
t.teardown(() => redis?.stop());

const OPEN_AT = '2026-12-02T16:00:00Z';
/** The longest silence the caller may meet while the agent owes an answer. */
const MAX_DEAD_AIR_MS = 2000;

/** The demo tenants with Northwind (DID 18005550100) changed by `patch`, written to a file. */
function tenantsFile(name: string, patch: Record<string, unknown>): string {
  const doc = parse(readFileSync(path.join(ROOT, 'src/tenants/tenants.yaml'), 'utf8')) as { tenants: Array<Record<string, unknown>> };
  const nw = doc.tenants.find((x) => x.id === 'northwind')!;
  Object.assign(nw, patch);
  const file = path.join(tmp, `tenants-${name}.yaml`);
  writeFileSync(file, stringify(doc));
  return file;
}

function server(name: string, env: Record<string, string>): Promise<ServerHandle> {
  return startServer({
    CRM_DB: path.join(tmp, `crm-${name}.sqlite`), DATA_DIR: path.join(tmp, `var-${name}`), CDR_DB: path.join(tmp, `cdr-${name}.sqlite`),
    REDIS_URL: redis.url, VOICE_AGENT_NOW: OPEN_AT, VOICE_MEDIA_RT_PRIORITY: '0', ...env,
  }, { readyTimeoutMs: 60000 });
}

type Step = { say: string } | { dtmf: string };
interface Heard {
  /** end of the caller's input → the agent's first voiced packet, or the longest gap between voiced packets after it */
  deadAirMs: number;
  /** voiced audio heard in answer to this step, ms */
  voicedMs: number;
  /** end of the caller's input → the agent's last voiced packet */
  spanMs: number;
}

/**
 * One call: the greeting, then each step (spoken with flite or keyed) and the agent's whole
 * answer (until 3 s of quiet). `before(i)` runs just before step i (inject the fault there).
 */
async function measuredCall(port: number, steps: Step[], before: (i: number) => Promise<void> | void = () => {}): Promise<{ call: CallResult; greetingMs: number; heard: Heard[] }> {
  const audio = await Promise.all(steps.map((s) => ('say' in s ? synthesize(s.say, { voice: 'kal', sampleRate: 8000 }) : null)));
  const marks: Array<{ from: number; to: number }> = [];
  let greetingMs = 0;
  const call = await placeCall({
    port, to: '18005550100', from: '+14155550142', maxCallMs: 120_000,
    script: async (ctl) => {
      const g = await ctl.waitForAgent({ silenceMs: 1500, timeoutMs: 20000 });
      greetingMs = g.timedOut ? 0 : g.pcm.length / 8;
      for (let i = 0; i < steps.length; i++) {
        if (ctl.serverHungUp) break;
        if (marks.length) marks[marks.length - 1]!.to = nowMs();
        await before(i);
        const s = steps[i]!;
        if ('dtmf' in s) await ctl.dtmf(s.dtmf);
        else await ctl.say(audio[i]!);
        marks.push({ from: nowMs(), to: Infinity });
        await ctl.waitForAgent({ silenceMs: 3000, timeoutMs: 20000 });
      }
      if (marks.length) marks[marks.length - 1]!.to = nowMs();
    },
  });
  const pt = call.payloadType ?? 0;
  const voiced = call.packets.filter((p) => p.pt === pt && rmsLevel(g711Decode(p.payload, pt)) > AGENT_VOICED_RMS).map((p) => p.arrivalMs);
  const heard = marks.map(({ from, to }): Heard => {
    const v = voiced.filter((x) => x >= from && x <= to);
    if (!v.length) return { deadAirMs: Infinity, voicedMs: 0, spanMs: 0 };
    let dead = v[0]! - from;
    for (let i = 1; i < v.length; i++) dead = Math.max(dead, v[i]! - v[i - 1]!);
    return { deadAirMs: Math.round(dead), voicedMs: v.length * 20, spanMs: Math.round(v.at(-1)! - from) };
  });
  return { call, greetingMs, heard };
}

/** The server's log lines written while `fn` ran. */
async function logDuring<T>(s: ServerHandle, fn: () => Promise<T>): Promise<{ r: T; log: string }> {
  const from = s.log().length;
  const r = await fn();
  await new Promise((res) => setTimeout(res, 300));
  return { r, log: s.log().slice(from) };
}

const ASK = { say: 'What is the status of my order' };
const PO = { dtmf: '12345#' };

t.test('CRM/ERP MCP server hangs, then is killed and restarted: timeout said with a message offer, no dead air, the gateway reconnects', async (t) => {
  const crmDb = path.join(tmp, 'crm-ext.sqlite');
  const crm: CrmHttp = await startCrmHttp({ db: crmDb });
  t.teardown(() => crm.stop());
  const proxy: McpFaultProxy = await startMcpFaultProxy(crm.url);
  t.teardown(() => proxy.close());
  const s = await server('crm', {
    CRM_DB: crmDb,
    TENANTS_FILE: tenantsFile('crm', { mcpServers: [{ name: 'crm', transport: 'http', url: proxy.url }], toolTimeoutMs: 2500 }),
  });
  t.teardown(() => s.stop());

  await t.test('hang: order_status never answers', async (t) => {
    const { r, log } = await logDuring(s, () => measuredCall(s.sipPort, [ASK, PO], (i) => { if (i === 1) proxy.hang(['order_status']); }));
    proxy.pass();
    t.equal(r.call.status, 200, 'answered');
    t.ok(r.greetingMs > 1000, `greeted (${r.greetingMs} ms): the CRM answered the caller lookup`);
    t.ok(proxy.hung >= 1, `the proxy held ${proxy.hung} order_status call(s)`);
    t.match(log, /tool call[^\n]*tool=order_status[^\n]*code=timeout/, 'the gateway timed the call out');
    t.match(log, /agent said[^\n]*filler/, 'a filler covered the wait');
    t.match(log, /agent said[^\n]*can't reach the order system/, 'the agent said it cannot reach the order system');
    t.match(log, /agent said[^\n]*take a message/, 'and offered a message');
    const h = r.heard[1];
    t.ok(h, 'the agent answered the keyed PO');
    t.comment(`hang: dead air ${h?.deadAirMs} ms, ${h?.voicedMs} ms voiced, last word ${h?.spanMs} ms after the keys (toolTimeoutMs 2500)`);
    t.ok((h?.voicedMs ?? 0) >= 3000, `the caller heard the filler, the apology and the offer (${h?.voicedMs} ms of speech)`);
    t.ok((h?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `no dead air over ${MAX_DEAD_AIR_MS} ms (${h?.deadAirMs} ms)`);
    t.ok((r.heard[0]?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `question answered without dead air (${r.heard[0]?.deadAirMs} ms)`);
  });

  await t.test('killed mid-call, restarted: the lookup fails fast, the next one reconnects and works', async (t) => {
    const { r, log } = await logDuring(s, () => measuredCall(s.sipPort, [ASK, PO], async (i) => { if (i === 1) await crm.kill(); }));
    t.equal(r.call.status, 200, 'answered');
    t.match(log, /mcp server down[^\n]*server=crm/, 'the gateway noticed the server is gone');
    t.match(log, /agent said[^\n]*can't reach the order system/, 'the agent said it cannot reach the order system');
    t.match(log, /agent said[^\n]*take a message/, 'and offered a message');
    const h = r.heard[1];
    t.comment(`killed: dead air ${h?.deadAirMs} ms, last word ${h?.spanMs} ms after the keys`);
    t.ok((h?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `no dead air over ${MAX_DEAD_AIR_MS} ms (${h?.deadAirMs} ms)`);

    await crm.restart();
    const next = await logDuring(s, () => measuredCall(s.sipPort, [ASK, PO]));
    t.equal(next.r.call.status, 200, 'next call answered');
    t.match(next.log, /mcp server reconnected[^\n]*server=crm/, 'the gateway reconnected (logged)');
    t.match(next.log, /tool call[^\n]*tool=order_status[^\n]*ok=true/, 'the next lookup worked');
    t.match(next.log, /agent said[^\n]*is shipped/, 'and the status was said');
    const h2 = next.r.heard[1];
    t.ok((h2?.voicedMs ?? 0) >= 1500, `the caller heard the status (${h2?.voicedMs} ms of speech)`);
    t.ok((h2?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `no dead air over ${MAX_DEAD_AIR_MS} ms (${h2?.deadAirMs} ms)`);
  });
});

t.test('LLM endpoint: garbage tool calls, a hang, a 500 — the call goes on, no order from garbage, no dead air', async (t) => {
  const stub: LlmStub = await startLlmStub();
  t.teardown(() => stub.close());
  const crmDb = path.join(tmp, 'crm-llm.sqlite');
  const s = await server('llm', { CRM_DB: crmDb, OPENAI_BASE_URL: stub.baseURL, OPENAI_API_KEY: 'e2e-key', OPENAI_MODEL: 'stub-model' });
  t.teardown(() => s.stop());
  const orders = (): number => {
    const db = new Database(crmDb, { readonly: true, fileMustExist: true });
    try {
      return (db.prepare("SELECT COUNT(*) AS n FROM orders WHERE source = 'voice'").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const before = orders();

  await t.test('garbage tool arguments go back to the model; then the model hangs', async (t) => {
    stub.script(
      {
        toolCalls: [
          { name: 'place_order', args: { account_id: 42, lines: 'lots of valves', ship_to: ['x'] } },
          { name: 'launch_rockets', args: { count: 3 } },
          { name: 'check_atp', args: '{"sku": "PV-100", "qty": ' },
        ],
      },
      { content: ['Sorry, I did not get that order right. ', 'Which part number do you need?'] },
      { hang: true },
    );
    const { r, log } = await logDuring(s, () => measuredCall(s.sipPort, [{ say: 'I need ten valves please' }, PO]));
    t.equal(r.call.status, 200, 'answered');
    const round2 = stub.requests[1]?.body.messages as Array<{ role: string; content: string; tool_call_id?: string }> | undefined;
    const tools = (round2 ?? []).filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content) as Record<string, unknown>);
    t.equal(tools.length, 3, 'each garbage call got a tool answer back to the model');
    t.match(tools[0], { code: 'failed' }, `place_order with wrong types failed in the CRM (${String(tools[0]?.error).slice(0, 80)})`);
    t.match(tools[1], { code: 'unknown_tool' }, 'the unknown tool was refused');
    t.match(tools[2], { error: /not valid JSON/ }, 'arguments that are not JSON were reported');
    t.equal(orders(), before, 'no order row from garbage');
    t.match(log, /agent said[^\n]*Which part number/, "the model's recovery was spoken");
    t.ok((r.heard[0]?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `garbage turn: no dead air over ${MAX_DEAD_AIR_MS} ms (${r.heard[0]?.deadAirMs} ms)`);
    // the hang
    t.equal(stub.requests.length, 3, 'the model was asked for the keyed turn (and hung)');
    t.match(log, /agent said[^\n]*filler/, 'a filler while no first token came');
    t.match(log, /LLM failed; the rules agent takes over[^\n]*no first token/, 'the rules agent took over after the first-token wait');
    const h = r.heard[1];
    t.comment(`LLM hang: dead air ${h?.deadAirMs} ms, ${h?.voicedMs} ms voiced, last word ${h?.spanMs} ms after the keys`);
    t.ok((h?.voicedMs ?? 0) >= 1500, `the caller heard an answer (${h?.voicedMs} ms of speech)`);
    t.ok((h?.deadAirMs ?? Infinity) <= MAX_DEAD_AIR_MS, `hung model: no dead air over ${MAX_DEAD_AIR_MS} ms (${h?.deadAirMs} ms)`);
  });

  await t.test('500: the rules agent answers at once', async (t) => {
    const n = stub.requests.length;
    stub.script({ status: 500, body: { error: { message: 'upstream exploded' } } });
    const { r, log } = await logDuring(s, () => measuredCall(s.sipPort, [ASK, PO]));
    t.equal(r.call.status, 200, 'answered');
    t.equal(stub.requests.length, n + 1, 'one request, then no more for the rest of the call');
    t.match(log, /LLM failed; the rules agent takes over/, 'fallback logged');
    t.match(log, /agent said[^\n]*is shipped/, 'the rules agent gave the status');
    for (const [i, h] of r.heard.entries()) t.ok(h.deadAirMs <= MAX_DEAD_AIR_MS, `turn ${i + 1}: no dead air over ${MAX_DEAD_AIR_MS} ms (${h.deadAirMs} ms)`);
    t.equal(orders(), before, 'still no order row');
  });
});

const noRtpengine = requireTool(t, 'rtpengine restarted mid-call', !!rtpengineBinary(), 'rtpengine', 'rtpengine-daemon');

t.test('rtpengine restarted mid-call: the call ends with a BYE and a CDR row saying why, no zombie', { skip: noRtpengine }, async (t) => {
  let rte: RtpengineDaemon = await startRtpengine({ mediaPorts: 40 });
  t.teardown(() => rte.stop());
  const CDR_DB = path.join(tmp, 'cdr-rte.sqlite');
  const s = await server('rte', { CDR_DB, RTPENGINE_URL: rte.url, RTPENGINE_TIMEOUT_MS: '1000', RTP_TIMEOUT_SECONDS: '3' });
  t.teardown(() => s.stop());
  let greetingMs = 0;
  let restartedAt = 0;
  let byeAt = 0;
  const call = await placeCall({
    port: s.sipPort, to: '18005550100', from: '+14155550142', maxCallMs: 30000,
    script: async (ctl) => {
      const g = await ctl.waitForAgent({ silenceMs: 1000, timeoutMs: 20000 });
      greetingMs = g.timedOut ? 0 : g.pcm.length / 8;
      // the caller keeps sending RTP (silence) to rtpengine's port all along
      const { media, ngPort } = rte;
      await rte.stop();
      rte = await startRtpengine({ ngPort, media });
      restartedAt = nowMs();
      await Promise.race([ctl.serverBye, new Promise((res) => setTimeout(res, 15000))]);
      byeAt = nowMs();
    },
  });
  t.equal(call.status, 200, 'answered');
  t.ok(greetingMs > 1000, `the greeting came through rtpengine (${greetingMs} ms)`);
  t.equal(call.hangup, 'server', 'the server hung up (no zombie call)');
  const afterRestart = Math.round(byeAt - restartedAt);
  t.comment(`BYE ${afterRestart} ms after rtpengine came back (RTP_TIMEOUT_SECONDS=3)`);
  t.ok(afterRestart <= 6000, `BYE within the media timeout (${afterRestart} ms after the restart)`);
  t.match(call.serverBye?.get('reason') ?? '', /media timeout/, 'the BYE says why (Reason: media timeout)');
  let row;
  for (let i = 0; i < 50 && !row; i++) {
    row = (await cdrList({ CDR_DB })).find((x) => x.sipCallId === call.callId && x.status !== 'open');
    if (!row) await new Promise((res) => setTimeout(res, 200));
  }
  t.equal(row?.endReason, 'rtp-timeout', 'the CDR row says why: rtp-timeout');
  const active = (await (await fetch(`${s.opsUrl}/metrics`)).text()).split('\n')
    .filter((l) => l.startsWith('voice_agent_calls_active')).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
  t.equal(active, 0, 'no call left active on the server');
});
