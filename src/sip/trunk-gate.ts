/**
 * The app's gate for out-of-dialog requests, as drachtio-srf middleware — the same rules over
 * the built-in edge and drachtio-server:
 *
 * 1. the SIP guard (./sip-guard.ts), only when no built-in edge ran it already (drachtio-server
 *    topology): unknown sources, per-source rate limit and bans, scanners, message limits;
 * 2. digest authentication of INVITEs from trunks with `auth` (./digest-auth.ts): 401/407
 *    challenge, 403 on bad credentials;
 * 3. an INVITE from a trunk with `dids` to another number → 404;
 * 4. a trunk at its `maxCalls` → 503 + Retry-After; otherwise the INVITE takes one of the
 *    trunk's call slots, which {@link takeTrunkSlot} hands to the call (released when it ends)
 *    — or, when no call comes of the INVITE, the app releases it.
 *
 * Refusals are counted here (`voice_agent_invites_rejected_total{reason}`: `auth-challenge`,
 * `auth-stale`, `auth`, `did`, `trunk-calls`; the guard counts its own) and logged; a request
 * refused here goes no further down the middleware chain.
 */
import type { TrunkSettings } from '../config.ts';
import { logger, type Logger } from '../ops/log.ts';
import { metrics } from '../ops/metrics.ts';
import { authReason, digestMiddleware, type AuthSrfRequest, type AuthSrfResponse, type DigestAuthenticator } from './digest-auth.ts';
import { readCallIdentity, TrunkMatcher } from './identity.ts';
import { RejectionLog, type SipGuard, type SrfLikeRequest } from './sip-guard.ts';
import type { TrunkPolicy } from './trunk-policy.ts';

/** What the gate reads of a drachtio-srf request. */
export interface GateRequest extends SrfLikeRequest, AuthSrfRequest {
  uri: string;
  get(h: string): string | undefined;
}
type Next = (err?: unknown) => void;
type Middleware = (req: GateRequest, res: AuthSrfResponse, next: Next) => void;

export interface TrunkGateOptions {
  policy: TrunkPolicy;
  /** Digest authentication (trunks with `auth`). */
  digest: DigestAuthenticator;
  /** The SIP guard, when the app must run it (drachtio-server topology). @defaultValue none */
  guard?: SipGuard;
  /** For the DIDs: national numbers in this country when the trunk names none. @defaultValue 'US' */
  defaultCountry?: TrunkSettings['country'];
  /** Seconds per rejection log line per source and reason. @defaultValue 60 */
  logIntervalSeconds?: number;
  log?: Logger;
}

/** The call slot an INVITE holds on its trunk (see {@link TrunkPolicy.acquire}). */
const slots = new WeakMap<object, () => void>();

/**
 * Take the trunk slot of an INVITE: the caller owns it from now on (call the function once
 * when the call ends). Undefined when the INVITE holds none (no trunk, or already taken).
 */
export function takeTrunkSlot(req: object): (() => void) | undefined {
  const release = slots.get(req);
  slots.delete(req);
  return release;
}

/** The middleware chain of the gate (install with `srf.use(...)`, before anything that answers). */
export function trunkGate(o: TrunkGateOptions): Middleware[] {
  const log = o.log ?? logger('sip');
  const failures = new RejectionLog(log, (o.logIntervalSeconds ?? 60) * 1000);
  const chain: Middleware[] = [];
  if (o.guard) chain.push(o.guard.middleware() as Middleware);
  if (o.policy.trunks.some((t) => t.auth)) {
    chain.push(digestMiddleware((a) => o.policy.classify(a).trunk, o.digest, {
      onRefuse: (_res, reason) => metrics.invitesRejected.inc({ reason }),
      note: (req, trunk, out) => {
        if (out.why === 'no-credentials') return; // the normal first challenge of every call
        failures.note(`${req.source_address}|${authReason(out)}`, 'INVITE failed digest authentication', () => ({
          trunk, why: out.why, status: out.status, source: `${req.protocol ?? 'udp'}/${req.source_address}:${req.source_port}`,
          ua: req.get('User-Agent')?.slice(0, 120),
        }));
      },
    }) as Middleware);
  }
  if (o.policy.trunks.some((t) => t.dids || t.maxCalls !== undefined)) {
    const matcher = new TrunkMatcher(o.policy.trunks, o.defaultCountry ?? 'US');
    chain.push((req, res, next) => {
      if (req.method !== 'INVITE') return next();
      const trunk = o.policy.classify(req.source_address).trunk;
      if (!trunk) return next();
      const source = `${req.protocol ?? 'udp'}/${req.source_address}:${req.source_port}`;
      if (trunk.dids && !o.policy.allowsDialed(trunk, readCallIdentity(req, matcher).dialed)) {
        metrics.invitesRejected.inc({ reason: 'did' });
        log.warn('rejecting INVITE: 404, number not allowed on this trunk', { callId: req.get('Call-ID'), to: req.uri, source, trunk: trunk.name });
        res.send(404, { headers: { Reason: 'SIP;cause=404;text="number not served on this trunk"' } });
        return;
      }
      const release = o.policy.acquire(trunk);
      if (!release) {
        metrics.invitesRejected.inc({ reason: 'trunk-calls' });
        log.warn('rejecting INVITE: 503, trunk at its call limit', { callId: req.get('Call-ID'), source, trunk: trunk.name, maxCalls: trunk.maxCalls });
        res.send(503, { headers: { 'Retry-After': '5', Reason: `SIP;cause=503;text="trunk ${trunk.name} is at its limit of ${trunk.maxCalls} calls"` } });
        return;
      }
      slots.set(req, release);
      next();
    });
  }
  return chain;
}
