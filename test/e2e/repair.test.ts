/**
 * Dialogue repair end to end: real SIP calls through the built-in edge to the server on
 * embedded defaults (rules agent, pocketsphinx, flite, native VAD), caller audio synthesized
 * by flite, one call per repair path; the outcome is judged from the server's CRM/ERP
 * database (order rows, cases, the hand-off activity), never from the agent's own account.
 *
 * - keypad fallback: no quantity in two answers → "key in the quantity and press pound" → the
 *   keyed quantity read back → one order row;
 * - history reorder: "Same as last time, please." → the account's last order read back → yes
 *   → an order row with its lines;
 * - clipped escalation: "Can I speak to a person?" cut before "person" (what a clipped
 *   endpoint gives the recogniser: "can i speak to a") → a hand-off to the account's rep
 *   (the screen pop's CRM activity);
 * - keyed part digits: "Which part number…?" answered on the keypad with the digits printed
 *   beside the part, the quantity keyed too → read back → one order row.
 *
 * After hours (status and reorders at night, a person → a message) is unit-tested
 * (agent-repair.test.ts); the after-hours menu's keyed 1 is in lanes.test.ts.
 * The SKU grammar may land on another part rather than miss, so a scripted call cannot tell
 * which way the agent goes on a misheard part.
 *
 * Voices per phrase are ones the local recogniser hears right on clean audio (measured);
 * the grammar-per-state e2e is the recogniser's own suite.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ServerHandle } from '../helpers/server.ts';
import { freePort } from '../helpers/ports.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { runConversation, type CallerTurn, type ConversationResult } from '../../src/cli/conversation.ts';
import { createStt } from '../../src/stt/index.ts';
import { synthesize } from '../../src/media/index.ts';
import { crmServer, dbRows as rows, waitDbRows as waitRows } from '../helpers/crm-db.ts';

/** This suite's port ranges. */
const SIP = { min: 14600, max: 14699 };
const CONTROL = { min: 14700, max: 14749 };
const RTP = { min: 44000, max: 44999 };
const DEAD_REP = { min: 14750, max: 14799 };

const OPEN_AT = '2026-12-02T16:00:00Z'; // Wed 10:00 in Chicago: open
const DANA = '+14155550142';

