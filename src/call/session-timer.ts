/**
 * SIP session timers (RFC 4028) for one inbound call. We are the UAS of the initial INVITE.
 *
 * - {@link negotiateInvite}: what the initial INVITE gets — 422 + `Min-SE` when its
 *   `Session-Expires` is below our minimum, 420 when it requires `timer` while timers are off,
 *   otherwise the interval and the refresher for the 200 (`Session-Expires: N;refresher=…`,
 *   `Require: timer` when the caller supports the extension). A caller that does not support
 *   timers still gets `Session-Expires` with `refresher=uas` (§9 allows it): we refresh.
 * - {@link SessionTimer}: the running timer of an answered call. When we are the refresher it
 *   sends a refresh at half the interval (UPDATE without a body when the caller's `Allow` lists
 *   UPDATE, else a re-INVITE with the current SDP); when the caller is, it ends the call once
 *   `interval − min(32, interval/3)` seconds pass without a refresh (§10). Every 2xx to a
 *   re-INVITE or UPDATE in either direction restarts it, with the interval and refresher that
 *   2xx carries.
 *
 * All timing goes through an injectable clock; the call (src/call/call.ts) sends the requests
 * and ends the call.
 */
import type { Logger } from '../ops/log.ts';

/** Session timer policy (config `sessionTimer`). */
export interface SessionTimerPolicy {
  /** Offer/accept session timers at all. @defaultValue true */
  enabled: boolean;
  /** Session interval we ask for, and the most we accept, in seconds. @defaultValue 1800 */
  interval: number;
  /** Smallest interval we accept (seconds); shorter requests get 422 with `Min-SE`. @defaultValue 90 */
  minSE: number;
}

export const SESSION_TIMER_DEFAULTS: Readonly<SessionTimerPolicy> = Object.freeze({ enabled: true, interval: 1800, minSE: 90 });

/** Who sends the refreshes: we (`us`) or the caller (`them`). */
export type Refresher = 'us' | 'them';

/** Anything with SIP headers by name (drachtio-srf requests and responses). */
export interface HeaderSource {
  get?(name: string): string | undefined;
}

/** Negotiated parameters of a call's session timer. */
export interface SessionTimerParams {
  /** Session interval in seconds. */
  interval: number;
  refresher: Refresher;
  /** The caller listed `timer` in Supported or Require. */
  peerSupports: boolean;
  /** The caller's Allow lists UPDATE: we refresh with UPDATE (else re-INVITE). */
  peerAllowsUpdate: boolean;
  /** Our minimum (seconds): in-dialog refreshes below it get 422. */
  minSE: number;
}

/** What the initial INVITE gets. */
export type InviteTimerDecision =
  | { action: 'none' }
  | { action: 'reject'; status: 420 | 422; headers: Record<string, string>; why: string }
  | { action: 'run'; params: SessionTimerParams; headers: Record<string, string> };

