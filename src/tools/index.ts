/**
 * The MCP tool gateway: one per tenant, the only way an agent reaches CRM/ERP tools.
 *
 * types.ts   the contract agents code against (ToolGateway, ToolSpec, ToolResult …)
 * policy.ts  the allow-list the gateway enforces on every listing and call
 * gateway.ts createToolGateway: built-in CRM/ERP server in-process + the tenant's MCP servers
 */
export type { ToolSpec, ToolCallContext, ToolResult, ToolGateway } from './types.ts';
export { DEFAULT_TOOL_TIMEOUT_MS, AllowList, type TenantToolPolicy, type McpServerConfig } from './policy.ts';
export { READ_ONLY_TOOLS, ORDER_PLACEMENT_TOOLS, PRESETS } from '../tenants/policy.ts';
export * from './gateway.ts';
