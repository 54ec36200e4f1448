/**
 * Who is calling and which number they called, read the way carriers and PBXs send it.
 *
 * **Calling number (ANI)**, first that yields one:
 * 1. `P-Asserted-Identity` (RFC 3325) — only from a trusted source (below); of several values
 *    (a `sip:` and a `tel:` URI) the first that is a telephone number;
 * 2. `Remote-Party-ID` (the pre-standard draft, still sent by many PBXs and SBCs) — only from a
 *    trusted source; the `party=calling` entry (or one without `party`);
 * 3. `From`.
 * Identity headers from anywhere else are ignored (logged at debug), so a caller on the open
 * internet cannot claim a customer's number with a forged PAI.
 *
 * **Trust** comes from the source address of the INVITE: a configured trunk (`trunks[]` of the
 * config) with `trustIdentity` (the default for a trunk). With no trunk configured at all,
 * loopback (127.0.0.0/8, ::1) is trusted — a local SBC or proxy, and the tests' SIPp — and
 * nothing else; once any trunk is configured, loopback is trusted only if a trunk lists it.
 *
 * **Privacy** (RFC 3323/3325): `Privacy: id`, `header` or `user`, a Remote-Party-ID
 * `privacy=full|uri` on the entry used, or an anonymous `From`
 * (`anonymous@anonymous.invalid`, users such as `anonymous`, `restricted`, `unavailable`)
 * withhold the number from people: {@link CallIdentity.presentation} is `anonymous`, and that is
 * what logs, the CDR, the screen pop and the rep's phone show. The network-asserted number is
 * still kept in {@link CallIdentity.ani} for the CRM lookup — a trusted network delivers it for
 * exactly that — and never written to a log line.
 *
 * **Numbers**: `tel:` URIs (with `;phone-context=` — a global context such as `+1415` is
 * prefixed to a local number, a domain context means "national, per the trunk's country"),
 * `sip:`/`sips:` users (with or without `user=phone`; tel parameters such as `;npdi;rn=` in
 * the user part are dropped), %-escaped users (`%2B1415…`) and visual separators
 * (`+1 (415) 555-0100`) are normalised to E.164 with libphonenumber-js; a national form uses
 * the trunk's country, else the configured default country. What is not a possible telephone
 * number (an extension `100`, a name `alice`) stays as it came (digits only for digit strings).
 *
 * **Dialed number (DNIS)**: the Request-URI user, else the To user. For a forwarded call the
 * *original called number* comes from `History-Info` (RFC 7044: its first entry) or else from
 * the last (oldest) `Diversion` entry (RFC 5806), and is recorded when it differs from the
 * DNIS. The tenant is matched on the number the carrier delivered to us first (Request-URI,
 * then To), then the original called number: the delivered number is the DID we were routed
 * on, and the original one only helps when a PBX forwards calls to a common trunk number.
 */
import ipaddr from 'ipaddr.js';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { TrunkSettings } from '../config.ts';

/** The parts of a SIP request this module reads (a drachtio-srf request fits). */
export interface IdentityRequest {
  /** Request-URI */
  uri: string;
  get(header: string): string | undefined;
  /** where the INVITE came from (the transport source, not a header) */
  source_address?: string;
}

/** One entry of a name-addr header (`"Name" <uri>;param=value`). */
export interface NameAddr {
  display?: string;
  uri: string;
  /** header parameters (after the `>`), names lower-case; a flag parameter has value '' */
  params: Record<string, string>;
}

/** A parsed `sip:`, `sips:` or `tel:` URI. */
export interface ParsedUri {
  scheme: string;
  /** user part (for tel: the number) without its `;` parameters, %-decoded; '' when absent */
  user: string;
  /** parameters inside the user part (`;phone-context=`, `;npdi`, `;rn=` …), names lower-case */
  userParams: Record<string, string>;
  host: string;
  /** URI parameters (`;user=phone`, `;transport=`), names lower-case */
  params: Record<string, string>;
}

/** A number as we use it: E.164 when it is a possible telephone number. */
export interface NormalizedNumber {
  /** `+14155550100`; undefined when the user part is no possible telephone number */
  e164?: string;
  /** the user part as sent (%-decoded, parameters dropped) */
  raw: string;
  /** E.164 when known, else the raw user (separators dropped from digit strings) */
  value: string;
}

/** Which header the calling number came from. */
export type AniSource = 'pai' | 'rpid' | 'from';

