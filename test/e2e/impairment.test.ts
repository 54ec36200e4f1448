/**
 * Network impairment outside the process under test: the caller reaches the server through
 * `voice-agent impair` (its own process: a SIP-aware UDP relay, seeded, that impairs the RTP it
 * carries; this kernel has no netem). For each profile one real call (test/helpers/impair.ts):
 * the caller asks for order status, keys the PO (RFC 4733), then talks over the agent's answer.
 * Judged from outside, per profile against the clean call:
 *  - what the recogniser heard of the spoken question stays within WER_BOUND (per profile) of the clean run;
 *  - the keyed PO still gets the status (DTMF survives loss: end packets are sent three times);
 *  - barge-in still fires (the CDR counts it);
 *  - the CDR reports the loss the relay caused, and a lower MOS.
 * All calls run side by side, each through its own relay. The full table over every profile
 * is `npm run bench -- impairment`.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, type ServerHandle } from '../helpers/server.ts';
import { freePort, freePortBlock } from '../helpers/ports.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { callThrough, wer, tableRow, TABLE_HEAD } from '../helpers/impair.ts';

const SIP = { min: 18700, max: 18799 };
const CONTROL = { min: 19700, max: 19799 };
const RTP = { min: 36000, max: 36999 };
const OPEN_AT = '2026-12-02T16:00:00Z';
/**
 * Word error rate of the spoken question against the clean call's transcript, at most, per
 * profile (the question has 7 words): jitter and duplicates are absorbed by the jitter buffer
 * (one word of slack); 5 % random loss costs at most 2 words; a 2 % loss in bursts of ~4
 * packets (80 ms holes) can take out short words — up to 4 seen across runs, depending on
 * where the holes fall in the utterance (`npm run bench -- impairment` shows the spread).
 */
const WER_BOUND: Record<string, number> = { loss5: 0.3, burst2: 0.6, jitter60: 0.15, dup2: 0.15 };
const PROFILES = ['loss5', 'burst2', 'jitter60', 'dup2'];

t.setTimeout(300_000);
const tmp = mkdtempSync(path.join(tmpdir(), 'impair-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const CDR_DB = path.join(tmp, 'cdr.sqlite');

let redis: TestRedis;
let server: ServerHandle;
t.before(async () => {
  redis = await startTestRedis();
  const rtp = await freePortBlock(RTP, 60);
  server = await startServer({
    SIP_PORT: String(await freePort(SIP, 'both')), DRACHTIO_PORT: String(await freePort(CONTROL, 'tcp')),
    RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    CDR_DB, CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
    VOICE_AGENT_NOW: OPEN_AT, VOICE_MEDIA_RT_PRIORITY: '0',
  }, { readyTimeoutMs: 60000 });
});
t.teardown(async () => { await server?.stop(); await redis?.stop(); });

t.test('the same call clean and through each impairment profile', async (t) => {
  const [clean, ...impaired] = await Promise.all(['clean', ...PROFILES].map((p) => callThrough(server.sipPort, CDR_DB, p)));
  t.ok(clean!.row, 'clean: a CDR row');
  t.equal(clean!.row?.outcome, 'status_given', 'clean: the status was given');
  t.equal(clean!.stats.up.dropped + clean!.stats.down.dropped, 0, 'clean: the relay dropped nothing');
  t.ok(clean!.stats.up.forwarded > 100 && clean!.stats.down.forwarded > 100, `clean: media went through the relay (up ${clean!.stats.up.forwarded}, down ${clean!.stats.down.forwarded})`);
  t.ok((clean!.row?.bargeIns ?? 0) >= 1, `clean: barge-in fired (${clean!.row?.bargeIns})`);
  const table = [TABLE_HEAD, tableRow(clean!, clean!.heard)];
  for (const o of impaired) {
    const p = o.profile;
    const m = o.row?.media;
    const w = wer(clean!.heard, o.heard);
    table.push(tableRow(o, clean!.heard));
    t.ok(o.row, `${p}: a CDR row`);
    t.equal(o.row?.outcome, 'status_given', `${p}: the keyed PO still got the status`);
    t.ok((o.row?.bargeIns ?? 0) >= 1, `${p}: barge-in still fired (${o.row?.bargeIns})`);
    t.ok(w <= WER_BOUND[p]!, `${p}: heard "${o.heard}" vs clean "${clean!.heard}": WER ${w.toFixed(2)} ≤ ${WER_BOUND[p]}`);
    if (p.startsWith('loss') || p.startsWith('burst')) {
      t.ok(o.stats.up.dropped > 0, `${p}: the relay dropped caller packets (${o.stats.up.dropped})`);
      t.ok((m?.lossInPct ?? 0) > 0, `${p}: the CDR reports inbound loss (${m?.lossInPct} %)`);
      t.ok(m?.mos != null && clean!.row?.media?.mos != null && m.mos < clean!.row.media.mos, `${p}: a lower MOS (${m?.mos} < ${clean!.row?.media?.mos})`);
    }
    if (p.startsWith('dup')) t.ok(o.stats.up.duplicated > 0, `${p}: the relay duplicated packets (${o.stats.up.duplicated})`);
    if (p.startsWith('jitter')) t.ok(o.stats.up.reordered > 0, `${p}: the relay reordered packets (${o.stats.up.reordered})`);
  }
  t.comment(table.join('\n'));
});
