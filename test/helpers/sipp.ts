/**
 * Run SIPp (Debian `sip-tester`, binary `sipp`) with one of the scenarios in
 * sip-config/sipp/ and collect its exit code, output, final statistics and logs.
 * SIPp runs with its working directory in sip-config/sipp so scenario-relative media
 * files (media/caller-pcmu.pcap) resolve.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Test } from 'tap';
import { RANGES, freePort } from './ports.ts';
import { ROOT, startServer, type ServerHandle } from './server.ts';
import { requireTool } from './require.ts';

/** Directory of the shipped SIPp scenarios. */
export const SIPP_DIR = join(ROOT, 'sip-config', 'sipp');

/** Whether a `sipp` binary is on PATH. */
export function haveSipp(): boolean {
  return spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error === undefined;
}

/** One server for a whole SIPp test file. */
export interface SippSuite {
  /** The server (started before the first test of the file). */
  readonly server: ServerHandle;
  /** Its SIP `host:port`, the target of runSipp. */
  target(): string;
}

/**
 * The set-up of a SIPp test file: without sipp, `what` is reported skipped and the result is
 * null; otherwise a server (environment `env`) is started before the first test and stopped
 * after the last.
 */
export function sippSuite(t: Test, what: string, env: Record<string, string> = {}): SippSuite | null {
  if (!haveSipp()) {
    requireTool(t, what, false, 'sipp', 'sip-tester');
    return null;
  }
  let server: ServerHandle | undefined;
  t.before(async () => {
    server = await startServer(env);
  });
  t.teardown(async () => {
    await server?.stop();
  });
  const suite: SippSuite = {
    get server(): ServerHandle {
      if (!server) throw new Error('the SIPp suite\'s server is not started yet (use it inside a test)');
      return server;
    },
    target: () => `127.0.0.1:${suite.server.sipPort}`,
  };
  return suite;
}

export interface SippOptions {
  /** Target `host:port` (UAC mode); omit for UAS scenarios. */
  target?: string;
  /** `udp` (-t u1) or `tcp` (-t t1). @defaultValue 'udp' */
  transport?: 'udp' | 'tcp';
  /** Request-URI user (-s). @defaultValue '18005550100' (the demo tenant's DID) */
  service?: string;
  /** Number of calls (-m). @defaultValue 1 */
  calls?: number;
  /** Call rate in calls per second (-r). @defaultValue SIPp's 10 */
  rate?: number;
  /** Max simultaneous calls (-l). */
  limit?: number;
  /** Length of `<pause/>` steps in ms (-d). @defaultValue 3000 */
  durationMs?: number;
  /** Global timeout in seconds (-timeout, with -timeout_error). @defaultValue 30 */
  timeoutSec?: number;
  /** Local SIP port (-p); chosen from the QA range when omitted. */
  localPort?: number;
  /** Local media port (-mp); chosen from the QA range when omitted. */
  mediaPort?: number;
  /** Extra SIPp arguments. */
  args?: string[];
  /** Local address for SIP and media (-i, -mi), e.g. '::1' for IPv6 (then `target` is `[::1]:port`). @defaultValue '127.0.0.1' */
  localIp?: string;
  /** Kill SIPp after this many ms if still running. @defaultValue (timeoutSec + 15) * 1000 */
  killAfterMs?: number;
}

/** SIPp's cumulative counters from the final line of its -trace_stat CSV (`(C)` columns, suffix dropped). */
export type SippStats = Record<string, string>;

export interface SippResult {
  /** SIPp exit code: 0 all calls succeeded, 1 some failed, 97/99 aborted/no calls, 255 fatal or timeout. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** Cumulative statistics (e.g. `stats.SuccessfulCall`, `stats.FailedCall`, `stats.Retransmissions`). */
  stats: SippStats;
  successful: number;
  failed: number;
  /** Contents of the -trace_logs file (scenario `<log>` actions). */
  log: string;
  /** Contents of the -trace_err file (unexpected messages, failures). */
  errors: string;
  /** The command line, for error messages. */
  command: string;
  /** Local SIP port SIPp used. */
  localPort: number;
}

