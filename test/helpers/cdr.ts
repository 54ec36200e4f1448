/** `voice-agent cdr list --json` as an operator runs it, for the e2e suites that check CDR rows from outside. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { CdrRecord } from '../../src/cdr/index.ts';
import { ROOT } from './server.ts';

/** Run `voice-agent cdr list --json [args]` with `env` (CDR_DB, CONFIG_FILE …); the rows it prints. */
export async function cdrList(env: Record<string, string>, ...args: string[]): Promise<CdrRecord[]> {
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin', 'voice-agent.mjs'), 'cdr', 'list', '--json', ...args], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  if (out.code !== 0) throw new Error(`voice-agent cdr list exited ${out.code}: ${out.stderr}`);
  return out.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as CdrRecord);
}
