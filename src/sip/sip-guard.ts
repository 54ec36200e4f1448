/**
 * The SIP guard: flood, scanner and access defence in front of everything else, shared by
 * both topologies.
 *
 * - **Built-in edge**: src/sip-edge calls {@link SipGuard.screenSource} for every datagram /
 *   framed stream message before parsing it, and {@link SipGuard.screenMessage} after
 *   parsing, before any transaction or dialog exists — the cheapest place, which also
 *   protects the edge itself from floods. The edge carries the verdict out (nothing, a
 *   response, or closing the connection).
 * - **drachtio-server**: {@link SipGuard.middleware} runs the same checks as drachtio-srf
 *   middleware in the app. drachtio-server has answered `100 Trying` and holds a transaction
 *   by then, so a request that the edge would drop silently is answered `403` here (an
 *   unanswered transaction would stay open in drachtio-server); silent discarding belongs in
 *   drachtio-server's own `<spammers action="discard">` (sip-config/drachtio.conf.xml) and
 *   the firewall.
 *
 * Checks, in order:
 * 1. **Ban** (per source address; IPv6 per /64): a banned source's packets are dropped before
 *    parsing (a TCP/TLS connection is closed). `sip_dropped_total{reason="banned"}`.
 * 2. **Rate limit** (Kamailio pike-like, rate-limiter-flexible): every request counts; more
 *    than `rateLimit.requests` within `rateLimit.seconds` bans the source for
 *    `rateLimit.banSeconds` (`sip_bans_total`, a warn line). Trunk sources are exempt (or
 *    limited by `trunkRequests`); so is loopback while no trunk is configured. With
 *    `REDIS_URL` the counts live in Redis (RateLimiterRedis, a memory limiter as insurance
 *    while Redis is down), so a source banned on one node is banned on all. The limiter
 *    answers asynchronously: the request that crosses the limit still passes, the next is
 *    dropped.
 * 3. **Scanners**: a User-Agent containing one of `scanners` → dropped silently
 *    (`reason="scanner"`).
 * 4. **ACL**: an out-of-dialog request (no To tag) from an unknown source → dropped
 *    (`reason="acl"`) or 403 (`sip_refused_total{reason="acl"}`, and for an INVITE
 *    `invites_rejected_total{reason="acl"}`), per `unknownSources` and transport.
 * 5. **Limits**: message bytes → 513, body bytes → 413, header fields or a header's length → 400,
 *    the phrase and a log line naming the limit.
 * ACKs are never answered. Responses (to our own requests) are only subject to the ban.
 *
 * Every rejection is logged rate-limited: the first per source and reason at once, then one
 * line per `logIntervalSeconds` with the count, carrying the source and User-Agent.
 */
import ipaddr from 'ipaddr.js';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { logger, type Logger } from '../ops/log.ts';
import { metrics, registerCollector, sipMethodLabel } from '../ops/metrics.ts';
import type { SipGuardSettings } from './guard-settings.ts';
import type { SourceClass, TrunkPolicy } from './trunk-policy.ts';

/** What to do with a message. */
export type GuardVerdict =
  | { action: 'drop'; reason: string }
  /** a stream (TCP/TLS) source that must go: drop and close its connection */
  | { action: 'close'; reason: string }
  | { action: 'reject'; reason: string; status: number; phrase: string; detail: string };

/** A parsed request as the guard sees it (the edge's SipMessage or a drachtio-srf request). */
export interface GuardRequest {
  address: string;
  port?: number;
  /** udp, tcp, tls, ws … */
  transport: string;
  method: string;
  userAgent?: string | undefined;
  /** has a To tag (belongs to a dialog) */
  inDialog: boolean;
  /** whole message */
  bytes: number;
  bodyBytes: number;
  headerCount: number;
  /** the longest header field line */
  longestHeader?: { name: string; bytes: number } | undefined;
}

export interface SipGuardOptions {
  /** Redis for shared counts and bans. @defaultValue process.env.REDIS_URL (none: per node) */
  redisUrl?: string;
  /** @defaultValue Date.now */
  now?: () => number;
  log?: Logger;
  /** Register the `sip_banned_sources` gauge. @defaultValue true */
  collector?: boolean;
}

