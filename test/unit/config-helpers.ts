/** Shared bits of the config tests: a scratch folder of config files and loadConfig run in it. */
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';

/**
 * A new scratch folder (`prefix` + random under the OS temp dir): `file(text)` writes a
 * config file there and returns its path, `load(env, argv)` runs loadConfig with that folder
 * as the working directory.
 */
export function configScratch(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  const file = (text: string): string => {
    const f = join(dir, `c${++n}.yaml`);
    writeFileSync(f, text);
    return f;
  };
  const load = (env: Record<string, string> = {}, argv: string[] = []) => loadConfig({ env, argv, cwd: dir });
  return { dir, file, load };
}
