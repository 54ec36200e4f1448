/**
 * The MCP tool gateway: one per tenant. It connects to the built-in CRM/ERP server
 * in-process and to the tenant's own MCP servers (stdio or streamable HTTP), offers only the
 * tools the tenant allows, and enforces that again on every call — whatever the caller (an
 * LLM) asks for. Every call gets a timeout and one audit log line.
 *
 * Tool names: built-in tools keep their names; a tool of an external server keeps its name
 * unless another server offers the same name, in which case it is offered as
 * `<server>__<tool>` (OpenAI function names allow `[A-Za-z0-9_-]`, so no dot).
 *
 * An external server named `crm` replaces the built-in CRM/ERP for that tenant (the tenant's
 * own deployment of `voice-agent crm-erp-mcp --http`, or any server with the same tools): its
 * tools keep their plain names and the in-process server is not started.
 *
 * An external server that drops (a stdio child exits, an HTTP request fails below the MCP
 * layer) is marked down; the next call to one of its tools reconnects first (a fresh
 * transport and MCP handshake; a stdio child is started again), with exponential backoff
 * between failed attempts ({@link RECONNECT_BACKOFF_MS}): while backing off, calls fail at
 * once rather than keep the caller waiting. Both are logged (`mcp server down`,
 * `mcp server reconnected`, `mcp server reconnect failed`).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { createCrmErpServer, sharedCrmErpStore } from '../crm-erp/server.ts';
import type { CrmErpStore } from '../crm-erp/store.ts';
import { logger } from '../ops/log.ts';
import { metrics } from '../ops/metrics.ts';
import { AllowList, DEFAULT_TOOL_TIMEOUT_MS, type McpServerConfig, type TenantToolPolicy } from './policy.ts';
import type { ToolCallContext, ToolGateway, ToolResult, ToolSpec } from './types.ts';

const log = logger('tools');


/** Name of the built-in CRM/ERP server (used as the prefix when an external tool collides). */
export const BUILTIN_SERVER_NAME = 'crm';
/** How long to wait for an external MCP server to connect and list its tools. @defaultValue 10000 */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Wait before the 2nd, 3rd, … reconnect attempt to a dropped MCP server (doubling), ms. @defaultValue {first: 500, max: 30000} */
export const RECONNECT_BACKOFF_MS = { first: 500, max: 30_000 } as const;

export interface ToolGatewayOptions {
  /** Connect the built-in CRM/ERP server in-process. @defaultValue true */
  builtin?: boolean;
  /** Store the built-in server serves. @defaultValue the process-wide {@link sharedCrmErpStore} */
  store?: CrmErpStore;
  /** Connect/list timeout per external MCP server, ms. @defaultValue 10000 */
  connectTimeoutMs?: number;
}

interface Upstream {
  name: string;
  client: Client;
  closeExtra?: () => Promise<void>;
  /** external servers: how to connect again */
  cfg?: McpServerConfig;
  /** the connection dropped; the next call reconnects (not before `retryAt`) */
  down?: boolean;
  retryAt?: number;
  backoffMs?: number;
  reconnecting?: Promise<boolean>;
}
interface Entry { exposed: string; server: Upstream; raw: string; spec: ToolSpec }

class TimeoutError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|authori[sz]ation|auth|cvv|card|ssn/i;

/** One-line summary of tool arguments for the audit log: long strings cut, secret-looking keys masked. */
export function summarizeArgs(args: Record<string, unknown>, redact: readonly string[] = []): string {
  const s = JSON.stringify(args ?? {}, (key, value) => {
    if (key && SECRET_KEY.test(key) && key !== 'idempotency_key') return '***';
    if (typeof value === 'string' && redact.includes(value)) return 'anonymous';
    if (typeof value === 'string' && value.length > 48) return `${value.slice(0, 40)}…(${value.length} chars)`;
    return value;
  });
  return s.length > 300 ? `${s.slice(0, 297)}...` : s;
}

