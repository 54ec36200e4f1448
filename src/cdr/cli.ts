/**
 * `voice-agent cdr` — read the call detail records.
 *
 * ```
 * voice-agent cdr list [--tenant ID] [--since WHEN] [--until WHEN] [--outcome O] [--caller DIGITS]
 *                      [--status open|completed|incomplete] [--limit N] [--csv | --json] [--db FILE] [--config FILE]
 * voice-agent cdr show <id | id prefix | SIP Call-ID> [--json] [--db FILE] [--config FILE]
 * (--db FILE may be a postgres:// URL; without --db the configured store: cdr.postgresUrl, else cdr.db)
 * ```
 * WHEN is a date (`2026-03-01`, UTC; as `--until` the whole day is included), an ISO time, or
 * an age (`30m`, `24h`, `7d`). The table is newest first (`--limit` 50 by default; 0 = all);
 * `--csv` prints every scalar field, `--json` one JSON object per line (transcript included).
 * The file is the server's (`cdr.db` / `CDR_DB`, default `<DATA_DIR or ./var>/cdr.sqlite`).
 * Exit codes: 0, 1 (no such call / no database), 2 (usage).
 */
import { existsSync } from 'node:fs';
import { loadConfig, ConfigError } from '../config.ts';
import { PostgresCdrStore } from './postgres.ts';
import { SqliteCdrStore } from './sqlite.ts';
import { CDR_OUTCOMES, type CdrStore, type CdrFilter, type CdrOutcome, type CdrRecord, type CdrStatus } from './types.ts';

const USAGE = `usage:
  voice-agent cdr list [--tenant ID] [--since WHEN] [--until WHEN] [--outcome ${CDR_OUTCOMES.join('|')}]
                       [--caller DIGITS] [--status open|completed|incomplete] [--limit N] [--csv | --json]
                       [--db FILE] [--config FILE]
  voice-agent cdr show <id | id prefix | SIP Call-ID> [--json] [--db FILE] [--config FILE]
WHEN: 2026-03-01 (UTC day), an ISO time, or an age: 30m, 24h, 7d
`;

class UsageError extends Error {}

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  now: () => Date;
}

/** Parse WHEN; `end` makes a bare date mean the end of that day. */
export function parseWhen(v: string, end: boolean, now: Date): string {
  const age = /^(\d+)\s*([mhd])$/.exec(v.trim());
  if (age) {
    const ms = Number(age[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - ms).toISOString();
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(v.trim())) {
    const d = new Date(`${v.trim()}T00:00:00.000Z`);
    if (Number.isNaN(d.getTime())) throw new UsageError(`not a date: ${v}`);
    return new Date(d.getTime() + (end ? 86_400_000 : 0)).toISOString();
  }
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`not a date, time or age: ${v}`);
  return d.toISOString();
}

