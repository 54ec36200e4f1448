/** Which agent answers a call (LLM when configured, else rules) and the tenant's gateway policy. */
import type { Tenant } from '../tenants/index.ts';
import type { Agent, CallContext, TenantToolPolicy } from './types.ts';
import { RulesAgent, type RulesAgentOptions } from './rules.ts';
import { LlmAgent, type LlmAgentOptions } from './llm.ts';

/** Default model when neither the tenant nor OPENAI_MODEL names one. @defaultValue 'gpt-4o-mini' */
export const DEFAULT_LLM_MODEL = 'gpt-4o-mini';
/** Base URL used when only an API key is configured. @defaultValue 'https://api.openai.com/v1' */
export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** The LLM endpoint for a tenant, or undefined when the rules agent should answer. */
export function llmSettings(tenant: Tenant, env: NodeJS.ProcessEnv = process.env): { baseURL: string; apiKey: string; model: string } | undefined {
  if (!tenant.llm.enabled) return undefined;
  const baseURL = tenant.llm.baseUrl ?? env.OPENAI_BASE_URL;
  const apiKey = env[tenant.llm.apiKeyEnv ?? 'OPENAI_API_KEY'] ?? '';
  if (!baseURL && !apiKey) return undefined;
  return { baseURL: baseURL ?? DEFAULT_OPENAI_BASE_URL, apiKey, model: tenant.llm.model ?? env.OPENAI_MODEL ?? DEFAULT_LLM_MODEL };
}

/** The gateway policy for a tenant (what src/tools createToolGateway takes). */
export function tenantToolPolicy(tenant: Tenant): TenantToolPolicy {
  return {
    tenantId: tenant.id,
    allowedActions: tenant.actions,
    ...(tenant.mcpServers.length ? { mcpServers: tenant.mcpServers } : {}),
    ...(tenant.toolTimeoutMs ? { toolTimeoutMs: tenant.toolTimeoutMs } : {}),
  };
}

/** The LLM agent when one is configured for the tenant (or in env), else the rules agent. */
export function createAgent(
  ctx: CallContext,
  opts: { env?: NodeJS.ProcessEnv; llm?: Partial<LlmAgentOptions>; rules?: RulesAgentOptions } = {},
): Agent {
  const llm = llmSettings(ctx.tenant, opts.env);
  if (llm) return new LlmAgent(ctx, { ...llm, ...opts.llm });
  return new RulesAgent(ctx, opts.rules);
}