export interface CallIdentity {
  /**
   * Calling number for lookups (CRM identify_caller): E.164 when possible, else the user part
   * as sent; '' when the caller is anonymous and no trusted identity names them. Not for
   * display or logs when {@link privacy} is set.
   */
  ani: string;
  aniSource: AniSource;
  /** What people and logs see: the calling number, or `anonymous` when withheld or unknown. */
  presentation: string;
  /** The caller asked for their number to be withheld (or sent no number at all). */
  privacy: boolean;
  /** Dialed number: E.164 when possible, else the user part as sent. */
  dnis: string;
  dnisSource: 'request-uri' | 'to';
  /** Original called number of a forwarded call (History-Info / Diversion), when it differs. */
  originalCalled?: string;
  originalCalledSource?: 'history-info' | 'diversion';
  /** The trunk the INVITE came from (by source address), if any. */
  trunk?: string;
  /** PAI / RPID were believed (trusted source). */
  trusted: boolean;
  /** Country used for national number forms. */
  country: CountryCode;
  /** Tenant lookup order: delivered number (Request-URI, To), then original called. */
  tenantCandidates: string[];
  /** The delivered number only (Request-URI, then To), in the same forms: what a trunk's allowed DIDs are checked against. */
  dialed: string[];
  /** Identity headers that were present but not believed (for a debug line). */
  ignored: string[];
}

// ---- header and URI parsing ---------------------------------------------------------------

/** Split a header value on top-level commas (not inside quotes or `<…>`). */
export function splitHeaderList(value: string | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let angle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < value.length) cur += value[++i];
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '<') angle = true;
    else if (c === '>') angle = false;
    else if (c === ',' && !angle) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

function parseParams(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of s.split(';')) {
    const t = p.trim();
    if (t === '') continue;
    const eq = t.indexOf('=');
    const k = (eq < 0 ? t : t.slice(0, eq)).trim().toLowerCase();
    let v = eq < 0 ? '' : t.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (k !== '' && !(k in out)) out[k] = v;
  }
  return out;
}

/** One name-addr / addr-spec header value. Parameters after an addr-spec belong to the header (RFC 3261 §20). */
export function parseNameAddr(value: string): NameAddr | null {
  let s = value.trim();
  if (s === '') return null;
  let display: string | undefined;
  if (s.startsWith('"')) {
    let i = 1;
    let d = '';
    for (; i < s.length && s[i] !== '"'; i++) {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      d += s[i];
    }
    display = d;
    s = s.slice(i + 1).trim();
  }
  const lt = s.indexOf('<');
  if (lt >= 0) {
    const gt = s.indexOf('>', lt);
    if (gt < 0) return null;
    const before = s.slice(0, lt).trim();
    if (display === undefined && before !== '') display = before;
    return { ...(display !== undefined ? { display } : {}), uri: s.slice(lt + 1, gt).trim(), params: parseParams(s.slice(gt + 1)) };
  }
  const semi = s.indexOf(';');
  return { ...(display !== undefined ? { display } : {}), uri: (semi < 0 ? s : s.slice(0, semi)).trim(), params: semi < 0 ? {} : parseParams(s.slice(semi)) };
}

/** %-decode, leaving malformed escapes as they are. */
export function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** Parse a `sip:`, `sips:` or `tel:` URI; null for anything else or garbage. */
export function parseUri(uriIn: string): ParsedUri | null {
  const uri = uriIn.trim();
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/.exec(uri);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase();
  let rest = m[2]!;
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q); // URI headers (History-Info's ?Reason=…)
  if (scheme === 'tel') {
    const semi = rest.indexOf(';');
    const num = semi < 0 ? rest : rest.slice(0, semi);
    const userParams = semi < 0 ? {} : parseParams(rest.slice(semi));
    return { scheme, user: percentDecode(num.trim()), userParams, host: '', params: {} };
  }
  if (scheme !== 'sip' && scheme !== 'sips') return null;
  let userinfo = '';
  let hostport = rest;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    userinfo = rest.slice(0, at);
    hostport = rest.slice(at + 1);
  }
  // user part: number/name, then telephone-subscriber parameters, then an optional :password
  const colon = userinfo.indexOf(':');
  if (colon >= 0) userinfo = userinfo.slice(0, colon);
  const usemi = userinfo.indexOf(';');
  const user = percentDecode(usemi < 0 ? userinfo : userinfo.slice(0, usemi));
  const userParams = usemi < 0 ? {} : parseParams(percentDecode(userinfo.slice(usemi)));
  const hsemi = hostport.indexOf(';');
  const host = (hsemi < 0 ? hostport : hostport.slice(0, hsemi)).trim();
  const params = hsemi < 0 ? {} : parseParams(hostport.slice(hsemi));
  return { scheme, user: user.trim(), userParams, host, params };
}

// ---- numbers --------------------------------------------------------------------------------

const VISUAL_SEPARATORS = /[\s\-.()]/g;

