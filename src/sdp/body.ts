/**
 * The session description inside a SIP message body (RFC 3261 §7.4, RFC 5621).
 *
 * Carriers do not always send a bare `application/sdp`. SIP-I / SIP-T gateways (ITU-T
 * Q.1912.5, RFC 3372) send `multipart/mixed` with the SDP and the encapsulated ISUP message
 * (`application/ISUP`); some send `multipart/alternative`. {@link sdpFromBody} finds the SDP
 * part and describes the others for the record.
 *
 * Multipart parsing follows RFC 2046 §5.1: the boundary comes from the Content-Type parameter
 * (quoted or not, case-sensitive); a delimiter is `--boundary` at the start of a line
 * (optionally followed by linear white space), the CRLF before it belongs to the delimiter;
 * text before the first delimiter (preamble) and after the close delimiter `--boundary--`
 * (epilogue) is ignored. Bare LF line ends are tolerated. Part headers may be folded; a part
 * without Content-Type is `text/plain`. Nested multiparts are searched (3 levels at most).
 *
 * Which SDP: in `multipart/mixed` the first `application/sdp` part; in
 * `multipart/alternative` the last one (RFC 2046 §5.1.4: alternatives are in increasing order
 * of preference). A base64 Content-Transfer-Encoding of the SDP part is decoded.
 *
 * A part we do not use whose Content-Disposition says `handling=required` (RFC 3261 §20.11,
 * RFC 5621 §9.1) makes the body unsupported (415): the sender said the call must not go on
 * without it being understood. Without `handling` we treat the part as optional — SIP-I
 * gateways mostly send `handling=optional` or no Content-Disposition, and a voice agent has
 * no use for ISUP, so rejecting them would refuse every such call for nothing.
 */

/** Body types the offer/answer may arrive in; advertised in `Accept`. */
export const SDP_BODY_TYPES = ['application/sdp', 'multipart/mixed', 'multipart/alternative'] as const;
/** `Accept` header value listing {@link SDP_BODY_TYPES}. */
export const SDP_ACCEPT = SDP_BODY_TYPES.join(', ');

/** A body part we did not use, for the record (debug log). */
export interface OtherPart {
  /** media type, lower case (`application/isup`) */
  type: string;
  /** the full Content-Type value as sent (`application/ISUP; version=itu-t92+`) */
  contentType: string;
  /** size of the part's content in bytes (UTF-8, as the text reached us) */
  bytes: number;
  /** Content-Disposition, if any (`signal;handling=optional`) */
  disposition?: string;
}

export interface SdpBody {
  /** the session description text */
  sdp: string;
  /** `application/sdp`, or the multipart type it was found in */
  container: string;
  /** parts that were not the SDP (none for a plain application/sdp body) */
  others: OtherPart[];
}

/** Why a body holds no SDP we can use. `unsupported` → 415 + Accept, `malformed` → 400. */
export class BodyError extends Error {
  readonly kind: 'unsupported' | 'malformed';
  /** media type of the body (or of the part) at fault */
  readonly type: string;
  constructor(kind: 'unsupported' | 'malformed', type: string, message: string) {
    super(message);
    this.name = 'BodyError';
    this.kind = kind;
    this.type = type;
  }
}

interface ContentType { type: string; params: Record<string, string>; raw: string }

/** Parse a Content-Type value: `type/subtype` lower-cased, parameters (names lower-cased, values unquoted). */
export function parseContentType(value: string | undefined): ContentType {
  const raw = (value ?? '').trim();
  const semi = indexOutsideQuotes(raw, ';');
  const type = (semi < 0 ? raw : raw.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = {};
  let rest = semi < 0 ? '' : raw.slice(semi + 1);
  while (rest.trim() !== '') {
    const next = indexOutsideQuotes(rest, ';');
    const item = (next < 0 ? rest : rest.slice(0, next)).trim();
    rest = next < 0 ? '' : rest.slice(next + 1);
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const k = item.slice(0, eq).trim().toLowerCase();
    let v = item.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (!(k in params)) params[k] = v;
  }
  return { type, params, raw };
}

function indexOutsideQuotes(s: string, ch: string): number {
  let q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && q) i++;
    else if (c === '"') q = !q;
    else if (c === ch && !q) return i;
  }
  return -1;
}

interface Part { headers: Map<string, string>; content: string }

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/** Split a multipart body into its parts (RFC 2046 §5.1.1). @throws BodyError (malformed) */
export function splitMultipart(body: string, boundary: string, type = 'multipart/mixed'): Part[] {
  if (boundary === '' || boundary.length > 70) {
    throw new BodyError('malformed', type, `malformed ${type} body: ${boundary === '' ? 'no boundary parameter' : 'boundary longer than 70 characters'}`);
  }
  const delim = new RegExp(`(?:^|\\r?\\n)--${escapeRe(boundary)}(--)?[ \\t]*(?=\\r?\\n|$)`, 'g');
  const marks: { start: number; end: number; close: boolean }[] = [];
  for (let m = delim.exec(body); m; m = delim.exec(body)) {
    marks.push({ start: m.index, end: m.index + m[0].length, close: m[1] === '--' });
    if (m[1] === '--') break; // the rest is epilogue
  }
  if (marks.length === 0) throw new BodyError('malformed', type, `malformed ${type} body: boundary "${boundary}" not found`);
  if (!marks[marks.length - 1]!.close) throw new BodyError('malformed', type, `malformed ${type} body: no closing boundary "--${boundary}--"`);
  const parts: Part[] = [];
  for (let i = 0; i + 1 < marks.length; i++) {
    let text = body.slice(marks[i]!.end, marks[i + 1]!.start);
    text = text.replace(/^\r?\n/, ''); // the line break that ends the delimiter line
    parts.push(parsePart(text));
  }
  return parts;
}

