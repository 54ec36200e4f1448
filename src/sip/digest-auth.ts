/**
 * SIP digest authentication of a trunk's INVITEs (RFC 3261 §22, RFC 2617 MD5 with
 * `qop=auth`, the form carriers and SIPp's `[authentication]` speak), as drachtio-srf
 * middleware — so it runs the same over the built-in edge and drachtio-server.
 *
 * Why not drachtio-mw-digest-auth: it never checks the nonce it is given — any nonce, however
 * old, from anywhere, is accepted as long as the hash matches, so a captured INVITE's
 * Authorization header can be replayed forever; it also does not compare the digest `uri`
 * with the Request-URI, has no `stale=true`, and compares hashes with `!==`. Here:
 *
 * - **Nonces** are stateless and ours: `<time>.<random>.<HMAC-SHA256(secret, time.random.realm.source)>`,
 *   so a nonce is only good from the address it was issued to, and a forged one is refused.
 *   The secret is random per process, or `SIP_DIGEST_SECRET` (several nodes behind one
 *   address share it so a nonce issued by one is good on another).
 * - **Expiry**: older than the trunk's `auth.nonceSeconds` (300) → a new challenge with
 *   `stale=true` (the caller retries with the same credentials, no prompt).
 * - **Replay**: with `qop=auth` each nonce's `nc` must grow (a second request with the same
 *   or a lower count is a replay); without qop a nonce is good once. Seen nonces are kept
 *   until they expire (bounded). A replay gets a fresh challenge, never the call.
 * - The `uri` must name the Request-URI (the same URI, or it without the user part, as SIPp and
 *   some UAs send), the `username` be the trunk's user, the `realm` its realm; the response is
 *   compared in constant time.
 *
 * Outcomes: no or unusable credentials → 401 (or 407) challenge; wrong user or password →
 * 403. Both are counted by the caller (`invites_rejected_total{reason="auth"}`).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { TrunkAuthSettings } from './guard-settings.ts';

/** The parts of a request digest authentication reads (a drachtio-srf request fits). */
export interface DigestRequest {
  method: string;
  uri: string;
  get(header: string): string | undefined;
  source_address?: string;
}

/** Parsed `Digest` credentials (lower-case parameter names). */
export type DigestCredentials = Record<string, string>;

export type DigestOutcome =
  | { ok: true; user: string }
  | {
    ok: false;
    status: 401 | 403 | 407;
    /** WWW-Authenticate / Proxy-Authenticate for a challenge */
    headers: Record<string, string>;
    /** why, for the log: no-credentials, stale, replay, bad-nonce, malformed, wrong-user, wrong-realm, uri-mismatch, bad-password */
    why: string;
  };

export interface DigestAuthOptions {
  /** HMAC secret of the nonces. @defaultValue SIP_DIGEST_SECRET, else 32 random bytes */
  secret?: string | Buffer;
  /** @defaultValue Date.now */
  now?: () => number;
  /** Nonces remembered for replay detection at most. @defaultValue 100000 */
  maxTracked?: number;
}

/**
 * Parse `Digest k=v, k="quoted", …` (RFC 2617 §3.2.2). Returns undefined for another scheme
 * or a syntax error.
 */