/** The JSON object a tool returned: structuredContent, else the JSON text block, else `{text}`. */
function resultData(res: Record<string, unknown>): Record<string, unknown> {
  const sc = res.structuredContent;
  if (sc && typeof sc === 'object' && !Array.isArray(sc)) return sc as Record<string, unknown>;
  const text = resultText(res);
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    return { value: v };
  } catch {
    return { text };
  }
}

function resultText(res: Record<string, unknown>): string {
  const content = Array.isArray(res.content) ? (res.content as Array<{ type?: string; text?: string }>) : [];
  return content.filter((c) => c.type === 'text' && typeof c.text === 'string').map((c) => c.text).join('\n');
}

async function connectUpstream(cfg: McpServerConfig, timeoutMs: number): Promise<Upstream> {
  let transport: Transport;
  if (cfg.transport === 'stdio') {
    const t = new StdioClientTransport({
      command: cfg.command, args: cfg.args ?? [], cwd: cfg.cwd, stderr: 'pipe',
      // only the harmless basics (PATH, HOME, …) plus what the tenant config names: the
      // process's own secrets (API keys, REDIS_URL) never reach a third-party server
      env: { ...getDefaultEnvironment(), ...(cfg.env ?? {}) },
    });
    // the child's log lines, tagged with the server name, at debug level
    t.stderr?.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) log.debug('mcp server stderr', { server: cfg.name, line: line.slice(0, 300) });
    });
    transport = t;
  } else {
    transport = new StreamableHTTPClientTransport(new URL(cfg.url), cfg.headers ? { requestInit: { headers: cfg.headers } } : undefined);
  }
  const client = new Client({ name: 'voice-agent-gateway', version: '0.1.0' });
  try {
    await withTimeout(client.connect(transport), timeoutMs, `connecting to MCP server "${cfg.name}"`);
  } catch (err) {
    await client.close().catch(() => {});
    throw err;
  }
  return { name: cfg.name, client, cfg };
}

/** Mark an external upstream down when its transport closes (a stdio child exited, …). */
function watchClose(u: Upstream, tenantId: string, isClosed: () => boolean): void {
  const client = u.client;
  client.onclose = () => {
    if (isClosed() || u.client !== client || u.down) return;
    u.down = true;
    log.warn('mcp server down', { tenant: tenantId, server: u.name, reason: 'connection closed' });
  };
}

/** Reconnect a dropped upstream (one attempt, shared by concurrent callers); true when it is back. */
function reconnect(u: Upstream, tenantId: string, timeoutMs: number, isClosed: () => boolean): Promise<boolean> {
  u.reconnecting ??= (async () => {
    const started = Date.now();
    try {
      const fresh = await connectUpstream(u.cfg!, timeoutMs);
      const old = u.client;
      u.client = fresh.client;
      u.down = false;
      u.retryAt = undefined;
      u.backoffMs = undefined;
      watchClose(u, tenantId, isClosed);
      void old.close().catch(() => {});
      log.info('mcp server reconnected', { tenant: tenantId, server: u.name, ms: Date.now() - started });
      return true;
    } catch (err) {
      u.backoffMs = u.backoffMs ? Math.min(u.backoffMs * 2, RECONNECT_BACKOFF_MS.max) : RECONNECT_BACKOFF_MS.first;
      u.retryAt = Date.now() + u.backoffMs;
      log.warn('mcp server reconnect failed', { tenant: tenantId, server: u.name, retryInMs: u.backoffMs, err: err as Error });
      return false;
    } finally {
      u.reconnecting = undefined;
    }
  })();
  return u.reconnecting;
}

/**
 * A gateway for one tenant. External servers that fail to connect are logged and left
 * out (the call goes on with the rest); the built-in server always connects.
 */
