/**
 * Config of what keeps the SIP side safe on a public address: the trunk access keys
 * (`trunks[].auth`, `dids`, `maxCalls`, `tenant`) and the `sipGuard` section (unknown
 * sources, the per-source rate limit and ban, scanner User-Agents, message limits). Parsed
 * here, called from src/config.ts, so the keys live next to what reads them
 * (./trunk-policy.ts, ./digest-auth.ts, ./sip-guard.ts); problems go through the caller's
 * `fail`, which names the file (or the environment) and the field.
 *
 * ```yaml
 * trunks:
 *   - name: carrier-a
 *     sources: [203.0.113.0/24]
 *     auth:                        # SIP digest (RFC 2617/7616 MD5, qop=auth) on its INVITEs
 *       realm: sip.example.com
 *       user: carrier-a
 *       passwordEnv: CARRIER_A_SIP_PASSWORD   # the password itself never goes in this file
 *       challenge: 401             # or 407 (Proxy-Authenticate)
 *       nonceSeconds: 300          # a nonce older than this gets a fresh challenge (stale=true)
 *     dids: [+14155550100, "+1415555020*"]   # the only numbers it may call; others 404
 *     maxCalls: 30                 # concurrent calls from it; over → 503 + Retry-After
 *     tenant: acme                 # its calls go to this tenant, whatever number they dial
 * sipGuard:
 *   unknownSources: auto           # auto: drop on UDP, 403 on TCP/TLS | drop | reject | accept
 *   rateLimit: { requests: 16, seconds: 2, banSeconds: 300, trunkRequests: 0 }
 *   scanners: [friendly-scanner, sipvicious, …]   # User-Agent substrings (replaces the default list)
 *   limits: { maxMessageBytes: 16384, maxBodyBytes: 8192, maxHeaders: 80, maxHeaderBytes: 4096 }
 *   logIntervalSeconds: 60         # rejection log lines: one per source and reason per interval
 * ```
 * Environment: `SIP_UNKNOWN_SOURCES`, `SIP_RATE_LIMIT_REQUESTS`, `SIP_RATE_LIMIT_SECONDS`,
 * `SIP_BAN_SECONDS`, `SIP_TRUNK_RATE_LIMIT_REQUESTS`, `SIP_SCANNER_AGENTS` (comma list),
 * `SIP_MAX_MESSAGE_BYTES`, `SIP_MAX_BODY_BYTES`, `SIP_MAX_HEADERS`, `SIP_MAX_HEADER_BYTES`.
 */
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

type Fail = (field: string, problem: string) => never;

/** SIP digest authentication of one trunk. */
export interface TrunkAuthSettings {
  /** Realm of the challenge. */
  realm: string;
  /** The user name the trunk authenticates as. */
  user: string;
  /** Name of the environment variable holding the password (read at start-up). */
  passwordEnv: string;
  /** 401 with WWW-Authenticate, or 407 with Proxy-Authenticate. @defaultValue 401 */
  challenge: 401 | 407;
  /** A nonce is good this long; then the next request gets a new challenge with `stale=true`. @defaultValue 300 */
  nonceSeconds: number;
  /** The password, resolved from `passwordEnv` at load (not enumerable: never logged or serialized). */
  readonly password?: string;
}

/** One allowed dialed number of a trunk (digits only, as {@link normalizeDid}). */
export interface DidRule {
  /** the entry as written, without the `*` (`+14155550100`, `4155550100`, `+1415555`) */
  written: string;
  /** digits of `written` */
  digits: string;
  /** digits of the E.164 form (national entries read in the trunk's country), when the entry is a possible number */
  e164?: string;
  /** a trailing `*`: any number starting with these digits */
  prefix: boolean;
}

export type UnknownSourceAction = 'auto' | 'drop' | 'reject' | 'accept';

