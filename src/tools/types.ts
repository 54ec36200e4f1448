/** The tool gateway contract the agents code against (implemented by ./gateway.ts). */

export interface ToolSpec { name: string; description: string; inputSchema: Record<string, unknown> /* JSON schema */ }
export interface ToolCallContext {
  tenantId: string;
  callId: string;
  timeoutMs?: number;
  /** argument values the audit log must not show (a calling number the caller withheld) */
  redact?: readonly string[];
}
export type ToolResult =
  | { ok: true; data: Record<string, unknown>; ms: number }
  | { ok: false; error: string; code: 'refused' | 'timeout' | 'failed' | 'unknown_tool'; ms: number };
export interface ToolGateway {
  listTools(): ToolSpec[];
  call(name: string, args: Record<string, unknown>, ctx: ToolCallContext): Promise<ToolResult>;
  close(): Promise<void>;
}