function header(h: HeaderSource, name: string): string | undefined {
  try {
    const v = h.get?.(name);
    return typeof v === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** `Session-Expires: delta-seconds [;refresher=uac|uas]` (RFC 4028 §4); undefined when absent or unreadable. */
export function parseSessionExpires(v: string | undefined): { delta: number; refresher?: 'uac' | 'uas' } | undefined {
  if (!v) return undefined;
  const [first, ...params] = v.split(',')[0]!.split(';');
  const delta = parseDelta(first);
  if (delta === undefined) return undefined;
  let refresher: 'uac' | 'uas' | undefined;
  for (const p of params) {
    const m = /^\s*refresher\s*=\s*(uac|uas)\s*$/i.exec(p);
    if (m) refresher = m[1]!.toLowerCase() as 'uac' | 'uas';
  }
  return refresher ? { delta, refresher } : { delta };
}

/** `Min-SE: delta-seconds *(;param)`; undefined when absent or unreadable. */
export function parseMinSE(v: string | undefined): number | undefined {
  return v ? parseDelta(v.split(',')[0]!.split(';')[0]) : undefined;
}

function parseDelta(s: string | undefined): number | undefined {
  const t = (s ?? '').trim();
  if (!/^\d{1,10}$/.test(t)) return undefined;
  const n = Number(t);
  return n > 0 ? n : undefined;
}

/** Option tags of Supported / Require values (comma-separated, any case). */
export function optionTags(v: string | undefined): Set<string> {
  return new Set((v ?? '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean));
}

/** Whether an Allow value lists `method`. */
export function allowsMethod(allow: string | undefined, method: string): boolean {
  return (allow ?? '').split(',').some((m) => m.trim().toUpperCase() === method);
}

/** The peer advertises the `timer` extension in this message. */
export function supportsTimer(h: HeaderSource): boolean {
  return optionTags(header(h, 'Supported')).has('timer') || optionTags(header(h, 'Require')).has('timer');
}

/** The `Session-Expires` value we put in a response to the peer's request (the peer is that transaction's UAC). */
function seValue(interval: number, refresher: Refresher): string {
  return `${interval};refresher=${refresher === 'them' ? 'uac' : 'uas'}`;
}

/**
 * The interval we grant a request: its Session-Expires (we may shorten it to our configured
 * interval, never below its Min-SE or ours), or our interval when it names none.
 */
function grant(se: { delta: number } | undefined, reqMin: number, p: { interval: number; minSE: number }): number {
  const floor = Math.max(p.minSE, reqMin);
  if (!se) return Math.max(p.interval, floor);
  return Math.min(se.delta, Math.max(Math.min(se.delta, p.interval), floor));
}

/**
 * RFC 4028 §9 for the initial INVITE. The refresher is the caller's choice when it names one;
 * when it leaves it open and supports timers, the caller refreshes (it asked for them); a
 * caller without timer support never refreshes, so we do.
 */
export function negotiateInvite(req: HeaderSource, policy: SessionTimerPolicy): InviteTimerDecision {
  const peerSupports = supportsTimer(req);
  if (!policy.enabled) {
    if (optionTags(header(req, 'Require')).has('timer')) {
      return { action: 'reject', status: 420, headers: { Unsupported: 'timer' }, why: 'Require: timer but session timers are off' };
    }
    return { action: 'none' };
  }
  const se = parseSessionExpires(header(req, 'Session-Expires'));
  if (se && se.delta < policy.minSE) {
    return {
      action: 'reject', status: 422, headers: { 'Min-SE': String(policy.minSE) },
      why: `Session-Expires ${se.delta} s is below our minimum ${policy.minSE} s`,
    };
  }
  const interval = grant(se, parseMinSE(header(req, 'Min-SE')) ?? 0, policy);
  let refresher: Refresher = 'us';
  if (peerSupports) refresher = se?.refresher === 'uas' ? 'us' : 'them';
  const headers: Record<string, string> = { 'Session-Expires': seValue(interval, refresher) };
  if (peerSupports) headers.Require = 'timer';
  return {
    action: 'run', headers,
    params: { interval, refresher, peerSupports, peerAllowsUpdate: allowsMethod(header(req, 'Allow'), 'UPDATE'), minSE: policy.minSE },
  };
}

/** The final response to one of our refresh requests. */
export interface RefreshResponse {
  status: number;
  get?(name: string): string | undefined;
}

/** What a call provides to its session timer. */
export interface SessionTimerHooks {
  /**
   * Send a session refresh in the dialog: `UPDATE` without a body, or `INVITE` with the
   * current SDP; both carrying `headers`. Resolves with the final response.
   */
  refresh(method: 'UPDATE' | 'INVITE', headers: Record<string, string>): Promise<RefreshResponse>;
  /** The session expired (no refresh from the caller, or ours kept failing): end the call. */
  expired(why: string): void;
}

/** Timer source (the call's clock). */
export interface TimerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** The peer's re-INVITE / UPDATE seen as a refresh: either refused (422) or the 2xx headers plus what to do once it is sent. */
export type InboundRefresh =
  | { reject: { status: 422; headers: Record<string, string>; why: string } }
  | { headers: Record<string, string>; confirm(): void };

/** The running session timer of one answered call. */
export class SessionTimer {
  /** Current session interval (seconds). */
  interval: number;
  refresher: Refresher;
  /** How refreshes go out; falls back to INVITE when the peer refuses UPDATE. */
  method: 'UPDATE' | 'INVITE';
  /** Refreshes we sent that got a 2xx, refreshes the peer sent that we answered 2xx. */
  readonly counts = { sent: 0, received: 0 };
  private readonly minSE: number;
  private readonly peerSupports: boolean;
  private refreshTimer: unknown = null;
  private expiryTimer: unknown = null;
  private inFlight = false;
  private stopped = true;
  /** bumped on every (re)arm, so a late refresh response of an older round is ignored */
  private round = 0;

  constructor(
    params: SessionTimerParams,
    private readonly hooks: SessionTimerHooks,
    private readonly clock: TimerClock,
    private readonly log?: Logger,
  ) {
    this.interval = params.interval;
    this.refresher = params.refresher;
    this.method = params.peerAllowsUpdate ? 'UPDATE' : 'INVITE';
    this.minSE = params.minSE;
    this.peerSupports = params.peerSupports;
  }

  /** ms after the last refresh at which the session counts as expired: interval − min(32, interval/3) s (§10). */
  get expiresAfterMs(): number {
    return Math.round((this.interval - Math.min(32, this.interval / 3)) * 1000);
  }

  /** Start (the 200 to the INVITE went out). */
  start(): void {
    this.stopped = false;
    this.arm();
  }

  /** Stop for good (the call ended). */
  stop(): void {
    this.stopped = true;
    this.clear();
  }

  /**
   * The peer's re-INVITE or UPDATE (§9, UAS of a refresh): 422 when its Session-Expires is
   * below our Min-SE; otherwise the headers for our 2xx, and `confirm()` to call once the
   * 2xx is sent (restarts the timer with the granted interval and refresher).
   */
  inbound(req: HeaderSource): InboundRefresh {
    const se = parseSessionExpires(header(req, 'Session-Expires'));
    if (se && se.delta < this.minSE) {
      return {
        reject: {
          status: 422, headers: { 'Min-SE': String(this.minSE) },
          why: `Session-Expires ${se.delta} s is below our minimum ${this.minSE} s`,
        },
      };
    }
    const supports = supportsTimer(req) || (this.peerSupports && se !== undefined);
    const interval = grant(se, parseMinSE(header(req, 'Min-SE')) ?? 0, { interval: this.interval, minSE: this.minSE });
    let refresher: Refresher = 'us';
    if (supports) refresher = se?.refresher === 'uac' ? 'them' : se?.refresher === 'uas' ? 'us' : this.refresher;
    const headers: Record<string, string> = { 'Session-Expires': seValue(interval, refresher), Supported: 'timer' };
    if (supports) headers.Require = 'timer';
    return {
      headers,
      confirm: () => {
        if (this.stopped) return;
        this.counts.received++;
        this.interval = interval;
        this.refresher = refresher;
        this.log?.debug('session refreshed by the caller', { interval, refresher });
        this.arm();
      },
    };
  }

  private clear(): void {
    if (this.refreshTimer !== null) this.clock.clearTimeout(this.refreshTimer);
    if (this.expiryTimer !== null) this.clock.clearTimeout(this.expiryTimer);
    this.refreshTimer = this.expiryTimer = null;
  }

  /** (Re)start both deadlines from now. */
  private arm(): void {
    this.clear();
    if (this.stopped) return;
    const round = ++this.round;
    if (this.refresher === 'us') {
      this.refreshTimer = this.clock.setTimeout(() => {
        this.refreshTimer = null;
        void this.sendRefresh(round);
      }, Math.round((this.interval * 1000) / 2));
    }
    this.expiryTimer = this.clock.setTimeout(() => {
      this.expiryTimer = null;
      if (this.stopped) return;
      this.stopped = true;
      this.clear();
      const why = this.refresher === 'them'
        ? `no session refresh from the caller within ${this.expiresAfterMs / 1000} s (Session-Expires ${this.interval})`
        : `our session refreshes failed (Session-Expires ${this.interval})`;
      this.log?.info('session timer expired', { interval: this.interval, refresher: this.refresher, why });
      this.hooks.expired(why);
    }, this.expiresAfterMs);
  }

  /** Our refresh (§7.4 / §10): Session-Expires with refresher=uac (we keep refreshing), Min-SE, Supported. */
  private async sendRefresh(round: number, attempt = 0): Promise<void> {
    if (this.stopped || round !== this.round || this.inFlight) return;
    this.inFlight = true;
    const method = this.method;
    const headers = { 'Session-Expires': `${this.interval};refresher=uac`, 'Min-SE': String(this.minSE), Supported: 'timer' };
    let res: RefreshResponse;
    try {
      res = await this.hooks.refresh(method, headers);
    } catch (err) {
      this.inFlight = false;
      this.log?.warn('session refresh not sent', { method, err: err as Error });
      return; // the expiry deadline still stands
    } finally {
      this.inFlight = false;
    }
    if (this.stopped || round !== this.round) return;
    const status = res.status;
    if (status >= 200 && status < 300) {
      const se = parseSessionExpires(header(res, 'Session-Expires'));
      if (se) {
        this.interval = se.delta;
        this.refresher = se.refresher === 'uas' ? 'them' : 'us';
      }
      this.counts.sent++;
      this.log?.debug('session refreshed', { method, interval: this.interval, refresher: this.refresher });
      this.arm();
      return;
    }
    if (attempt >= 3) {
      this.log?.warn('session refresh failed', { method, status, attempts: attempt + 1 });
      return;
    }
    if (status === 422) {
      const min = parseMinSE(header(res, 'Min-SE'));
      if (min !== undefined && min > this.interval) {
        this.interval = min;
        this.log?.info('session refresh: 422, retrying with the peer\'s Min-SE', { interval: min });
        return this.sendRefresh(round, attempt + 1);
      }
    } else if ((status === 405 || status === 501 || status === 420) && method === 'UPDATE') {
      this.method = 'INVITE';
      this.log?.info('session refresh: UPDATE refused, refreshing with re-INVITE from now on', { status });
      return this.sendRefresh(round, attempt + 1);
    } else if (status === 491) {
      // request glare (RFC 3261 §14.1): we do not own the Call-ID, so retry within 0-2 s
      const wait = Math.floor(Math.random() * 2000);
      this.refreshTimer = this.clock.setTimeout(() => {
        this.refreshTimer = null;
        void this.sendRefresh(round, attempt + 1);
      }, wait);
      return;
    }
    this.log?.warn('session refresh failed', { method, status });
  }
}