export function parseDigest(value: string): DigestCredentials | undefined {
  const m = /^\s*digest\s+/i.exec(value);
  if (!m) return undefined;
  const out: DigestCredentials = {};
  let i = m[0].length;
  const s = value;
  while (i < s.length) {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    if (i >= s.length) break;
    const km = /^([A-Za-z0-9_-]+)\s*=\s*/.exec(s.slice(i));
    if (!km) return undefined;
    const key = km[1]!.toLowerCase();
    i += km[0].length;
    let val = '';
    if (s[i] === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const c = s[i]!;
        if (c === '\\' && i + 1 < s.length) {
          val += s[i + 1];
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        val += c;
        i++;
      }
      if (!closed) return undefined;
    } else {
      const tm = /^[^,\s]*/.exec(s.slice(i))!;
      val = tm[0];
      i += tm[0].length;
    }
    if (key in out) return undefined; // a repeated parameter is ambiguous
    out[key] = val;
  }
  return out;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** RFC 2617 request-digest (MD5; `qop=auth` or none). */
export function digestResponse(p: { user: string; realm: string; password: string; method: string; uri: string; nonce: string; qop?: string; nc?: string; cnonce?: string }): string {
  const ha1 = md5(`${p.user}:${p.realm}:${p.password}`);
  const ha2 = md5(`${p.method}:${p.uri}`);
  return p.qop ? md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`) : md5(`${ha1}:${p.nonce}:${ha2}`);
}

/**
 * The digest `uri` names the Request-URI's resource (RFC 2617 §3.2.2.5): the same URI, or the
 * same URI without its user part (SIPp and some UAs put `sip:host:port` there).
 */
export function sameResource(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  const bare = (u: string): string => u.trim().replace(/^(sips?:)[^@;?]*@/i, '$1').toLowerCase();
  return bare(digestUri) === bare(requestUri);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

interface Seen { nc: number; issued: number; expires: number }

export class DigestAuthenticator {
  private readonly secret: Buffer;
  private readonly now: () => number;
  private readonly maxTracked: number;
  /** nonce → highest nc seen (0: used without qop), until the nonce expires */
  private readonly seen = new Map<string, Seen>();
  /** live nonces had to be forgotten (table full): any nonce issued up to this instant is refused as stale */
  private forgottenUpTo = -1;

  constructor(opts: DigestAuthOptions = {}) {
    const s = opts.secret ?? process.env.SIP_DIGEST_SECRET;
    this.secret = s === undefined || s === '' ? randomBytes(32) : Buffer.from(s);
    this.now = opts.now ?? Date.now;
    this.maxTracked = opts.maxTracked ?? 100_000;
  }

  /** Nonces currently remembered (tests, metrics). */
  get tracked(): number {
    return this.seen.size;
  }

  /** A fresh nonce for `realm`, good from `source` only. */
  nonce(realm: string, source: string): string {
    const t = Math.floor(this.now() / 1000).toString(36);
    const r = randomBytes(9).toString('base64url');
    return `${t}.${r}.${this.mac(t, r, realm, source)}`;
  }

  private mac(t: string, r: string, realm: string, source: string): string {
    return createHmac('sha256', this.secret).update(`${t}.${r}.${realm}.${source}`).digest('base64url').slice(0, 22);
  }

  /** The nonce's issue time (ms) when it is ours for this realm and source, else undefined. */
  private issuedAt(nonce: string, realm: string, source: string): number | undefined {
    const parts = nonce.split('.');
    if (parts.length !== 3) return undefined;
    const [t, r, mac] = parts as [string, string, string];
    if (!/^[0-9a-z]{1,12}$/.test(t) || !safeEqual(mac, this.mac(t, r, realm, source))) return undefined;
    return parseInt(t, 36) * 1000;
  }

  private challenge(auth: TrunkAuthSettings, source: string, why: string, stale = false): DigestOutcome {
    const v = `Digest realm="${auth.realm}", nonce="${this.nonce(auth.realm, source)}", algorithm=MD5, qop="auth"${stale ? ', stale=true' : ''}`;
    return { ok: false, status: auth.challenge, headers: { [auth.challenge === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate']: v }, why };
  }

  private forbid(why: string): DigestOutcome {
    return { ok: false, status: 403, headers: {}, why };
  }

  /** Check a request against a trunk's credentials. */
  check(req: DigestRequest, auth: TrunkAuthSettings): DigestOutcome {
    const source = req.source_address ?? '';
    const header = auth.challenge === 407 ? 'Proxy-Authorization' : 'Authorization';
    const raw = req.get(header);
    if (!raw) return this.challenge(auth, source, 'no-credentials');
    // several credentials (one per realm, RFC 3261 §22.3): take ours
    const creds = raw.split(/,(?=\s*digest\s)/i).map(parseDigest).find((c) => c && c.realm === auth.realm)
      ?? parseDigest(raw);
    if (!creds) return this.challenge(auth, source, 'malformed');
    const { username, realm, nonce, uri, response } = creds;
    if (!username || realm === undefined || !nonce || !uri || !response) return this.challenge(auth, source, 'malformed');
    if (realm !== auth.realm) return this.challenge(auth, source, 'wrong-realm');
    if (creds.algorithm && creds.algorithm.toUpperCase() !== 'MD5') return this.challenge(auth, source, 'algorithm');
    const qop = creds.qop;
    if (qop !== undefined && qop.toLowerCase() !== 'auth') return this.challenge(auth, source, 'malformed');
    let nc = 0;
    if (qop) {
      if (!creds.cnonce || !creds.nc || !/^[0-9a-fA-F]{8}$/.test(creds.nc)) return this.challenge(auth, source, 'malformed');
      nc = parseInt(creds.nc, 16);
    }
    const issued = this.issuedAt(nonce, auth.realm, source);
    if (issued === undefined) return this.challenge(auth, source, 'bad-nonce');
    if (username !== auth.user) return this.forbid('wrong-user');
    if (!sameResource(uri, req.uri)) return this.forbid('uri-mismatch');
    const expected = digestResponse({
      user: auth.user, realm: auth.realm, password: auth.password ?? '', method: req.method, uri,
      nonce, ...(qop ? { qop, nc: creds.nc!, cnonce: creds.cnonce! } : {}),
    });
    if (!safeEqual(response.toLowerCase(), expected)) return this.forbid('bad-password');
    const now = this.now();
    const expires = issued + auth.nonceSeconds * 1000;
    if (now > expires) return this.challenge(auth, source, 'stale', true);
    const prev = this.seen.get(nonce);
    if (prev ? !qop || nc <= prev.nc : issued <= this.forgottenUpTo) return this.challenge(auth, source, 'replay', true);
    this.remember(nonce, { nc, issued, expires });
    return { ok: true, user: username };
  }

  private remember(nonce: string, s: Seen): void {
    this.seen.delete(nonce); // re-insert: Map order = last use
    this.seen.set(nonce, s);
    if (this.seen.size <= this.maxTracked) return;
    const now = this.now();
    for (const [k, v] of this.seen) if (v.expires < now) this.seen.delete(k);
    // still full of live nonces: forget the least recently used; every nonce issued up to the
    // newest of them is refused from now on (re-challenged), so forgetting never lets a replay in
    for (const [k, v] of this.seen) {
      if (this.seen.size <= this.maxTracked) break;
      this.forgottenUpTo = Math.max(this.forgottenUpTo, v.issued);
      this.seen.delete(k);
    }
  }
}

/** The parts of a drachtio-srf request/response the trunk middleware uses. */
export interface AuthSrfRequest extends DigestRequest {
  protocol?: string;
  source_port?: number;
  /** set on success: the authenticated user */
  authenticatedUser?: string;
}
export interface AuthSrfResponse {
  send(status: number, opts?: { headers?: Record<string, string> }): unknown;
}

/** Counted reason of a digest outcome (`invites_rejected_total{reason}`). */
export function authReason(o: Exclude<DigestOutcome, { ok: true }>): string {
  if (o.status === 403) return 'auth';
  return o.why === 'no-credentials' ? 'auth-challenge' : 'auth-stale';
}

/**
 * drachtio-srf middleware: an INVITE from a trunk with `auth` must carry valid digest
 * credentials; otherwise it is challenged (401/407) or refused (403). Other methods and
 * trunks without `auth` pass. `classify` maps the source address to its trunk's auth settings;
 * `onRefuse` lets the app count the reason; `note` logs a failure (rate-limited by the caller).
 */
export function digestMiddleware(
  classify: (address: string | undefined) => { name: string; auth?: TrunkAuthSettings } | undefined,
  auth: DigestAuthenticator,
  hooks: {
    onRefuse?: (res: AuthSrfResponse, reason: string) => void;
    note?: (req: AuthSrfRequest, trunk: string, outcome: Exclude<DigestOutcome, { ok: true }>) => void;
  } = {},
): (req: AuthSrfRequest, res: AuthSrfResponse, next: (err?: unknown) => void) => void {
  return (req, res, next) => {
    if (req.method !== 'INVITE') return next();
    const trunk = classify(req.source_address);
    if (!trunk?.auth) return next();
    const out = auth.check(req, trunk.auth);
    if (out.ok) {
      req.authenticatedUser = out.user;
      return next();
    }
    hooks.onRefuse?.(res, authReason(out));
    hooks.note?.(req, trunk.name, out);
    res.send(out.status, { headers: out.status === 403 ? { ...out.headers, Reason: 'SIP;cause=403;text="authentication failed"' } : out.headers });
  };
}
