/**
 * SDP (RFC 8866, formerly RFC 4566) parser and serializer.
 *
 * The model keeps every line it understands in a typed field and every attribute in
 * order, so `serializeSdp(parseSdp(x))` reproduces the meaning of `x`. Unknown line
 * types are ignored, as RFC 8866 §5 requires. Anything structurally broken throws an
 * {@link SdpError} with `kind: 'malformed'` and a message that names the line.
 */

/** Why an SDP could not be used; the SIP layer maps every kind to 488 with this text. */
export type SdpErrorKind = 'malformed' | 'no-common-codec' | 'no-audio' | 'unsupported' | 'srtp';

/** The only error type the SDP module throws for bad input. */
export class SdpError extends Error {
  readonly kind: SdpErrorKind;
  /** For `no-common-codec`: what the peer offered and what we support, for logs and headers. */
  readonly offered?: string;
  readonly supported?: string;
  constructor(kind: SdpErrorKind, message: string, details?: { offered: string; supported: string }) {
    super(message);
    this.name = 'SdpError';
    this.kind = kind;
    if (details) {
      this.offered = details.offered;
      this.supported = details.supported;
    }
  }
}

export interface SdpOrigin {
  username: string;
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: string;
  address: string;
}

export interface SdpConnection {
  netType: string;
  /** `IP4` or `IP6` */
  addrType: string;
  /** the address without any `/ttl` or `/count` suffix */
  address: string;
  /** `/ttl[/count]` suffix as written, if any */
  suffix?: string;
}

export interface SdpAttribute {
  name: string;
  /** undefined for property attributes such as `a=sendrecv` */
  value?: string;
}

export interface SdpTiming {
  start: string;
  stop: string;
  /** `r=` lines belonging to this `t=` */
  repeats: string[];
}

export interface SdpMedia {
  /** `audio`, `video`, `application`, ... */
  type: string;
  port: number;
  /** the `/<number of ports>` suffix, if present */
  portCount?: number;
  /** `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ... */
  proto: string;
  /** formats (payload types for RTP) in the offerer's order */
  formats: string[];
  info?: string;
  connection?: SdpConnection;
  bandwidths: string[];
  key?: string;
  attributes: SdpAttribute[];
}

export interface SessionDescription {
  version: number;
  origin: SdpOrigin;
  sessionName: string;
  info?: string;
  uri?: string;
  emails: string[];
  phones: string[];
  connection?: SdpConnection;
  bandwidths: string[];
  timing: SdpTiming[];
  timezones?: string;
  key?: string;
  attributes: SdpAttribute[];
  media: SdpMedia[];
}

