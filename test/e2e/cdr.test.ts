/**
 * CDRs end to end: a real SIP call through the built-in edge to the server on embedded
 * defaults (rules agent, pocketsphinx, flite, native VAD) asks for an order status (spoken
 * question, PO keyed as DTMF) and hangs up; the call's row is read back the way an operator
 * would, with `voice-agent cdr list --json`: outcome and reference, both sides of the
 * transcript, the cost quantities priced from the config file's table, the media quality.
 * Then a second call is cut by SIGKILL of the server: after a restart on the same file the
 * row is there, `incomplete`.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { freePort, freePortBlock } from '../helpers/ports.ts';
import { runConversation } from '../../src/cli/conversation.ts';
import { placeCall } from '../../src/cli/caller.ts';
import { createStt } from '../../src/stt/index.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import type { CdrRecord } from '../../src/cdr/index.ts';
import { cdrList as cdrListCli } from '../helpers/cdr.ts';

/** This suite's port ranges. */
const SIP = { min: 15800, max: 15899 };
const CONTROL = { min: 19900, max: 19949 };
const RTP = { min: 39000, max: 39499 };

const OPEN_AT = '2026-12-02T16:00:00Z'; // Wed 10:00 in Chicago: open
const DANA = '+14155550142';

t.setTimeout(300_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'cdr-e2e-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const CDR_DB = path.join(tmp, 'records', 'cdr.sqlite');
const CONFIG = path.join(tmp, 'voice-agent.yaml');
writeFileSync(CONFIG, `cdr:
  prices:
    default:
      currency: USD
      carrier: { perMinute: 0.012, incrementSeconds: 6 }
`);

// A Redis of the test's own (as the lanes do): a private redis-server the server might start
// would outlive a SIGKILLed server and hold its output pipes open.
let redis: TestRedis;
t.before(async () => { redis = await startTestRedis(); });
t.teardown(() => redis?.stop());

async function server(): Promise<ServerHandle> {
  const rtp = await freePortBlock(RTP, 40);
  return startServer({
    SIP_PORT: String(await freePort(SIP, 'both')),
    DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    CONFIG_FILE: CONFIG, CDR_DB, CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
    VOICE_AGENT_NOW: OPEN_AT, VOICE_MEDIA_RT_PRIORITY: '0', OPS_PORT: '0',
    // this suite is about records, not overload: load-based admission off (a busy test box would get 503s)
    ADMISSION_CPU_PERCENT: '0', ADMISSION_EVENT_LOOP_MS: '0', ADMISSION_MEDIA_LATE_MS: '0',
  }, { readyTimeoutMs: 60000 });
}

/** `voice-agent cdr list --json …` as an operator runs it (the file from CDR_DB). */
const cdrList = (...args: string[]): Promise<CdrRecord[]> => cdrListCli({ CDR_DB, CONFIG_FILE: CONFIG }, ...args);

async function rowOf(sipCallId: string, until: (r: CdrRecord) => boolean): Promise<CdrRecord | undefined> {
  let row: CdrRecord | undefined;
  for (let i = 0; i < 50; i++) {
    row = (await cdrList()).find((r) => r.sipCallId === sipCallId);
    if (row && until(row)) return row;
    await new Promise((r) => setTimeout(r, 200));
  }
  return row;
}

t.test('order status call: its CDR row, read with voice-agent cdr list --json', async (t) => {
  const s = await server();
  t.teardown(() => s.stop());
  const r = await runConversation({
    port: s.sipPort, to: '18005550100', from: DANA, stt: createStt('pocketsphinx'), silenceMs: 1500, answerTimeoutMs: 20000,
    turns: [{ say: 'What is the status of my order', voice: 'kal' }, { dtmf: '12345#' }],
    onLine: (l) => t.comment(`${l.role}: ${l.text}`),
  });
  t.equal(r.call.status, 200);
  t.equal(r.call.hangup, 'caller', 'the caller hung up after the status');
  const row = await rowOf(r.call.callId, (x) => x.status === 'completed');
  t.ok(row, 'a row for the call');
  if (!row) return;
  t.comment(`CDR: ${JSON.stringify(row)}`);
  t.match(row, {
    sipCallId: r.call.callId, tenant: 'northwind', fromNumber: /^\+?14155550142$/, toNumber: /^\+?18005550100$/,
    source: /^udp\/127\.0\.0\.1:\d+$/, accountId: 'ACC-10042', accountName: 'Acme Plumbing Supply', contactName: 'Dana Reyes',
    status: 'completed', outcome: 'status_given', outcomeRef: 'SO-481200', hangupBy: 'caller', endReason: 'caller-bye',
    sipStatus: 200, releaseCause: null, agent: 'rules', language: 'en-US', incompleteReason: null,
  });
  t.ok(row.answeredAt && row.endedAt && row.durationMs! > 0, 'start, answer, end and duration');
  t.ok(row.turns >= 2, `turns (${row.turns})`);
  t.match(row.detail.orderStatus, { order_number: 'SO-481200', po_number: 'PO12345', status: 'shipped' });

  // the transcript: both sides, in order, with times
  const roles = row.transcript.map((l) => l.role);
  t.equal(roles[0], 'agent', 'the greeting first');
  t.match(row.transcript[0]!.text, /Dana/);
  t.ok(row.transcript.some((l) => l.role === 'caller' && !l.dtmf && l.text.length > 0), 'what the caller said (recognised)');
  t.ok(row.transcript.some((l) => l.role === 'caller' && l.dtmf && l.text === '12345'), 'the keyed PO');
  t.ok(row.transcript.some((l) => l.role === 'agent' && /shipped/.test(l.text)), "the agent's answer in its own words");
  const times = row.transcript.map((l) => Date.parse(l.at));
  t.ok(times.every((x, i) => Number.isFinite(x) && (i === 0 || x >= times[i - 1]!)), 'timestamps in order');
  t.match(s.log(), /msg="?agent said"?.*callId"?[=:]"?[^ "]+.*Hi Dana/, "the agent's words are in the log at info with the call id");

  // cost quantities, priced from the config file's table
  t.ok(row.carrierSeconds > 0, `carrier seconds ${row.carrierSeconds}`);
  t.ok(row.sttSeconds > 0.5, `STT seconds ${row.sttSeconds} (the spoken question)`);
  t.equal(row.ttsChars, row.transcript.filter((l) => l.role === 'agent').reduce((n, l) => n + l.text.length, 0), 'TTS characters = the agent\'s words');
  t.equal(row.llmPromptTokens, 0);
  t.equal(row.llmCompletionTokens, 0);
  const items = Object.fromEntries(row.cost!.items.map((i) => [i.item, i]));
  t.match(items.carrier, { provider: 'trunk', unit: 'min', unitPrice: 0.012 });
  t.equal(items.carrier!.quantity, Math.ceil(row.carrierSeconds / 6) * 6 / 60, 'billed in 6 s increments');
  t.match(items.stt, { provider: 'pocketsphinx', quantity: row.sttSeconds, amount: 0 });
  t.match(items.tts, { provider: 'flite', quantity: row.ttsChars, amount: 0 });
  t.match(items.llm_prompt, { provider: 'rules', quantity: 0, amount: 0 });
  t.equal(row.cost!.total, items.carrier!.amount);
  t.same(row.cost!.unpriced, []);
  t.equal(row.cost!.currency, 'USD');

  // media quality
  const m = row.media!;
  t.match(m, { codec: 'PCMU' });
  t.ok(m.packetsIn > 100 && m.packetsOut > 100, `packets in ${m.packetsIn} / out ${m.packetsOut}`);
  t.equal(m.lossInPct, 0, 'no loss on loopback (the DTMF packets are not counted as lost)');
  t.ok(m.jitterInMs !== null && m.jitterInMs >= 0, `jitter ${m.jitterInMs} ms`);
  t.ok(m.rFactor! > 85 && m.mos! >= 4.2, `R ${m.rFactor}, MOS ${m.mos}`);
  t.ok(row.gapP50Ms !== null && row.gapP95Ms! >= row.gapP50Ms!, `turn gap p50 ${row.gapP50Ms} / p95 ${row.gapP95Ms} ms`);

  // the filters find it
  t.ok((await cdrList('--outcome', 'status_given', '--caller', '4155550142', '--tenant', 'northwind')).some((x) => x.id === row.id));
  t.notOk((await cdrList('--outcome', 'order_placed')).some((x) => x.id === row.id));
});

t.test('the server is killed mid-call: after a restart the row is there, incomplete', async (t) => {
  const s = await server();
  let killed = false;
  const call = await placeCall({
    port: s.sipPort, to: '18005550100', from: '+13125550199', maxCallMs: 60000,
    script: async (ctl) => {
      await ctl.waitForAgent({ silenceMs: 800, timeoutMs: 20000 }); // the greeting: the call is up
      s.proc.kill('SIGKILL');
      killed = true;
    },
  });
  t.ok(killed, 'killed during the call');
  t.equal(call.status, 200);
  await s.stop();
  const s2 = await server();
  t.teardown(() => s2.stop());
  t.match(s2.log(), /CDR rows left open by a previous process marked incomplete.*rows=1/);
  const rows = (await cdrList('--status', 'incomplete', '--caller', '3125550199')).filter((x) => x.sipCallId === call.callId);
  t.equal(rows.length, 1, 'the row of the killed call, not absent');
  t.match(rows[0], { status: 'incomplete', endedAt: null, durationMs: null, fromNumber: '+13125550199', incompleteReason: /process ended before the call did/ });
  t.ok(rows[0]!.answeredAt, 'written at answer');
  t.equal(rows[0]!.transcript[0]?.role, 'agent', 'with the greeting it had written');
});
