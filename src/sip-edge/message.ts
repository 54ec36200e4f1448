/**
 * SIP message layer of the built-in SIP edge (RFC 3261 §7, §20, §25).
 *
 * - {@link parseSipMessage} turns bytes into a {@link SipMessage}, validating what RFC 3261
 *   §8.1.1 / §8.2 require of a request (Via, From, To, Call-ID, CSeq with matching method,
 *   Max-Forwards when present, Content-Length vs body). Every failure is a
 *   {@link SipParseError} whose message names the problem precisely and whose `partial`
 *   holds whatever could be parsed, so the transport can still answer `400`.
 * - {@link SipMessage} is a mutable message with wire-ordered headers, case-insensitive,
 *   compact-form-aware access and a serializer that always rewrites Content-Length.
 * - Helpers for Via, SIP URIs and name-addr values, response construction and identifiers.
 */
import { randomBytes } from 'node:crypto';

/** One header line. `name` is in canonical capitalisation (e.g. `Call-ID`, `CSeq`). */
export interface Header {
  name: string;
  value: string;
}

/** Compact header forms (RFC 3261 §7.3.3, plus RFC 3265/3515/3841/4028/4474/3892). */
const COMPACT: Record<string, string> = {
  v: 'Via', f: 'From', t: 'To', i: 'Call-ID', m: 'Contact', l: 'Content-Length',
  c: 'Content-Type', k: 'Supported', s: 'Subject', e: 'Content-Encoding', o: 'Event',
  r: 'Refer-To', u: 'Allow-Events', b: 'Referred-By', x: 'Session-Expires',
  a: 'Accept-Contact', j: 'Reject-Contact', d: 'Request-Disposition', y: 'Identity',
  n: 'Identity-Info',
};

/** Canonical capitalisation of well-known header names (lower-case → canonical). */
const CANONICAL: Record<string, string> = Object.fromEntries(
  [
    'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow',
    'Allow-Events', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
    'Content-Disposition', 'Content-Encoding', 'Content-Language', 'Content-Length',
    'Content-Type', 'CSeq', 'Date', 'Error-Info', 'Event', 'Expires', 'From', 'Identity',
    'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'MIME-Version', 'Min-Expires', 'Min-SE',
    'Organization', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Priority',
    'Privacy', 'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'RAck', 'Reason',
    'Record-Route', 'Refer-To', 'Referred-By', 'Reject-Contact', 'Replaces', 'Reply-To',
    'Request-Disposition', 'Require', 'Retry-After', 'Route', 'RSeq', 'Server',
    'Session-Expires', 'Subject', 'Subscription-State', 'Supported', 'Timestamp', 'To',
    'Unsupported', 'User-Agent', 'Via', 'Warning', 'WWW-Authenticate', 'Diversion',
    'History-Info', 'Path', 'Service-Route', 'Security-Client', 'Security-Server',
    'Security-Verify', 'Target-Dialog', 'Refer-Sub', 'SIP-ETag', 'SIP-If-Match',
  ].map((n) => [n.toLowerCase(), n]),
);

/**
 * Canonical spelling of a header name: compact forms are expanded, well-known names get
 * their RFC capitalisation, unknown names are kept as written (e.g. `X-UUID`).
 */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length === 1 && COMPACT[lower]) return COMPACT[lower];
  return CANONICAL[lower] ?? name;
}

/** Standard reason phrases (RFC 3261 §21 and extensions). */
export const REASON_PHRASES: Record<number, string> = {
  100: 'Trying', 180: 'Ringing', 181: 'Call Is Being Forwarded', 182: 'Queued',
  183: 'Session Progress', 199: 'Early Dialog Terminated',
  200: 'OK', 202: 'Accepted', 204: 'No Notification',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Moved Temporarily',
  305: 'Use Proxy', 380: 'Alternative Service',
  400: 'Bad Request', 401: 'Unauthorized', 402: 'Payment Required', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  407: 'Proxy Authentication Required', 408: 'Request Timeout', 410: 'Gone',
  412: 'Conditional Request Failed', 413: 'Request Entity Too Large',
  414: 'Request-URI Too Long', 415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme', 417: 'Unknown Resource-Priority', 420: 'Bad Extension',
  421: 'Extension Required', 422: 'Session Interval Too Small', 423: 'Interval Too Brief',
  428: 'Use Identity Header', 429: 'Provide Referrer Identity', 433: 'Anonymity Disallowed',
  436: 'Bad Identity-Info', 437: 'Unsupported Certificate', 438: 'Invalid Identity Header',
  480: 'Temporarily Unavailable', 481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected', 483: 'Too Many Hops', 484: 'Address Incomplete', 485: 'Ambiguous',
  486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here',
  489: 'Bad Event', 491: 'Request Pending', 493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error', 501: 'Not Implemented', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Server Time-out', 505: 'Version Not Supported',
  513: 'Message Too Large', 580: 'Precondition Failure',
  600: 'Busy Everywhere', 603: 'Decline', 604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable', 607: 'Unwanted',
};

