/**
 * Rep console authentication: password hashes, per-rep login links, signed short-lived
 * screen-pop links, sessions and the failed-login limiter. All in memory, all node:crypto.
 *
 * Why node:crypto and not bcryptjs / jose:
 * - passwords: `crypto.scrypt` runs in libuv's thread pool, so checking a password never
 *   blocks the event loop that paces signalling and feeds admission control (bcryptjs is
 *   pure JavaScript on the main thread). Hashes are PHC strings,
 *   `$scrypt$ln=15,r=8,p=3$<salt>$<hash>` (base64 without padding), the OWASP-equivalent
 *   cost of N=2^15, r=8, p=3 (32 MiB, a few hundred ms on one core).
 * - pop links: the process that mints a link is the one that checks it (the pops are in
 *   its memory and die with it), so an HMAC over `pop id + expiry` with a per-process random
 *   key is all a link needs; a JWT would triple the length of a SIP header for nothing.
 */
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ConsoleRep } from './settings.ts';
import { isLoopbackHost } from '../../ops/auth.ts';

// ---------------------------------------------------------------- password hashes

export interface ScryptParams {
  /** log2 of N (CPU/memory cost) */
  ln: number;
  r: number;
  p: number;
}

/** What `voice-agent console-hash` makes. */
export const DEFAULT_SCRYPT: ScryptParams = { ln: 15, r: 8, p: 3 };
/** Most memory one verification may take (128·N·r bytes); refuses absurd hashes. */
const MAX_SCRYPT_MEM = 256 * 1024 * 1024;
const KEY_LEN = 32;

export interface ParsedScrypt extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** Parse `$scrypt$ln=..,r=..,p=..$salt$hash`; null when it is not one (or out of bounds). */
export function parseScryptHash(s: string): ParsedScrypt | null {
  const m = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/]{11,})\$([A-Za-z0-9+/]{22,})$/.exec(s.trim());
  if (!m) return null;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16) return null;
  if (128 * 2 ** ln * r > MAX_SCRYPT_MEM) return null;
  const salt = Buffer.from(m[4]!, 'base64');
  const hash = Buffer.from(m[5]!, 'base64');
  if (salt.length < 8 || hash.length < 16) return null;
  return { ln, r, p, salt, hash };
}

/** Relative cost of a hash (N·r·p); the config refuses hashes cheaper than the default's N·r·1. */
export function scryptCost(h: ScryptParams): number {
  return 2 ** h.ln * h.r * h.p;
}
export const MIN_SCRYPT_COST = 2 ** DEFAULT_SCRYPT.ln * DEFAULT_SCRYPT.r;

function derive(password: string, salt: Buffer, h: ScryptParams, len: number): Promise<Buffer> {
  const N = 2 ** h.ln;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, len, { N, r: h.r, p: h.p, maxmem: 128 * N * h.r * 2 + (1 << 20) }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** A PHC scrypt string for `password` (what goes into `console.reps[].passwordHash`). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, params, KEY_LEN);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(key)}`;
}

/** Same-cost check against a hash nobody can match, for unknown rep ids (no timing oracle). */
const DUMMY: ParsedScrypt = { ...DEFAULT_SCRYPT, salt: randomBytes(16), hash: Buffer.alloc(KEY_LEN) };

/** Constant-time check of `password` against a PHC scrypt string; false for malformed hashes. */
export async function verifyPassword(password: string, phc: string | undefined): Promise<boolean> {
  const h = (phc && parseScryptHash(phc)) || null;
  const target = h ?? DUMMY;
  const key = await derive(password, target.salt, target, target.hash.length);
  return timingSafeEqual(key, target.hash) && h !== null;
}

// ---------------------------------------------------------------- per-rep login links

/** A new login-link secret and the `sha256:<hex>` that goes into `console.reps[].loginTokenHash`. */
export function newLoginToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: loginTokenHash(token) };
}

export function loginTokenHash(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex')}`;
}

export function isLoginTokenHash(s: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(s.trim());
}

/** Constant-time check of a login-link secret (256 random bits: a fast hash is enough). */
export function verifyLoginToken(token: string, hash: string | undefined): boolean {
  const want = Buffer.from(hash && isLoginTokenHash(hash) ? hash.trim().slice(7) : '0'.repeat(64), 'hex');
  const got = createHash('sha256').update(token).digest();
  return timingSafeEqual(got, want) && hash !== undefined && isLoginTokenHash(hash);
}

// ---------------------------------------------------------------- pop links

export type PopLinkCheck = { ok: true; expiresAt: number } | { ok: false; why: 'expired' | 'invalid' };

/**
 * Signed, expiring read-only links to one screen pop: `t=<expiry base36>.<HMAC-SHA256 of
 * id + expiry, 128 bits, base64url>`. The key is random per process.
 */
export class PopLinks {
  private readonly key = randomBytes(32);
  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  mint(popId: string, ttlMs = this.ttlMs): string {
    const exp = Math.floor((this.now() + ttlMs) / 1000);
    return `${exp.toString(36)}.${this.sign(popId, exp)}`;
  }