export interface SipGuardSettings {
  /**
   * A request from a source no trunk lists (out of dialog): `auto` drops it silently on UDP
   * (no response: a scanner learns nothing, a spoofed source gets nothing reflected) and
   * answers `403 Forbidden` on TCP/TLS (the source is proven by the handshake); `drop`,
   * `reject` (403) everywhere, or `accept` (anyone may call; their identity headers are still
   * not believed). With no trunk configured, loopback is the only known source.
   * Env `SIP_UNKNOWN_SOURCES`. @defaultValue 'auto'
   */
  unknownSources: UnknownSourceAction;
  /**
   * Per-source-address request rate limit (Kamailio pike-like): more than `requests`
   * requests within `seconds` bans the address for `banSeconds` — every later packet from it
   * is dropped before parsing. Sources of a trunk are exempt (`trunkRequests` 0) or get that
   * limit instead. `requests` 0 turns the limit off. With `REDIS_URL` set the counts and bans
   * are shared by every node on that Redis.
   * @defaultValue { requests: 16, seconds: 2, banSeconds: 300, trunkRequests: 0 }
   */
  rateLimit: { requests: number; seconds: number; banSeconds: number; trunkRequests: number };
  /** User-Agent substrings (case-insensitive) of SIP scanners: dropped silently. @defaultValue {@link DEFAULT_SCANNER_AGENTS} */
  scanners: string[];
  /**
   * Message limits, checked before a transaction exists: a message over `maxMessageBytes`
   * gets 513, a body over `maxBodyBytes` 413, more header fields than `maxHeaders` or a header
   * field longer than `maxHeaderBytes` 400 — each with a reason phrase and a log line naming
   * the limit. @defaultValue { maxMessageBytes: 16384, maxBodyBytes: 8192, maxHeaders: 80, maxHeaderBytes: 4096 }
   */
  limits: { maxMessageBytes: number; maxBodyBytes: number; maxHeaders: number; maxHeaderBytes: number };
  /** One rejection log line per source and reason per this many seconds (with a count). @defaultValue 60 */
  logIntervalSeconds: number;
}

/** Scanner and attack-tool User-Agents seen on public SIP ports (lower case substrings). */
export const DEFAULT_SCANNER_AGENTS: readonly string[] = Object.freeze([
  'friendly-scanner', 'sipvicious', 'sipcli', 'sip-cli', 'vaxsipuseragent', 'pplsip', 'sivus',
  'sundayddr', 'iwar', 'siparmyknife', 'smap', 'sipscan', 'voipsploit', 'sip scanner',
]);

export function defaultSipGuard(): SipGuardSettings {
  return {
    unknownSources: 'auto',
    rateLimit: { requests: 16, seconds: 2, banSeconds: 300, trunkRequests: 0 },
    scanners: [...DEFAULT_SCANNER_AGENTS],
    limits: { maxMessageBytes: 16384, maxBodyBytes: 8192, maxHeaders: 80, maxHeaderBytes: 4096 },
    logIntervalSeconds: 60,
  };
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function int(fail: Fail, field: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) fail(field, `must be an integer ${min}-${max}, got ${show(v)}`);
  return n as number;
}

function mapping(fail: Fail, field: string, v: unknown, keys: readonly string[]): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(field, `must be a mapping (${keys.join(', ')}), got ${show(v)}`);
  for (const k of Object.keys(v as object)) if (!keys.includes(k)) fail(`${field}.${k}`, `unknown key (expected one of ${keys.join(', ')})`);
  return v as Record<string, unknown>;
}

const has = (o: Record<string, unknown>, k: string): boolean => o[k] !== undefined && o[k] !== null;

const UNKNOWN_ACTIONS: readonly UnknownSourceAction[] = ['auto', 'drop', 'reject', 'accept'];

function unknownAction(fail: Fail, field: string, v: unknown): UnknownSourceAction {
  const s = typeof v === 'string' ? v.trim().toLowerCase() : v;
  if (s === '403') return 'reject';
  if (typeof s !== 'string' || !(UNKNOWN_ACTIONS as readonly string[]).includes(s)) {
    fail(field, `must be one of ${UNKNOWN_ACTIONS.join(', ')} (auto: drop on UDP, 403 on TCP/TLS), got ${show(v)}`);
  }
  return s as UnknownSourceAction;
}

function agents(fail: Fail, field: string, v: unknown): string[] {
  let items: unknown[];
  if (typeof v === 'string') items = v.split(',');
  else if (Array.isArray(v)) items = v;
  else fail(field, `must be a list of User-Agent substrings, got ${show(v)}`);
  const out: string[] = [];
  for (const [i, item] of items.entries()) {
    if (typeof item !== 'string') fail(Array.isArray(v) ? `${field}[${i}]` : field, `must be a string, got ${show(item)}`);
    const s = item.trim().toLowerCase();
    if (s !== '' && !out.includes(s)) out.push(s);
  }
  return out;
}

const RATE_KEYS = ['requests', 'seconds', 'banSeconds', 'trunkRequests'] as const;
const LIMIT_KEYS = ['maxMessageBytes', 'maxBodyBytes', 'maxHeaders', 'maxHeaderBytes'] as const;
const LIMIT_RANGES: Record<(typeof LIMIT_KEYS)[number], [number, number]> = {
  maxMessageBytes: [512, 65535], maxBodyBytes: [0, 65535], maxHeaders: [8, 1000], maxHeaderBytes: [64, 65535],
};
const RATE_RANGES: Record<(typeof RATE_KEYS)[number], [number, number]> = {
  requests: [0, 1_000_000], seconds: [1, 3600], banSeconds: [0, 86400], trunkRequests: [0, 1_000_000],
};

