/**
 * Shared pieces of the agent tests: the demo tenants, the real tool gateway over an in-memory
 * CRM/ERP store with a fixed clock, a wrapper that makes chosen tools slow, and collectors.
 */
import { loadTenants, type Tenant } from '../../src/tenants/index.ts';
import { DEFAULT_TENANTS_FILE } from '../../src/config.ts';
import { CrmErpStore } from '../../src/crm-erp/index.ts';
import { createToolGateway } from '../../src/tools/index.ts';
import { tenantToolPolicy, type AgentAction, type CallContext, type ToolGateway, type ToolResult } from '../../src/agent/index.ts';

/** Wednesday 2 Dec 2026, 10:00 in Chicago (the demo tenant's hours: open). */
export const OPEN_AT = new Date('2026-12-02T16:00:00Z');
/** Wednesday 2 Dec 2026, 22:00 in Chicago (closed). */
export const CLOSED_AT = new Date('2026-12-03T04:00:00Z');
/** Dana Reyes, Acme Plumbing Supply (demo CRM). */
export const DANA = '+14155550142';

export function demoTenant(id: 'northwind' | 'northwind-status'): Tenant {
  const t = loadTenants(DEFAULT_TENANTS_FILE).tenants.find((x) => x.id === id);
  if (!t) throw new Error(`no demo tenant ${id}`);
  return t;
}

export function openStore(now: Date): CrmErpStore {
  return new CrmErpStore({ db: ':memory:', now: () => now });
}

/** The real gateway for `tenant` over `store`. */
export async function gatewayFor(tenant: Tenant, store: CrmErpStore): Promise<ToolGateway> {
  return createToolGateway(tenantToolPolicy(tenant), { store });
}

/** Make tools slow: `{ check_atp: { delayMs: 900, result?: timeout } }`. */
export function slowTools(gw: ToolGateway, slow: Record<string, { delayMs: number; result?: ToolResult }>): ToolGateway {
  return {
    listTools: () => gw.listTools(),
    close: () => gw.close(),
    async call(name, args, ctx) {
      const s = slow[name];
      if (!s) return gw.call(name, args, ctx);
      await new Promise((r) => setTimeout(r, s.delayMs));
      return s.result ?? gw.call(name, args, ctx);
    },
  };
}

export function context(tenant: Tenant, tools: ToolGateway, over: Partial<CallContext> = {}): CallContext {
  return { tenant, callId: `call-${Math.random().toString(36).slice(2, 10)}`, ani: DANA, dnis: tenant.dids[0] ?? '', now: OPEN_AT, tools, ...over };
}

export async function collect(it: AsyncIterable<AgentAction>): Promise<AgentAction[]> {
  const out: AgentAction[] = [];
  for await (const a of it) out.push(a);
  return out;
}

/** Everything said (say + filler) joined with spaces. */
export function said(actions: AgentAction[]): string {
  return actions.filter((a) => a.type === 'say' || a.type === 'filler').map((a) => (a as { text: string }).text).join(' ');
}

export function tools(actions: AgentAction[]): Array<{ name: string; args: Record<string, unknown>; result: ToolResult }> {
  return actions.filter((a): a is Extract<AgentAction, { type: 'tool' }> => a.type === 'tool');
}