/** RFC 3261 §25.1 `token` characters. */
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/**
 * A SIP request or response. Requests have `method`/`uri`, responses `status`/`reason`.
 * Header lines keep wire order; names are canonical.
 */
export class SipMessage {
  method?: string;
  uri?: string;
  status?: number;
  reason?: string;
  headers: Header[] = [];
  body: Buffer = Buffer.alloc(0);

  get isRequest(): boolean {
    return this.method !== undefined;
  }

  /** First value of header `name` (case-insensitive, compact forms understood). */
  get(name: string): string | undefined {
    const lname = canonicalHeaderName(name).toLowerCase();
    for (const h of this.headers) if (h.name.toLowerCase() === lname) return h.value;
    return undefined;
  }

  /** Every header line named `name`, in wire order (values are not split at commas). */
  getAll(name: string): string[] {
    const lname = canonicalHeaderName(name).toLowerCase();
    const out: string[] = [];
    for (const h of this.headers) if (h.name.toLowerCase() === lname) out.push(h.value);
    return out;
  }

  /** Whether at least one header line named `name` exists. */
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replace every `name` header by a single one (at the position of the first, else appended). */
  set(name: string, value: string): this {
    const cname = canonicalHeaderName(name);
    const lname = cname.toLowerCase();
    const idx = this.headers.findIndex((h) => h.name.toLowerCase() === lname);
    if (idx < 0) {
      this.headers.push({ name: cname, value });
      return this;
    }
    this.headers[idx] = { name: cname, value };
    this.headers = this.headers.filter((h, i) => i <= idx || h.name.toLowerCase() !== lname);
    return this;
  }

  /** Append a header line. */
  add(name: string, value: string): this {
    this.headers.push({ name: canonicalHeaderName(name), value });
    return this;
  }

  /** Insert a header line before the first header of that name (e.g. a new top Via), else at the top. */
  prepend(name: string, value: string): this {
    const cname = canonicalHeaderName(name);
    const lname = cname.toLowerCase();
    const idx = this.headers.findIndex((h) => h.name.toLowerCase() === lname);
    this.headers.splice(idx < 0 ? 0 : idx, 0, { name: cname, value });
    return this;
  }

  /** Remove every header line named `name`. */
  remove(name: string): this {
    const lname = canonicalHeaderName(name).toLowerCase();
    this.headers = this.headers.filter((h) => h.name.toLowerCase() !== lname);
    return this;
  }

  /** Call-ID value, or `''` when absent. */
  get callId(): string {
    return this.get('Call-ID') ?? '';
  }

  /** Parsed CSeq; `{ seq: NaN, method: '' }` when absent or malformed. */
  get cseq(): { seq: number; method: string } {
    return parseCSeq(this.get('CSeq') ?? '') ?? { seq: NaN, method: '' };
  }

  /** `tag` parameter of From, if any. */
  get fromTag(): string | undefined {
    return headerTag(this.get('From'));
  }

  /** `tag` parameter of To, if any. */
  get toTag(): string | undefined {
    return headerTag(this.get('To'));
  }

  /** Wire form. Content-Length is always (re)written to `body.length`. */
  toBuffer(): Buffer {
    return Buffer.concat([Buffer.from(this.headText(), 'utf8'), this.body]);
  }

  /** Wire form as a string (body decoded as UTF-8). */
  toString(): string {
    return this.headText() + this.body.toString('utf8');
  }

  /** Short human description, for logs: `INVITE sip:x` / `200 OK (INVITE)`. */
  summary(): string {
    return this.isRequest ? `${this.method} ${this.uri}` : `${this.status} ${this.reason} (${this.cseq.method})`;
  }

