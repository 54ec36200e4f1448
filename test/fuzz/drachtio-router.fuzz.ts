/**
 * drachtio request-handler fuzz target: `node --import tsx test/fuzz/drachtio-router.fuzz.ts [seconds] [seed]`.
 *
 * Mutates seed inputs of the two parsers in src/sip/drachtio-router*.ts: the command line /
 * environment (`parseRouterArgs`: node specs, listen address, policy, probe interval, auth) and a
 * node's Prometheus exposition (`activeCallsFrom`). Contract:
 *  - parseRouterArgs either returns options whose nodes each have a `host:port` URI and an
 *    http(s) ops URL, or throws RouterArgError — nothing else;
 *  - activeCallsFrom never throws and never returns NaN.
 * A violation is a crash, printed (JSON-escaped input) to stderr. The last stdout line is
 * `{"target":"drachtio-router","execs":N,"crashes":0,"seconds":S,"seed":K}`; exit code 1 on crashes.
 */
import { activeCallsFrom } from '../../src/sip/drachtio-router.ts';
import { parseRouterArgs, RouterArgError } from '../../src/sip/drachtio-router-cli.ts';
import { setLogLevel } from '../../src/ops/log.ts';
import { rng } from './rng.ts';

setLogLevel('silent');

const ARG_SEEDS: string[][] = [
  ['--node', '127.0.0.1:9031,http://127.0.0.1:9465', '--node', '127.0.0.1:9032,http://127.0.0.1:9466'],
  ['--node=10.0.0.2:9031;transport=tls,https://10.0.0.2:9465', '--listen', '[::1]:9080', '--policy', 'round-robin'],
  ['--node', 'a:1,http://a', '--probe-ms', '500', '--auth', 'drachtio:s3cret'],
  ['--listen', '0.0.0.0:65535', '--node', 'h:2,http://u:p@h:3/x?y'],
];
const METRIC_SEEDS: string[] = [
  '# TYPE voice_agent_calls_active gauge\nvoice_agent_calls_active{tenant="a"} 3\nvoice_agent_calls_active{tenant="b"} 2\n',
  'voice_agent_calls_active 7\nvoice_agent_calls_active_x 1\n',
  'voice_agent_calls_active{tenant="a}b"} 1e3\n',
];
const TOKENS = ['--node', '--listen', '--policy', '--probe-ms', '--auth', '--bogus', '=', ',', ':', ';', ';transport=tls', ';transport=udp',
  'http://', 'https://', 'ftp://', '[', ']', '::1', '0', '65535', '65536', '-1', '1e9', 'NaN', 'Infinity', '', ' ', '\n', '\u0000', 'é',
  'least-calls', 'round-robin', 'x'.repeat(300), '{', '}', '"', '#', 'voice_agent_calls_active', '1e999', '-0'];

function mutate(s: string, r: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)]!;
  let out = s;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(r() * (out.length + 1));
    switch (Math.floor(r() * 4)) {
      case 0: out = out.slice(0, at) + pick(TOKENS) + out.slice(at); break;
      case 1: out = out.slice(0, at) + out.slice(at + 1 + Math.floor(r() * 5)); break;
      case 2: out = out.slice(0, at) + String.fromCharCode(Math.floor(r() * 256)) + out.slice(at + 1); break;
      default: out = out.slice(0, at); break;
    }
  }
  return out;
}

const seconds = Number(process.argv[2] ?? 10);
const seed = Number(process.argv[3] ?? Date.now() % 0xffffffff);
const r = rng(seed);
const deadline = Date.now() + seconds * 1000;
let execs = 0;
let crashes = 0;
const crash = (what: string, input: unknown, err: unknown): void => {
  crashes += 1;
  process.stderr.write(`CRASH ${what}: ${JSON.stringify(input)}\n  ${(err as Error)?.stack ?? String(err)}\n`);
};

while (Date.now() < deadline && crashes < 10) {
  for (let k = 0; k < 200; k++) {
    execs += 1;
    const args = ARG_SEEDS[Math.floor(r() * ARG_SEEDS.length)]!.map((a) => (r() < 0.3 ? mutate(a, r) : a));
    if (r() < 0.2) args.splice(Math.floor(r() * args.length), 1);
    const env = r() < 0.3 ? { DRACHTIO_ROUTER_NODES: mutate('a:1,http://a b:2,http://b', r) } : {};
    try {
      const o = parseRouterArgs(r() < 0.3 ? [] : args, env);
      for (const n of o.nodes) {
        if (!/^[^\s:;]+:\d+/.test(n.uri) || !/^https?:$/.test(new URL(n.opsUrl).protocol)) throw new Error(`bad node accepted: ${JSON.stringify(n)}`);
      }
    } catch (err) {
      if (!(err instanceof RouterArgError)) crash('parseRouterArgs', { args, env }, err);
    }
    const text = mutate(METRIC_SEEDS[Math.floor(r() * METRIC_SEEDS.length)]!, r);
    try {
      if (Number.isNaN(activeCallsFrom(text))) throw new Error('NaN');
    } catch (err) {
      crash('activeCallsFrom', text, err);
    }
  }
}
process.stdout.write(`${JSON.stringify({ target: 'drachtio-router', execs, crashes, seconds, seed })}\n`);
process.exit(crashes > 0 ? 1 : 0);
