/**
 * Config `console` — the rep console's logins and links. Parsed here, called from
 * src/config.ts (like src/cdr/settings.ts), so the console's settings live next to the
 * console; problems go through the caller's `fail`, which names the file and the field.
 *
 * ```yaml
 * console:
 *   address: 0.0.0.0
 *   publicUrl: https://console.example.com   # https here → the session cookie is Secure
 *   sessionMinutes: 720                      # a login lasts this long (absolute)
 *   popLinkMinutes: 10                       # the X-Screen-Pop-Url link opens its pop this long
 *   reps:
 *     - id: maria                            # the login name
 *       name: Maria Chen
 *       extensions: ['2101']                 # pops for these extensions / queues ('*': all)
 *       queues: ['2100']                     # same as extensions, listed apart for reading
 *       passwordHash: $scrypt$ln=15,r=8,p=3$…   # voice-agent console-hash < password
 *     - id: desk-7
 *       extensions: ['2102']
 *       loginTokenHash: sha256:…             # voice-agent console-hash --link --rep desk-7
 * ```
 *
 * With no reps the console runs in `loopback-demo` mode (no login, every pop visible) and
 * only when both its address and its publicUrl are loopback; {@link demoRefusal} says why
 * not otherwise, and the config refuses to load.
 */
import { isLoginTokenHash, isLoopback, MIN_SCRYPT_COST, parseScryptHash, scryptCost } from './auth.ts';

export interface ConsoleRep {
  /** login name */
  id: string;
  /** shown in the console. @defaultValue the id */
  name: string;
  /** extensions and queue numbers whose pops this rep sees; `*` = all */
  extensions: string[];
  /** PHC scrypt string (`voice-agent console-hash`) */
  passwordHash?: string;
  /** `sha256:<hex>` of the rep's login-link secret (`voice-agent console-hash --link`) */
  loginTokenHash?: string;
}

export interface ConsoleAuthSettings {
  /** Reps who may log in; none = `loopback-demo` mode (loopback only). @defaultValue [] */
  reps: ConsoleRep[];
  /** Lifetime of a login (minutes, absolute). @defaultValue 720 */
  sessionMinutes: number;
  /** Lifetime of the screen-pop link in `X-Screen-Pop-Url` (minutes). @defaultValue 10 */
  popLinkMinutes: number;
}

export const CONSOLE_AUTH_KEYS = ['reps', 'sessionMinutes', 'popLinkMinutes'] as const;

export function defaultConsoleAuth(): ConsoleAuthSettings {
  return { reps: [], sessionMinutes: 720, popLinkMinutes: 10 };
}

type Fail = (field: string, problem: string) => never;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function minutes(fail: Fail, field: string, v: unknown, max: number): number {
  const n = typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > max) fail(field, `must be an integer 1-${max} (minutes), got ${show(v)}`);
  return n as number;
}