interface Parsed {
  cmd: string;
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--tenant', '--since', '--until', '--outcome', '--caller', '--status', '--limit', '--db', '--config']);
const BOOL_FLAGS = new Set(['--csv', '--json', '--help', '-h']);

function parseArgs(argv: readonly string[]): Parsed {
  const [cmd = '', ...rest] = argv;
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    let a = rest[i]!;
    let val: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      val = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    if (VALUE_FLAGS.has(a)) {
      val ??= rest[++i];
      if (val === undefined) throw new UsageError(`${a} needs a value`);
      flags.set(a, val);
    } else if (BOOL_FLAGS.has(a)) {
      flags.set(a, true);
    } else if (a.startsWith('-')) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  return { cmd, positional, flags };
}

function dbFile(p: Parsed, io: Io): string {
  const db = p.flags.get('--db');
  if (typeof db === 'string') return db;
  const conf = p.flags.get('--config');
  const cfg = loadConfig({ argv: typeof conf === 'string' ? ['--config', conf] : [], env: io.env, cwd: io.cwd });
  if (!cfg.cdr.db) throw new UsageError('CDRs are off in this configuration (cdr.db / CDR_DB is off); name a file with --db');
  return cfg.cdr.postgresUrl || cfg.cdr.db;
}

/** `--db` / the configured store: a postgres:// URL (cdr.postgresUrl) or a SQLite file. */
const isPostgresUrl = (db: string): boolean => /^postgres(ql)?:\/\//i.test(db);

/** The filter of `cdr list`. */
function listFilter(p: Parsed, now: Date): CdrFilter {
  const f: CdrFilter = {};
  const s = (k: string): string | undefined => {
    const v = p.flags.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  if (s('--tenant')) f.tenant = s('--tenant')!;
  if (s('--since')) f.since = parseWhen(s('--since')!, false, now);
  if (s('--until')) f.until = parseWhen(s('--until')!, true, now);
  const o = s('--outcome');
  if (o) {
    if (!(CDR_OUTCOMES as readonly string[]).includes(o)) throw new UsageError(`--outcome must be one of ${CDR_OUTCOMES.join(', ')}`);
    f.outcome = o as CdrOutcome;
  }
  if (s('--caller')) f.caller = s('--caller')!;
  const st = s('--status');
  if (st) {
    if (!['open', 'completed', 'incomplete'].includes(st)) throw new UsageError('--status must be open, completed or incomplete');
    f.status = st as CdrStatus;
  }
  const lim = s('--limit');
  if (lim !== undefined) {
    if (!/^\d+$/.test(lim)) throw new UsageError('--limit must be a whole number (0 = all)');
    f.limit = Number(lim);
  } else if (!p.flags.has('--csv') && !p.flags.has('--json')) {
    f.limit = 50;
  }
  return f;
}

/** Scalar fields for CSV, in order. */
const CSV_FIELDS: Array<[string, (r: CdrRecord) => unknown]> = [
  ['id', (r) => r.id], ['sip_call_id', (r) => r.sipCallId], ['tenant', (r) => r.tenant], ['trunk', (r) => r.trunk],
  ['source', (r) => r.source], ['from', (r) => r.fromNumber], ['to', (r) => r.toNumber],
  ['account_id', (r) => r.accountId], ['account_name', (r) => r.accountName], ['contact_id', (r) => r.contactId], ['contact_name', (r) => r.contactName],
  ['status', (r) => r.status], ['incomplete_reason', (r) => r.incompleteReason],
  ['started_at', (r) => r.startedAt], ['answered_at', (r) => r.answeredAt], ['ended_at', (r) => r.endedAt], ['duration_ms', (r) => r.durationMs],
  ['hangup_by', (r) => r.hangupBy], ['end_reason', (r) => r.endReason], ['sip_status', (r) => r.sipStatus], ['release_cause', (r) => r.releaseCause],
  ['outcome', (r) => r.outcome], ['outcome_ref', (r) => r.outcomeRef], ['outcomes', (r) => r.outcomes.join(' ')],
  ['escalation_trigger', (r) => r.escalationTrigger], ['escalation_target', (r) => r.escalationTarget],
  ['escalation_reason', (r) => r.escalationReason], ['escalation_outcome', (r) => r.escalationOutcome],
  ['agent', (r) => r.agent], ['language', (r) => r.language], ['turns', (r) => r.turns], ['barge_ins', (r) => r.bargeIns],
  ['codec', (r) => r.media?.codec], ['packets_in', (r) => r.media?.packetsIn], ['packets_out', (r) => r.media?.packetsOut],
  ['loss_in_pct', (r) => r.media?.lossInPct], ['jitter_in_ms', (r) => r.media?.jitterInMs],
  ['loss_out_pct', (r) => r.media?.lossOutPct], ['jitter_out_ms', (r) => r.media?.jitterOutMs], ['rtt_ms', (r) => r.media?.rttMs],
  ['r_factor', (r) => r.media?.rFactor], ['mos', (r) => r.media?.mos],
  ['gap_p50_ms', (r) => r.gapP50Ms], ['gap_p95_ms', (r) => r.gapP95Ms],
  ['carrier_seconds', (r) => r.carrierSeconds], ['stt_seconds', (r) => r.sttSeconds],
  ['llm_prompt_tokens', (r) => r.llmPromptTokens], ['llm_completion_tokens', (r) => r.llmCompletionTokens], ['tts_chars', (r) => r.ttsChars],
  ['cost_total', (r) => r.cost?.total], ['currency', (r) => r.cost?.currency], ['unpriced', (r) => r.cost?.unpriced.join(' ')],
  ['recording_posture', (r) => r.recordingPosture], ['jurisdiction', (r) => r.jurisdiction], ['consent', (r) => r.consent],
  ['consent_at', (r) => r.consentAt], ['recording_path', (r) => r.recordingPath],
];

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** `2026-03-01 14:05:09` (UTC) */
function shortTime(t: string | null): string {
  return t ? t.slice(0, 19).replace('T', ' ') : '';
}

function duration(ms: number | null): string {
  if (ms === null) return '';
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function table(rows: CdrRecord[]): string {
  const head = ['STARTED (UTC)', 'ID', 'TENANT', 'FROM', 'TO', 'DUR', 'OUTCOME', 'REF', 'HANGUP', 'TURNS', 'MOS', 'COST', 'STATUS'];
  const body = rows.map((r) => [
    shortTime(r.startedAt), r.id.slice(0, 8), r.tenant, r.fromNumber, r.toNumber, duration(r.durationMs),
    r.outcome ?? '', (r.outcomeRef ?? '').slice(0, 24), r.hangupBy ?? '', String(r.turns),
    r.media?.mos != null ? r.media.mos.toFixed(2) : '', r.cost ? `${r.cost.total.toFixed(4)}${r.cost.unpriced.length ? '*' : ''}` : '', r.status,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  const out = [line(head), ...body.map(line)];
  if (rows.some((r) => r.cost?.unpriced.length)) out.push('* cost leaves out unpriced items (see cdr show, or cdr.prices in the config)');
  return out.join('\n') + '\n';
}

function show(r: CdrRecord): string {
  const lines: string[] = [];
  const kv = (k: string, v: unknown): void => {
    if (v !== null && v !== undefined && v !== '') lines.push(`${k.padEnd(20)} ${String(v)}`);
  };
  kv('id', r.id);
  kv('SIP Call-ID', r.sipCallId);
  kv('status', r.status + (r.incompleteReason ? ` (${r.incompleteReason})` : ''));
  kv('tenant', r.tenant);
  kv('trunk', r.trunk);
  kv('source', r.source);
  kv('from → to', `${r.fromNumber} → ${r.toNumber}`);
  kv('account', r.accountId ? `${r.accountName ?? ''} (${r.accountId})` : null);
  kv('contact', r.contactId || r.contactName ? `${r.contactName ?? ''}${r.contactId ? ` (${r.contactId})` : ''}` : null);
  kv('started', r.startedAt);
  kv('answered', r.answeredAt);
  kv('ended', r.endedAt);
  kv('duration', r.durationMs !== null ? `${(r.durationMs / 1000).toFixed(1)} s` : null);
  kv('hung up by', r.hangupBy ? `${r.hangupBy} (${r.endReason}${r.sipStatus ? `, SIP ${r.sipStatus}` : ''}${r.releaseCause ? `, ${r.releaseCause}` : ''})` : null);
  kv('outcome', r.outcome ? `${r.outcome}${r.outcomeRef ? ` ${r.outcomeRef}` : ''}${r.outcomes.length > 1 ? ` (also ${r.outcomes.slice(1).join(', ')})` : ''}` : null);
  if (r.recordingPosture) kv('recording', `${r.recordingPosture} · ${r.jurisdiction ?? '?'} · consent ${r.consent ?? '?'}${r.consentAt ? ` at ${r.consentAt}` : ''}${r.recordingPath ? ` → ${r.recordingPath}` : ' (not recorded)'}`);
  if (r.escalationTrigger || r.escalationTarget) {
    kv('escalation', `trigger ${r.escalationTrigger ?? '?'} → ${r.escalationTarget ?? '?'}${r.escalationOutcome ? `: ${r.escalationOutcome}` : ''}${r.escalationReason ? ` (${r.escalationReason})` : ''}`);
  }
  kv('agent', r.agent ? `${r.agent}${r.language ? `, ${r.language}` : ''}` : null);
  kv('turns / barge-ins', `${r.turns} / ${r.bargeIns}`);
  kv('turn gap p50/p95', r.gapP50Ms !== null ? `${r.gapP50Ms} / ${r.gapP95Ms} ms` : null);
  const m = r.media;
  if (m) {
    kv('media', `${m.codec}, packets in ${m.packetsIn} out ${m.packetsOut}`);
    kv('loss / jitter in', `${m.lossInPct ?? '?'} % / ${m.jitterInMs ?? '?'} ms`);
    kv('loss / jitter out', m.lossOutPct !== null ? `${m.lossOutPct} % / ${m.jitterOutMs} ms (caller's RTCP)` : 'no RTCP report');
    kv('RTT', m.rttMs !== null ? `${m.rttMs} ms` : null);
    kv('R / MOS', m.rFactor !== null ? `${m.rFactor} / ${m.mos}` : null);
  }
  if (r.cost) {
    lines.push(`${'cost'.padEnd(20)} ${r.cost.total} ${r.cost.currency}${r.cost.unpriced.length ? ` (unpriced: ${r.cost.unpriced.join(', ')})` : ''}`);
    for (const i of r.cost.items) {
      const price = i.unitPrice === null ? 'no price' : `${i.unitPrice}/${i.per === 1 ? '' : `${i.per} `}${i.unit}`;
      lines.push(`  ${i.item.padEnd(16)} ${`${i.quantity} ${i.unit}`.padEnd(16)} ${i.provider.padEnd(14)} ${price.padEnd(18)} ${i.amount ?? '-'}`);
    }
  }
  if (r.transcript.length) {
    lines.push('transcript');
    const t0 = Date.parse(r.answeredAt ?? r.startedAt);
    for (const l of r.transcript) {
      const off = ((Date.parse(l.at) - t0) / 1000).toFixed(1).padStart(6);
      const marks = [l.dtmf ? 'keys' : '', l.interrupted ? 'cut' : '', l.filler ? 'filler' : ''].filter(Boolean);
      lines.push(`  +${off}s ${l.role.padEnd(6)} ${l.text}${marks.length ? ` [${marks.join(', ')}]` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

async function run(argv: readonly string[], io: Io): Promise<number> {
  const p = parseArgs(argv);
  if (p.cmd === '') {
    io.err(USAGE);
    return 2;
  }
  if (p.cmd === 'help' || p.flags.has('--help') || p.flags.has('-h')) {
    io.out(USAGE);
    return 0;
  }
  if (p.cmd !== 'list' && p.cmd !== 'show') throw new UsageError(`unknown subcommand "${p.cmd}"`);
  if (p.flags.has('--csv') && p.flags.has('--json')) throw new UsageError('--csv and --json: pick one');
  const file = dbFile(p, io);
  if (!isPostgresUrl(file) && !existsSync(file)) {
    io.err(`voice-agent cdr: no CDR database at ${file} (no call recorded yet, or another cdr.db / CDR_DB)\n`);
    return 1;
  }
  const store: CdrStore = isPostgresUrl(file) ? await PostgresCdrStore.open({ url: file, readonly: true }) : new SqliteCdrStore({ file, readonly: true });
  try {
    if (p.cmd === 'list') {
      if (p.positional.length) throw new UsageError(`unexpected argument ${p.positional[0]}`);
      const rows = await store.list(listFilter(p, io.now()));
      if (p.flags.has('--json')) {
        for (const r of rows) io.out(JSON.stringify(r) + '\n');
      } else if (p.flags.has('--csv')) {
        io.out(CSV_FIELDS.map(([k]) => k).join(',') + '\n');
        for (const r of rows) io.out(CSV_FIELDS.map(([, get]) => csvCell(get(r))).join(',') + '\n');
      } else {
        io.out(table(rows));
      }
      return 0;
    }
    const key = p.positional[0];
    if (!key || p.positional.length > 1) throw new UsageError('cdr show takes one call id');
    let r = await store.get(key);
    if (!r && /^[0-9a-f-]{4,}$/i.test(key)) {
      const hits = await store.list({ idPrefix: key.toLowerCase(), limit: 2 });
      if (hits.length > 1) {
        io.err(`voice-agent cdr: ${key} matches more than one call; give more of the id\n`);
        return 1;
      }
      r = hits[0] ?? null;
    }
    if (!r) {
      io.err(`voice-agent cdr: no call ${key}\n`);
      return 1;
    }
    io.out(p.flags.has('--json') ? JSON.stringify(r) + '\n' : show(r));
    return 0;
  } finally {
    await store.close();
  }
}

/** The `cdr` command; resolves to the exit code. */
export async function main(argv: readonly string[], io: Partial<Io> = {}): Promise<number> {
  const full: Io = {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    env: process.env,
    cwd: process.cwd(),
    now: () => new Date(),
    ...io,
  };
  try {
    return await run(argv, full);
  } catch (err) {
    if (err instanceof UsageError) {
      full.err(`voice-agent cdr: ${err.message}\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      full.err(`config error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