/**
 * Normalise the user part of a `sip:`/`tel:` URI to E.164 when it is a possible telephone
 * number (`country` for national forms); otherwise keep it as sent.
 */
export function normalizeUriNumber(uri: ParsedUri, country: CountryCode): NormalizedNumber {
  const raw = uri.user;
  const compact = raw.replace(VISUAL_SEPARATORS, '');
  if (!/^\+?[0-9]+$/.test(compact)) return { raw, value: raw };
  let candidate = compact;
  const ctx = uri.userParams['phone-context'];
  if (!compact.startsWith('+') && ctx !== undefined) {
    const global = ctx.replace(VISUAL_SEPARATORS, '');
    // RFC 3966 §5.1.5: a global-number-digits context is prefixed to the local number
    if (/^\+[0-9]+$/.test(global)) candidate = global + compact;
  }
  const digits = compact.replace(/^\+/, '');
  const pn = parsePhoneNumberFromString(candidate, country);
  if (pn && pn.isPossible()) return { e164: pn.number, raw, value: pn.number };
  return { raw, value: compact.startsWith('+') ? compact : digits };
}

const ANONYMOUS_USERS = new Set(['anonymous', 'restricted', 'unavailable', 'unknown', 'private', 'withheld', 'anonymous.invalid']);

function isAnonymous(uri: ParsedUri | null, display?: string): boolean {
  if (!uri) return false;
  if (uri.host.toLowerCase() === 'anonymous.invalid') return true;
  if (ANONYMOUS_USERS.has(uri.user.toLowerCase())) return true;
  return uri.user === '' && /^anonymous$/i.test(display ?? '');
}

// ---- trunks -------------------------------------------------------------------------------

/** Which trunk an address belongs to, and whether its identity headers are believed. */
export interface TrunkMatch {
  trunk?: TrunkSettings;
  trusted: boolean;
  country: CountryCode;
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseSource(s: string): Cidr {
  if (s.includes('/')) return ipaddr.parseCIDR(s);
  const a = ipaddr.parse(s);
  return [a, a.kind() === 'ipv4' ? 32 : 128];
}

const LOOPBACK: Cidr[] = [ipaddr.parseCIDR('127.0.0.0/8'), ipaddr.parseCIDR('::1/128')];

function inAny(addr: ipaddr.IPv4 | ipaddr.IPv6, list: Cidr[]): boolean {
  return list.some(([net, len]) => net.kind() === addr.kind() && addr.match(net, len));
}

/** Trunks by source address (IPv4, IPv6, IPv4-mapped IPv6 seen as IPv4). */
export class TrunkMatcher {
  private readonly trunks: { t: TrunkSettings; nets: Cidr[] }[];
  constructor(trunks: readonly TrunkSettings[], readonly defaultCountry: CountryCode = 'US') {
    this.trunks = trunks.map((t) => ({ t, nets: t.sources.map(parseSource) }));
  }

  get size(): number {
    return this.trunks.length;
  }

