/**
 * baresip (Debian `baresip-core`) as a headless softphone for e2e tests: one call per run.
 * It plays a WAV as its microphone (and hangs up when the WAV ends), dials, and with `-s`
 * prints its SIP trace; the sndfile module records what it heard (decoded) in a dump WAV.
 *
 *   const port = await freeBaresipPort();
 *   const call = await baresipCall(t, { port, say: tone, account: '<sip:caller@127.0.0.1>;regint=0', dial: 'sip:…' });
 *   call.trace … call.heard && wavRms(call.heard) … call.callId
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { wavBuffer } from './audio.ts';
import { RANGES, freePort, tcpFree, udpFree } from './ports.ts';

const MODULE_PATH = '/usr/lib/baresip/modules';

/** Whether baresip is on PATH and each of `modules` (e.g. `srtp.so`) is installed. */
export function haveBaresip(modules: string[] = []): boolean {
  if (spawnSync('baresip', ['-h'], { stdio: 'ignore' }).error !== undefined) return false;
  if (modules.length === 0) return true;
  const installed = readdirSync(MODULE_PATH);
  return modules.every((m) => installed.includes(m));
}

/**
 * A free SIP port for baresip. baresip listens on <port> (UDP/TCP) and <port>+1 (TLS): with
 * `tls`, both must be free. 0 when none was found.
 */
export async function freeBaresipPort(o: { tls?: boolean } = {}): Promise<number> {
  if (!o.tls) return freePort(RANGES.sip, 'both');
  for (let i = 0; i < 50; i++) {
    const p = await freePort(RANGES.sip, 'both');
    if (await udpFree(p + 1) && await tcpFree(p + 1)) return p;
  }
  return 0;
}

export interface BaresipCallOptions {
  /** Its SIP port (see freeBaresipPort). */
  port: number;
  /** What it says: 8 kHz PCM, played as its microphone; it hangs up when this ends. */
  say: Int16Array;
  /** Its account line (accounts file), e.g. `<sip:caller@127.0.0.1>;regint=0`. */
  account: string;
  /** The URI it dials. */
  dial: string;
  /** Modules loaded besides g711, aufile, sndfile, menu and account (e.g. `srtp.so`). */
  modules?: string[];
  /** CA file to verify TLS peers with (`sip_cafile`). */
  cafile?: string;
  /** Prefix of its folder (config, accounts, WAVs) under the OS temp dir, removed at teardown. */
  prefix?: string;
  /** Exit after this many seconds (`-t`). @defaultValue 9 */
  seconds?: number;
}

export interface BaresipCall {
  /** Its folder. */
  dir: string;
  /** What it printed (stdout and stderr, CR removed): its SIP trace and log. */
  trace: string;
  /** The WAV it recorded of what it heard (decoded), when there is one. */
  heard?: string;
  /** Call-ID of its call, from the trace (`none` when absent). */
  callId: string;
  /** The Call-ID escaped for a RegExp. */
  callIdPattern: string;
}

/** Run baresip for one call (it dials, talks, hangs up or times out) and collect what it left. */
export async function baresipCall(t: Test, o: BaresipCallOptions): Promise<BaresipCall> {
  const dir = mkdtempSync(join(tmpdir(), o.prefix ?? 'baresip-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'say.wav'), wavBuffer(o.say));
  writeFileSync(join(dir, 'config'), [
    `module_path     ${MODULE_PATH}`,
    `sip_listen      127.0.0.1:${o.port}`,
    ...(o.cafile ? [`sip_cafile      ${o.cafile}`] : []),
    'net_interface   127.0.0.1',
    'module          g711.so',
    'module          aufile.so',
    'module          sndfile.so',
    ...(o.modules ?? []).map((m) => `module          ${m}`),
    'module          menu.so',
    'module          account.so',
    `audio_source    aufile,${join(dir, 'say.wav')}`,
    'audio_player    aufile,/dev/null',
    `snd_path        ${dir}`,
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'accounts'), `${o.account}\n`);
  const bs = spawn('baresip', ['-s', '-f', dir, '-e', `/dial ${o.dial}`, '-t', String(o.seconds ?? 9)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  bs.stdout!.on('data', (d) => { log += d; });
  bs.stderr!.on('data', (d) => { log += d; });
  await new Promise<void>((r) => bs.on('exit', () => r()));
  const trace = log.replace(/\r/g, '');
  const dump = readdirSync(dir).find((f) => /^dump-.*-dec\.wav$/.test(f));
  const callId = /^Call-ID: (\S+)$/m.exec(trace)?.[1] ?? 'none';
  return {
    dir, trace, callId,
    callIdPattern: callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    ...(dump ? { heard: join(dir, dump) } : {}),
  };
}

/** RMS (0..1) of a 16-bit PCM WAV's samples. */
export function wavRms(file: string): number {
  const b = readFileSync(file);
  const data = b.indexOf('data') + 8;
  let sum = 0;
  let n = 0;
  for (let i = data; i + 1 < b.length; i += 2, n++) sum += (b.readInt16LE(i) / 32768) ** 2;
  return n ? Math.sqrt(sum / n) : 0;
}
