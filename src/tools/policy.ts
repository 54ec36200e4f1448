/**
 * Per-tenant tool policy as the gateway enforces it: which MCP tools a tenant's calls may use.
 * The presets and the MCP server shapes come from src/tenants/policy.ts (one source); anything
 * else in `allowedActions` is an exact tool name as the gateway offers it (`crm__order_status`
 * for a prefixed tool), `<server>__*` for every tool of one external server, or `*` for everything.
 */
import { PRESETS, type McpServerConfig } from '../tenants/policy.ts';

export type { McpServerConfig } from '../tenants/policy.ts';

export interface TenantToolPolicy {
  tenantId: string;
  /** Tool names, `<server>__*`, `*`, or the presets `read_only` / `order_placement`. */
  allowedActions: string[];
  /** External MCP servers of this tenant (stdio child processes or streamable HTTP URLs). */
  mcpServers?: McpServerConfig[];
  /** Per-call timeout in ms (a call's own `timeoutMs` wins). @defaultValue 4000 */
  toolTimeoutMs?: number;
}

/** Default per-call tool timeout. @defaultValue 4000 */
export const DEFAULT_TOOL_TIMEOUT_MS = 4000;

/** The compiled allow-list of a tenant. */
export class AllowList {
  private readonly names = new Set<string>();
  readonly label: string;

  constructor(allowed: readonly string[]) {
    for (const a of allowed) {
      const preset = PRESETS[a];
      if (preset) for (const t of preset) this.names.add(t);
      else this.names.add(a);
    }
    if (allowed.includes('*')) this.label = 'all tools';
    else if (allowed.includes('order_placement')) this.label = 'order placement';
    else if (allowed.includes('read_only')) this.label = 'read-only';
    else this.label = allowed.length ? `allowed: ${allowed.join(', ')}` : 'no tools allowed';
  }

  /** Is the tool offered as `exposed` (raw name `raw` on server `server`) allowed? */
  allows(exposed: string, server: string, raw: string): boolean {
    return this.names.has('*') || this.names.has(exposed) || this.names.has(`${server}__${raw}`) || this.names.has(`${server}__*`);
  }
}