  match(address: string | undefined): TrunkMatch {
    let addr: ipaddr.IPv4 | ipaddr.IPv6 | undefined;
    try {
      if (address) addr = ipaddr.process(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
    } catch {
      addr = undefined;
    }
    if (addr) {
      for (const { t, nets } of this.trunks) {
        if (inAny(addr, nets)) return { trunk: t, trusted: t.trustIdentity, country: t.country };
      }
      if (this.trunks.length === 0 && inAny(addr, LOOPBACK)) return { trusted: true, country: this.defaultCountry };
    }
    return { trusted: false, country: this.defaultCountry };
  }
}

// ---- the call's identity --------------------------------------------------------------------

function privacyRequested(value: string | undefined): boolean {
  if (!value) return false;
  const vals = value.split(/[;,]/).map((v) => v.trim().toLowerCase());
  return vals.some((v) => v === 'id' || v === 'header' || v === 'user');
}

interface Candidate { na: NameAddr; uri: ParsedUri; num: NormalizedNumber }

function candidates(value: string | undefined, country: CountryCode): Candidate[] {
  const out: Candidate[] = [];
  for (const item of splitHeaderList(value)) {
    const na = parseNameAddr(item);
    const uri = na ? parseUri(na.uri) : null;
    if (na && uri) out.push({ na, uri, num: normalizeUriNumber(uri, country) });
  }
  return out;
}

/** The entry that best names a telephone number: first with E.164, else first with a user. */
function bestNumber(list: Candidate[]): Candidate | undefined {
  return list.find((c) => c.num.e164 !== undefined && !isAnonymous(c.uri, c.na.display))
    ?? list.find((c) => c.uri.user !== '' && !isAnonymous(c.uri, c.na.display));
}

function digitsKey(n: NormalizedNumber | undefined): string[] {
  if (!n) return [];
  const out: string[] = [];
  if (n.e164) out.push(n.e164);
  if (/^\+?[0-9]+$/.test(n.value) && !out.includes(n.value)) out.push(n.value);
  const rawDigits = n.raw.replace(VISUAL_SEPARATORS, '');
  if (/^\+?[0-9]+$/.test(rawDigits) && !out.includes(rawDigits)) out.push(rawDigits);
  return out;
}

/** Read caller and dialed number of an INVITE. `trunks` decides trust and the country. */
export function readCallIdentity(req: IdentityRequest, trunks: TrunkMatcher): CallIdentity {
  const m = trunks.match(req.source_address);
  const country = m.country;
  const ignored: string[] = [];

  // Calling number
  const fromNa = parseNameAddr(req.get('From') ?? '');
  const fromUri = fromNa ? parseUri(fromNa.uri) : null;
  const fromAnonymous = isAnonymous(fromUri, fromNa?.display);
  let privacy = privacyRequested(req.get('Privacy')) || fromAnonymous;
  let source: AniSource = 'from';
  let ani: NormalizedNumber | undefined;
  const pai = req.get('P-Asserted-Identity');
  const rpid = req.get('Remote-Party-ID');
  if (m.trusted) {
    const p = bestNumber(candidates(pai, country));
    if (p) {
      source = 'pai';
      ani = p.num;
    } else {
      const entries = candidates(rpid, country).filter((c) => {
        const party = c.na.params.party?.toLowerCase();
        return party === undefined || party === '' || party === 'calling';
      });
      const r = bestNumber(entries);
      if (r) {
        source = 'rpid';
        ani = r.num;
        const rp = r.na.params.privacy?.toLowerCase();
        if (rp === 'full' || rp === 'uri') privacy = true;
      }
    }
  } else {
    if (pai) ignored.push('P-Asserted-Identity');
    if (rpid) ignored.push('Remote-Party-ID');
  }
  if (!ani && fromUri && !fromAnonymous && fromUri.user !== '') ani = normalizeUriNumber(fromUri, country);
  const aniValue = ani?.value ?? '';
  const presentation = privacy || aniValue === '' ? 'anonymous' : aniValue;

  // Dialed number
  const ruri = parseUri(req.uri);
  const ruriNum = ruri && ruri.user !== '' ? normalizeUriNumber(ruri, country) : undefined;
  const toNa = parseNameAddr(req.get('To') ?? '');
  const toUri = toNa ? parseUri(toNa.uri) : null;
  const toNum = toUri && toUri.user !== '' ? normalizeUriNumber(toUri, country) : undefined;
  const dnisNum = ruriNum ?? toNum;
  const dnis = dnisNum?.value ?? '';

  // Original called number of a forwarded call
  let original: NormalizedNumber | undefined;
  let originalSource: 'history-info' | 'diversion' | undefined;
  const hi = candidates(req.get('History-Info'), country).filter((c) => c.uri.user !== '');
  if (hi.length > 0) {
    const byIndex = [...hi].sort((a, b) => compareIndex(a.na.params.index, b.na.params.index));
    original = byIndex[0]!.num;
    originalSource = 'history-info';
  } else {
    const div = candidates(req.get('Diversion'), country).filter((c) => c.uri.user !== '');
    if (div.length > 0) {
      original = div[div.length - 1]!.num;
      originalSource = 'diversion';
    }
  }
  const originalCalled = original && original.value !== dnis ? original.value : undefined;

  const tenantCandidates: string[] = [];
  for (const k of [...digitsKey(ruriNum), ...digitsKey(toNum), ...(originalCalled ? digitsKey(original) : [])]) {
    if (!tenantCandidates.includes(k)) tenantCandidates.push(k);
  }
  const dialed = [...new Set([...digitsKey(ruriNum), ...digitsKey(toNum)])];

  return {
    ani: aniValue,
    aniSource: source,
    presentation,
    privacy,
    dnis,
    dnisSource: ruriNum ? 'request-uri' : 'to',
    ...(originalCalled ? { originalCalled, originalCalledSource: originalSource! } : {}),
    ...(m.trunk ? { trunk: m.trunk.name } : {}),
    trusted: m.trusted,
    country,
    tenantCandidates,
    dialed,
    ignored,
  };
}

/** History-Info `index` order (`1` < `1.1` < `1.1.1` < `1.2`); entries without one keep their place. */
function compareIndex(a: string | undefined, b: string | undefined): number {
  if (a === undefined || b === undefined) return 0;
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? -1;
    const y = pb[i] ?? -1;
    if (x !== y) return x - y;
  }
  return 0;
}