  /** A deep copy (headers and body copied). */
  clone(): SipMessage {
    const m = new SipMessage();
    m.method = this.method;
    m.uri = this.uri;
    m.status = this.status;
    m.reason = this.reason;
    m.headers = this.headers.map((h) => ({ ...h }));
    m.body = Buffer.from(this.body);
    return m;
  }

  private headText(): string {
    const start = this.isRequest
      ? `${this.method} ${this.uri} SIP/2.0`
      : `SIP/2.0 ${this.status} ${clean(this.reason ?? REASON_PHRASES[this.status ?? 0] ?? '')}`;
    const lines = [start];
    let wroteLength = false;
    for (const h of this.headers) {
      if (h.name.toLowerCase() === 'content-length') {
        if (wroteLength) continue;
        wroteLength = true;
        lines.push(`Content-Length: ${this.body.length}`);
      } else {
        // Values must not carry raw line breaks: that would inject headers.
        lines.push(`${h.name}: ${clean(h.value)}`);
      }
    }
    if (!wroteLength) lines.push(`Content-Length: ${this.body.length}`);
    return lines.join('\r\n') + '\r\n\r\n';
  }

  /** Build a request. A string body is encoded as UTF-8. */
  static request(method: string, uri: string, headers: Header[] = [], body?: Buffer | string): SipMessage {
    const m = new SipMessage();
    m.method = method;
    m.uri = uri;
    for (const h of headers) m.add(h.name, h.value);
    if (body !== undefined) m.body = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    return m;
  }

  /** Build a response; the reason defaults to the standard phrase. */
  static response(status: number, reason?: string, headers: Header[] = [], body?: Buffer | string): SipMessage {
    const m = new SipMessage();
    m.status = status;
    m.reason = reason ?? REASON_PHRASES[status] ?? 'Unknown';
    for (const h of headers) m.add(h.name, h.value);
    if (body !== undefined) m.body = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    return m;
  }
}

function clean(v: string): string {
  return v.replace(/[\r\n]+[ \t]*/g, ' ');
}

/**
 * A message could not be parsed. `message` is a short human reason naming the header and
 * the problem; `partial` carries what was understood (enough for a response when its Via
 * was readable); `status` is the response a request earns: 400, or 505 for a SIP version
 * other than 2.0 (RFC 3261 §21.5.6).
 */
export class SipParseError extends Error {
  partial?: SipMessage;
  status: number;
  constructor(reason: string, partial?: SipMessage, status = 400) {
    super(reason);
    this.name = 'SipParseError';
    this.partial = partial;
    this.status = status;
  }
}

/**
 * A decimal number as RFC 3261's ABNF writes them (`1*DIGIT`: leading zeros are legal, no
 * sign, no spaces): its value, `'syntax'` when it is not all digits, `'range'` when above
 * `max`. Values far beyond any range are never converted (no precision games).
 */
export function parseDecimal(v: string, max: number): number | 'syntax' | 'range' {
  if (!/^\d+$/.test(v)) return 'syntax';
  const digits = v.replace(/^0+(?=\d)/, '');
  if (digits.length > 15) return 'range';
  const n = Number(digits);
  return n > max ? 'range' : n;
}

/** Largest CSeq number (§8.1.1.5: less than 2**31). */
export const MAX_CSEQ = 0x7fffffff;
/** Largest Expires / delta-seconds value (§20.19: 0 to 2**32-1). */
export const MAX_EXPIRES = 0xffffffff;
/** Largest Max-Forwards value (§20.22: 0 to 255). */
export const MAX_MAX_FORWARDS = 255;
/** Largest Content-Length accepted (no SIP message comes near it; larger is surely an error). */
export const MAX_CONTENT_LENGTH = 0xffffffff;

