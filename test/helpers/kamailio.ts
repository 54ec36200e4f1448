/**
 * Start the Kamailio front (sip-config/kamailio/kamailio.cfg, Debian `kamailio`) in the
 * foreground on a free loopback port with a dispatcher list of the given nodes, and wait
 * until it answers its own OPTIONS with 200 (at least one node is up).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RANGES, freePort } from './ports.ts';
import { ROOT } from './server.ts';

/** The shipped front configuration. */
export const KAMAILIO_CFG = join(ROOT, 'sip-config', 'kamailio', 'kamailio.cfg');

/** Whether a `kamailio` binary is installed. */
export function haveKamailio(): boolean {
  for (const bin of ['kamailio', '/usr/sbin/kamailio']) {
    if (spawnSync(bin, ['-v'], { stdio: 'ignore' }).error === undefined) return true;
  }
  return false;
}

function kamailioBin(): string {
  return spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).error === undefined ? 'kamailio' : '/usr/sbin/kamailio';
}

export interface KamailioNode {
  host: string;
  port: number;
  /** Name in the dispatcher list (duid). */
  name?: string;
}

export interface StartKamailioOptions {
  nodes: KamailioNode[];
  /** OPTIONS probe interval, seconds. @defaultValue 1 */
  probeInterval?: number;
  /** Wait for a node's first answer before failing over, ms. @defaultValue 1000 */
  frTimerMs?: number;
  /** Wait for the final answer after a node's 100 Trying before failing over, ms. @defaultValue 4000 */
  frInvTimerMs?: number;
  /** Pike requests per 2 s from one source before a ban. @defaultValue 100000 (tests send fast from loopback) */
  pikeDensity?: number;
  /** Worker processes. @defaultValue 2 */
  workers?: number;
  /** Dispatcher algorithm ("4" round-robin, "0" hash over Call-ID). @defaultValue '4' */
  algorithm?: string;
  /** Forward Kamailio's stderr as it arrives. @defaultValue env TEST_SERVER_LOG=1 */
  echo?: boolean;
}

export interface KamailioHandle {
  proc: ChildProcess;
  host: string;
  port: number;
  /** `host:port`, the SIPp target. */
  target: string;
  log(): string;
  /** Resolve with the first line matching `re` (only lines logged from now on with `fromNow`). */
  waitForLog(re: RegExp, timeoutMs?: number, fromNow?: boolean): Promise<string>;
  stop(): Promise<void>;
}

/** Send OPTIONS to the front itself; resolves with the status code, or 0 without an answer in `timeoutMs`. */
export function optionsPing(host: string, port: number, timeoutMs = 500): Promise<number> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const done = (code: number): void => {
      clearTimeout(timer);
      sock.close();
      resolve(code);
    };
    const timer = setTimeout(() => done(0), timeoutMs);
    sock.on('message', (m) => {
      const code = /^SIP\/2\.0 (\d{3})/.exec(m.toString())?.[1];
      if (code && code !== '100') done(Number(code));
    });
    sock.on('error', () => done(0));
    sock.bind(0, '127.0.0.1', () => {
      const { port: lport } = sock.address();
      const branch = `z9hG4bK${Math.random().toString(36).slice(2)}`;
      const msg = [
        `OPTIONS sip:${host}:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=${branch};rport`,
        'Max-Forwards: 70',
        `From: <sip:probe@127.0.0.1>;tag=${branch.slice(7, 15)}`,
        `To: <sip:${host}:${port}>`,
        `Call-ID: ${branch}@127.0.0.1`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '', '',
      ].join('\r\n');
      sock.send(msg, port, host);
    });
  });
}

export async function startKamailio(opts: StartKamailioOptions): Promise<KamailioHandle> {
  const host = '127.0.0.1';
  const port = await freePort(RANGES.sip, 'both');
  const dir = mkdtempSync(join(tmpdir(), 'va-kamailio-'));
  const list = join(dir, 'dispatcher.list');
  writeFileSync(list, opts.nodes.map((n, i) => `1 sip:${n.host}:${n.port};transport=udp 8 0 duid=${n.name ?? `node${i + 1}`}\n`).join(''));
  const defs: Record<string, string> = {
    SIP_ADDR: host,
    SIP_PORT: String(port),
    DS_LIST: `"${list}"`,
    DS_ALG: `"${opts.algorithm ?? '4'}"`,
    PROBE_INTERVAL: String(opts.probeInterval ?? 1),
    FR_TIMER_MS: String(opts.frTimerMs ?? 1000),
    FR_INV_TIMER_MS: String(opts.frInvTimerMs ?? 4000),
    PIKE_DENSITY: String(opts.pikeDensity ?? 100000),
    WORKERS: String(opts.workers ?? 2),
  };
  const args = ['-f', KAMAILIO_CFG, '-DD', '-E', '-w', dir, '-P', join(dir, 'kamailio.pid'), '-Y', dir, '-m', '64', '-M', '8'];
  for (const [k, v] of Object.entries(defs)) args.push('-A', `${k}=${v}`);
  const proc = spawn(kamailioBin(), args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  let log = '';
  const echo = opts.echo ?? process.env.TEST_SERVER_LOG === '1';
  const waiters = new Set<() => void>();
  let exited: number | string | null | undefined;
  const onData = (d: Buffer): void => {
    log += d.toString();
    if (echo) process.stderr.write(d);
    for (const w of [...waiters]) w();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exitPromise = new Promise<void>((resolve) => proc.on('exit', (code, sig) => {
    exited = code ?? sig;
    for (const w of [...waiters]) w();
    resolve();
  }));
  const waitForLog = (re: RegExp, timeoutMs = 10000, fromNow = false): Promise<string> => {
    const start = fromNow ? log.length : 0;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = re.exec(log.slice(start));
        if (m) {
          done();
          const a = log.lastIndexOf('\n', start + m.index) + 1;
          const b = log.indexOf('\n', start + m.index);
          resolve(log.slice(a, b < 0 ? undefined : b));
        } else if (exited !== undefined) {
          done();
          reject(new Error(`kamailio exited (${exited}) before logging ${re}; log:\n${log.slice(-4000)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re} in the kamailio log:\n${log.slice(-4000)}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };
  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exitPromise;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // ready: the front answers its own OPTIONS with 200 (it does once a node is active)
  const deadline = Date.now() + 15000;
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`kamailio exited (${exited}) at start; log:\n${log.slice(-4000)}`);
    }
    if ((await optionsPing(host, port)) === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`kamailio did not answer OPTIONS 200 within 15 s; log:\n${log.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { proc, host, port, target: `${host}:${port}`, log: () => log, waitForLog, stop };
}