export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
const DIRECTIONS = new Set<string>(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

export interface RtpMap {
  payloadType: number;
  encoding: string;
  clockRate: number;
  channels?: number;
}

/**
 * Largest SDP body accepted, in bytes. Real offers are a few hundred bytes; the cap keeps
 * a hostile peer from making the parser work on megabytes.
 * @defaultValue 65536
 */
export const MAX_SDP_BYTES = 65536;

const LINE_RE = /^([a-zA-Z])=(.*)$/;
const TOKEN_RE = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

function parseConnection(value: string, lineNo: number): SdpConnection {
  const parts = value.trim().split(/\s+/);
  if (parts.length !== 3) {
    throw new SdpError('malformed', `malformed SDP: line ${lineNo}: c= needs "<nettype> <addrtype> <address>", got "${value}"`);
  }
  const [netType, addrType, full] = parts as [string, string, string];
  const slash = full.indexOf('/');
  const address = slash >= 0 ? full.slice(0, slash) : full;
  const suffix = slash >= 0 ? full.slice(slash) : undefined;
  if (!address) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: c= has an empty address`);
  return suffix === undefined ? { netType, addrType, address } : { netType, addrType, address, suffix };
}

function parseMediaLine(value: string, lineNo: number): SdpMedia {
  const parts = value.trim().split(/\s+/);
  if (parts.length < 4) {
    throw new SdpError('malformed', `malformed SDP: line ${lineNo}: m= needs "<media> <port> <proto> <fmt> ...", got "${value}"`);
  }
  const [type, portField, proto, ...formats] = parts as [string, string, string, ...string[]];
  if (!TOKEN_RE.test(type)) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: m= media type "${type}" is not a token`);
  const pm = /^(\d{1,5})(?:\/(\d{1,5}))?$/.exec(portField);
  if (!pm) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: m= port "${portField}" is not a number`);
  const port = Number(pm[1]);
  if (port > 65535) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: m= port ${port} is out of range`);
  const media: SdpMedia = { type, port, proto, formats, bandwidths: [], attributes: [] };
  if (pm[2] !== undefined) media.portCount = Number(pm[2]);
  for (const f of formats) {
    if (!TOKEN_RE.test(f)) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: m= format "${f}" is not a token`);
  }
  return media;
}

function parseAttribute(value: string): SdpAttribute {
  const colon = value.indexOf(':');
  if (colon < 0) return { name: value };
  return { name: value.slice(0, colon), value: value.slice(colon + 1) };
}

/**
 * Parse an SDP body. Accepts CRLF or bare LF line ends and trailing blank lines.
 * Requires `v=0` first and an `o=` line; `s=` and `t=` are tolerated when missing because
 * some deployed user agents omit them.
 * @throws SdpError (kind `malformed`)
 */
export function parseSdp(text: string): SessionDescription {
  if (typeof text !== 'string' || text.trim() === '') throw new SdpError('malformed', 'malformed SDP: body is empty');
  if (text.length > MAX_SDP_BYTES) throw new SdpError('malformed', `malformed SDP: body is ${text.length} bytes, limit is ${MAX_SDP_BYTES}`);
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();

  let sd: Partial<SessionDescription> & { emails: string[]; phones: string[]; bandwidths: string[]; timing: SdpTiming[]; attributes: SdpAttribute[]; media: SdpMedia[] } = {
    emails: [], phones: [], bandwidths: [], timing: [], attributes: [], media: [],
  };
  let current: SdpMedia | undefined;

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const m = LINE_RE.exec(raw);
    if (!m) {
      const shown = raw.length > 60 ? raw.slice(0, 60) + '…' : raw;
      throw new SdpError('malformed', `malformed SDP: line ${lineNo}: expected "<type>=<value>", got "${shown}"`);
    }
    const type = m[1]!;
    const value = m[2]!;
    if (i === 0) {
      if (type !== 'v') throw new SdpError('malformed', `malformed SDP: line 1: must be "v=0", got "${raw.slice(0, 60)}"`);
      if (value.trim() !== '0') throw new SdpError('malformed', `malformed SDP: line 1: unsupported version "v=${value}"`);
      sd.version = 0;
      continue;
    }
    if (type === 'm') {
      current = parseMediaLine(value, lineNo);
      sd.media.push(current);
      continue;
    }
    if (current) {
      switch (type) {
        case 'i': current.info = value; break;
        case 'c': current.connection = parseConnection(value, lineNo); break;
        case 'b': current.bandwidths.push(value); break;
        case 'k': current.key = value; break;
        case 'a': current.attributes.push(parseAttribute(value)); break;
        default: break; // unknown or session-only types inside media: ignore (RFC 8866 §5)
      }
      continue;
    }
    switch (type) {
      case 'v': throw new SdpError('malformed', `malformed SDP: line ${lineNo}: second "v=" line`);
      case 'o': {
        if (sd.origin) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: second "o=" line`);
        const p = value.trim().split(/\s+/);
        if (p.length !== 6) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: o= needs 6 fields, got ${p.length}`);
        const [username, sessionId, sessionVersion, netType, addrType, address] = p as [string, string, string, string, string, string];
        sd.origin = { username, sessionId, sessionVersion, netType, addrType, address };
        break;
      }
      case 's': sd.sessionName = value === '' ? '-' : value; break;
      case 'i': sd.info = value; break;
      case 'u': sd.uri = value; break;
      case 'e': sd.emails.push(value); break;
      case 'p': sd.phones.push(value); break;
      case 'c': sd.connection = parseConnection(value, lineNo); break;
      case 'b': sd.bandwidths.push(value); break;
      case 't': {
        const p = value.trim().split(/\s+/);
        if (p.length !== 2 || !/^\d+$/.test(p[0]!) || !/^\d+$/.test(p[1]!)) {
          throw new SdpError('malformed', `malformed SDP: line ${lineNo}: t= needs "<start> <stop>", got "${value}"`);
        }
        sd.timing.push({ start: p[0]!, stop: p[1]!, repeats: [] });
        break;
      }
      case 'r': {
        const last = sd.timing[sd.timing.length - 1];
        if (!last) throw new SdpError('malformed', `malformed SDP: line ${lineNo}: r= before any t=`);
        last.repeats.push(value);
        break;
      }
      case 'z': sd.timezones = value; break;
      case 'k': sd.key = value; break;
      case 'a': sd.attributes.push(parseAttribute(value)); break;
      default: break;
    }
  }
  if (!sd.origin) throw new SdpError('malformed', 'malformed SDP: missing "o=" line');
  return {
    version: 0,
    origin: sd.origin,
    sessionName: sd.sessionName ?? '-',
    ...(sd.info !== undefined ? { info: sd.info } : {}),
    ...(sd.uri !== undefined ? { uri: sd.uri } : {}),
    emails: sd.emails,
    phones: sd.phones,
    ...(sd.connection ? { connection: sd.connection } : {}),
    bandwidths: sd.bandwidths,
    timing: sd.timing.length > 0 ? sd.timing : [{ start: '0', stop: '0', repeats: [] }],
    ...(sd.timezones !== undefined ? { timezones: sd.timezones } : {}),
    ...(sd.key !== undefined ? { key: sd.key } : {}),
    attributes: sd.attributes,
    media: sd.media,
  };
}

function connLine(c: SdpConnection): string {
  return `c=${c.netType} ${c.addrType} ${c.address}${c.suffix ?? ''}`;
}

function attrLine(a: SdpAttribute): string {
  return a.value === undefined ? `a=${a.name}` : `a=${a.name}:${a.value}`;
}

/** Serialize to SDP text with CRLF line ends, lines in RFC 8866 order. */
export function serializeSdp(sd: SessionDescription): string {
  const o = sd.origin;
  const out: string[] = [
    `v=${sd.version}`,
    `o=${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} ${o.addrType} ${o.address}`,
    `s=${sd.sessionName === '' ? '-' : sd.sessionName}`,
  ];
  if (sd.info !== undefined) out.push(`i=${sd.info}`);
  if (sd.uri !== undefined) out.push(`u=${sd.uri}`);
  for (const e of sd.emails) out.push(`e=${e}`);
  for (const p of sd.phones) out.push(`p=${p}`);
  if (sd.connection) out.push(connLine(sd.connection));
  for (const b of sd.bandwidths) out.push(`b=${b}`);
  const timing = sd.timing.length > 0 ? sd.timing : [{ start: '0', stop: '0', repeats: [] }];
  for (const t of timing) {
    out.push(`t=${t.start} ${t.stop}`);
    for (const r of t.repeats) out.push(`r=${r}`);
  }
  if (sd.timezones !== undefined) out.push(`z=${sd.timezones}`);
  if (sd.key !== undefined) out.push(`k=${sd.key}`);
  for (const a of sd.attributes) out.push(attrLine(a));
  for (const m of sd.media) {
    const port = m.portCount !== undefined ? `${m.port}/${m.portCount}` : String(m.port);
    out.push(`m=${m.type} ${port} ${m.proto} ${m.formats.join(' ')}`);
    if (m.info !== undefined) out.push(`i=${m.info}`);
    if (m.connection) out.push(connLine(m.connection));
    for (const b of m.bandwidths) out.push(`b=${b}`);
    if (m.key !== undefined) out.push(`k=${m.key}`);
    for (const a of m.attributes) out.push(attrLine(a));
  }
  return out.join('\r\n') + '\r\n';
}

/** First value of attribute `name` on a media section (case-insensitive name). */
export function getAttribute(m: { attributes: SdpAttribute[] }, name: string): SdpAttribute | undefined {
  const n = name.toLowerCase();
  return m.attributes.find((a) => a.name.toLowerCase() === n);
}

/**
 * `a=rtpmap` entries of a media section keyed by payload type. Entries that do not parse
 * are skipped (the format is then treated like one without rtpmap).
 */
export function rtpMaps(m: SdpMedia): Map<number, RtpMap> {
  const out = new Map<number, RtpMap>();
  for (const a of m.attributes) {
    if (a.name.toLowerCase() !== 'rtpmap' || a.value === undefined) continue;
    const r = /^\s*(\d{1,3})\s+([^/\s]+)\/(\d{1,6})(?:\/(\d{1,2}))?\s*$/.exec(a.value);
    if (!r) continue;
    const pt = Number(r[1]);
    if (pt > 127 || out.has(pt)) continue;
    const map: RtpMap = { payloadType: pt, encoding: r[2]!, clockRate: Number(r[3]) };
    if (r[4] !== undefined) map.channels = Number(r[4]);
    out.set(pt, map);
  }
  return out;
}

/** `a=fmtp` parameters of payload type `pt`, as written (without the `<pt> ` prefix). */
export function fmtpOf(m: SdpMedia, pt: number): string | undefined {
  for (const a of m.attributes) {
    if (a.name.toLowerCase() !== 'fmtp' || a.value === undefined) continue;
    const r = /^\s*(\d{1,3})\s+(.*)$/.exec(a.value);
    if (r && Number(r[1]) === pt) return r[2]!.trim();
  }
  return undefined;
}

/** Effective direction of a media section: media-level attribute, else session-level, else sendrecv. */
export function directionOf(sd: SessionDescription, m: SdpMedia): Direction {
  for (const a of m.attributes) if (DIRECTIONS.has(a.name.toLowerCase())) return a.name.toLowerCase() as Direction;
  for (const a of sd.attributes) if (DIRECTIONS.has(a.name.toLowerCase())) return a.name.toLowerCase() as Direction;
  return 'sendrecv';
}

/** `a=ptime` in ms, if present and sane. */
export function ptimeOf(sd: SessionDescription, m: SdpMedia): number | undefined {
  const a = getAttribute(m, 'ptime') ?? getAttribute(sd, 'ptime');
  if (!a?.value) return undefined;
  const n = Number(a.value.trim());
  return Number.isFinite(n) && n > 0 && n <= 1000 ? n : undefined;
}
