/**
 * The tool gateway contract the agents code against, re-exported from src/tools (the shapes
 * are fixed by the contract between src/tools, src/crm-erp and src/agent).
 */
export type { ToolSpec, ToolCallContext, ToolResult, ToolGateway, TenantToolPolicy } from '../tools/index.ts';
