/**
 * The request handler drachtio-server asks where a new request goes, when several voice-agent
 * nodes take outbound connections (`drachtio.mode: outbound`) behind one drachtio-server.
 *
 * drachtio-server's `<request-handlers>` entry names this listener's URL. For each new request
 * outside a dialog it sends `GET <url>/?method=INVITE&domain=…&protocol=udp&source_address=…&
 * fromUser=…&toUser=…&uriUser=…&contentType=…&uri=…` (see sip-config/drachtio-outbound.conf.xml)
 * and acts on the JSON answer:
 *
 * - `{"action":"route","data":{"uri":"127.0.0.1:9031"}}` — connect to that node (its
 *   `srf.listen` port) and hand it the request; in-dialog requests then follow the dialog;
 * - `{"action":"reject","data":{"status":503,"reason":"…"}}` — no node can take it.
 *
 * Which node: among the nodes whose ops `/readyz` answered 200 at the last probe (a node that
 * is draining answers 503, a dead one does not answer: both are left out until they answer 200
 * again), the one with the fewest live calls (`least-calls`: `voice_agent_calls_active` from its
 * `/metrics`, plus the calls routed to it since that scrape) or the next in turn
 * (`round-robin`). This is the same signal the Kamailio front uses (OPTIONS 503 while
 * draining), read over HTTP because drachtio-server asks over HTTP.
 *
 * `GET /status` returns the nodes and what the last probe saw (JSON).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isLoopbackHost } from '../ops/auth.ts';
import { logger } from '../ops/log.ts';

const log = logger('drachtio-router');

export type RouterPolicy = 'least-calls' | 'round-robin';

export interface RouterNode {
  /** Where drachtio-server connects: the node's `DRACHTIO_LISTEN_ADDRESS:DRACHTIO_LISTEN_PORT`, optionally `;transport=tls`. */
  uri: string;
  /** The node's ops listener, e.g. `http://127.0.0.1:9464` (`/readyz` and `/metrics` are read from it). */
  opsUrl: string;
}

export interface RouterOptions {
  nodes: RouterNode[];
  /** @defaultValue 'least-calls' */
  policy?: RouterPolicy;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 9080 */
  port?: number;
  /** How often each node's `/readyz` (and `/metrics`) is read, ms. @defaultValue 1000 */
  probeIntervalMs?: number;
  /**
   * Deadline of one probe, ms; a node that does not answer in time counts as down. A node's
   * /readyz may take up to its own check deadline (2 s) while a dependency hangs. @defaultValue 2500
   */
  probeTimeoutMs?: number;
  /** Bearer token for the nodes' ops listeners (their `OPS_TOKEN`). @defaultValue none */
  opsToken?: string;
  /**
   * `user:password` drachtio-server must send (HTTP basic, from the request-handler URL's
   * userinfo: `http://user:password@host:port`); required off loopback. @defaultValue none
   */
  auth?: string;
}

export type NodeState = 'unknown' | 'up' | 'draining' | 'not-ready' | 'down';

export interface NodeStatus {
  uri: string;
  opsUrl: string;
  state: NodeState;
  /** why the node is out (the /readyz body or the connection error) */
  reason?: string;
  /** live calls at the last scrape (least-calls only) */
  calls: number;
  /** requests routed to the node since that scrape */
  routedSinceProbe: number;
  /** requests routed to the node since start */
  routed: number;
}

/** The routing decision as drachtio-server reads it. */
export type RouteAnswer =
  | { action: 'route'; data: { uri: string } }
  | { action: 'reject'; data: { status: number; reason: string } };

/** Sum of `voice_agent_calls_active` over its label sets in a Prometheus text exposition. */
export function activeCallsFrom(exposition: string): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const m = /^voice_agent_calls_active(?:\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (m) sum += Number(m[1]) || 0;
  }
  return sum;
}

/** Pure node choice: the routing policy over the nodes that are up. */
export class NodePicker {
  readonly nodes: NodeStatus[];
  private next = 0;

  constructor(nodes: RouterNode[], private readonly policy: RouterPolicy = 'least-calls') {
    if (nodes.length === 0) throw new Error('no nodes: give at least one --node URI,OPS_URL');
    this.nodes = nodes.map((n) => ({ uri: n.uri, opsUrl: n.opsUrl, state: 'unknown', calls: 0, routedSinceProbe: 0, routed: 0 }));
  }

  /** Pick a node for one new request, or undefined when none is up. */
  pick(): NodeStatus | undefined {
    const n = this.nodes.length;
    let best: NodeStatus | undefined;
    let bestLoad = Infinity;
    for (let i = 0; i < n; i++) {
      const node = this.nodes[(this.next + i) % n]!;
      if (node.state !== 'up') continue;
      if (this.policy === 'round-robin') {
        best = node;
        break;
      }
      const load = node.calls + node.routedSinceProbe;
      if (load < bestLoad) {
        best = node;
        bestLoad = load;
      }
    }
    if (!best) return undefined;
    this.next = (this.nodes.indexOf(best) + 1) % n;
    best.routed += 1;
    best.routedSinceProbe += 1;
    return best;
  }