/** YAML `sipGuard`. */
export function applySipGuardFile(g: SipGuardSettings, v: unknown, fail: Fail): void {
  const o = mapping(fail, 'sipGuard', v, ['unknownSources', 'rateLimit', 'scanners', 'limits', 'logIntervalSeconds']);
  if (has(o, 'unknownSources')) g.unknownSources = unknownAction(fail, 'sipGuard.unknownSources', o.unknownSources);
  if (has(o, 'rateLimit')) {
    const r = mapping(fail, 'sipGuard.rateLimit', o.rateLimit, RATE_KEYS);
    for (const k of RATE_KEYS) if (has(r, k)) g.rateLimit[k] = int(fail, `sipGuard.rateLimit.${k}`, r[k], ...RATE_RANGES[k]);
  }
  if (has(o, 'scanners')) g.scanners = agents(fail, 'sipGuard.scanners', o.scanners);
  if (has(o, 'limits')) {
    const l = mapping(fail, 'sipGuard.limits', o.limits, LIMIT_KEYS);
    for (const k of LIMIT_KEYS) if (has(l, k)) g.limits[k] = int(fail, `sipGuard.limits.${k}`, l[k], ...LIMIT_RANGES[k]);
  }
  if (has(o, 'logIntervalSeconds')) g.logIntervalSeconds = int(fail, 'sipGuard.logIntervalSeconds', o.logIntervalSeconds, 1, 3600);
}

const ENV_RATE: Record<(typeof RATE_KEYS)[number], string> = {
  requests: 'SIP_RATE_LIMIT_REQUESTS', seconds: 'SIP_RATE_LIMIT_SECONDS', banSeconds: 'SIP_BAN_SECONDS', trunkRequests: 'SIP_TRUNK_RATE_LIMIT_REQUESTS',
};
const ENV_LIMIT: Record<(typeof LIMIT_KEYS)[number], string> = {
  maxMessageBytes: 'SIP_MAX_MESSAGE_BYTES', maxBodyBytes: 'SIP_MAX_BODY_BYTES', maxHeaders: 'SIP_MAX_HEADERS', maxHeaderBytes: 'SIP_MAX_HEADER_BYTES',
};

/** The environment variables of `sipGuard` (each names itself as the field). */
export function applySipGuardEnv(g: SipGuardSettings, env: NodeJS.ProcessEnv, fail: Fail): void {
  const get = (k: string): string | undefined => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  let v: string | undefined;
  if ((v = get('SIP_UNKNOWN_SOURCES')) !== undefined) g.unknownSources = unknownAction(fail, 'SIP_UNKNOWN_SOURCES', v);
  for (const k of RATE_KEYS) if ((v = get(ENV_RATE[k])) !== undefined) g.rateLimit[k] = int(fail, ENV_RATE[k], v, ...RATE_RANGES[k]);
  if ((v = get('SIP_SCANNER_AGENTS')) !== undefined) g.scanners = agents(fail, 'SIP_SCANNER_AGENTS', v);
  for (const k of LIMIT_KEYS) if ((v = get(ENV_LIMIT[k])) !== undefined) g.limits[k] = int(fail, ENV_LIMIT[k], v, ...LIMIT_RANGES[k]);
}

/** Keys of a trunk entry besides identity and early media (src/config.ts adds them to its list). */
export const TRUNK_ACCESS_KEYS = ['auth', 'dids', 'maxCalls', 'tenant'] as const;

/** The access part of a trunk entry, read from its YAML/JSON mapping `o` (field prefix `f`). */
export interface TrunkAccess {
  auth?: TrunkAuthSettings;
  dids?: DidRule[];
  maxCalls?: number;
  tenant?: string;
}

/** Digits of a dialed number as tenants and DIDs compare them (`+1 (415) 555-0100` → `14155550100`). */
export function normalizeDid(n: string): string {
  return n.replace(/[\s+\-.()]/g, '');
}

function didRule(fail: Fail, field: string, v: unknown): DidRule {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  const prefix = s.endsWith('*');
  const written = prefix ? s.slice(0, -1).trim() : s;
  const digits = normalizeDid(written);
  if (!/^\+?[0-9\s\-.()]+$/.test(written) || !/^[0-9]+$/.test(digits)) {
    fail(field, `must be a telephone number (+14155550100, 4155550100) or a prefix ending in * (+1415555*), got ${show(v)}`);
  }
  return { written, digits, prefix };
}

/** The E.164 digits of a DID entry (national forms in `country`), when it is a possible number. */
function e164Of(written: string, country: CountryCode): string | undefined {
  const pn = parsePhoneNumberFromString(written, country);
  return pn && pn.isPossible() ? normalizeDid(pn.number) : undefined;
}

