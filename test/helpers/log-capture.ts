/**
 * Capture the logger's lines (it writes `ts=…` lines to stderr) for the duration of a test
 * file: the lines are kept, anything else still reaches stderr. Restored at teardown.
 */
import type { Test } from 'tap';
import { setLogLevel } from '../../src/ops/log.ts';

export function captureLogLines(t: Test): { lines: string[]; logged(re: RegExp): string[] } {
  const lines: string[] = [];
  const realWrite = process.stderr.write.bind(process.stderr);
  setLogLevel('info');
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    const s = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    if (s.startsWith('ts=')) { lines.push(...s.split('\n').filter(Boolean)); return true; }
    return (realWrite as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  t.teardown(() => { process.stderr.write = realWrite; setLogLevel('silent'); });
  return { lines, logged: (re: RegExp) => lines.filter((l) => re.test(l)) };
}
