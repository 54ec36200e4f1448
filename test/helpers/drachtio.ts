/**
 * Start a real drachtio-server (when a `drachtio` binary is on PATH) with a config generated
 * from sip-config/drachtio.conf.xml on test ports.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RANGES, freePort } from './ports.ts';
import { ROOT } from './server.ts';

/** Path of the drachtio binary, or undefined when none is on PATH. */
export function drachtioBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v drachtio'], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

export interface DrachtioHandle {
  sipPort: number;
  adminPort: number;
  secret: string;
  log(): string;
  stop(): Promise<void>;
}

export interface DrachtioStartOptions {
  /**
   * Request-handler URL (outbound connections): the config comes from
   * sip-config/drachtio-outbound.conf.xml with its `<request-handler>` pointed here.
   * @defaultValue none (sip-config/drachtio.conf.xml, inbound connections only)
   */
  requestHandler?: string;
  /** How long to wait for the server to come up, ms. @defaultValue 10000 */
  timeoutMs?: number;
}

/** Write a config for the given ports (from the shipped sample) and return its path. */
export function drachtioConfig(dir: string, sipPort: number, adminPort: number, secret: string, requestHandler?: string): string {
  let xml = readFileSync(join(ROOT, 'sip-config', requestHandler ? 'drachtio-outbound.conf.xml' : 'drachtio.conf.xml'), 'utf8');
  xml = xml.replace(/<admin port="\d+" secret="[^"]*">[^<]*<\/admin>/, `<admin port="${adminPort}" secret="${secret}">127.0.0.1</admin>`);
  xml = xml.replace(/<contact>[^<]*<\/contact>/, `<contact>sip:127.0.0.1:${sipPort};transport=udp,tcp</contact>`);
  if (requestHandler) {
    const before = xml;
    xml = xml.replace(/(<request-handler [^>]*>)[^<]*(<\/request-handler>)/, `$1${requestHandler}$2`);
    if (xml === before) throw new Error('sip-config/drachtio-outbound.conf.xml has no <request-handler> element to point at the test router');
  }
  const file = join(dir, 'drachtio.conf.xml');
  writeFileSync(file, xml);
  return file;
}

/** Start drachtio-server on free test ports; resolves once its SIP stack and admin port are up. */
export async function startDrachtio(opts: DrachtioStartOptions | number = {}): Promise<DrachtioHandle> {
  const { timeoutMs = 10000, requestHandler } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const bin = drachtioBinary();
  if (!bin) throw new Error('drachtio not on PATH');
  const dir = mkdtempSync(join(tmpdir(), 'va-drachtio-'));
  const sipPort = await freePort(RANGES.sip, 'both');
  const adminPort = await freePort(RANGES.control, 'tcp');
  const secret = 'cymru';
  const file = drachtioConfig(dir, sipPort, adminPort, secret, requestHandler);
  const proc = spawn(bin, ['-f', file], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  const killOnExit = (): void => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  proc.once('exit', () => process.removeListener('exit', killOnExit));
  let log = '';
  proc.stdout.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
  let exited = false;
  const exit = new Promise<void>((r) => proc.on('exit', () => {
    exited = true;
    r();
  }));
  const stop = async (): Promise<void> => {
    if (!exited) {
      proc.kill('SIGTERM');
      const k = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exit;
      clearTimeout(k);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const t0 = Date.now();
  while (!/starting sip stack|logTransports/i.test(log) || !/listening for applications|tcp port/i.test(log)) {
    if (exited || Date.now() - t0 > timeoutMs) {
      await stop();
      throw new Error(`drachtio did not start (${exited ? 'exited' : 'timeout'}); log:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200));
  return { sipPort, adminPort, secret, log: () => log, stop };
}
