/**
 * `voice-agent recordings purge [--config FILE] [--now ISO]` — delete call recordings (WAV +
 * JSON sidecar) older than their tenant's `recording.retentionDays`, as the server does at
 * start and hourly. Reads the same config and tenants file as the server (CONFIG_FILE,
 * TENANTS_FILE, DATA_DIR). Prints `purged N`; exit 0, 2 on a usage or config error.
 */
import { loadConfig, ConfigError } from '../config.ts';
import { loadTenants } from '../tenants/load.ts';
import { purgeRecordings, recordingDirs } from './recording.ts';

const USAGE = `usage: voice-agent recordings purge [--config FILE] [--now ISO-TIME]
  deletes recordings older than each tenant's recording.retentionDays (0 = keep forever)
`;

export interface CliIo {
  out: (s: string) => void;
  err: (s: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const o: CliIo = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s), env: process.env, cwd: process.cwd(), ...io };
  const [cmd, ...rest] = argv;
  if (cmd === 'help' || cmd === '--help' || cmd === '-h') { o.out(USAGE); return 0; }
  if (cmd !== 'purge') { o.err(`voice-agent recordings: ${cmd ? `unknown subcommand "${cmd}"` : 'name a subcommand'}\n${USAGE}`); return 2; }
  let config: string | undefined;
  let now = new Date();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === '--config' && rest[i + 1]) config = rest[++i];
    else if (a === '--now' && rest[i + 1]) {
      now = new Date(rest[++i]!);
      if (Number.isNaN(now.getTime())) { o.err(`voice-agent recordings: --now: not a time: ${rest[i]}\n`); return 2; }
    } else { o.err(`voice-agent recordings: unknown option ${a}\n${USAGE}`); return 2; }
  }
  try {
    const cfg = loadConfig({ argv: config ? ['--config', config] : [], env: o.env, cwd: o.cwd });
    const tenants = loadTenants(cfg.tenantsFile).tenants;
    const dataDir = o.env.DATA_DIR ?? './var';
    const n = purgeRecordings(tenants, dataDir, now);
    o.out(`purged ${n} recording${n === 1 ? '' : 's'} from ${[...recordingDirs(tenants, dataDir).keys()].join(', ') || 'no recording directory (no tenant records)'}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) { o.err(`config error: ${err.message}\n`); return 2; }
    throw err;
  }
}
