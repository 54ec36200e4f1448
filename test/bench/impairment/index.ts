/**
 * `npm run bench -- impairment [--profiles a,b,…] [--seeds N]`: the impairment table — one call
 * per profile and seed through `voice-agent impair` (test/helpers/impair.ts) to a server on
 * embedded defaults, profiles side by side. Per profile: packets the relay dropped, duplicated
 * and reordered (caller → server), the CDR's inbound loss and MOS, barge-ins, the word error
 * rate of the recognised question against the clean call, and the outcome. JSON last line.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../../helpers/server.ts';
import { startTestRedis } from '../../helpers/redis.ts';
import { callThrough, wer, tableRow, TABLE_HEAD, type ImpairedCall } from '../../helpers/impair.ts';
import { PROFILES } from '../../../src/qa/impair.ts';

const arg = (k: string): string | undefined => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : undefined; };
const profiles = (arg('profiles') ?? Object.keys(PROFILES).filter((p) => p !== 'clean').join(',')).split(',');
const seeds = Number(arg('seeds') ?? 1);

const tmp = mkdtempSync(path.join(tmpdir(), 'bench-impair-'));
const CDR_DB = path.join(tmp, 'cdr.sqlite');
const redis = await startTestRedis();
const server = await startServer({
  CDR_DB, CRM_DB: path.join(tmp, 'crm.sqlite'), DATA_DIR: path.join(tmp, 'var'), REDIS_URL: redis.url,
  VOICE_AGENT_NOW: '2026-12-02T16:00:00Z', VOICE_MEDIA_RT_PRIORITY: '0',
}, { readyTimeoutMs: 60000 });
try {
  const clean = await callThrough(server.sipPort, CDR_DB, 'clean');
  console.log(TABLE_HEAD);
  console.log(tableRow(clean, clean.heard));
  const rows: ImpairedCall[] = [];
  // four at a time: the box has two cores and the recogniser is the heavy part
  const jobs = profiles.flatMap((p) => Array.from({ length: seeds }, (_, s) => [p, 7 + s] as const));
  for (let i = 0; i < jobs.length; i += 4) {
    const got = await Promise.all(jobs.slice(i, i + 4).map(([p, seed]) => callThrough(server.sipPort, CDR_DB, p, seed)));
    for (const o of got) { console.log(tableRow(o, clean.heard)); rows.push(o); }
  }
  const summary = Object.fromEntries(['clean', ...profiles].map((p) => {
    const rs = p === 'clean' ? [clean] : rows.filter((r) => r.profile === p);
    const avg = (f: (r: ImpairedCall) => number | null | undefined): number | null => {
      const v = rs.map(f).filter((x): x is number => typeof x === 'number');
      return v.length ? Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 100) / 100 : null;
    };
    return [p, {
      calls: rs.length,
      relayUpDropped: avg((r) => r.stats.up.dropped), relayUpReordered: avg((r) => r.stats.up.reordered), relayUpDuplicated: avg((r) => r.stats.up.duplicated),
      cdrLossInPct: avg((r) => r.row?.media?.lossInPct), mos: avg((r) => r.row?.media?.mos), bargeIns: avg((r) => r.row?.bargeIns),
      wer: avg((r) => wer(clean.heard, r.heard)), statusGiven: rs.filter((r) => r.row?.outcome === 'status_given').length,
    }];
  }));
  console.log(JSON.stringify({ bench: 'impairment', seeds, profiles: summary }));
} finally {
  await server.stop();
  await redis.stop();
  rmSync(tmp, { recursive: true, force: true });
}