  check(popId: string, t: string | null | undefined): PopLinkCheck {
    const m = /^([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})$/.exec(t ?? '');
    if (!m) return { ok: false, why: 'invalid' };
    const exp = parseInt(m[1]!, 36);
    const want = Buffer.from(this.sign(popId, exp));
    const got = Buffer.from(m[2]!);
    if (!timingSafeEqual(want, got)) return { ok: false, why: 'invalid' };
    if (exp * 1000 <= this.now()) return { ok: false, why: 'expired' };
    return { ok: true, expiresAt: exp * 1000 };
  }

  private sign(popId: string, exp: number): string {
    return createHmac('sha256', this.key).update(`screen-pop\0${popId}\0${exp}`).digest('base64url').slice(0, 22);
  }
}

// ---------------------------------------------------------------- sessions

export interface Session {
  id: string;
  rep: ConsoleRep;
  createdAt: number;
  expiresAt: number;
}

/** In-memory sessions with an absolute lifetime; the oldest go when `max` is reached. */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  constructor(
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly max = 10_000,
  ) {}

  create(rep: ConsoleRep): Session {
    this.sweep();
    while (this.sessions.size >= this.max) this.sessions.delete(this.sessions.keys().next().value!);
    const now = this.now();
    const s: Session = { id: randomBytes(32).toString('base64url'), rep, createdAt: now, expiresAt: now + this.ttlMs };
    this.sessions.set(s.id, s);
    return s;
  }

  /** The live session with this id (an expired one is dropped and not returned). */
  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  destroy(id: string): boolean {
    return this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

// ---------------------------------------------------------------- failed logins

export interface LoginLimits {
  /** failures of one rep id from one source before that pair is locked. @defaultValue 5 */
  perRepSource: number;
  /** failures from one source (any rep id) before the source is locked. @defaultValue 20 */
  perSource: number;
  /** failures of one rep id from anywhere before the rep id is locked. @defaultValue 50 */
  perRep: number;
  /** failures are counted over this window. @defaultValue 15 min */
  windowMs: number;
  /** how long a lock lasts. @defaultValue 15 min */
  lockMs: number;
}

export const LOGIN_LIMITS: LoginLimits = { perRepSource: 5, perSource: 20, perRep: 50, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };

interface Counter { count: number; since: number; lockedUntil: number }

/**
 * Counts failed logins per (rep, source), per source and per rep; over a limit the key is
 * locked for `lockMs` and logins on it are refused without checking the password.
 * Bounded: at most `maxKeys` counters (expired ones pruned first, then the oldest).
 */
export class LoginLimiter {
  private readonly counters = new Map<string, Counter>();
  readonly limits: LoginLimits;
  constructor(
    limits: Partial<LoginLimits> = {},
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {
    this.limits = { ...LOGIN_LIMITS, ...limits };
  }

  private keys(rep: string, source: string): Array<[string, number]> {
    return [
      [`rs\0${rep}\0${source}`, this.limits.perRepSource],
      [`s\0${source}`, this.limits.perSource],
      [`r\0${rep}`, this.limits.perRep],
    ];
  }

  /** ms until this rep/source may try again; 0 = not locked. */
  lockedFor(rep: string, source: string): number {
    const now = this.now();
    let ms = 0;
    for (const [k] of this.keys(rep, source)) {
      const c = this.counters.get(k);
      if (c && c.lockedUntil > now) ms = Math.max(ms, c.lockedUntil - now);
    }
    return ms;
  }

  /** Count a failure; returns the lock (ms) it caused, 0 if none. */
  fail(rep: string, source: string): number {
    const now = this.now();
    let locked = 0;
    for (const [k, limit] of this.keys(rep, source)) {
      let c = this.counters.get(k);
      if (!c || (now - c.since > this.limits.windowMs && c.lockedUntil <= now)) {
        this.counters.delete(k);
        c = { count: 0, since: now, lockedUntil: 0 };
        this.make(k, c);
      }
      c.count++;
      if (c.count >= limit && c.lockedUntil <= now) {
        c.lockedUntil = now + this.limits.lockMs;
        locked = Math.max(locked, this.limits.lockMs);
      }
    }
    return locked;
  }

  /** A good login clears its (rep, source) counter. */
  succeed(rep: string, source: string): void {
    this.counters.delete(`rs\0${rep}\0${source}`);
  }

  get size(): number {
    return this.counters.size;
  }

  private make(k: string, c: Counter): void {
    if (this.counters.size >= this.maxKeys) {
      const now = this.now();
      for (const [key, v] of this.counters) {
        if (v.lockedUntil <= now && now - v.since > this.limits.windowMs) this.counters.delete(key);
      }
      while (this.counters.size >= this.maxKeys) this.counters.delete(this.counters.keys().next().value!);
    }
    this.counters.set(k, c);
  }
}

// ---------------------------------------------------------------- misc

/** True when `host` reaches only this machine (src/ops/auth.ts decides it for every listener). */
export const isLoopback = isLoopbackHost;

/** Can `rep` see pops for `extension`? (`*` in a rep's list: every extension.) */
export function repSees(rep: ConsoleRep, extension: string | undefined): boolean {
  return rep.extensions.includes('*') || (extension !== undefined && rep.extensions.includes(extension));
}
