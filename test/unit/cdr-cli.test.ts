/**
 * `voice-agent cdr list|show` (src/cdr/cli.ts) on a store with a few calls, and the CDR
 * settings (config `cdr`, `CDR_DB`, `CDR_RETENTION_DAYS`, tenants.yaml `cdr.retentionDays`).
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../src/cdr/cli.ts';
import { SqliteCdrStore, type CdrRecord } from '../../src/cdr/index.ts';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { parseTenants } from '../../src/tenants/load.ts';
import { record } from './cdr-helpers.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'cdr-cli-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const db = path.join(tmp, 'cdr.sqlite');
const NOW = new Date('2026-03-05T12:00:00.000Z');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { DATA_DIR: path.join(tmp, 'empty') }, cwd: tmp, now: () => NOW });
  return { code, out, err };
}

const ROWS: CdrRecord[] = [
  record({
    id: '11111111-aaaa-4000-8000-000000000001', sipCallId: 'a@x', tenant: 'northwind', startedAt: '2026-03-01T09:00:00.000Z',
    answeredAt: '2026-03-01T09:00:00.500Z', endedAt: '2026-03-01T09:01:30.500Z', durationMs: 90000, status: 'completed',
    outcome: 'order_placed', outcomeRef: 'SO-482311', outcomes: ['order_placed'], hangupBy: 'caller', endReason: 'caller-bye',
    accountId: 'ACC-10042', accountName: 'Acme Plumbing Supply', contactName: 'Dana Reyes', turns: 2, agent: 'rules',
    transcript: [
      { role: 'agent', text: 'Hi Dana, how can I help?', at: '2026-03-01T09:00:01.000Z' },
      { role: 'caller', text: 'I need twenty of HX-4410, "the big ones"', at: '2026-03-01T09:00:05.000Z', confidence: 0.8 },
      { role: 'agent', text: 'Your order is booked.', at: '2026-03-01T09:00:09.000Z', interrupted: true },
    ],
    media: { codec: 'PCMU', packetsIn: 4500, packetsOut: 4400, lossInPct: 0, jitterInMs: 1.2, lossOutPct: null, jitterOutMs: null, rttMs: null, rFactor: 93, mos: 4.4 },
    cost: { currency: 'USD', items: [{ item: 'carrier', provider: 'trunk', quantity: 2, unit: 'min', unitPrice: null, per: 1, amount: null }], total: 0, unpriced: ['carrier:trunk'] },
  }),
  record({ id: '22222222-bbbb-4000-8000-000000000002', sipCallId: 'b@x', tenant: 'northwind', startedAt: '2026-03-02T09:00:00.000Z', status: 'completed', outcome: 'abandoned', outcomes: ['abandoned'], fromNumber: '+13125550199' }),
  record({ id: '33333333-cccc-4000-8000-000000000003', sipCallId: 'c@x', tenant: 'acme', startedAt: '2026-03-04T09:00:00.000Z', status: 'incomplete', incompleteReason: 'the process ended before the call did' }),
];

t.before(async () => {
  const s = new SqliteCdrStore({ file: db });
  for (const r of ROWS) await s.insert(r);
  await s.close();
});

t.test('list: a table, newest first', async (t) => {
  const r = await cli('list', '--db', db);
  t.equal(r.code, 0, r.err);
  const lines = r.out.trim().split('\n');
  t.match(lines[0], /^STARTED \(UTC\)\s+ID\s+TENANT\s+FROM\s+TO\s+DUR\s+OUTCOME\s+REF\s+HANGUP\s+TURNS\s+MOS\s+COST\s+STATUS$/);
  t.match(lines[1], /^2026-03-04 09:00:00\s+33333333\s+acme\s.*incomplete$/);
  t.match(lines[3], /^2026-03-01 09:00:00\s+11111111\s+northwind\s+\+14155550142\s+18005550100\s+1:30\s+order_placed\s+SO-482311\s+caller\s+2\s+4\.40\s+0\.0000\*\s+completed$/);
  t.match(r.out, /\* cost leaves out unpriced items/);
});

t.test('list filters', async (t) => {
  const ids = async (...a: string[]): Promise<string[]> => {
    const r = await cli('list', '--db', db, '--json', ...a);
    t.equal(r.code, 0, r.err);
    return r.out.trim() ? r.out.trim().split('\n').map((l) => (JSON.parse(l) as CdrRecord).sipCallId) : [];
  };
  t.same(await ids(), ['c@x', 'b@x', 'a@x']);
  t.same(await ids('--tenant', 'northwind'), ['b@x', 'a@x']);
  t.same(await ids('--since', '2026-03-02', '--until', '2026-03-03'), ['b@x'], 'dates are whole UTC days, --until included');
  t.same(await ids('--since', '2d'), ['c@x'], 'an age: the last two days before now');
  t.same(await ids('--outcome', 'order_placed'), ['a@x']);
  t.same(await ids('--caller', '312-555-0199'), ['b@x']);
  t.same(await ids('--status', 'incomplete'), ['c@x']);
  t.same(await ids('--limit', '1'), ['c@x']);
});

t.test('list --json: one full record per line (transcript included)', async (t) => {
  const r = await cli('list', '--db', db, '--json', '--outcome', 'order_placed');
  const rows = r.out.trim().split('\n').map((l) => JSON.parse(l) as CdrRecord);
  t.equal(rows.length, 1);
  t.same(rows[0], ROWS[0]);
});

t.test('list --csv: header and one line per call, quoted where needed', async (t) => {
  const r = await cli('list', '--db', db, '--csv', '--tenant', 'northwind');
  const lines = r.out.trim().split('\n');
  t.equal(lines.length, 3);
  const head = lines[0]!.split(',');
  t.equal(head[0], 'id');
  for (const k of ['sip_call_id', 'from', 'outcome', 'outcome_ref', 'mos', 'cost_total', 'stt_seconds', 'tts_chars', 'llm_prompt_tokens']) t.ok(head.includes(k), k);
  const row = lines[2]!;
  t.match(row, /^11111111-aaaa-4000-8000-000000000001,a@x,northwind,,udp\/127\.0\.0\.1:5070,\+14155550142,18005550100,ACC-10042,Acme Plumbing Supply,/);
  const cells = row.split(',');
  t.equal(cells[head.indexOf('mos')], '4.4');
  t.equal(cells[head.indexOf('unpriced')], 'carrier:trunk');
});

t.test('show: by id, id prefix or SIP Call-ID, with the transcript', async (t) => {
  for (const key of ['11111111-aaaa-4000-8000-000000000001', '1111', 'a@x']) {
    const r = await cli('show', key, '--db', db);
    t.equal(r.code, 0, r.err);
    t.match(r.out, /outcome\s+order_placed SO-482311/);
    t.match(r.out, /account\s+Acme Plumbing Supply \(ACC-10042\)/);
    t.match(r.out, /R \/ MOS\s+93 \/ 4\.4/);
    t.match(r.out, /\+\s+0\.5s agent\s+Hi Dana, how can I help\?/);
    t.match(r.out, /\+\s+4\.5s caller\s+I need twenty of HX-4410/);
    t.match(r.out, /Your order is booked\. \[cut\]/);
  }
  const j = await cli('show', 'a@x', '--json', '--db', db);
  t.same(JSON.parse(j.out), ROWS[0]);
  const none = await cli('show', 'nope', '--db', db);
  t.equal(none.code, 1);
  t.match(none.err, /no call nope/);
});

t.test('usage errors exit 2; a missing database exits 1', async (t) => {
  t.equal((await cli('list', '--db', db, '--outcome', 'sold')).code, 2);
  t.equal((await cli('list', '--db', db, '--since', 'yesterday-ish')).code, 2);
  t.equal((await cli('list', '--db', db, '--csv', '--json')).code, 2);
  t.equal((await cli('frobnicate')).code, 2);
  const r = await cli('list');
  t.equal(r.code, 1, 'default file <DATA_DIR>/cdr.sqlite does not exist in this DATA_DIR');
  t.match(r.err, new RegExp(`no CDR database at ${path.join(tmp, 'empty', 'cdr.sqlite').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

t.test('settings: defaults, YAML, env, errors name the field', async (t) => {
  const dir = mkdtempSync(path.join(tmp, 'cfg-'));
  const c0 = loadConfig({ env: {}, argv: [], cwd: dir });
  t.same(c0.cdr, { db: path.join(dir, 'var', 'cdr.sqlite'), retentionDays: 90, prices: {} });
  t.equal(loadConfig({ env: { DATA_DIR: '/data' }, argv: [], cwd: dir }).cdr.db, '/data/cdr.sqlite');
  const f = path.join(dir, 'c.yaml');
  writeFileSync(f, `cdr:
  db: ./records/cdr.sqlite
  retentionDays: 30
  prices:
    default:
      currency: USD
      carrier: { perMinute: 0.0085, incrementSeconds: 6 }
      stt: { openai: { perMinute: 0.006 } }
      llm: { gpt-4o-mini: { promptPerMillion: 0.15, completionPerMillion: 0.6 } }
      tts: { openai: { perMillionChars: 15 } }
    acme:
      carrier: { perMinute: 0.004 }
`);
  const c1 = loadConfig({ env: { DATA_DIR: '/data' }, argv: ['--config', f], cwd: '/' });
  t.equal(c1.cdr.db, path.join(dir, 'records', 'cdr.sqlite'), 'relative to the config file; beats DATA_DIR');
  t.equal(c1.cdr.retentionDays, 30);
  t.same(c1.cdr.prices.acme, { carrier: { perMinute: 0.004 } });
  t.same(c1.cdr.prices.default!.llm, { 'gpt-4o-mini': { promptPerMillion: 0.15, completionPerMillion: 0.6 } });
  const c2 = loadConfig({ env: { CDR_DB: 'off', CDR_RETENTION_DAYS: '7' }, argv: ['--config', f], cwd: dir });
  t.equal(c2.cdr.db, null, 'CDR_DB=off');
  t.equal(c2.cdr.retentionDays, 7);
  t.equal(loadConfig({ env: { CDR_DB: 'x.sqlite' }, argv: [], cwd: dir }).cdr.db, path.join(dir, 'x.sqlite'));
  const bad = (yaml: string, env: Record<string, string> = {}): string => {
    const g = path.join(dir, `bad${Math.random()}.yaml`);
    writeFileSync(g, yaml);
    try {
      loadConfig({ env, argv: ['--config', g], cwd: dir });
      return 'no error';
    } catch (err) {
      t.ok(err instanceof ConfigError);
      return (err as Error).message;
    }
  };
  t.match(bad('cdr: { retentionDays: -1 }'), /: cdr\.retentionDays: must be an integer 0-36500/);
  t.match(bad('cdr: { dbfile: x }'), /: cdr\.dbfile: unknown key/);
  t.match(bad('cdr: { prices: { default: { stt: { openai: { perMinute: "cheap" } } } } }'), /: cdr\.prices\.default\.stt\.openai\.perMinute: must be a price/);
  t.match(bad('cdr: { prices: { acme: { llm: { m: { promptPerMillion: 1 } } } } }'), /: cdr\.prices\.acme\.llm\.m\.completionPerMillion: is required/);
  t.match(bad('cdr: { prices: { default: { currency: dollars } } }'), /currency: must be an ISO 4217 code/);
  t.match(bad('', { CDR_RETENTION_DAYS: 'forever' }), /^environment: CDR_RETENTION_DAYS: must be an integer/);
});

t.test('tenants.yaml cdr.retentionDays', async (t) => {
  const doc = (cdr: unknown) => ({ tenants: [{ id: 'acme', name: 'Acme', default: true, dids: ['18005550100'], greeting: 'Hi.', ...(cdr === undefined ? {} : { cdr }) }] });
  t.same(parseTenants(doc({ retentionDays: 30 }), 't.yaml').tenants[0]!.cdr, { retentionDays: 30 });
  t.equal(parseTenants(doc(undefined), 't.yaml').tenants[0]!.cdr, undefined);
  t.throws(() => parseTenants(doc({ retentionDays: 'a month' }), 't.yaml'), /tenants\[0\]\.cdr\.retentionDays: must be an integer 0-36500/);
  t.throws(() => parseTenants(doc({ keep: 3 }), 't.yaml'), /tenants\[0\]\.cdr\.keep: unknown key/);
});
