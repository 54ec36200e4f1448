/**
 * Tenant configuration: who answers which dialed number, with what prompts, voice and policy.
 *
 * tenant.ts    the Tenant shape, defaults, promptsFor (the one language fallback)
 * policy.ts    action presets, action rules, MCP server configs (what the tool gateway enforces)
 * load.ts      tenants.yaml → validated tenants; every error names the file and field path
 * directory.ts lookup by dialed number
 */
export * from './tenant.ts';
export * from './policy.ts';
export { TenantDirectory, normalizeNumber } from './directory.ts';
export { parseTenants, loadTenants } from './load.ts';
export * from './languages.ts';