export async function createToolGateway(tenant: TenantToolPolicy, opts: ToolGatewayOptions = {}): Promise<ToolGateway> {
  const allow = new AllowList(tenant.allowedActions);
  const connectTimeout = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const upstreams: Upstream[] = [];
  let closed = false;
  const isClosed = (): boolean => closed;
  // an external server named like the built-in one replaces it
  const builtin = opts.builtin ?? !(tenant.mcpServers ?? []).some((s) => s.name === BUILTIN_SERVER_NAME);

  if (builtin) {
    const server = createCrmErpServer({ store: opts.store ?? sharedCrmErpStore() });
    const [clientT, serverT] = InMemoryTransport.createLinkedPair();
    await server.connect(serverT);
    const client = new Client({ name: 'voice-agent-gateway', version: '0.1.0' });
    await client.connect(clientT);
    upstreams.push({ name: BUILTIN_SERVER_NAME, client, closeExtra: () => server.close() });
  }
  const external = await Promise.allSettled((tenant.mcpServers ?? []).map((cfg) => connectUpstream(cfg, connectTimeout)));
  external.forEach((r, i) => {
    const cfg = tenant.mcpServers![i]!;
    if (r.status === 'fulfilled') {
      upstreams.push(r.value);
      watchClose(r.value, tenant.tenantId, isClosed);
    }
    else log.error('mcp server unavailable', { tenant: tenant.tenantId, server: cfg.name, transport: cfg.transport, err: r.reason as Error });
  });

  // catalogue: every tool of every server, with collision prefixes
  const listed: Array<{ server: Upstream; tools: Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }> }> = [];
  for (const u of upstreams) {
    try {
      const res = await withTimeout(u.client.listTools(), connectTimeout, `listing tools of "${u.name}"`);
      listed.push({ server: u, tools: res.tools as Array<{ name: string; description?: string; inputSchema: Record<string, unknown> }> });
    } catch (err) {
      log.error('mcp server tools unavailable', { tenant: tenant.tenantId, server: u.name, err: err as Error });
    }
  }
  const owners = new Map<string, number>();
  for (const { tools } of listed) for (const t of tools) owners.set(t.name, (owners.get(t.name) ?? 0) + 1);
  const catalog = new Map<string, Entry>();
  for (const { server, tools } of listed) {
    for (const t of tools) {
      const plain = server.name === BUILTIN_SERVER_NAME;
      const exposed = plain || owners.get(t.name) === 1 ? t.name : `${server.name}__${t.name}`;
      if (catalog.has(exposed)) {
        log.warn('duplicate tool name dropped', { tenant: tenant.tenantId, server: server.name, tool: t.name });
        continue;
      }
      // `$schema` is noise to function-calling APIs; the rest of the JSON schema passes through
      const { $schema: _drop, ...inputSchema } = t.inputSchema;
      catalog.set(exposed, { exposed, server, raw: t.name, spec: { name: exposed, description: t.description ?? '', inputSchema } });
    }
  }
  const allowed = [...catalog.values()].filter((e) => allow.allows(e.exposed, e.server.name, e.raw));
  log.info('tool gateway ready', {
    tenant: tenant.tenantId, servers: upstreams.map((u) => u.name).join(','), policy: allow.label,
    tools: allowed.map((e) => e.exposed).join(','),
  });

  return {
    listTools: () => allowed.map((e) => ({ ...e.spec })),

    async call(name, args, ctx) {
      const started = performance.now();
      const ms = (): number => Math.round(performance.now() - started);
      const audit = (r: ToolResult): ToolResult => {
        const fields = { tenant: tenant.tenantId, call: ctx.callId, tool: name, ms: r.ms, ok: r.ok, code: r.ok ? 'ok' : r.code, args: summarizeArgs(args, ctx.redact) };
        if (r.ok) log.info('tool call', fields);
        else log.warn('tool call', { ...fields, error: r.error.slice(0, 200) });
        // label by the name only when the gateway knows the tool (a model can ask for anything)
        const tool = catalog.has(name) ? name : 'other';
        metrics.toolCalls.inc({ tool, result: r.ok ? 'ok' : r.code });
        metrics.toolLatency.observe({ tool }, r.ms / 1000);
        return r;
      };
      if (ctx.tenantId !== tenant.tenantId) {
        // a gateway serves exactly one tenant; a call for another tenant is a wiring bug, never allowed
        log.warn('tool refused', { tenant: tenant.tenantId, call: ctx.callId, tool: name, reason: `context tenant ${ctx.tenantId}` });
        return audit({ ok: false, code: 'refused', error: `${name} is not allowed: this gateway serves tenant ${tenant.tenantId}, not ${ctx.tenantId}`, ms: ms() });
      }
      const entry = catalog.get(name);
      if (!entry) return audit({ ok: false, code: 'unknown_tool', error: `unknown tool "${name}"`, ms: ms() });
      if (!allow.allows(entry.exposed, entry.server.name, entry.raw)) {
        log.warn('tool refused', { tenant: tenant.tenantId, call: ctx.callId, tool: name, policy: allow.label });
        return audit({ ok: false, code: 'refused', error: `${name} is not allowed for tenant ${tenant.tenantId} (${allow.label})`, ms: ms() });
      }
      if (closed) return audit({ ok: false, code: 'failed', error: 'tool gateway is closed', ms: ms() });
      const timeoutMs = ctx.timeoutMs ?? tenant.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
      let callArgs: Record<string, unknown> = args && typeof args === 'object' && !Array.isArray(args) ? args : {};
      // the tenant's own business hours unless the caller asked about another
      if (entry.server.name === BUILTIN_SERVER_NAME && entry.raw === 'business_hours' && callArgs.tenant === undefined) {
        callArgs = { ...callArgs, tenant: tenant.tenantId };
      }
      const up = entry.server;
      if (up.down && up.cfg) {
        if (up.retryAt && Date.now() < up.retryAt && !up.reconnecting) {
          return audit({ ok: false, code: 'failed', error: `MCP server "${up.name}" is down (next reconnect in ${up.retryAt - Date.now()} ms)`, ms: ms() });
        }
        if (!(await reconnect(up, tenant.tenantId, Math.min(connectTimeout, timeoutMs), isClosed))) {
          return audit({ ok: false, code: 'failed', error: `MCP server "${up.name}" is down (reconnect failed)`, ms: ms() });
        }
      }
      const client = up.client;
      const abort = new AbortController();
      try {
        const res = await withTimeout(
          client.callTool({ name: entry.raw, arguments: callArgs }, undefined, { signal: abort.signal, timeout: timeoutMs + 1000 }),
          timeoutMs, `${name}`,
        ) as Record<string, unknown>;
        if (res.isError) {
          const sc = res.structuredContent as Record<string, unknown> | undefined;
          const error = resultText(res) || (typeof sc?.error === 'string' ? sc.error : '') || `${name} failed`;
          return audit({ ok: false, code: 'failed', error, ms: ms() });
        }
        return audit({ ok: true, data: resultData(res), ms: ms() });
      } catch (err) {
        if (err instanceof TimeoutError) {
          abort.abort(); // tell the server (notifications/cancelled) and abandon the call
          return audit({ ok: false, code: 'timeout', error: `${name} did not answer within ${timeoutMs} ms`, ms: ms() });
        }
        // below the MCP layer (connection refused or reset, child gone): reconnect next time
        if (up.cfg && !(err instanceof McpError) && up.client === client && !up.down) {
          up.down = true;
          log.warn('mcp server down', { tenant: tenant.tenantId, server: up.name, reason: (err as Error).message || String(err) });
        }
        return audit({ ok: false, code: 'failed', error: (err as Error).message || String(err), ms: ms() });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled(upstreams.map(async (u) => {
        await u.client.close();
        await u.closeExtra?.();
      }));
    },
  };
}