const REP_KEYS = ['id', 'name', 'extensions', 'queues', 'passwordHash', 'loginTokenHash'];
const EXT_RE = /^(?:\*|[A-Za-z0-9+#._-]{1,64})$/;
const ID_RE = /^[A-Za-z0-9._@-]{1,64}$/;

function extList(fail: Fail, field: string, v: unknown): string[] {
  if (!Array.isArray(v)) fail(field, `must be a list of extensions or queue numbers, got ${show(v)}`);
  return (v as unknown[]).map((x, i) => {
    const s = typeof x === 'number' && Number.isInteger(x) ? String(x) : x;
    if (typeof s !== 'string' || !EXT_RE.test(s.trim())) fail(`${field}[${i}]`, `must be an extension or queue number (letters, digits, + # . _ -) or "*", got ${show(x)}`);
    return (s as string).trim();
  });
}

function rep(fail: Fail, f: string, v: unknown): ConsoleRep {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(f, `must be a mapping (id, name, extensions, passwordHash), got ${show(v)}`);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!REP_KEYS.includes(k)) fail(`${f}.${k}`, `unknown key (expected one of ${REP_KEYS.join(', ')})`);
  const id = typeof o.id === 'number' ? String(o.id) : o.id;
  if (typeof id !== 'string' || !ID_RE.test(id)) fail(`${f}.id`, `must be a login name (1-64 letters, digits, . _ @ -), got ${show(o.id)}`);
  let name = id as string;
  if (o.name !== undefined) {
    if (typeof o.name !== 'string' || o.name.trim() === '' || o.name.length > 100) fail(`${f}.name`, `must be a name of 1-100 characters, got ${show(o.name)}`);
    name = (o.name as string).trim();
  }
  const extensions = [
    ...(o.extensions !== undefined ? extList(fail, `${f}.extensions`, o.extensions) : []),
    ...(o.queues !== undefined ? extList(fail, `${f}.queues`, o.queues) : []),
  ];
  if (extensions.length === 0) fail(`${f}.extensions`, 'must list at least one extension or queue the rep may see ("*" for all)');
  const r: ConsoleRep = { id: id as string, name, extensions: [...new Set(extensions)] };
  if (o.passwordHash !== undefined) {
    const h = typeof o.passwordHash === 'string' ? parseScryptHash(o.passwordHash) : null;
    if (!h) fail(`${f}.passwordHash`, 'must be a scrypt hash "$scrypt$ln=…,r=…,p=…$salt$hash" (make one with: voice-agent console-hash)');
    if (scryptCost(h) < MIN_SCRYPT_COST) fail(`${f}.passwordHash`, `is too cheap to compute (ln=${h.ln},r=${h.r},p=${h.p}); make one with: voice-agent console-hash`);
    r.passwordHash = (o.passwordHash as string).trim();
  }
  if (o.loginTokenHash !== undefined) {
    if (typeof o.loginTokenHash !== 'string' || !isLoginTokenHash(o.loginTokenHash)) {
      fail(`${f}.loginTokenHash`, 'must be "sha256:<64 hex digits>" (make one with: voice-agent console-hash --link --rep <id>)');
    }
    r.loginTokenHash = (o.loginTokenHash as string).trim();
  }
  if (!r.passwordHash && !r.loginTokenHash) fail(f, `rep "${r.id}" needs a passwordHash or a loginTokenHash to log in`);
  return r;
}

/** Apply the auth keys of a YAML `console` mapping (other keys are config.ts's). */
export function applyConsoleAuthFile(s: ConsoleAuthSettings, c: Record<string, unknown>, fail: Fail): void {
  if (c.sessionMinutes !== undefined) s.sessionMinutes = minutes(fail, 'console.sessionMinutes', c.sessionMinutes, 7 * 24 * 60);
  if (c.popLinkMinutes !== undefined) s.popLinkMinutes = minutes(fail, 'console.popLinkMinutes', c.popLinkMinutes, 24 * 60);
  if (c.reps !== undefined) {
    if (c.reps === null) s.reps = [];
    else if (!Array.isArray(c.reps)) fail('console.reps', `must be a list of reps, got ${show(c.reps)}`);
    else {
      const seen = new Set<string>();
      s.reps = c.reps.map((v, i) => {
        const r = rep(fail, `console.reps[${i}]`, v);
        if (seen.has(r.id)) fail(`console.reps[${i}].id`, `"${r.id}" is listed twice`);
        seen.add(r.id);
        return r;
      });
    }
  }
}

/**
 * Why the console may not run without reps (null when it may: `loopback-demo`). A console
 * bound off loopback, or published at a non-loopback publicUrl (a reverse proxy on this host
 * forwards the world to loopback), would hand callers' data to anyone.
 */
export function demoRefusal(c: { address: string; publicUrl?: string | undefined; reps: readonly ConsoleRep[] }): string | null {
  if (c.reps.length > 0) return null;
  const fix = 'list the reps who may log in (id, extensions, passwordHash from voice-agent console-hash); without reps the console runs only on loopback (loopback-demo mode)';
  if (!isLoopback(c.address)) {
    return `must not be empty when the console listens on ${c.address}, off loopback: it serves callers' names, accounts and transcripts; ${fix}`;
  }
  if (c.publicUrl) {
    let host = '';
    try {
      host = new URL(c.publicUrl).hostname;
    } catch {
      /* the config checked it */
    }
    if (!isLoopback(host)) return `must not be empty when console.publicUrl (${c.publicUrl}) is reachable off this host; ${fix}`;
  }
  return null;
}
