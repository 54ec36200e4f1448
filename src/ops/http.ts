/**
 * The ops HTTP listener: what a scraper, a load balancer or an orchestrator asks.
 *
 * - `GET /metrics` Prometheus text exposition (src/ops/metrics.ts); never needs a session
 * - `GET /livez`   200 while the process and the media loop are alive, else 503
 * - `GET /readyz`  200 when every readiness check passes, else 503 naming each failing one
 *
 * Bodies are plain text, one check per line (`ok redis` / `FAIL redis: connect ECONNREFUSED`),
 * so `curl -f` and a human read the same thing. Each check has a deadline (a hung dependency
 * fails its check instead of hanging the probe). Off loopback every request needs
 * `Authorization: Bearer <OPS_TOKEN>` (start-up fails without a token). Default address 127.0.0.1:9464
 * (`OPS_ADDRESS`, `OPS_PORT`; the port OpenTelemetry's Prometheus exporter uses).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { logger, type Logger } from './log.ts';
import { EXPOSITION_CONTENT_TYPE, exposition } from './metrics.ts';
import { hasBearer, isLoopbackHost } from './auth.ts';

/** One named check: resolves null when healthy, else a short reason. */
export interface HealthCheck {
  name: string;
  check(): Promise<string | null> | string | null;
}

export interface OpsServerOptions {
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 9464 */
  port?: number;
  /** checks of `/livez` (process and media loop) */
  liveness: HealthCheck[];
  /** checks of `/readyz` (dependencies, not draining) */
  readiness: HealthCheck[];
  /** deadline of one check, ms. @defaultValue 2000 */
  checkTimeoutMs?: number;
  /**
   * Bearer token every request must carry (`Authorization: Bearer …`); required when `host`
   * is not loopback. @defaultValue none (loopback only)
   */
  token?: string;
  log?: Logger;
}

export interface OpsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  reason?: string;
}

/** Run checks concurrently, each under its deadline. */
export async function runChecks(checks: readonly HealthCheck[], timeoutMs: number): Promise<CheckResult[]> {
  return Promise.all(checks.map(async (c): Promise<CheckResult> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const reason = await Promise.race([
        Promise.resolve().then(() => c.check()),
        new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs); }),
      ]);
      return reason === null ? { name: c.name, ok: true } : { name: c.name, ok: false, reason };
    } catch (err) {
      return { name: c.name, ok: false, reason: (err as Error)?.message ?? String(err) };
    } finally {
      clearTimeout(timer);
    }
  }));
}

/** `ok name` / `FAIL name: reason` lines. */
export function formatChecks(results: readonly CheckResult[]): string {
  return results.map((r) => (r.ok ? `ok ${r.name}` : `FAIL ${r.name}: ${(r.reason ?? '').replace(/[\r\n]+/g, ' ')}`)).join('\n') + '\n';
}

export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? logger('ops');
  const timeoutMs = opts.checkTimeoutMs ?? 2000;
  const sockets = new Set<Socket>();
  const failingSince = new Map<string, string>(); // readiness check → last reason logged

  const send = (res: ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(body);
  };

  if (!opts.token && !isLoopbackHost(host)) {
    throw new Error(`the ops listener on ${host} would serve metrics and health to anyone: set OPS_TOKEN (bearer token) or bind it to loopback`);
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (opts.token && !hasBearer(req, opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="voice-agent ops"');
      return send(res, 401, 'text/plain; charset=utf-8', 'unauthorized: send Authorization: Bearer <OPS_TOKEN>\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') return send(res, 200, EXPOSITION_CONTENT_TYPE, await exposition());
    if (path === '/livez' || path === '/readyz') {
      const results = await runChecks(path === '/livez' ? opts.liveness : opts.readiness, timeoutMs);
      const ok = results.every((r) => r.ok);
      if (path === '/readyz') {
        // one log line when a check starts or stops failing, not one per probe
        for (const r of results) {
          const was = failingSince.get(r.name);
          if (!r.ok && was !== r.reason) {
            failingSince.set(r.name, r.reason ?? '');
            log.warn('readiness check failing', { check: r.name, reason: r.reason });
          } else if (r.ok && was !== undefined) {
            failingSince.delete(r.name);
            log.info('readiness check passing again', { check: r.name });
          }
        }
      }
      return send(res, ok ? 200 : 503, 'text/plain; charset=utf-8', formatChecks(results));
    }
    if (path === '/') return send(res, 200, 'text/plain; charset=utf-8', 'voice-agent ops: /metrics /livez /readyz\n');
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('ops request failed', { path: req.url, err: err as Error });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 9464, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info('ops listener on', { url, paths: '/metrics /livez /readyz' });
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}
