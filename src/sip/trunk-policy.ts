/**
 * Which trunk a request comes from and what that trunk may do — the one policy both
 * topologies share: the built-in edge asks it before a transaction exists (src/sip-edge via
 * ./sip-guard.ts), the app asks it again as drachtio-srf middleware and per INVITE
 * (./app.ts), so with drachtio-server in front the same rules apply.
 *
 * - **Known sources**: a request's source address (the packet's, never a header) matches a
 *   trunk's `sources`. With no trunk configured at all, loopback (127.0.0.0/8, ::1) is the one
 *   known source — the embedded default: the service on 127.0.0.1, a local SBC or the tests'
 *   SIPp. Binding `sip.address` to a public address without declaring a trunk therefore takes
 *   no calls from outside (a warning at start says so) until trunks are configured or
 *   `sipGuard.unknownSources` is `accept`.
 * - **Unknown sources** (out-of-dialog requests only; a request with a To tag belongs to a
 *   dialog and the UA core answers 481 if it does not): `auto` drops UDP silently and answers
 *   TCP/TLS 403; `drop`; `reject` (403); `accept`.
 * - **Allowed DIDs** (`trunks[].dids`): an INVITE from the trunk to another number → 404.
 * - **Concurrent calls** (`trunks[].maxCalls`): over it → 503 + Retry-After.
 * - **Tenant binding** (`trunks[].tenant`): the trunk's calls go to that tenant whatever the
 *   dialed number.
 */
import ipaddr from 'ipaddr.js';
import { ConfigError, type TrunkSettings } from '../config.ts';
import { didAllowed, type UnknownSourceAction } from './guard-settings.ts';
import { TrunkMatcher } from './identity.ts';

/** What a source address is to us. */
export interface SourceClass {
  /** The trunk whose `sources` list it. */
  trunk?: TrunkSettings;
  /** A trunk's source, or loopback when no trunk is configured. */
  known: boolean;
}

/** What to do with an out-of-dialog request from an unknown source. */
export type UnknownVerdict = 'accept' | 'drop' | 'reject';

export interface TrunkPolicyOptions {
  trunks: readonly TrunkSettings[];
  /** @defaultValue 'auto' */
  unknownSources?: UnknownSourceAction;
}

const LOOPBACK: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [ipaddr.parseCIDR('127.0.0.0/8'), ipaddr.parseCIDR('::1/128')];

/** Whether an address (IPv4, IPv6, IPv4-mapped) is loopback. */
export function isLoopbackAddress(address: string): boolean {
  try {
    const a = ipaddr.process(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
    return LOOPBACK.some(([net, len]) => net.kind() === a.kind() && a.match(net, len));
  } catch {
    return false;
  }
}

/** Source addresses looked up per packet are remembered (bounded: the map is cleared when full). */
const CACHE_MAX = 4096;

export class TrunkPolicy {
  readonly trunks: readonly TrunkSettings[];
  readonly unknownSources: UnknownSourceAction;
  private readonly matcher: TrunkMatcher;
  private readonly cache = new Map<string, SourceClass>();
  /** live calls per trunk name */
  private readonly live = new Map<string, number>();

  constructor(opts: TrunkPolicyOptions) {
    this.trunks = opts.trunks;
    this.unknownSources = opts.unknownSources ?? 'auto';
    this.matcher = new TrunkMatcher(opts.trunks);
  }

  /** The trunk of a source address, and whether the source is known at all. */
  classify(address: string | undefined): SourceClass {
    const key = address ?? '';
    let c = this.cache.get(key);
    if (c) return c;
    const m = this.matcher.match(address);
    c = m.trunk
      ? { trunk: m.trunk, known: true }
      : { known: this.trunks.length === 0 && address !== undefined && isLoopbackAddress(address) };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(key, c);
    return c;
  }

  /** What happens to an out-of-dialog request from an unknown source over `transport`. */
  unknownVerdict(transport: string | undefined): UnknownVerdict {
    switch (this.unknownSources) {
      case 'accept': return 'accept';
      case 'drop': return 'drop';
      case 'reject': return 'reject';
      default: return (transport ?? 'udp').toLowerCase() === 'udp' ? 'drop' : 'reject';
    }
  }

  /** The trunk may call this number (`dialed`: the delivered number in its forms); true when it has no DID list. */
  allowsDialed(trunk: TrunkSettings | undefined, dialed: readonly string[]): boolean {
    if (!trunk?.dids) return true;
    return didAllowed(trunk.dids, dialed);
  }

  /** Live calls from a trunk. */
  callsOf(trunk: string): number {
    return this.live.get(trunk) ?? 0;
  }

  /**
   * Count a new call against its trunk's `maxCalls`. Returns a release function (call it once
   * when the call ends), or null when the trunk is at its limit.
   */
  acquire(trunk: TrunkSettings | undefined): (() => void) | null {
    if (!trunk) return () => undefined;
    const n = this.live.get(trunk.name) ?? 0;
    if (trunk.maxCalls !== undefined && n >= trunk.maxCalls) return null;
    this.live.set(trunk.name, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const m = (this.live.get(trunk.name) ?? 1) - 1;
      if (m > 0) this.live.set(trunk.name, m);
      else this.live.delete(trunk.name);
    };
  }

  /**
   * Warnings worth a line at start-up: a public SIP address with no trunk (only loopback can
   * call), trunks so wide that their sources escape the per-source rate limit.
   */
  startupWarnings(sipAddress: string, trunkRequests: number): string[] {
    const out: string[] = [];
    if (this.trunks.length === 0 && this.unknownSources !== 'accept' && !isLoopbackAddress(sipAddress)) {
      out.push(`no trunk configured: SIP listens on ${sipAddress} but only loopback sources are accepted; declare trunks[] (sources) to take calls from carriers or PBXs`);
    }
    if (this.unknownSources === 'accept') {
      out.push('sipGuard.unknownSources is accept: anyone who reaches the SIP port can place calls (still rate-limited per source)');
    }
    for (const t of this.trunks) {
      const wide = t.sources.filter((s) => {
        const [addr, len] = ipaddr.parseCIDR(s);
        return addr.kind() === 'ipv4' ? len < 16 : len < 32;
      });
      if (wide.length > 0 && trunkRequests === 0) {
        out.push(`trunk ${t.name} lists wide sources (${wide.join(', ')}) and trunk sources are exempt from the per-source rate limit; set sipGuard.rateLimit.trunkRequests${t.auth ? '' : ' and auth'}`);
      }
    }
    return out;
  }
}

/**
 * Every `trunks[].tenant` names a tenant of the tenants file. @throws ConfigError naming the
 * trunk's field.
 */
export function checkTrunkTenants(trunks: readonly TrunkSettings[], tenantIds: readonly string[], source: string): void {
  trunks.forEach((t, i) => {
    if (t.tenant !== undefined && !tenantIds.includes(t.tenant)) {
      throw new ConfigError(source, `trunks[${i}].tenant`, `names tenant "${t.tenant}", which is not in the tenants file (tenants: ${tenantIds.join(', ')})`);
    }
  });
}
