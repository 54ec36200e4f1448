/**
 * Redis for the job queues: `REDIS_URL` when set, else a private Debian `redis-server` child
 * on embedded defaults — loopback only, a port from a range, no RDB snapshots, an append-only
 * file fsync'd on every write in the data dir (so queued jobs survive a restart), stopped
 * when this process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { logger } from '../ops/log.ts';

const log = logger('jobs.redis');

/** Port range the private redis-server is started in. @defaultValue { min: 16379, max: 16478 } */
export const DEFAULT_PRIVATE_REDIS_PORTS = { min: 16379, max: 16478 } as const;
/** How long to wait for a started redis-server to answer PING. @defaultValue 5000 */
export const DEFAULT_REDIS_START_TIMEOUT_MS = 5000;

export interface RedisServerOptions {
  /** directory for the append-only file (created). */
  dataDir: string;
  /** fixed port; otherwise the first free port of `ports` */
  port?: number;
  /** @defaultValue {@link DEFAULT_PRIVATE_REDIS_PORTS} */
  ports?: { min: number; max: number };
  /** redis-server binary. @defaultValue env REDIS_SERVER_BIN, else 'redis-server' */
  binary?: string;
  /** @defaultValue {@link DEFAULT_REDIS_START_TIMEOUT_MS} */
  startTimeoutMs?: number;
}

export interface RedisServerHandle {
  url: string;
  port: number;
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit (SIGKILL after 3 s). */
  stop(): Promise<void>;
  /** SIGKILL at once (tests: a crash). */
  kill(): Promise<void>;
}

/** PING over a raw socket; true on +PONG. */
export function pingRedis(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('error', () => done(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

const live = new Set<ChildProcess>();
let exitHook = false;

function startOne(port: number, opts: RedisServerOptions): Promise<RedisServerHandle | undefined> {
  const dir = path.resolve(opts.dataDir);
  mkdirSync(dir, { recursive: true });
  const bin = opts.binary ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const child = spawn(bin, [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--daemonize', 'no',
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--loglevel', 'warning',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  child.stderr!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-4000); });
  live.add(child);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => { for (const c of live) c.kill('SIGTERM'); });
  }
  let exited = false;
  const exitP = new Promise<void>((resolve) => child.once('exit', () => { exited = true; live.delete(child); resolve(); }));
  child.once('error', (err) => { output += String(err); });
  const deadline = Date.now() + (opts.startTimeoutMs ?? DEFAULT_REDIS_START_TIMEOUT_MS);
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (exited) return;
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exitP;
    clearTimeout(t);
  };
  return (async () => {
    while (Date.now() < deadline) {
      if (exited) {
        log.debug('redis-server exited at start', { port, output: output.trim().split('\n').pop() });
        return undefined;
      }
      if (await pingRedis(port)) {
        log.info('private redis-server started', { port, pid: child.pid, dir });
        return {
          url: `redis://127.0.0.1:${port}`, port, pid: child.pid,
          stop: () => stop('SIGTERM'), kill: () => stop('SIGKILL'),
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop('SIGKILL');
    throw new Error(`redis-server on port ${port} did not answer within the start timeout: ${output.trim().slice(-300)}`);
  })();
}

/** Start a private redis-server; tries ports of the range until one binds. */
export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServerHandle> {
  if (opts.port !== undefined) {
    const h = await startOne(opts.port, opts);
    if (!h) throw new Error(`redis-server could not start on port ${opts.port}`);
    return h;
  }
  const range = opts.ports ?? DEFAULT_PRIVATE_REDIS_PORTS;
  const span = range.max - range.min + 1;
  const offset = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i++) {
    const port = range.min + ((offset + i) % span);
    if (await pingRedis(port, '127.0.0.1', 100)) continue; // someone's redis already there
    const h = await startOne(port, opts);
    if (h) return h;
  }
  throw new Error(`redis-server could not start on any port ${range.min}-${range.max}`);
}

/**
 * The Redis to use: `REDIS_URL` if set, else a private child with its files in
 * `<dataDir>/redis`.
 */
export async function resolveRedis(opts: { dataDir: string; env?: NodeJS.ProcessEnv }): Promise<{ url: string; server?: RedisServerHandle }> {
  const env = opts.env ?? process.env;
  if (env.REDIS_URL) return { url: env.REDIS_URL };
  const server = await startRedisServer({ dataDir: path.join(opts.dataDir, 'redis') });
  return { url: server.url, server };
}