t.setTimeout(900_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'repair-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const stt = createStt('pocketsphinx');
t.teardown(() => {
  setTimeout(() => {
    process.stderr.write(`repair: handles still open after the suite: ${process.getActiveResourcesInfo().join(', ')}\n`);
    process.exit(process.exitCode ?? 0);
  }, 3000).unref();
});

async function server(name: string, now: string, redis: TestRedis): Promise<ServerHandle & { db: string }> {
  // no rep answers: the hand-off is judged by its CRM activity (written when it starts)
  return crmServer(tmp, name, now, redis.url, { sip: SIP, control: CONTROL, rtp: RTP }, {
    REP_URI: `sip:{extension}@127.0.0.1:${await freePort(DEAD_REP, 'udp')}`, REP_RING_SECONDS: '4',
  });
}

/** One call; on failure the messages say what both sides heard and what the agent said. */
async function call(s: ServerHandle, turns: CallerTurn[]): Promise<ConversationResult & { heard: string[]; said: string[]; story: string }> {
  const mark = s.log().length;
  const r = await runConversation({
    port: s.sipPort, to: '18005550100', from: DANA, turns, stt, silenceMs: 1500, answerTimeoutMs: 25000,
    onLine: (l) => t.comment(`${l.role}: ${l.text}${l.gapMs !== undefined ? ` [gap ${l.gapMs} ms]` : ''}`),
  });
  const log = s.log().slice(mark);
  const heard = [...log.matchAll(/msg="caller said".*?text="([^"]*)"/g)].map((m) => m[1]!);
  const said = [...log.matchAll(/msg="agent said".*?text="([^"]*)"/g)].map((m) => m[1]!);
  const story = `server heard ${JSON.stringify(heard)}; agent said ${JSON.stringify(said)}`;
  return Object.assign(r, { heard, said, story });
}



/** The lines of an account's most recent order ("20 x CP-5010, 2 x SD-2200"). */
function lastOrderLines(db: string, account: string): string {
  return rows<{ lines: string }>(db, `SELECT group_concat(l.qty || ' x ' || l.sku, ', ') AS lines FROM order_lines l WHERE l.order_number =
    (SELECT order_number FROM orders WHERE account_id = ? ORDER BY date DESC, seq DESC LIMIT 1) ORDER BY l.line`, account)[0]?.lines ?? '';
}

/** Voice orders placed since `after` (order numbers are increasing), with their lines. */
function voiceOrdersAfter(db: string, after: string): Array<{ order_number: string; lines: string }> {
  return rows(db, `SELECT o.order_number, group_concat(l.qty || ' x ' || l.sku, ', ') AS lines FROM orders o
    JOIN order_lines l ON l.order_number = o.order_number WHERE o.source = 'voice' AND o.order_number > ? GROUP BY o.order_number ORDER BY o.order_number`, after);
}

function lastVoiceOrder(db: string): string {
  return rows<{ n: string | null }>(db, "SELECT max(order_number) AS n FROM orders WHERE source = 'voice'")[0]?.n ?? '';
}

t.test('repair paths', async (t) => {
  const redis = await startTestRedis();
  t.teardown(() => redis.stop());
  const s = await server('open', OPEN_AT, redis);
  t.teardown(() => s.stop());

  await t.test('keypad fallback: no quantity twice → "key in the quantity and press pound" → one order row', async (t) => {
    const before = lastVoiceOrder(s.db);
    const r = await call(s, [
      { say: 'I want to reorder H X four four one zero.', voice: 'rms' },
      { say: 'No, that is wrong.', voice: 'rms' }, // no quantity in it: asked again
      { say: 'No, that is wrong.', voice: 'rms' }, // the second miss: the keypad
      { dtmf: '20#' },
      { say: 'Yes, that is correct.', voice: 'rms' }, // the read-back
    ]);
    const keypad = r.said.findIndex((x) => /key in the quantity on your phone and press pound/.test(x));
    t.ok(keypad > 0, `the keypad was offered after the second miss (${r.story})`);
    const orders = voiceOrdersAfter(s.db, before);
    t.same(orders.map((o) => o.lines), ['20 x HX-4410'], `one voice order for 20 × HX-4410, the keyed quantity (${r.story})`);
  });

  await t.test('keyed part digits: "which part?" answered with the digits printed beside it → the part, the keyed quantity → one order row', async (t) => {
    const before = lastVoiceOrder(s.db);
    const r = await call(s, [
      { say: 'I want to reorder.', voice: 'rms' },
      { dtmf: '5010#' }, // CP-5010: the digits printed beside the part in the catalogue
      { dtmf: '5#' },
      { say: 'Yes, that is correct.', voice: 'rms' }, // the read-back
    ]);
    t.ok(r.said.some((x) => /5 of CP-5010/.test(x)), `read back as 5 of CP-5010 (${r.story})`);
    const orders = voiceOrdersAfter(s.db, before);
    t.same(orders.map((o) => o.lines), ['5 x CP-5010'], `one voice order for 5 × CP-5010, from keyed digits (${r.story})`);
  });

  await t.test('history reorder: "same as last time" → the last order read back → an order row with its lines', async (t) => {
    const before = lastVoiceOrder(s.db);
    const last = lastOrderLines(s.db, 'ACC-10042');
    const r = await call(s, [
      { say: 'Same as last time, please.', voice: 'rms' },
      { say: 'Yes, that is correct.', voice: 'rms' },
    ]);
    const orders = voiceOrdersAfter(s.db, before);
    t.same(orders.map((o) => o.lines), [last], `one voice order with the lines of the account's last order, ${last} (${r.story})`);
  });

  await t.test('clipped escalation: "Can I speak to a…" reaches a hand-off to the account\'s rep', async (t) => {
    // the sentence cut where "person" begins, as a clipped endpoint gives it to the recogniser
    const full = await synthesize('Can I speak to a person?', { voice: 'rms', sampleRate: 8000 });
    const head = await synthesize('Can I speak to a', { voice: 'rms', sampleRate: 8000 });
    let end = head.length;
    while (end > 0 && Math.abs(head[end - 1]!) < 300) end--;
    const clipped = full.slice(0, end + 200);
    const r = await call(s, [{ pcm: clipped, label: 'Can I speak to a… (clipped)' }]);
    t.ok(r.heard.some((h) => /speak to/.test(h) && !/person/.test(h)), `the recogniser heard the clipped request (${JSON.stringify(r.heard)})`);
    const acts = await waitRows<{ reason: string; target: string; account_id: string }>(s.db,
      "SELECT reason, target, account_id FROM activities WHERE kind = 'handoff' AND reason LIKE '%asked for a person%'");
    t.equal(acts.length, 1, `the hand-off's screen pop is in the CRM (${r.story})`);
    t.match(acts[0], { account_id: 'ACC-10042', target: /Maria Chen \(2101\)/ });
    t.match(s.log(), /msg=escalation .*trigger=explicit/, 'an explicit hand-off');
  });
});
