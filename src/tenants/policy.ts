/**
 * The one source of a tenant's tool policy: the action presets (which built-in CRM/ERP tools
 * each preset allows) and the shape of the tenant's own MCP servers. The tenant YAML is
 * validated against these (./load.ts) and the tool gateway (src/tools) enforces them.
 *
 * `actions` in tenants.yaml may list presets, exact tool names as the gateway offers them
 * (`order_status`, `crm__order_status` for a prefixed tool), `<server>__*` for every tool of
 * one MCP server, or `*` for everything.
 */

/** Tools a read-only tenant may use: look-ups, record keeping (cases, activities) and routing — no orders. */
export const READ_ONLY_TOOLS = [
  'identify_caller', 'find_sku', 'last_orders', 'check_atp', 'order_status', 'business_hours', 'create_case', 'route_request',
  'log_activity',
] as const;

/** Tools of a tenant that takes orders by phone: the read-only set plus place_order. */
export const ORDER_PLACEMENT_TOOLS = [...READ_ONLY_TOOLS, 'place_order'] as const;

/** Action presets and the tools each expands to. */
export const PRESETS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  read_only: READ_ONLY_TOOLS,
  order_placement: ORDER_PLACEMENT_TOOLS,
});

/** Names of the action presets. */
export const ACTION_PRESETS = Object.keys(PRESETS) as readonly string[];

/** An action rule: a preset, a tool name, `<server>__*` or `*`. */
export const ACTION_RULE = /^(?:\*|[a-z0-9][a-z0-9_-]{0,63}__\*|[A-Za-z][A-Za-z0-9_.-]{0,63})$/;

/** An MCP server a tenant's gateway connects to (beside the built-in CRM/ERP server). */
export type McpServerConfig =
  /** A child process speaking MCP on stdin/stdout; it inherits only PATH/HOME/USER/SHELL/TERM/LOGNAME plus `env`. */
  | { name: string; transport: 'stdio'; command: string; args?: string[]; env?: Record<string, string>; cwd?: string }
  /** A streamable HTTP MCP endpoint; `headers` (e.g. authorization) go with every request and are never logged. */
  | { name: string; transport: 'http'; url: string; headers?: Record<string, string> };
