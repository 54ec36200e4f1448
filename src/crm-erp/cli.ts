/**
 * `voice-agent crm-erp-mcp --stdio | --http [--port N] [--host H] [--db FILE]`: the built-in
 * CRM/ERP MCP server on its own, for any MCP client (an IDE, an inspector, another agent).
 *
 * - `--stdio` (default): JSON-RPC on stdin/stdout; logs go to stderr.
 * - `--http`: streamable HTTP at `http://HOST:PORT/mcp`, stateless (every POST gets a fresh
 *   server over the one shared database), plus `GET /healthz`.
 * - `--db FILE` (or `CRM_DB`): SQLite file, created and seeded when empty; default in-memory.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createCrmErpServer } from './server.ts';
import { CrmErpStore, type CrmErpStoreOptions } from './store.ts';
import { logger } from '../ops/log.ts';
import { hasBearer, isLoopbackHost } from '../ops/auth.ts';

const log = logger('crm-erp');

/** Default TCP port of `crm-erp-mcp --http`. @defaultValue 8790 */
export const DEFAULT_HTTP_PORT = 8790;
/**
 * Default bind address of `crm-erp-mcp --http`. Off loopback a bearer token is required
 * (env `CRM_MCP_TOKEN`; tenants send it with `mcpServers[].headers.Authorization:
 * "Bearer ${CRM_MCP_TOKEN}"`). @defaultValue '127.0.0.1'
 */
export const DEFAULT_HTTP_HOST = '127.0.0.1';
/** Largest request body accepted on /mcp, in bytes. @defaultValue 1048576 */
export const MAX_BODY_BYTES = 1 << 20;

/** Serve the CRM/ERP over stdio until stdin closes. */
export async function runStdio(opts: CrmErpStoreOptions = {}): Promise<void> {
  const server = createCrmErpServer(opts);
  const transport = new StdioServerTransport();
  await server.connect(transport);
  log.info('crm-erp mcp server on stdio', { db: typeof opts.db === 'string' ? opts.db : (process.env.CRM_DB ?? ':memory:') });
  // the client closing its end of the pipe ends the server
  await new Promise<void>((resolve) => {
    process.stdin.once('end', resolve);
    process.stdin.once('close', resolve);
  });
  await server.close();
}

export interface CrmErpHttpServer {
  /** The bound URL of the MCP endpoint, e.g. `http://127.0.0.1:8790/mcp`. */
  url: string;
  port: number;
  store: CrmErpStore;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) { reject(new Error('request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
      } catch {
        reject(new SyntaxError('invalid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/** Serve the CRM/ERP over streamable HTTP at `/mcp` (port 0 = any free port). */
export async function runHttp(opts: CrmErpStoreOptions & { port?: number; host?: string; token?: string } = {}): Promise<CrmErpHttpServer> {
  const host = opts.host ?? DEFAULT_HTTP_HOST;
  if (!opts.token && !isLoopbackHost(host)) {
    throw new Error(`refusing to serve the CRM/ERP on ${host} without authentication: set CRM_MCP_TOKEN (clients send it as Authorization: Bearer …) or bind to loopback`);
  }
  const store = new CrmErpStore(opts);
  const http: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n'); return; }
    if (opts.token && !hasBearer(req, opts.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="crm-erp-mcp"');
      jsonRpcError(res, 401, -32001, 'unauthorized: send Authorization: Bearer <CRM_MCP_TOKEN>');
      return;
    }
    if (path !== '/mcp') { res.writeHead(404, { 'content-type': 'text/plain' }).end('not found (the MCP endpoint is /mcp)\n'); return; }
    if (req.method !== 'POST') { jsonRpcError(res, 405, -32000, 'method not allowed: this server is stateless, use POST /mcp'); return; }
    void (async () => {
      let body: unknown;
      try {
        body = await readBody(req);
      } catch (err) {
        jsonRpcError(res, 400, -32700, `parse error: ${(err as Error).message}`);
        return;
      }
      const server = createCrmErpServer({ store });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on('close', () => { void transport.close(); void server.close(); });
      try {
        await server.connect(transport);
        await transport.handleRequest(req, res, body);
      } catch (err) {
        log.error('mcp http request failed', { err: err as Error });
        if (!res.headersSent) jsonRpcError(res, 500, -32603, 'internal error');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? DEFAULT_HTTP_PORT, host, () => { http.off('error', reject); resolve(); });
  });
  const port = (http.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/mcp`;
  log.info('crm-erp mcp server on http', { url });
  return {
    url, port, store,
    close: () => new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => { store.close(); resolve(); });
    }),
  };
}

const USAGE = 'usage: voice-agent crm-erp-mcp [--stdio | --http [--port N] [--host H]] [--db FILE]\n  --http off loopback needs CRM_MCP_TOKEN (clients send Authorization: Bearer <token>)\n';

/** CLI entry: parse `args` and serve until stopped. */
export async function main(args: string[]): Promise<void> {
  let mode: 'stdio' | 'http' = 'stdio';
  let port = DEFAULT_HTTP_PORT;
  let host = DEFAULT_HTTP_HOST;
  let db: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) { process.stderr.write(`voice-agent crm-erp-mcp: ${a} needs a value\n${USAGE}`); process.exit(2); }
      return v;
    };
    if (a === '--stdio') mode = 'stdio';
    else if (a === '--http') mode = 'http';
    else if (a === '--port') {
      const v = value();
      port = Number(v);
      if (!/^\d+$/.test(v) || port > 65535) { process.stderr.write(`voice-agent crm-erp-mcp: --port must be 0-65535, got "${v}"\n`); process.exit(2); }
    } else if (a === '--host') host = value();
    else if (a === '--db') db = value();
    else if (a === '--help' || a === '-h') { process.stdout.write(USAGE); return; }
    else { process.stderr.write(`voice-agent crm-erp-mcp: unknown option "${a}"\n${USAGE}`); process.exit(2); }
  }
  const opts: CrmErpStoreOptions = db ? { db } : {};
  if (mode === 'stdio') {
    await runStdio(opts);
    return;
  }
  const token = process.env.CRM_MCP_TOKEN || undefined;
  let srv: CrmErpHttpServer;
  try {
    srv = await runHttp({ ...opts, port, host, ...(token ? { token } : {}) });
  } catch (err) {
    process.stderr.write(`voice-agent crm-erp-mcp: ${(err as Error).message}\n`);
    process.exit(2);
  }
  process.stdout.write(`crm-erp MCP server listening on ${srv.url}\n`);
  const stop = (): void => { void srv.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
