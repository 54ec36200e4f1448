/** Tenant lookup by dialed number. */
import type { Tenant } from './tenant.ts';

/** Strip a leading `+` and visual separators (RFC 3966) so `+1 (800) 555-0100` matches `18005550100`. */
export function normalizeNumber(n: string): string {
  return n.replace(/[\s+\-.()]/g, '');
}

/** Lookup of tenants by dialed number. */
export class TenantDirectory {
  readonly tenants: readonly Tenant[];
  readonly defaultTenant: Tenant | undefined;
  private readonly byDid = new Map<string, Tenant>();

  /** Load-time warnings (prompts a language lacks, filled from the tenant's default language). */
  readonly warnings: readonly string[];

  constructor(tenants: Tenant[], warnings: readonly string[] = []) {
    this.tenants = tenants;
    this.warnings = warnings;
    this.defaultTenant = tenants.find((t) => t.isDefault);
    for (const t of tenants) for (const d of t.dids) this.byDid.set(d, t);
  }

  /**
   * The tenant for a dialed number: exact DID match, else the default tenant, else undefined.
   * Pass the Request-URI user first and the To user second; the first that matches a DID wins.
   */
  lookup(...dialed: (string | undefined | null)[]): { tenant: Tenant; matched: string | null } | undefined {
    for (const d of dialed) {
      if (!d) continue;
      const t = this.byDid.get(normalizeNumber(d));
      if (t) return { tenant: t, matched: normalizeNumber(d) };
    }
    return this.defaultTenant ? { tenant: this.defaultTenant, matched: null } : undefined;
  }

  get size(): number {
    return this.tenants.length;
  }
}