/**
 * Read `auth`, `dids`, `maxCalls` and `tenant` of a trunk entry `o` (field prefix `f`). DIDs
 * get their E.164 form in {@link finishTrunkAccess}, once the trunk's country is final.
 */
export function trunkAccess(fail: Fail, f: string, o: Record<string, unknown>): TrunkAccess {
  const out: TrunkAccess = {};
  if (has(o, 'auth')) {
    const a = o.auth;
    if (a !== null && typeof a === 'object' && !Array.isArray(a) && 'password' in a) {
      fail(`${f}.auth.password`, 'passwords do not go in the config file: put it in an environment variable and name that variable in passwordEnv');
    }
    const m = mapping(fail, `${f}.auth`, a, ['realm', 'user', 'passwordEnv', 'challenge', 'nonceSeconds']);
    const str = (k: string, re: RegExp, what: string): string => {
      const v = m[k];
      if (typeof v !== 'string' || !re.test(v.trim())) fail(`${f}.auth.${k}`, `must be ${what}, got ${show(v)}`);
      return (v as string).trim();
    };
    const auth: TrunkAuthSettings = {
      realm: str('realm', /^[^"\\\r\n]{1,128}$/, 'a realm of 1-128 characters without quotes'),
      user: str('user', /^[^"\\\r\n\s:]{1,128}$/, 'a user name of 1-128 characters without quotes, spaces or colons'),
      passwordEnv: str('passwordEnv', /^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'the name of an environment variable (letters, digits, _)'),
      challenge: 401,
      nonceSeconds: 300,
    };
    if (has(m, 'challenge')) {
      const c = typeof m.challenge === 'string' ? Number(m.challenge) : m.challenge;
      if (c !== 401 && c !== 407) fail(`${f}.auth.challenge`, `must be 401 (WWW-Authenticate) or 407 (Proxy-Authenticate), got ${show(m.challenge)}`);
      auth.challenge = c as 401 | 407;
    }
    if (has(m, 'nonceSeconds')) auth.nonceSeconds = int(fail, `${f}.auth.nonceSeconds`, m.nonceSeconds, 10, 86400);
    out.auth = auth;
  }
  if (has(o, 'dids')) {
    let items: unknown[];
    if (typeof o.dids === 'string') items = o.dids.split(',').filter((x) => x.trim() !== '');
    else if (Array.isArray(o.dids)) items = o.dids;
    else fail(`${f}.dids`, `must be a list of telephone numbers, got ${show(o.dids)}`);
    if (items.length === 0) fail(`${f}.dids`, 'must list at least one number (leave dids out to allow every number)');
    out.dids = items.map((d, j) => didRule(fail, `${f}.dids[${j}]`, d));
  }
  if (has(o, 'maxCalls')) out.maxCalls = int(fail, `${f}.maxCalls`, o.maxCalls, 1, 100000);
  if (has(o, 'tenant')) {
    if (typeof o.tenant !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(o.tenant)) fail(`${f}.tenant`, `must be a tenant id, got ${show(o.tenant)}`);
    out.tenant = o.tenant as string;
  }
  return out;
}

/** What {@link finishTrunkAccess} reads of each trunk. */
export interface TrunkAccessEntry extends TrunkAccess {
  name: string;
  country: CountryCode;
}

/**
 * End of loading: resolve each trunk's password from its environment variable (a config error
 * naming the field when it is missing) and give each DID its E.164 form in the trunk's country.
 */
export function finishTrunkAccess(trunks: readonly TrunkAccessEntry[], env: NodeJS.ProcessEnv, fieldOf: (i: number) => string, fail: Fail): void {
  trunks.forEach((t, i) => {
    if (t.auth) {
      const pw = env[t.auth.passwordEnv];
      if (pw === undefined || pw === '') {
        fail(`${fieldOf(i)}.auth.passwordEnv`, `the environment variable ${t.auth.passwordEnv} (the password of trunk ${t.name}) is not set`);
      }
      Object.defineProperty(t.auth, 'password', { value: pw, enumerable: false, writable: false, configurable: false });
    }
    for (const d of t.dids ?? []) {
      if (d.prefix) continue;
      const e = e164Of(d.written, t.country);
      if (e !== undefined) d.e164 = e;
    }
  });
}

/**
 * Whether a dialed number (any form; its E.164 digits when known in `e164`) is one of `rules`.
 */
export function didAllowed(rules: readonly DidRule[], dialed: readonly string[]): boolean {
  const cands = dialed.map(normalizeDid).filter((d) => d !== '');
  return rules.some((r) => cands.some((c) => (r.prefix ? c.startsWith(r.digits) : c === r.digits || c === r.e164)));
}