/** The rate-limit key of an address: the address, for IPv6 its /64. */
export function sourceKey(address: string): string {
  try {
    const a = ipaddr.process(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
    if (a.kind() === 'ipv6') {
      const parts = (a as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
      return `${parts.join(':')}::/64`;
    }
    return a.toString();
  } catch {
    return address;
  }
}

/** User-Agent of a raw message (only read when a log line is written). */
export function rawUserAgent(data: Buffer | string): string | undefined {
  const head = typeof data === 'string' ? data.slice(0, 4096) : data.toString('latin1', 0, Math.min(data.length, 4096));
  const m = /\r?\n(?:user-agent|server)[ \t]*:[ \t]*([^\r\n]*)/i.exec(head);
  return m ? m[1]!.slice(0, 120) : undefined;
}

interface LogEntry { msg: string; last: number; pending: number; total: number; fields: Record<string, unknown>; logged: number }

/**
 * Rejection log lines, rate-limited: the first per key at once, then one line per interval
 * with the count of what happened since. At most `maxKeys` keys; beyond that events are
 * summed into one overflow line.
 */
export class RejectionLog {
  private readonly entries = new Map<string, LogEntry>();
  private overflow = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly log: Logger, private readonly intervalMs: number, private readonly now: () => number = Date.now, private readonly maxKeys = 10_000) {}

  /** One rejection; `fields` is only called when a line is written. */
  note(key: string, msg: string, fields: () => Record<string, unknown>): void {
    const now = this.now();
    const e = this.entries.get(key);
    if (e) {
      e.total++;
      e.last = now;
      if (now - e.logged >= this.intervalMs) {
        this.emit(e, e.pending + 1);
        e.logged = now;
        e.pending = 0;
      } else e.pending++;
      return;
    }
    if (this.entries.size >= this.maxKeys) {
      this.overflow++;
      return;
    }
    const f = fields();
    this.entries.set(key, { msg, last: now, pending: 0, total: 1, fields: f, logged: now });
    this.log.warn(msg, { ...f, count: 1 });
    this.timer ??= setInterval(() => this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  private emit(e: LogEntry, count: number): void {
    this.log.warn(e.msg, { ...e.fields, count, total: e.total, perSeconds: Math.round(this.intervalMs / 1000) });
  }

  /** Lines for what was held back; forget keys quiet for two intervals. */
  sweep(): void {
    const now = this.now();
    for (const [k, e] of this.entries) {
      if (e.pending > 0 && now - e.logged >= this.intervalMs) {
        this.emit(e, e.pending);
        e.pending = 0;
        e.logged = now;
      } else if (e.pending === 0 && now - e.last >= 2 * this.intervalMs) this.entries.delete(k);
    }
    if (this.overflow > 0) {
      this.log.warn('SIP requests rejected from more sources than the log tracks', { count: this.overflow, perSeconds: Math.round(this.intervalMs / 1000) });
      this.overflow = 0;
    }
    if (this.entries.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

const DROP_MSG = 'SIP request dropped';
const REFUSE_MSG = 'SIP request refused';
/** Local bans remembered at most (a flood of spoofed sources cannot grow the table without bound). */
const MAX_BANS = 100_000;

export class SipGuard {
  readonly policy: TrunkPolicy;
  readonly settings: SipGuardSettings;
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly rejections: RejectionLog;
  /** source key → banned until (ms) */
  private readonly bans = new Map<string, number>();
  private readonly limiter: RateLimiterAbstract | null;
  private readonly trunkLimiter: RateLimiterAbstract | null;
  private readonly redis: Redis | null = null;
  private readonly scanners: string[];
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(settings: SipGuardSettings, policy: TrunkPolicy, opts: SipGuardOptions = {}) {
    this.settings = settings;
    this.policy = policy;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? logger('sip-guard');
    this.rejections = new RejectionLog(this.log, settings.logIntervalSeconds * 1000, this.now);
    this.scanners = settings.scanners.map((s) => s.toLowerCase());
    const rl = settings.rateLimit;
    const redisUrl = opts.redisUrl ?? process.env.REDIS_URL;
    if (redisUrl && (rl.requests > 0 || rl.trunkRequests > 0)) {
      this.redis = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
      this.redis.on('error', (err: Error) => this.log.debug('rate-limit Redis error (the in-memory limiter stands in)', { err }));
    }
    const make = (points: number, prefix: string): RateLimiterAbstract | null => {
      if (points <= 0) return null;
      const base = { points, duration: rl.seconds, blockDuration: rl.banSeconds, keyPrefix: prefix };
      const memory = new RateLimiterMemory(base);
      if (!this.redis) return memory;
      return new RateLimiterRedis({ ...base, storeClient: this.redis, insuranceLimiter: memory, inMemoryBlockOnConsumed: points + 1, inMemoryBlockDuration: rl.banSeconds });
    };
    this.limiter = make(rl.requests, 'va-sip');
    this.trunkLimiter = make(rl.trunkRequests, 'va-sip-trunk');
    if (opts.collector !== false) registerCollector('sip_banned_sources', 'Source addresses banned right now (this node)', 'gauge', () => this.bannedCount);
  }

  /** Sources banned right now. */
  get bannedCount(): number {
    const now = this.now();
    let n = 0;
    for (const until of this.bans.values()) if (until > now) n++;
    return n;
  }

  /** Whether a source is banned right now. */
  isBanned(address: string): boolean {
    const until = this.bans.get(sourceKey(address));
    return until !== undefined && until > this.now();
  }

  /** Lift every ban (tests, an operator's reset). */
  clearBans(): void {
    this.bans.clear();
  }

  /**
   * Before parsing: drop packets of banned sources; count requests against the rate limit.
   * `data` is only read for the User-Agent of a log line. Null: go on.
   */
  screenSource(address: string, transport: string, isRequest: boolean, data?: Buffer | string): GuardVerdict | null {
    return this.source(address, transport, isRequest, data, undefined);
  }

  /** {@link screenSource}; `answered`: the method of a request the caller will answer 403 (middleware). */
  private source(address: string, transport: string, isRequest: boolean, data: Buffer | string | undefined, answered: string | undefined): GuardVerdict | null {
    const key = sourceKey(address);
    const until = this.bans.get(key);
    if (until !== undefined) {
      if (until > this.now()) {
        const v: GuardVerdict = { action: transport === 'udp' ? 'drop' : 'close', reason: 'banned' };
        this.count(v, answered);
        this.rejections.note(`${key}|banned`, DROP_MSG, () => ({ reason: 'banned', source: `${transport}/${address}`, ua: data ? rawUserAgent(data) : undefined, untilIso: new Date(until).toISOString() }));
        return v;
      }
      this.bans.delete(key);
    }
    if (isRequest) this.consume(key, address, this.policy.classify(address), data);
    return null;
  }

  private consume(key: string, address: string, cls: SourceClass, data?: Buffer | string): void {
    const limiter = cls.known ? this.trunkLimiter : this.limiter;
    if (!limiter) return;
    limiter.consume(key).catch((res: unknown) => {
      if (!(res instanceof RateLimiterRes)) return; // store error with no insurance: let it pass
      this.ban(key, address, res.msBeforeNext > 0 ? res.msBeforeNext : this.settings.rateLimit.banSeconds * 1000, res.consumedPoints, data);
    });
  }

  private ban(key: string, address: string, ms: number, consumed: number, data?: Buffer | string): void {
    if (this.closed || ms <= 0) return;
    const now = this.now();
    const known = this.bans.get(key);
    if (known !== undefined && known > now) return;
    if (this.bans.size >= MAX_BANS) {
      for (const [k, u] of this.bans) if (u <= now) this.bans.delete(k);
      if (this.bans.size >= MAX_BANS) this.bans.delete(this.bans.keys().next().value!);
    }
    this.bans.set(key, now + ms);
    metrics.sipBans.inc();
    const rl = this.settings.rateLimit;
    this.log.warn('SIP source banned: request rate over the limit', {
      source: key, address, requests: consumed, limit: `${rl.requests}/${rl.seconds}s`, banSeconds: Math.round(ms / 1000),
      ua: data ? rawUserAgent(data) : undefined, shared: this.redis ? 'redis' : undefined,
    });
    this.sweepTimer ??= setInterval(() => this.sweep(), 10_000);
    this.sweepTimer.unref();
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, u] of this.bans) if (u <= now) this.bans.delete(k);
    if (this.bans.size === 0 && this.sweepTimer) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = null;
    }
  }

  /** After parsing, before any transaction: scanners, ACL, limits. Null: go on. */
  screenMessage(r: GuardRequest): GuardVerdict | null {
    const v = this.judge(r);
    if (v) this.reject(v, r, false);
    return v;
  }

  private judge(r: GuardRequest): GuardVerdict | null {
    const ack = r.method === 'ACK';
    const ua = r.userAgent?.toLowerCase();
    if (ua && this.scanners.some((s) => ua.includes(s))) return { action: 'drop', reason: 'scanner' };
    if (!r.inDialog) {
      const cls = this.policy.classify(r.address);
      if (!cls.known) {
        const verdict = this.policy.unknownVerdict(r.transport);
        if (verdict === 'drop' || (verdict === 'reject' && ack)) return { action: 'drop', reason: 'acl' };
        if (verdict === 'reject') return { action: 'reject', reason: 'acl', status: 403, phrase: 'Forbidden', detail: 'source address is not an allowed trunk' };
      }
    }
    const l = this.settings.limits;
    const limit = (reason: string, status: number, phrase: string, detail: string): GuardVerdict =>
      ack ? { action: 'drop', reason } : { action: 'reject', reason, status, phrase, detail };
    if (r.bytes > l.maxMessageBytes) return limit('message-size', 513, 'Message Too Large', `message of ${r.bytes} bytes is over the limit of ${l.maxMessageBytes} (sipGuard.limits.maxMessageBytes)`);
    if (r.bodyBytes > l.maxBodyBytes) return limit('body-size', 413, 'Request Entity Too Large', `body of ${r.bodyBytes} bytes is over the limit of ${l.maxBodyBytes} (sipGuard.limits.maxBodyBytes)`);
    if (r.headerCount > l.maxHeaders) return limit('header-count', 400, 'Bad Request', `${r.headerCount} header fields are over the limit of ${l.maxHeaders} (sipGuard.limits.maxHeaders)`);
    if (r.longestHeader && r.longestHeader.bytes > l.maxHeaderBytes) {
      return limit('header-size', 400, 'Bad Request', `header ${r.longestHeader.name} of ${r.longestHeader.bytes} bytes is over the limit of ${l.maxHeaderBytes} (sipGuard.limits.maxHeaderBytes)`);
    }
    return null;
  }

  /** Count a verdict: a response (`reject`, or any verdict the middleware answers: `answered` = its method) or a drop. */
  private count(v: GuardVerdict, answered: string | undefined): void {
    const method = v.action === 'reject' ? answered ?? '' : answered;
    if (method !== undefined && method !== 'ACK') {
      const m = sipMethodLabel(method);
      metrics.sipRefused.inc({ reason: v.reason, method: m });
      if (m === 'INVITE') metrics.invitesRejected.inc({ reason: v.reason });
    } else metrics.sipDropped.inc({ reason: v.reason });
  }

  private reject(v: GuardVerdict, r: GuardRequest, answered: boolean): void {
    this.count(v, v.action === 'reject' || answered ? r.method : undefined);
    const key = `${sourceKey(r.address)}|${v.reason}`;
    this.rejections.note(key, v.action === 'reject' ? REFUSE_MSG : DROP_MSG, () => ({
      reason: v.reason, source: `${r.transport}/${r.address}${r.port ? `:${r.port}` : ''}`, method: r.method,
      ua: r.userAgent?.slice(0, 120), ...(v.action === 'reject' ? { status: v.status, limit: v.detail } : {}),
    }));
  }

  /**
   * The same checks as drachtio-srf middleware (drachtio-server topology). A verdict that
   * would be a silent drop at the built-in edge is answered 403 here (see the module note);
   * ACKs are never answered. `onRefuse` lets the app name the reason it counts.
   */
  middleware(onRefuse?: (res: unknown, reason: string) => void): (req: SrfLikeRequest, res: SrfLikeResponse, next: (err?: unknown) => void) => void {
    return (req, res, next) => {
      const address = req.source_address ?? '';
      const transport = (req.protocol ?? 'udp').toLowerCase();
      const raw = typeof req.raw === 'string' ? req.raw : '';
      let v = this.source(address, transport, true, raw, req.method);
      if (!v) {
        const r = srfGuardRequest(req, raw, address, transport);
        v = this.judge(r);
        if (v) this.reject(v, r, true);
      }
      if (!v) return next();
      if (req.method === 'ACK') return;
      const status = v.action === 'reject' ? v.status : 403;
      const text = v.action === 'reject' ? v.detail : v.reason === 'banned' ? 'source banned' : v.reason === 'scanner' ? 'forbidden' : 'source address is not an allowed trunk';
      onRefuse?.(res, v.reason);
      res.send(status, { headers: { Reason: `SIP;cause=${status};text="${text.replace(/["\\]/g, "'")}"` } });
    };
  }

  close(): void {
    this.closed = true;
    this.rejections.close();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.redis?.disconnect();
  }
}

/** The parts of a drachtio-srf request the middleware reads. */
export interface SrfLikeRequest {
  method: string;
  source_address?: string;
  source_port?: number;
  protocol?: string;
  raw?: string;
  body?: string;
  get(h: string): string | undefined;
}
export interface SrfLikeResponse {
  send(status: number, opts?: { headers?: Record<string, string> }): unknown;
}

/** A drachtio-srf request as a {@link GuardRequest} (sizes from its raw text). */
export function srfGuardRequest(req: SrfLikeRequest, raw: string, address: string, transport: string): GuardRequest {
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = headEnd >= 0 ? raw.slice(0, headEnd) : raw;
  const lines = head.split('\r\n').slice(1);
  let longest: { name: string; bytes: number } | undefined;
  for (const l of lines) {
    if (!longest || l.length > longest.bytes) longest = { name: l.slice(0, Math.max(0, l.indexOf(':'))).trim() || '?', bytes: l.length };
  }
  const to = req.get('To') ?? '';
  return {
    address, ...(req.source_port ? { port: req.source_port } : {}), transport, method: req.method,
    userAgent: req.get('User-Agent'), inDialog: /;\s*tag=/i.test(to),
    bytes: Buffer.byteLength(raw), bodyBytes: headEnd >= 0 ? Buffer.byteLength(raw) - headEnd - 4 : Buffer.byteLength(req.body ?? ''),
    headerCount: lines.length, longestHeader: longest,
  };
}
