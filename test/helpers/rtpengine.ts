/**
 * Start a private rtpengine-daemon (Debian `rtpengine-daemon`, userspace forwarding, no
 * kernel module) on loopback for tests and benchmarks, and stop it again.
 *
 *   const rte = await startRtpengine();           // ng on a free port in 22300-22399
 *   ... new RtpengineClient({ url: rte.url }) ...
 *   await rte.stop();
 *
 * Media ports come from 30000-30999 (a free block of `mediaPorts`, default 200). The
 * daemon runs with `--config-file=none` (ignore /etc/rtpengine), `--table=-1` (no kernel
 * forwarding) and `--delete-delay=0` (ports free right after `delete`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { RtpengineClient } from '../../src/media/rtpengine/client.ts';
import { freePort, freePortBlock, type PortRange } from './ports.ts';

/** Port ranges of the rtpengine tests (ng control, rtpengine media). */
export const RTPENGINE_RANGES = {
  ng: { min: 22300, max: 22399 },
  media: { min: 30000, max: 30999 },
} as const satisfies Record<string, PortRange>;

let binary: string | null | undefined;

/** Path of the rtpengine binary, or null when rtpengine-daemon is not installed. */
export function rtpengineBinary(): string | null {
  if (binary !== undefined) return binary;
  for (const p of ['/usr/bin/rtpengine', '/usr/sbin/rtpengine', '/usr/local/bin/rtpengine']) {
    if (existsSync(p)) return (binary = p);
  }
  const r = spawnSync('sh', ['-c', 'command -v rtpengine'], { encoding: 'utf8' });
  return (binary = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null);
}

export interface RtpengineDaemon {
  /** ng URL, e.g. udp://127.0.0.1:22317 */
  url: string;
  ngPort: number;
  /** Media port range given to the daemon. */
  media: PortRange;
  pid: number;
  process: ChildProcess;
  /** Everything the daemon logged so far (stderr). */
  log(): string;
  /** utime + stime of the daemon (all threads), µs, from /proc/<pid>/stat. */
  cpuUs(): number;
  /** SIGTERM, then SIGKILL after 3 s; resolves when it exited. Idempotent. */
  stop(): Promise<void>;
}

export interface StartRtpengineOptions {
  /** Size of the media port block. @defaultValue 200 */
  mediaPorts?: number;
  /** An explicit media range instead of a free block. */
  media?: PortRange;
  /** rtpengine log level (0-7). @defaultValue 5 (notice) */
  logLevel?: number;
  /** Userspace worker threads (`--num-threads`). @defaultValue rtpengine's default (CPU count) */
  threads?: number;
  /** Extra command-line arguments. */
  args?: string[];
  /** An explicit ng port instead of a free one (start again where a stopped daemon was). */
  ngPort?: number;
  /** How long to wait for the first `pong`. @defaultValue 5000 */
  readyTimeoutMs?: number;
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clkTck = Number(r.stdout.trim()) || 100;
  }
  return clkTck;
}

/** utime+stime of a process in µs (all threads, including exited ones), from /proc/<pid>/stat. */
export function procCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime = field 14, stime = field 15
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / ticksPerSecond();
}

/** Start rtpengine on loopback and wait until ng answers `ping`. Throws if the binary is missing. */
export async function startRtpengine(opts: StartRtpengineOptions = {}): Promise<RtpengineDaemon> {
  const bin = rtpengineBinary();
  if (!bin) throw new Error('rtpengine is not installed (Debian package rtpengine-daemon)');
  let lastErr: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const ngPort = opts.ngPort ?? await freePort(RTPENGINE_RANGES.ng, 'udp');
    const media = opts.media ?? await freePortBlock(RTPENGINE_RANGES.media, opts.mediaPorts ?? 200);
    try {
      return await launch(bin, ngPort, media, opts);
    } catch (err) {
      lastErr = err as Error;
    }
  }
  throw lastErr!;
}

async function launch(bin: string, ngPort: number, media: PortRange, opts: StartRtpengineOptions): Promise<RtpengineDaemon> {
  const args = [
    '--config-file=none', '--foreground', '--table=-1', '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${ngPort}`, `--port-min=${media.min}`, `--port-max=${media.max}`,
    '--log-stderr', '--delete-delay=0', `--log-level=${opts.logLevel ?? 5}`,
    ...(opts.threads ? [`--num-threads=${opts.threads}`] : []),
    ...(opts.args ?? []),
  ];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let logText = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    logText += d;
    if (logText.length > 1_000_000) logText = logText.slice(-500_000);
  });
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  child.once('error', () => { /* reported through exit / ping failure */ });
  const reap = (): void => { if (!exited) child.kill('SIGKILL'); };
  process.once('exit', reap);
  void exit.then(() => process.removeListener('exit', reap));
  const url = `udp://127.0.0.1:${ngPort}`;
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 3000);
    await exit;
    clearTimeout(t);
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 5000);
  const probe = new RtpengineClient({ url, timeoutMs: 250 });
  try {
    for (;;) {
      if (exited) throw new Error(`rtpengine exited at start-up (ng port ${ngPort}):\n${logText.slice(-2000)}`);
      try {
        await probe.ping();
        break;
      } catch {
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`rtpengine did not answer ping on ${url} within ${opts.readyTimeoutMs ?? 5000} ms:\n${logText.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    probe.close();
  }
  return {
    url, ngPort, media, pid: child.pid!, process: child,
    log: () => logText,
    cpuUs: () => procCpuUs(child.pid!),
    stop,
  };
}
