/**
 * `voice-agent impair` — run the impairment relay (src/qa/impair.ts) in front of a server:
 *
 *   voice-agent impair --target 127.0.0.1:5060 [--listen 127.0.0.1:5090] [--profile loss3]
 *                      [--direction up|down|both] [--seed N] [--loss P] [--burst P:LEN]
 *                      [--jitter MS] [--delay MS] [--duplicate P]
 *
 * Point the caller (SIPp, baresip) at the --listen address. Prints one JSON line when ready
 * ({"event":"ready","sip":"host:port",…}) and one with the packet counters when it stops
 * (SIGTERM/SIGINT): {"event":"stats","up":{…},"down":{…}}.
 */
import { ImpairRelay, PROFILES, type Impairment } from './impair.ts';

function usage(msg?: string): number {
  if (msg) process.stderr.write(`voice-agent impair: ${msg}\n`);
  process.stderr.write(`usage: voice-agent impair --target HOST:PORT [--listen HOST:PORT] [--profile ${Object.keys(PROFILES).join('|')}]\n` +
    '         [--direction up|down|both] [--seed N] [--loss P] [--burst P:LEN] [--jitter MS] [--delay MS] [--duplicate P]\n');
  return 2;
}

function hostPort(v: string | undefined, what: string): { host: string; port: number } {
  const m = /^([^:]+):(\d+)$/.exec(v ?? '');
  if (!m) throw new Error(`${what} must be HOST:PORT, got "${v ?? ''}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

export async function main(args: string[]): Promise<number> {
  const o: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return usage(), 0;
    if (!a.startsWith('--')) return usage(`unexpected argument "${a}"`);
    o[a.slice(2)] = args[++i] ?? '';
  }
  let relay: ImpairRelay;
  try {
    const target = hostPort(o.target, '--target');
    const listen = o.listen ? hostPort(o.listen, '--listen') : { host: '127.0.0.1', port: 0 };
    const custom: Impairment = {};
    const num = (k: string): number | undefined => {
      if (o[k] === undefined) return undefined;
      const n = Number(o[k]);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${k} must be a non-negative number, got "${o[k]}"`);
      return n;
    };
    if (num('loss') !== undefined) custom.loss = num('loss')!;
    if (num('jitter') !== undefined) custom.jitterMs = num('jitter')!;
    if (num('delay') !== undefined) custom.delayMs = num('delay')!;
    if (num('duplicate') !== undefined) custom.duplicate = num('duplicate')!;
    if (o.burst !== undefined) {
      const m = /^([\d.]+):(\d+)$/.exec(o.burst);
      if (!m) throw new Error(`--burst must be LOSS:MEANBURST (e.g. 0.02:4), got "${o.burst}"`);
      custom.burst = { loss: Number(m[1]), meanBurst: Number(m[2]) };
    }
    const direction = (o.direction ?? 'both') as 'up' | 'down' | 'both';
    if (!['up', 'down', 'both'].includes(direction)) throw new Error(`--direction must be up, down or both, got "${o.direction}"`);
    const profile = Object.keys(custom).length ? { ...(o.profile ? PROFILES[o.profile] : {}), ...custom } : (o.profile ?? 'clean');
    relay = new ImpairRelay({ host: listen.host, sipPort: listen.port, target, profile, direction, seed: o.seed ? Number(o.seed) : 1 });
    await relay.start();
  } catch (err) {
    return usage((err as Error).message);
  }
  process.stdout.write(JSON.stringify({ event: 'ready', sip: `${o.listen ? hostPort(o.listen, '').host : '127.0.0.1'}:${relay.sipPort}`, profile: relay.stats().profile, seed: relay.stats().seed }) + '\n');
  return await new Promise<number>((resolve) => {
    const stop = (): void => {
      process.stdout.write(JSON.stringify({ event: 'stats', ...relay.stats() }) + '\n');
      void relay.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) process.exit(await main(process.argv.slice(2)));