  /** Record a probe result for node `i`. */
  update(i: number, state: NodeState, reason?: string, calls?: number): void {
    const node = this.nodes[i]!;
    if (node.state !== state) {
      const fields = { node: node.uri, from: node.state, to: state, ...(reason ? { reason } : {}) };
      if (state === 'up') log.info('node in', fields);
      else log.warn('node out', fields);
    }
    node.state = state;
    node.reason = reason;
    if (calls !== undefined) {
      node.calls = calls;
      node.routedSinceProbe = 0;
    }
  }

  answer(): RouteAnswer {
    const node = this.pick();
    if (!node) return { action: 'reject', data: { status: 503, reason: 'No voice-agent node available' } };
    return { action: 'route', data: { uri: node.uri } };
  }
}

async function get(url: string, timeoutMs: number, token?: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  return { status: r.status, body: await r.text() };
}

/** Probe one node: /readyz decides in or out; /metrics gives its live calls (least-calls). */
async function probe(node: RouterNode, o: { timeoutMs: number; token?: string; wantCalls: boolean }): Promise<{ state: NodeState; reason?: string; calls?: number }> {
  const base = node.opsUrl.replace(/\/+$/, '');
  let ready: { status: number; body: string };
  try {
    ready = await get(`${base}/readyz`, o.timeoutMs, o.token);
  } catch (err) {
    return { state: 'down', reason: (err as Error).name === 'TimeoutError' ? `no answer within ${o.timeoutMs} ms` : String((err as { cause?: Error }).cause?.message ?? (err as Error).message) };
  }
  if (ready.status !== 200) {
    const failing = ready.body.split('\n').filter((l) => l.startsWith('FAIL')).join('; ') || `HTTP ${ready.status}`;
    return { state: /FAIL draining/.test(ready.body) ? 'draining' : 'not-ready', reason: failing };
  }
  if (!o.wantCalls) return { state: 'up' };
  try {
    const m = await get(`${base}/metrics`, o.timeoutMs, o.token);
    if (m.status === 200) return { state: 'up', calls: activeCallsFrom(m.body) };
  } catch { /* ready but no metrics this time: keep the last count */ }
  return { state: 'up' };
}

export interface DrachtioRouter {
  /** The request-handler URL to put in drachtio-server's config, e.g. `http://127.0.0.1:9080`. */
  url: string;
  port: number;
  picker: NodePicker;
  /** Probe every node now (also runs every probe interval). */
  probeAll(): Promise<void>;
  close(): Promise<void>;
}

function basicOk(req: IncomingMessage, auth: string): boolean {
  const h = req.headers.authorization ?? '';
  const m = /^Basic\s+(\S+)$/i.exec(h);
  return !!m && Buffer.from(m[1]!, 'base64').toString('utf8') === auth;
}

/** Start the request handler: probes the nodes once, then listens. */
export async function startDrachtioRouter(opts: RouterOptions): Promise<DrachtioRouter> {
  const policy = opts.policy ?? 'least-calls';
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host) && !opts.auth) {
    throw new Error(`the drachtio router listens on ${host}, off loopback: give --auth user:password (DRACHTIO_ROUTER_AUTH) and put it in the request-handler URL`);
  }
  const picker = new NodePicker(opts.nodes, policy);
  const timeoutMs = opts.probeTimeoutMs ?? 2500;
  let probing: Promise<void> | undefined;
  const probeAll = (): Promise<void> => {
    probing ??= Promise.all(opts.nodes.map(async (n, i) => {
      const r = await probe(n, { timeoutMs, token: opts.opsToken, wantCalls: policy === 'least-calls' });
      picker.update(i, r.state, r.reason, r.calls);
    })).then(() => { probing = undefined; });
    return probing;
  };
  await probeAll();
  const timer = setInterval(() => void probeAll(), opts.probeIntervalMs ?? 1000);
  timer.unref();

  const send = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server: Server = createServer((req, res) => {
    if (opts.auth && !basicOk(req, opts.auth)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="drachtio-router"');
      return send(res, 401, { error: 'unauthorized' });
    }
    const url = new URL(req.url ?? '/', 'http://router');
    if (req.method === 'GET' && url.pathname === '/status') return send(res, 200, { policy, nodes: picker.nodes });
    const method = url.searchParams.get('method');
    if (!method) return send(res, 400, { error: 'not a drachtio-server routing request (no method= in the query); GET /status for the nodes' });
    // drachtio-server sends the request body on POST; the query has all we route on
    req.resume();
    const answer = picker.answer();
    const fields = { method, callTo: url.searchParams.get('uriUser') ?? '', source: url.searchParams.get('source_address') ?? '' };
    if (answer.action === 'route') log.debug('routed', { ...fields, node: answer.data.uri });
    else log.warn('no node up: rejected 503', fields);
    send(res, 200, answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 9080, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('drachtio request handler listening', { url, policy, nodes: opts.nodes.map((n) => n.uri) });
  return {
    url, port, picker, probeAll,
    close: () => new Promise((resolve) => {
      clearInterval(timer);
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