/** Path of a scenario: a bare name (`uac-pcmu`) resolves to sip-config/sipp/uac-pcmu.xml. */
export function scenarioPath(scenario: string): string {
  if (isAbsolute(scenario)) return scenario;
  return join(SIPP_DIR, scenario.endsWith('.xml') ? scenario : `${scenario}.xml`);
}

function parseStatsCsv(text: string): SippStats {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return {};
  const head = lines[0]!.split(';');
  const last = lines[lines.length - 1]!.split(';');
  const out: SippStats = {};
  head.forEach((h, i) => {
    if (h.endsWith('(C)')) out[h.slice(0, -3)] = last[i] ?? '';
    else if (!h.endsWith('(P)') && h) out[h] = last[i] ?? '';
  });
  return out;
}

/** Run one SIPp scenario to completion. Never rejects for SIPp failures: check `code`. */
export async function runSipp(scenario: string, opts: SippOptions = {}): Promise<SippResult> {
  const dir = mkdtempSync(join(tmpdir(), 'va-sipp-'));
  const localPort = opts.localPort ?? (await freePort(RANGES.sip, opts.transport === 'tcp' ? 'tcp' : 'udp'));
  const mediaPort = opts.mediaPort ?? (await freePort(RANGES.sippMedia, 'udp', 4));
  const controlPort = await freePort(RANGES.sippControl, 'udp');
  const timeoutSec = opts.timeoutSec ?? 30;
  const args: string[] = [];
  if (opts.target) args.push(opts.target);
  args.push(
    '-sf', scenarioPath(scenario),
    '-i', opts.localIp ?? '127.0.0.1', '-mi', opts.localIp ?? '127.0.0.1',
    '-p', String(localPort), '-mp', String(mediaPort), '-cp', String(controlPort),
    '-t', opts.transport === 'tcp' ? 't1' : 'u1',
    '-s', opts.service ?? '18005550100',
    '-m', String(opts.calls ?? 1),
    '-d', String(opts.durationMs ?? 3000),
    '-timeout', `${timeoutSec}s`, '-timeout_error',
    '-nostdin',
    '-trace_stat', '-stf', join(dir, 'stats.csv'), '-fd', '1',
    '-trace_err', '-error_file', join(dir, 'errors.log'),
    '-trace_logs', '-log_file', join(dir, 'scenario.log'),
  );
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  if (opts.limit !== undefined) args.push('-l', String(opts.limit));
  args.push(...(opts.args ?? []));
  const command = `sipp ${args.join(' ')}`;
  const child = spawn('sipp', args, { cwd: SIPP_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs ?? (timeoutSec + 15) * 1000);
  const code = await new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
      resolve(null);
    });
    child.on('close', (c) => resolve(c));
  });
  clearTimeout(killer);
  const read = (f: string): string => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
  // SIPp may suffix file names; fall back to any matching file in the directory.
  const readLike = (f: string, suffix: string): string =>
    read(f) || readdirSync(dir).filter((n) => n.endsWith(suffix)).map((n) => readFileSync(join(dir, n), 'utf8')).join('');
  const stats = parseStatsCsv(readLike('stats.csv', '.csv'));
  const result: SippResult = {
    code, stdout, stderr, stats,
    successful: Number(stats.SuccessfulCall ?? 0),
    failed: Number(stats.FailedCall ?? 0),
    log: read('scenario.log'),
    errors: read('errors.log'),
    command,
    localPort,
  };
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** Assertion message for a SIPp run: short when it succeeded, the full story when not. */
export function sippMessage(r: SippResult, what = 'SIPp scenario succeeded'): string {
  return r.code === 0 ? what : `${what}\n${describeSipp(r)}`;
}

/** One-paragraph description of a SIPp run, for assertion messages. */
export function describeSipp(r: SippResult): string {
  return [
    `command: ${r.command}`,
    `exit code: ${r.code}; successful ${r.successful}, failed ${r.failed}`,
    r.errors && `errors:\n${r.errors.slice(0, 4000)}`,
    r.stderr && `stderr:\n${r.stderr.slice(0, 2000)}`,
  ].filter(Boolean).join('\n');
}
