/**
 * Faults for an MCP server over streamable HTTP, for the fault-injection tests:
 *  - {@link startCrmHttp}: `voice-agent crm-erp-mcp --http` as its own process, which a test
 *    can SIGKILL and start again on the same port and database;
 *  - {@link startMcpFaultProxy}: an HTTP proxy in front of it that passes requests, hangs the
 *    `tools/call` of chosen tools (never answers, keeps the connection open), or resets every
 *    connection (a server that is gone).
 *
 * ```ts
 * const crm = await startCrmHttp({ db: '/tmp/crm.sqlite' });
 * const proxy = await startMcpFaultProxy(crm.url);
 * proxy.hang(['order_status']);   // tenant mcpServers: [{ name: crm, transport: http, url: proxy.url }]
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ROOT } from './server.ts';
import { freePort } from './ports.ts';

export interface CrmHttp {
  /** `http://127.0.0.1:PORT/mcp` */
  url: string;
  port: number;
  /** SIGKILL (a crash); resolves when the process is gone */
  kill(): Promise<void>;
  /** start again on the same port and database */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `voice-agent crm-erp-mcp --http --db FILE` on a free port of 23400-23499. */
export async function startCrmHttp(o: { db: string; port?: number }): Promise<CrmHttp> {
  const port = o.port ?? (await freePort({ min: 23400, max: 23499 }, 'tcp'));
  let proc: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    const p = spawn(process.execPath, ['bin/voice-agent.mjs', 'crm-erp-mcp', '--http', '--port', String(port), '--db', o.db], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    proc = p;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`crm-erp-mcp did not start: ${out}`)), 30000);
      const on = (c: Buffer): void => {
        out += c.toString();
        if (/listening on/.test(out)) { clearTimeout(timer); resolve(); }
      };
      p.stdout!.on('data', on);
      p.stderr!.on('data', on);
      p.once('exit', (code) => { clearTimeout(timer); reject(new Error(`crm-erp-mcp exited (${code}): ${out}`)); });
    });
  };
  const kill = async (): Promise<void> => {
    const p = proc;
    proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGKILL'); });
  };
  await start();
  return { url: `http://127.0.0.1:${port}/mcp`, port, kill, restart: start, stop: kill };
}

export interface McpFaultProxy {
  /** the proxy's MCP URL (same path as the target) */
  url: string;
  /** pass everything through (the default) */
  pass(): void;
  /** never answer a `tools/call` of these tools (everything else passes) */
  hang(tools: string[]): void;
  /** reset every connection at once (the server is gone) */
  drop(): void;
  /** tools/call requests seen, by tool name, and how many were hung or dropped */
  readonly seen: string[];
  readonly hung: number;
  readonly dropped: number;
  close(): Promise<void>;
}

/** An HTTP proxy on 127.0.0.1 in front of `target` (an MCP streamable-HTTP URL). */
export async function startMcpFaultProxy(target: string): Promise<McpFaultProxy> {
  const to = new URL(target);
  let mode: 'pass' | 'hang' | 'drop' = 'pass';
  let hangTools = new Set<string>();
  const sockets = new Set<Socket>();
  const stats = { seen: [] as string[], hung: 0, dropped: 0 };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (mode === 'drop') {
      stats.dropped++;
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let tool: string | undefined;
      try {
        const msg = JSON.parse(body.toString('utf8')) as { method?: string; params?: { name?: string } };
        if (msg.method === 'tools/call') tool = msg.params?.name;
      } catch { /* not JSON: pass it on */ }
      if (tool) stats.seen.push(tool);
      if (mode === 'hang' && tool && hangTools.has(tool)) {
        stats.hung++;
        return; // no answer, connection held open
      }
      const up = request({
        host: to.hostname, port: to.port, method: req.method, path: req.url,
        headers: { ...req.headers, host: to.host, 'content-length': String(body.length) },
      }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => req.socket.destroy()); // target down: the client sees a reset too
      up.end(body);
    });
  };
  const server: Server = createServer(handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (mode === 'drop') { stats.dropped++; s.destroy(); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}${to.pathname}`,
    pass: () => { mode = 'pass'; },
    hang: (tools) => { mode = 'hang'; hangTools = new Set(tools); },
    drop: () => {
      mode = 'drop';
      for (const s of sockets) s.destroy();
    },
    get seen() { return stats.seen; },
    get hung() { return stats.hung; },
    get dropped() { return stats.dropped; },
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
