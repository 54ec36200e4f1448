/**
 * SIPS and TLS rules of the built-in SIP edge (RFC 3261 §26.2, RFC 5630), kept out of the UA
 * core so it only asks small questions:
 *
 * - {@link localUri}: the edge's own URI for Contact / Record-Route. Over TLS it is
 *   `sips:host:tlsPort` when the request or dialog is secure (a SIPS Request-URI, top
 *   Record-Route or Contact; §8.1.1.8, §12.1.1), else `sip:host:tlsPort;transport=tls`, so
 *   in-dialog requests come back over TLS to the TLS port. `transport=tls` is never put on a
 *   sips: URI (deprecated, RFC 3261 §26.2.2 / RFC 5630 §5.2).
 * - {@link sipsOverInsecureHop}: a sips: Request-URI must only be served over TLS. The edge
 *   answers such a request received over UDP or TCP with `480 Temporarily Unavailable` and
 *   `Warning: 381 <host> "SIPS Required"` (RFC 5630 §5.3; 416 would claim the sips scheme is
 *   unsupported, which is not what is wrong).
 * - {@link contactForLocalhost}: drachtio-server replaces `@localhost` in an app's From/Contact
 *   with its own address (drachtio-srf writes `sip[s]:<callingNumber>@localhost` for
 *   `callingNumber`); the edge does the same, with the port and transport of the hop.
 */
import type { SipMessage } from './message.ts';
import type { TransportName } from './transport.ts';

/** Scheme of a URI or name-addr (`"A" <sips:b@c>;tag=x` → `sips`), lower case; '' if none. */
export function uriScheme(v: string | undefined): string {
  if (!v) return '';
  const lt = v.indexOf('<');
  const s = lt >= 0 ? v.slice(lt + 1) : v;
  return /^\s*([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase() ?? '';
}

/** A `sips:` URI (bare or in a name-addr). */
export function isSips(v: string | undefined): boolean {
  return uriScheme(v) === 'sips';
}

/**
 * §12.1.1: a dialog created by `req` is secure when its Request-URI is sips, or the top
 * Record-Route (or, without Record-Route, the Contact) is.
 */
export function requestIsSecure(req: SipMessage): boolean {
  if (isSips(req.uri)) return true;
  const rr = req.get('Record-Route');
  return isSips(rr ?? req.get('Contact'));
}

/** The edge's URI for `transport` (`lr` for Record-Route), see the module comment. */
export function localUri(host: string, port: number, transport: TransportName, secure: boolean, lr = false): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const lrp = lr ? ';lr' : '';
  if (transport === 'tls') return secure ? `<sips:${h}:${port}${lrp}>` : `<sip:${h}:${port}${lrp};transport=tls>`;
  return transport === 'tcp' ? `<sip:${h}:${port}${lrp};transport=tcp>` : `<sip:${h}:${port}${lrp}>`;
}

/**
 * Why `req` (received over `transport`) must be refused under RFC 5630, or undefined: a sips:
 * Request-URI that did not arrive over TLS.
 */
export function sipsOverInsecureHop(req: SipMessage, transport: TransportName): string | undefined {
  if (transport === 'tls' || !isSips(req.uri)) return undefined;
  return `sips: Request-URI received over ${transport.toUpperCase()}; SIPS requires TLS`;
}

/**
 * An app's Contact naming `user@localhost[:port]` → `user@host:port` of the hop it is sent on
 * (`;transport=tcp|tls` added for a sip: URI; a bare addr-spec gets angle brackets so the
 * parameter stays in the URI). Anything else is returned unchanged.
 */
export function contactForLocalhost(value: string, host: string, port: number, transport: TransportName): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const fix = (uri: string): string => {
    const m = /^(sips?:[^@]*@)localhost(?::\d+)?((?:;.*)?)$/i.exec(uri.trim());
    if (!m) return uri;
    const tp = transport === 'udp' || isSips(uri) || /;\s*transport=/i.test(m[2]!) ? '' : `;transport=${transport}`;
    return `${m[1]}${h}:${port}${tp}${m[2]}`;
  };
  const lt = value.indexOf('<');
  if (lt >= 0) {
    const gt = value.indexOf('>', lt);
    if (gt < 0) return value;
    return value.slice(0, lt + 1) + fix(value.slice(lt + 1, gt)) + value.slice(gt);
  }
  const semi = value.indexOf(';');
  const uri = semi < 0 ? value : value.slice(0, semi);
  const fixed = fix(uri);
  return fixed === uri ? value : `<${fixed}>${semi < 0 ? '' : value.slice(semi)}`;
}
