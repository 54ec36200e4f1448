/**
 * A private PostgreSQL 15 cluster for tests (Debian `postgresql`): initdb in a temp dir, the
 * server in the foreground on a free loopback port (trust auth, fsync off), never the system
 * service. As root the cluster runs as the `postgres` user (initdb refuses root).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

/** Where Debian puts the server binaries. */
export const PG_BIN = ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/17/bin'].find((d) => existsSync(join(d, 'postgres'))) ?? '';

/** PostgreSQL ports of the tests. */
export const PG_TEST_PORTS = { min: 18600, max: 18699 } as const;

export function havePostgres(): boolean {
  return PG_BIN !== '';
}

export interface TestPostgres {
  /** `postgres://voice@127.0.0.1:port/voice` */
  url: string;
  port: number;
  proc: ChildProcess;
  /** SIGKILL the server and delete the cluster. */
  stop(): Promise<void>;
}

export async function startTestPostgres(): Promise<TestPostgres> {
  if (!PG_BIN) throw new Error('PostgreSQL server binaries not found (Debian package postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'pg-test-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  let uid: number | undefined;
  let gid: number | undefined;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('running as root and there is no postgres user to run the test cluster as');
    uid = Number(id.stdout.trim());
    gid = Number(g.stdout.trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const opts = { uid, gid, cwd: dir };
  const init = spawnSync(join(PG_BIN, 'initdb'), ['-D', data, '-U', 'voice', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], { ...opts, encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort(PG_TEST_PORTS, 'tcp');
  const proc = spawn(join(PG_BIN, 'postgres'), [
    '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1',
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=40',
  ], { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20000;
  for (;;) {
    const ready = spawnSync(join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'voice', '-d', 'postgres'], { encoding: 'utf8' });
    if (ready.status === 0) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`postgres did not start on port ${port}:\n${log.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  // a database of its own, made through the client library the product uses
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: `postgres://voice@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE voice');
  await admin.end();
  return { url: `postgres://voice@127.0.0.1:${port}/voice`, port, proc, stop };
}
