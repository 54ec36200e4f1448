/**
 * Tools the tests need that the Makefile installs from Debian. When one is missing the suite
 * reports a FAILURE naming the package (never a skip): `make test` installs it, so a missing
 * tool means a broken install, not an optional feature.
 */
import { execFileSync } from 'node:child_process';
import type { Test } from 'tap';

/** True when `cmd args` runs and exits 0 (a tool's --version, say). */
export function commandRuns(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * `ok` false → registers a failing test `what` that names `tool` and the Debian package `pkg`,
 * and returns a skip reason for the test(s) that need the tool; `ok` true → returns false.
 */
export function requireTool(t: Test, what: string, ok: boolean, tool: string, pkg: string): string | false {
  if (ok) return false;
  const why = `${tool} not found: Debian package ${pkg} is missing (make test installs it)`;
  t.test(`${what}: ${tool} is installed`, async (tt) => { tt.fail(why); });
  return why;
}