/** A printable, bounded excerpt of offending input for error reasons (safe in a reason phrase). */
function snip(s: string, max = 40): string {
  // eslint-disable-next-line no-control-regex
  const p = s.replace(/[\x00-\x1f\x7f"\\]/g, '?');
  return p.length > max ? p.slice(0, max) + '...' : p;
}

function parseCSeq(v: string): { seq: number; method: string } | undefined {
  const r = checkCSeq(v);
  return typeof r === 'string' ? undefined : r;
}

/**
 * RFC 3261 §20.16: `CSeq = 1*DIGIT LWS Method` (leading zeros legal); the number is < 2**31
 * (§8.1.1.5). `'syntax'` / `'range'` on failure.
 */
function checkCSeq(v: string): { seq: number; method: string } | 'syntax' | 'range' {
  const m = /^\s*(\d+)\s+([^\s]+)\s*$/.exec(v);
  if (!m || !TOKEN_RE.test(m[2])) return 'syntax';
  const seq = parseDecimal(m[1], MAX_CSEQ);
  if (typeof seq === 'string') return seq;
  return { seq, method: m[2] };
}

function headerTag(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return parseNameAddr(v).params.get('tag') ?? undefined;
  } catch {
    return undefined;
  }
}

/** Split a header value at top-level commas (outside quotes and `<…>`), trimming each part. */
export function splitHeaderValues(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (inQuote) {
      cur += ch;
      if (ch === '\\' && i + 1 < value.length) cur += value[++i];
      else if (ch === '"') inQuote = false;
      continue;
    }
    if (ch === '"') inQuote = true;
    else if (ch === '<') inAngle = true;
    else if (ch === '>') inAngle = false;
    else if (ch === ',' && !inAngle) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/** Split `;`-separated parameters outside quotes; keys lower-cased, flag params map to null. */
function parseParams(s: string, what: string): Map<string, string | null> {
  const params = new Map<string, string | null>();
  const parts: string[] = [];
  let cur = '';
  let inQuote = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (inQuote) {
      cur += ch;
      if (ch === '\\' && i + 1 < s.length) cur += s[++i];
      else if (ch === '"') inQuote = false;
    } else if (ch === '"') {
      inQuote = true;
      cur += ch;
    } else if (ch === ';') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (inQuote) throw new SipParseError(`bad ${what}: unterminated quoted parameter`);
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    if (!p) continue;
    const eq = p.indexOf('=');
    const k = (eq < 0 ? p : p.slice(0, eq)).trim().toLowerCase();
    if (!k) throw new SipParseError(`bad ${what}: empty parameter name`);
    params.set(k, eq < 0 ? null : p.slice(eq + 1).trim());
  }
  return params;
}

function formatParams(params: Map<string, string | null>): string {
  let s = '';
  for (const [k, v] of params) s += v === null ? `;${k}` : `;${k}=${v}`;
  return s;
}

/** Parse `host`, `host:port`, `[v6]`, `[v6]:port`. */
function parseHostPort(s: string, what: string): { host: string; port?: number } {
  const t = s.trim();
  let host: string;
  let rest: string;
  if (t.startsWith('[')) {
    const end = t.indexOf(']');
    if (end < 0) throw new SipParseError(`bad ${what}: unterminated IPv6 reference`);
    host = t.slice(1, end);
    rest = t.slice(end + 1);
  } else {
    const colon = t.indexOf(':');
    host = colon < 0 ? t : t.slice(0, colon);
    rest = colon < 0 ? '' : t.slice(colon);
  }
  if (!host || /[\s;,<>"@?]/.test(host)) throw new SipParseError(`bad ${what}: bad host "${snip(host)}"`);
  if (!rest) return { host };
  const pm = /^\s*:\s*(\d{1,5})$/.exec(rest);
  if (!pm || Number(pm[1]) > 65535) throw new SipParseError(`bad ${what}: bad port "${snip(rest)}"`);
  return { host, port: Number(pm[1]) };
}

function formatHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** One Via entry (RFC 3261 §20.42). */
export interface Via {
  /** e.g. `SIP/2.0/UDP` */
  protocol: string;
  /** e.g. `UDP` (upper case) */
  transport: string;
  host: string;
  port?: number;
  /** lower-case names; flag params (e.g. `rport`) map to null */
  params: Map<string, string | null>;
  branch?: string;
}

/** Parse a Via header value; a value may hold several comma-separated entries. */
export function parseVia(value: string): Via[] {
  const out: Via[] = [];
  for (const part of splitHeaderValues(value)) {
    // sent-protocol LWS sent-by *( SEMI via-params ); LWS allowed around "/" (§25.1 SLASH).
    const m = /^([^\s/]+)\s*\/\s*([^\s/]+)\s*\/\s*([^\s/]+)\s+([^;]+)(;.*)?$/s.exec(part);
    if (!m) throw new SipParseError(`bad Via: "${snip(part)}"`);
    const transport = m[3].toUpperCase();
    const { host, port } = parseHostPort(m[4], 'Via');
    const params = parseParams(m[5] ?? '', 'Via');
    const via: Via = { protocol: `${m[1].toUpperCase()}/${m[2]}/${transport}`, transport, host, params };
    if (port !== undefined) via.port = port;
    const br = params.get('branch');
    if (br) via.branch = br;
    out.push(via);
  }
  if (out.length === 0) throw new SipParseError('bad Via: empty value');
  return out;
}

/** Format one Via entry; `branch` (if set) wins over `params.branch`. */
export function formatVia(v: Via): string {
  const proto = v.protocol.split('/');
  const protocol = proto.length === 3 ? `${proto[0]}/${proto[1]}/${v.transport.toUpperCase()}` : v.protocol;
  const params = new Map(v.params);
  if (v.branch !== undefined) params.set('branch', v.branch);
  return `${protocol} ${formatHost(v.host)}${v.port !== undefined ? `:${v.port}` : ''}${formatParams(params)}`;
}

/** A parsed URI (RFC 3261 §19.1); non-SIP schemes (e.g. `tel:`) put their body in `host`. */
export interface SipUri {
  scheme: string;
  user?: string;
  password?: string;
  host: string;
  port?: number;
  params: Map<string, string | null>;
  headers: Map<string, string>;
}

/** Parse a URI; surrounding `<…>` are tolerated. */
export function parseUri(s: string): SipUri {
  let t = s.trim();
  if (t.startsWith('<') && t.endsWith('>')) t = t.slice(1, -1).trim();
  const sm = /^([A-Za-z][A-Za-z0-9+.-]*):(.+)$/s.exec(t);
  if (!sm || /\s/.test(sm[2])) throw new SipParseError(`bad URI: "${snip(t)}"`);
  const scheme = sm[1].toLowerCase();
  let rest = sm[2];
  const headers = new Map<string, string>();
  const q = rest.indexOf('?');
  if (q >= 0) {
    for (const kv of rest.slice(q + 1).split('&')) {
      if (!kv) continue;
      const eq = kv.indexOf('=');
      headers.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
    }
    rest = rest.slice(0, q);
  }
  if (scheme !== 'sip' && scheme !== 'sips') {
    // Opaque scheme (tel:, urn:, …): body up to the first ';', then parameters.
    const semi = rest.indexOf(';');
    const host = semi < 0 ? rest : rest.slice(0, semi);
    if (!host) throw new SipParseError(`bad URI: "${snip(t)}"`);
    return { scheme, host, params: parseParams(semi < 0 ? '' : rest.slice(semi), 'URI'), headers };
  }
  const uri: SipUri = { scheme, host: '', params: new Map(), headers };
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    uri.user = colon < 0 ? userinfo : userinfo.slice(0, colon);
    if (colon >= 0) uri.password = userinfo.slice(colon + 1);
    if (!uri.user) throw new SipParseError(`bad URI: empty user part in "${snip(t)}"`);
  }
  const semi = rest.indexOf(';');
  const hp = parseHostPort(semi < 0 ? rest : rest.slice(0, semi), 'URI');
  uri.host = hp.host;
  if (hp.port !== undefined) uri.port = hp.port;
  uri.params = parseParams(semi < 0 ? '' : rest.slice(semi), 'URI');
  return uri;
}

/**
 * Whether a URI carries a `?headers` component (RFC 3261 §19.1.1). For SIP/SIPS URIs the
 * user part may itself contain `?` (§25.1 `user-unreserved`), so only a `?` after the
 * userinfo's `@` counts; an opaque URI counts any `?`.
 */
export function uriHasHeaders(uri: string): boolean {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(uri.trim().replace(/^<(.*)>$/s, '$1'));
  if (!m) return false;
  const scheme = m[1].toLowerCase();
  const rest = m[2];
  if (scheme !== 'sip' && scheme !== 'sips') return rest.includes('?');
  const at = rest.indexOf('@');
  return (at < 0 ? rest : rest.slice(at + 1)).includes('?');
}

/** Format a URI (no angle brackets). */
export function formatUri(u: SipUri): string {
  let s = `${u.scheme}:`;
  if (u.scheme !== 'sip' && u.scheme !== 'sips') {
    s += u.host;
  } else {
    if (u.user !== undefined) s += u.user + (u.password !== undefined ? `:${u.password}` : '') + '@';
    s += formatHost(u.host) + (u.port !== undefined ? `:${u.port}` : '');
  }
  s += formatParams(u.params);
  if (u.headers.size) s += '?' + [...u.headers].map(([k, v]) => `${k}=${v}`).join('&');
  return s;
}

/** A name-addr / addr-spec header value (From, To, Contact, Route, …). */
export interface NameAddr {
  /** display name, unquoted/unescaped */
  display?: string;
  /** the URI text, without angle brackets */
  uri: string;
  /** header parameters (after `>`), lower-case names */
  params: Map<string, string | null>;
}

/**
 * Parse `"Display" <uri>;params`, `Display Name <uri>;params`, `<uri>;params` or a bare
 * addr-spec `uri;params` (there, per RFC 3261 §20.10, the `;params` are header params).
 */
export function parseNameAddr(value: string): NameAddr {
  const v = value.trim();
  if (!v) throw new SipParseError('bad address: empty value');
  let display: string | undefined;
  let i = 0;
  if (v[0] === '"') {
    let d = '';
    i = 1;
    for (; i < v.length; i++) {
      const ch = v[i];
      if (ch === '\\' && i + 1 < v.length) d += v[++i];
      else if (ch === '"') break;
      else d += ch;
    }
    if (i >= v.length) throw new SipParseError(`bad address: unterminated display name in "${snip(v)}"`);
    display = d;
    i++;
    while (i < v.length && /\s/.test(v[i])) i++;
    if (v[i] !== '<') throw new SipParseError(`bad address: expected <uri> after display name in "${snip(v)}"`);
  } else {
    const lt = v.indexOf('<');
    if (lt < 0) {
      // addr-spec: URI ends at the first ';' (its own params would need <...>).
      const semi = v.indexOf(';');
      const uri = (semi < 0 ? v : v.slice(0, semi)).trim();
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(uri) && uri !== '*') {
        throw new SipParseError(`bad address: "${snip(v)}"`);
      }
      return { uri, params: parseParams(semi < 0 ? '' : v.slice(semi), 'address') };
    }
    const d = v.slice(0, lt).trim();
    if (d) display = d;
    i = lt;
  }
  const gt = v.indexOf('>', i);
  if (gt < 0) throw new SipParseError(`bad address: missing ">" in "${snip(v)}"`);
  const uri = v.slice(i + 1, gt).trim();
  if (!uri) throw new SipParseError(`bad address: empty URI in "${snip(v)}"`);
  const tail = v.slice(gt + 1).trim();
  if (tail && tail[0] !== ';') throw new SipParseError(`bad address: unexpected "${snip(tail)}" after URI`);
  const na: NameAddr = { uri, params: parseParams(tail, 'address') };
  if (display !== undefined) na.display = display;
  return na;
}

/** URI of the first entry of a name-addr header value (Contact, Route, …); lenient on bad input. */
export function firstUri(value: string): string {
  const first = splitHeaderValues(value)[0] ?? value;
  try {
    return parseNameAddr(first).uri;
  } catch {
    return first.trim().replace(/^<|>$/g, '');
  }
}

/** Format a name-addr; the URI is always written as `<uri>`, the display name quoted. */
export function formatNameAddr(n: NameAddr): string {
  const disp = n.display !== undefined && n.display !== ''
    ? `"${n.display.replace(/["\\]/g, (c) => '\\' + c)}" `
    : '';
  return `${disp}<${n.uri}>${formatParams(n.params)}`;
}

/**
 * Build a response to `req`: copies every Via (in order), From, To, Call-ID and CSeq
 * (RFC 3261 §8.2.6.2), adds `Content-Length: 0`. The caller adds a To tag where needed.
 */
export function makeResponse(req: SipMessage, status: number, reason?: string): SipMessage {
  const res = SipMessage.response(status, reason);
  for (const h of req.headers) {
    const n = h.name.toLowerCase();
    if (n === 'via' || n === 'from' || n === 'to' || n === 'call-id' || n === 'cseq') res.add(h.name, h.value);
  }
  res.add('Content-Length', '0');
  return res;
}

/** Add `;tag=<tag>` to the To header of `msg` unless it already has a tag (no To: no-op). */
export function setToTag(msg: SipMessage, tag: string): void {
  const to = msg.get('To');
  if (to !== undefined && !/;\s*tag=/i.test(to)) msg.set('To', `${to};tag=${tag}`);
}

/** A fresh RFC 3261 branch (magic cookie `z9hG4bK`, §8.1.1.7). */
export function newBranch(): string {
  return 'z9hG4bK' + randomBytes(10).toString('hex');
}

/** A fresh From/To tag (§19.3: at least 32 bits of randomness). */
export function newTag(): string {
  return randomBytes(6).toString('hex');
}

/** A fresh, globally unique Call-ID (§8.1.1.4). */
export function newCallId(): string {
  return randomBytes(16).toString('hex');
}

/** Headers that must appear at most once (a duplicate makes the message ambiguous). */
const SINGLE = ['From', 'To', 'Call-ID', 'CSeq', 'Max-Forwards', 'Content-Length'];

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

/**
 * Parse one SIP message. Body length follows Content-Length; without Content-Length the
 * body is the rest of the input (RFC 3261 §18.3, datagram transports; stream transports
 * must frame messages themselves and require Content-Length). Bytes beyond Content-Length
 * are discarded (§18.3).
 *
 * @throws SipParseError with a precise reason and the `partial` message, never anything else.
 */
export function parseSipMessage(data: Buffer | string): SipMessage {
  try {
    return parseInner(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  } catch (e) {
    if (e instanceof SipParseError) throw e;
    // Defensive: parsing must never surface anything but SipParseError.
    throw new SipParseError(`unparsable message: ${(e as Error)?.message ?? String(e)}`);
  }
}

function parseInner(buf: Buffer): SipMessage {
  // §7.5: CRLFs before the start line are ignored.
  let off = 0;
  while (off < buf.length && (buf[off] === 0x0d || buf[off] === 0x0a)) off++;
  if (off >= buf.length) throw new SipParseError('empty message');

  let headEnd = buf.indexOf(CRLFCRLF, off);
  let bodyStart: number;
  if (headEnd >= 0) bodyStart = headEnd + 4;
  else {
    headEnd = buf.indexOf(LFLF, off);
    if (headEnd >= 0) bodyStart = headEnd + 2;
    else {
      headEnd = buf.length;
      bodyStart = buf.length;
    }
  }
  const head = buf.toString('utf8', off, headEnd);
  const rawLines = head.split(/\r?\n/);

  const msg = new SipMessage();
  let err: string | undefined;
  let errStatus = 400;
  const fail = (reason: string, status = 400): void => {
    if (err !== undefined) return;
    err = reason;
    errStatus = status;
  };

  // Start line (§7.1 Request-Line, §7.2 Status-Line). SIP-Version is case-insensitive (§7.1).
  const start = rawLines[0] ?? '';
  if (/^SIP\//i.test(start)) {
    const m = /^SIP\/(\d+\.\d+) (\d{3})(?: (.*))?$/i.exec(start);
    if (!m) fail(`malformed status line: "${snip(start)}"`);
    else if (m[1] !== '2.0') fail(`unsupported SIP version: SIP/${snip(m[1], 10)}`);
    else if (Number(m[2]) < 100 || Number(m[2]) > 699) fail(`bad status code: ${m[2]}`);
    msg.status = m ? Number(m[2]) : 0;
    msg.reason = m?.[3] ?? '';
  } else {
    const parts = start.split(' ');
    const method = parts[0] ?? '';
    msg.method = TOKEN_RE.test(method) ? method : 'UNKNOWN';
    msg.uri = parts[1] ?? '';
    if (parts.length !== 3 || !TOKEN_RE.test(method) || !parts[1]) {
      fail(`malformed request line: "${snip(start)}"`);
    } else if (parts[2].toUpperCase() !== 'SIP/2.0') {
      // §21.5.6: a version we do not speak earns 505; anything else is just malformed.
      if (/^SIP\/\d+\.\d+$/i.test(parts[2])) fail(`unsupported SIP version: ${snip(parts[2], 12)}`, 505);
      else fail(`malformed request line: "${snip(start)}"`);
    } else if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/.test(parts[1])) {
      fail(`bad Request-URI: "${snip(parts[1])}"`);
    } else if (/^(sips?|tel):/i.test(parts[1]) && uriHasHeaders(parts[1])) {
      // §19.1.1 table: the headers component is not allowed in a Request-URI.
      fail(`Request-URI must not carry headers: "${snip(parts[1])}"`);
    }
  }

  // Header lines; a line starting with SP/HT continues the previous one (§7.3.1 folding).
  const lines: string[] = [];
  for (let i = 1; i < rawLines.length; i++) {
    const l = rawLines[i];
    if ((l.startsWith(' ') || l.startsWith('\t')) && lines.length > 0) {
      lines[lines.length - 1] += ' ' + l.trim();
    } else if (l.startsWith(' ') || l.startsWith('\t')) {
      fail('header continuation line without a header');
    } else lines.push(l);
  }
  for (const l of lines) {
    const colon = l.indexOf(':');
    const name = colon < 0 ? '' : l.slice(0, colon).replace(/[ \t]+$/, '');
    if (colon < 0 || !TOKEN_RE.test(name)) {
      fail(`malformed header line: "${snip(l)}"`);
      continue;
    }
    msg.headers.push({ name: canonicalHeaderName(name), value: l.slice(colon + 1).trim() });
  }

  for (const n of SINGLE) {
    if (msg.getAll(n).length > 1) fail(`multiple ${n} headers`);
  }

  // Body (§20.14 Content-Length; §18.3 framing rules).
  const available = buf.length - bodyStart;
  const cl = msg.get('Content-Length');
  const len = cl === undefined ? undefined : parseDecimal(cl, MAX_CONTENT_LENGTH);
  if (cl === undefined) msg.body = Buffer.from(buf.subarray(bodyStart));
  else if (len === 'syntax') fail(`bad Content-Length: "${snip(cl, 20)}"`);
  else if (len === 'range') fail(`Content-Length out of range (max ${MAX_CONTENT_LENGTH}): ${snip(cl, 32)}`);
  else if (len !== undefined) {
    if (len > available) fail(`truncated body: Content-Length ${len} but only ${available} bytes`);
    msg.body = Buffer.from(buf.subarray(bodyStart, bodyStart + Math.min(len, available)));
  }

  // Mandatory headers (§8.1.1). Checked for responses too: transactions need them to match.
  const kind = msg.isRequest ? 'request' : 'response';
  for (const n of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    if (!msg.has(n)) fail(`missing ${n} header`);
  }
  const via = msg.get('Via');
  if (via !== undefined) {
    try {
      parseVia(via);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  for (const n of ['From', 'To']) {
    const v = msg.get(n);
    if (v === undefined) continue;
    try {
      parseNameAddr(v);
    } catch (e) {
      fail(`bad ${n} header: ${(e as Error).message.replace(/^bad address: /, '')}`);
    }
  }
  const callId = msg.get('Call-ID');
  if (callId !== undefined && (!callId || /\s/.test(callId))) fail(`bad Call-ID: "${snip(callId)}"`);
  const cseqRaw = msg.get('CSeq');
  if (cseqRaw !== undefined) {
    const cs = checkCSeq(cseqRaw);
    if (cs === 'syntax') fail(`bad CSeq: "${snip(cseqRaw, 30)}"`);
    else if (cs === 'range') fail(`CSeq number out of range (max ${MAX_CSEQ}): "${snip(cseqRaw, 30)}"`);
    else if (msg.isRequest && msg.method !== 'UNKNOWN' && cs.method !== msg.method) {
      fail(`CSeq method ${snip(cs.method, 20)} does not match ${kind} method ${msg.method}`);
    }
  }
  // §20.22 Max-Forwards = 1*DIGIT, 0-255; leading zeros are legal (RFC 4475 §3.1.1.1 "0068").
  const mf = msg.get('Max-Forwards');
  const mfv = mf === undefined ? undefined : parseDecimal(mf, MAX_MAX_FORWARDS);
  if (mfv === 'syntax') fail(`bad Max-Forwards: "${snip(mf!, 20)}"`);
  else if (mfv === 'range') fail(`Max-Forwards out of range (0-${MAX_MAX_FORWARDS}): ${snip(mf!, 32)}`);
  if (msg.isRequest) {
    // §20.19 Expires = delta-seconds (1*DIGIT), 0 to 2**32-1. Checked on requests only: a
    // response with an odd Expires is still worth delivering.
    const exp = msg.get('Expires');
    const ev = exp === undefined ? undefined : parseDecimal(exp, MAX_EXPIRES);
    if (ev === 'syntax') fail(`bad Expires: "${snip(exp!, 20)}"`);
    else if (ev === 'range') fail(`Expires out of range (max ${MAX_EXPIRES}): ${snip(exp!, 32)}`);
    // §10.2.2, §20.10: "Contact: *" only means "all bindings" in a REGISTER.
    if (msg.method !== 'REGISTER' && msg.getAll('Contact').some((c) => splitHeaderValues(c).includes('*'))) {
      fail(`Contact: * is only allowed in REGISTER, not in ${msg.method}`);
    }
  }

  if (err !== undefined) throw new SipParseError(err, msg, msg.isRequest ? errStatus : 400);
  return msg;
}