function parsePart(text: string): Part {
  const headers = new Map<string, string>();
  // no headers at all: the part starts with its blank line
  const sep = /\r?\n\r?\n/.exec(text);
  const startsBlank = /^\r?\n/.test(text);
  if (startsBlank) return { headers, content: text.replace(/^\r?\n/, '') };
  if (!sep) {
    // only header lines (an empty part) — or content without a blank line; take it as headers if it looks like them
    if (/^[A-Za-z0-9-]+[ \t]*:/.test(text)) {
      readHeaders(text, headers);
      return { headers, content: '' };
    }
    return { headers, content: text };
  }
  readHeaders(text.slice(0, sep.index), headers);
  return { headers, content: text.slice(sep.index + sep[0].length) };
}

function readHeaders(block: string, into: Map<string, string>): void {
  const unfolded = block.replace(/\r?\n[ \t]+/g, ' ');
  for (const line of unfolded.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim().toLowerCase();
    if (!into.has(name)) into.set(name, line.slice(i + 1).trim());
  }
}

function disposition(p: Part): { raw?: string; required: boolean } {
  const raw = p.headers.get('content-disposition');
  if (!raw) return { required: false };
  const params = parseContentType(raw).params;
  return { raw, required: (params.handling ?? '').toLowerCase() === 'required' };
}

function decodeContent(p: Part): string {
  const cte = (p.headers.get('content-transfer-encoding') ?? '').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(p.content.replace(/\s+/g, ''), 'base64').toString('utf8');
  return p.content;
}

interface Found { sdp: string; container: string; others: OtherPart[] }

function search(ct: ContentType, body: string, depth: number): Found | null {
  const boundary = ct.params.boundary ?? '';
  const parts = splitMultipart(body, boundary, ct.type);
  const alternative = ct.type === 'multipart/alternative';
  const others: OtherPart[] = [];
  let chosen: { sdp: string; container: string; index: number; nested: OtherPart[] } | null = null;
  parts.forEach((p, index) => {
    const pct = parseContentType(p.headers.get('content-type') ?? 'text/plain');
    if (pct.type === 'application/sdp') {
      if (!chosen || alternative) chosen = { sdp: decodeContent(p), container: ct.type, index, nested: [] };
      return;
    }
    if ((pct.type === 'multipart/mixed' || pct.type === 'multipart/alternative') && depth < 3) {
      const inner = search(pct, p.content, depth + 1);
      if (inner && (!chosen || alternative)) {
        chosen = { sdp: inner.sdp, container: inner.container, index, nested: inner.others };
        return;
      }
    }
  });
  const c = chosen as { sdp: string; container: string; index: number; nested: OtherPart[] } | null;
  parts.forEach((p, index) => {
    if (c && index === c.index) return;
    const pct = parseContentType(p.headers.get('content-type') ?? 'text/plain');
    const d = disposition(p);
    // a required part we do not understand refuses the body (not for the unused alternatives)
    if (d.required && !alternative && pct.type !== 'application/sdp') {
      throw new BodyError('unsupported', pct.type, `body part ${pct.type || 'text/plain'} is marked handling=required and is not supported`);
    }
    others.push({
      type: pct.type || 'text/plain', contentType: pct.raw || 'text/plain',
      bytes: Buffer.byteLength(p.content, 'utf8'), ...(d.raw ? { disposition: d.raw } : {}),
    });
  });
  if (!c) return null;
  return { sdp: c.sdp, container: c.container, others: [...c.nested, ...others] };
}

/**
 * The SDP of a SIP body, or null when there is no body at all (an offerless INVITE).
 * A missing Content-Type with a body is taken as SDP (lenient; what the app did before).
 * @throws BodyError — `unsupported` (no SDP in it, or a required part we cannot handle),
 * `malformed` (a multipart body that cannot be split)
 */
export function sdpFromBody(contentType: string | undefined, body: string | undefined): SdpBody | null {
  const text = body ?? '';
  if (text.trim() === '') return null;
  const ct = parseContentType(contentType);
  if (ct.type === '' || ct.type === 'application/sdp') return { sdp: text, container: 'application/sdp', others: [] };
  if (ct.type === 'multipart/mixed' || ct.type === 'multipart/alternative') {
    const found = search(ct, text, 1);
    if (!found) throw new BodyError('unsupported', ct.type, `${ct.type} body has no application/sdp part`);
    return found;
  }
  throw new BodyError('unsupported', ct.type, `unsupported body type ${ct.type}`);
}
