/**
 * `voice-agent drachtio-router --node URI,OPS_URL [--node …] [--listen HOST:PORT]
 *  [--policy least-calls|round-robin] [--probe-ms N] [--auth user:password]`
 *
 * The HTTP request handler one drachtio-server asks where each new request goes, when several
 * voice-agent nodes take outbound connections (./drachtio-router.ts, docs/SCALE.md).
 * Every flag has an environment variable: DRACHTIO_ROUTER_NODES (nodes separated by spaces),
 * DRACHTIO_ROUTER_LISTEN, DRACHTIO_ROUTER_POLICY, DRACHTIO_ROUTER_PROBE_MS,
 * DRACHTIO_ROUTER_AUTH; the nodes' ops bearer token is OPS_TOKEN. Flags win over the environment.
 */
import { startDrachtioRouter, type RouterNode, type RouterOptions, type RouterPolicy } from './drachtio-router.ts';

const USAGE = `usage: voice-agent drachtio-router --node URI,OPS_URL [--node URI,OPS_URL]... [--listen HOST:PORT]
       [--policy least-calls|round-robin] [--probe-ms N] [--auth user:password]

  --node      a voice-agent node: where drachtio-server connects (its DRACHTIO_LISTEN_ADDRESS:PORT,
              optionally ;transport=tls) and its ops URL, e.g. 127.0.0.1:9031,http://127.0.0.1:9465
              (env DRACHTIO_ROUTER_NODES, nodes separated by spaces)
  --listen    where drachtio-server's <request-handler> URL points (default 127.0.0.1:9080)
  --policy    least-calls (default) or round-robin; nodes not ready (/readyz 503: draining) or
              not answering are skipped
  --probe-ms  how often each node's /readyz is read (default 1000)
  --auth      user:password drachtio-server sends (http://user:password@host:port in its config);
              required off loopback
`;

/** A usage error naming the flag or variable. */
export class RouterArgError extends Error {
  override name = 'RouterArgError';
}

function parseNode(field: string, spec: string): RouterNode {
  const i = spec.lastIndexOf(',');
  const uri = i > 0 ? spec.slice(0, i).trim() : '';
  const opsUrl = i > 0 ? spec.slice(i + 1).trim() : '';
  if (!/^[^\s:;]+:\d{1,5}(;transport=(tcp|tls))?$/.test(uri)) {
    throw new RouterArgError(`${field}: "${spec}" must be HOST:PORT[;transport=tcp|tls],OPS_URL (e.g. 127.0.0.1:9031,http://127.0.0.1:9465)`);
  }
  try {
    const u = new URL(opsUrl);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new RouterArgError(`${field}: "${opsUrl}" in "${spec}" is not an http(s) URL of the node's ops listener`);
  }
  return { uri, opsUrl };
}

/** Flags and environment → router options. */
export function parseRouterArgs(args: string[], env: NodeJS.ProcessEnv = process.env): RouterOptions {
  const flags: Record<string, string[]> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(node|listen|policy|probe-ms|auth)(?:=(.*))?$/.exec(a);
    if (!m) throw new RouterArgError(`unknown argument "${a}"`);
    const v = m[2] ?? args[++i];
    if (v === undefined) throw new RouterArgError(`--${m[1]} needs a value`);
    (flags[m[1]!] ??= []).push(v);
  }
  const one = (flag: string, envName: string): [string, string] | undefined => {
    const f = flags[flag];
    if (f) return [`--${flag}`, f[f.length - 1]!];
    const e = env[envName];
    return e !== undefined && e !== '' ? [envName, e] : undefined;
  };
  const nodes = flags.node
    ? flags.node.map((s) => parseNode('--node', s))
    : (env.DRACHTIO_ROUTER_NODES ?? '').split(/\s+/).filter(Boolean).map((s) => parseNode('DRACHTIO_ROUTER_NODES', s));
  if (nodes.length === 0) throw new RouterArgError('--node: give at least one node (or DRACHTIO_ROUTER_NODES)');
  const opts: RouterOptions = { nodes };
  const listen = one('listen', 'DRACHTIO_ROUTER_LISTEN');
  if (listen) {
    const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen[1]);
    if (!m || Number(m[2]) > 65535) throw new RouterArgError(`${listen[0]}: "${listen[1]}" must be HOST:PORT`);
    opts.host = m[1]!.replace(/^\[|\]$/g, '');
    opts.port = Number(m[2]);
  }
  const policy = one('policy', 'DRACHTIO_ROUTER_POLICY');
  if (policy) {
    if (policy[1] !== 'least-calls' && policy[1] !== 'round-robin') throw new RouterArgError(`${policy[0]}: must be least-calls or round-robin, got "${policy[1]}"`);
    opts.policy = policy[1] as RouterPolicy;
  }
  const probe = one('probe-ms', 'DRACHTIO_ROUTER_PROBE_MS');
  if (probe) {
    const n = Number(probe[1]);
    if (!Number.isInteger(n) || n < 50 || n > 60000) throw new RouterArgError(`${probe[0]}: must be an integer 50-60000, got "${probe[1]}"`);
    opts.probeIntervalMs = n;
  }
  const auth = one('auth', 'DRACHTIO_ROUTER_AUTH');
  if (auth) {
    if (!/^[^:\s]+:\S+$/.test(auth[1])) throw new RouterArgError(`${auth[0]}: must be user:password`);
    opts.auth = auth[1];
  }
  if (env.OPS_TOKEN) opts.opsToken = env.OPS_TOKEN;
  return opts;
}

export async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let opts: RouterOptions;
  try {
    opts = parseRouterArgs(args);
  } catch (err) {
    if (!(err instanceof RouterArgError)) throw err;
    process.stderr.write(`voice-agent drachtio-router: ${err.message}\n${USAGE}`);
    return 2;
  }
  let router;
  try {
    router = await startDrachtioRouter(opts);
  } catch (err) {
    process.stderr.write(`voice-agent drachtio-router: ${(err as Error).message}\n`);
    return 2;
  }
  process.stdout.write(`${JSON.stringify({ url: router.url, nodes: router.picker.nodes.map((n) => ({ uri: n.uri, state: n.state })) })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await router.close();
  return 0;
}
