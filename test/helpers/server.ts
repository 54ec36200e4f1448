/**
 * Start the voice-agent server (`node --import tsx src/main.ts`) as a child process on free
 * test ports and wait until it logs `msg="voice-agent ready"`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RANGES, freePort, freePortBlock } from './ports.ts';

/** Repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface StartServerOptions {
  /** How long to wait for the ready line. @defaultValue 30000 */
  readyTimeoutMs?: number;
  /** Number of RTP ports to give the server. @defaultValue 200 */
  rtpPorts?: number;
  /** Forward the server's stderr to this process's stderr as it arrives. @defaultValue false (env TEST_SERVER_LOG=1 turns it on) */
  echo?: boolean;
}

export interface ServerHandle {
  proc: ChildProcess;
  /** SIP address and port (UDP and TCP). */
  host: string;
  sipPort: number;
  /** drachtio control port of the built-in edge. */
  controlPort: number;
  /** `http://127.0.0.1:port` of the ops listener (/metrics, /livez, /readyz); '' when off. */
  opsUrl: string;
  rtpMin: number;
  rtpMax: number;
  /** The environment the server was started with (test-relevant keys). */
  env: Record<string, string>;
  /** Everything the server wrote to stdout+stderr so far. */
  log(): string;
  /** Resolve when a log line matches `re` (searching the whole log, old lines included unless `fromNow`). */
  waitForLog(re: RegExp, timeoutMs?: number, fromNow?: boolean): Promise<string>;
  /** SIGTERM, wait for exit (SIGKILL after `graceMs`); resolves to the exit code (or signal name). */
  stop(graceMs?: number): Promise<number | string | null>;
}

/**
 * Spawn the server with free ports from the QA ranges. Readiness is the `voice-agent ready`
 * log line, so LOG_LEVEL must stay at `info` or `debug` (a higher level is overridden). `env` overrides/extends the
 * defaults (e.g. `{ MAX_CALL_SECONDS: '2' }`). Rejects with the captured log on timeout or
 * early exit.
 */
export async function startServer(env: Record<string, string> = {}, opts: StartServerOptions = {}): Promise<ServerHandle> {
  const host = '127.0.0.1';
  const sipPort = env.SIP_PORT ? Number(env.SIP_PORT) : await freePort(RANGES.sip, 'both');
  const controlPort = env.DRACHTIO_PORT ? Number(env.DRACHTIO_PORT) : await freePort(RANGES.control, 'tcp');
  const rtp = env.RTP_PORT_MIN && env.RTP_PORT_MAX
    ? { min: Number(env.RTP_PORT_MIN), max: Number(env.RTP_PORT_MAX) }
    : await freePortBlock(RANGES.rtp, opts.rtpPorts ?? 200);
  const serverEnv: Record<string, string> = {
    SIP_ADDRESS: host,
    SIP_PORT: String(sipPort),
    SIP_TRANSPORTS: 'udp,tcp',
    EDGE: 'builtin',
    DRACHTIO_PORT: String(controlPort),
    DRACHTIO_SECRET: 'cymru',
    RTP_PORT_MIN: String(rtp.min),
    RTP_PORT_MAX: String(rtp.max),
    LOG_LEVEL: 'info',
    CONSOLE_PORT: '0',
    // the ops listener on a free port (its URL is in the ready line: `opsUrl`)
    OPS_PORT: '0',
    // SIGTERM stops at once unless a test asks for a drain
    DRAIN_SECONDS: '0',
    // load-based admission off: a shared test box runs many servers and peers at once, and a
    // busy moment must not turn a functional test's call into a 503 (test/e2e/ops.test.ts and
    // test/unit/ops.test.ts test admission itself); the call-count limit stays at its default
    ADMISSION_MEDIA_LATE_MS: '0',
    ADMISSION_EVENT_LOOP_MS: '0',
    ...env,
  };
  if (!['debug', 'info'].includes(serverEnv.LOG_LEVEL ?? 'info')) serverEnv.LOG_LEVEL = 'info';
  const echo = opts.echo ?? process.env.TEST_SERVER_LOG === '1';
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...serverEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Never leave a server behind if the test process exits early.
  const killOnExit = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  let log = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    log += d.toString();
    if (echo) process.stderr.write(d);
    for (const w of [...waiters]) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  let exited: number | string | null | undefined;
  const exitPromise = new Promise<number | string | null>((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = code ?? signal;
      for (const w of [...waiters]) w();
      resolve(exited);
    });
  });

  const waitForLog = (re: RegExp, timeoutMs = 10000, fromNow = false): Promise<string> => {
    const start = fromNow ? log.length : 0;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(log.slice(start));
        if (m) {
          done();
          const lineStart = log.lastIndexOf('\n', start + m.index) + 1;
          const lineEnd = log.indexOf('\n', start + m.index);
          resolve(log.slice(lineStart, lineEnd < 0 ? undefined : lineEnd));
        } else if (exited !== undefined) {
          done();
          reject(new Error(`server exited (${exited}) before logging ${re}; log:\n${log}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in the server log:\n${log}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };

  const stop = async (graceMs = 5000): Promise<number | string | null> => {
    if (exited !== undefined) return exited;
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    const code = await exitPromise;
    clearTimeout(killer);
    return code;
  };

  let ready: string;
  try {
    ready = await waitForLog(/msg="?voice-agent ready/, opts.readyTimeoutMs ?? 30000);
  } catch (err) {
    await stop(1000);
    throw err;
  }
  return {
    proc, host, sipPort, controlPort, opsUrl: / ops=(http:\/\/\S+)/.exec(ready)?.[1] ?? '', rtpMin: rtp.min, rtpMax: rtp.max, env: serverEnv,
    log: () => log, waitForLog, stop,
  };
}
